package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"
	ignore "github.com/sabhiram/go-gitignore"

	"github.com/ferrydev/ferry/internal/yamljson"
)

// fbcBlob holds the fields of every schema the model interprets.
type fbcBlob struct {
	Schema         string          `json:"schema"`
	Package        string          `json:"package"`
	Name           string          `json:"name"`
	DefaultChannel string          `json:"defaultChannel"`
	Description    string          `json:"description"`
	Icon           *Icon           `json:"icon"`
	Entries        json.RawMessage `json:"entries"`
	Image          string          `json:"image"`
	Properties     []Property      `json:"properties"`
	RelatedImages  []RelatedImage  `json:"relatedImages"`
}

const indexIgnoreFile = ".indexignore"

// fbcFiles lists the catalog documents of a tree, honouring .indexignore
// files (gitignore syntax, relative to the directory holding them).
func fbcFiles(fsys fs.FS, sink *problemSink) ([]string, error) {
	type matcher struct {
		dir string
		m   *ignore.GitIgnore
	}
	var matchers []matcher
	ignored := func(p string, isDir bool) bool {
		for _, m := range matchers {
			rel := p
			if m.dir != "." {
				if !strings.HasPrefix(p, m.dir+"/") {
					continue
				}
				rel = strings.TrimPrefix(p, m.dir+"/")
			}
			if isDir {
				rel += "/"
			}
			if m.m.MatchesPath(rel) {
				return true
			}
		}
		return false
	}
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && ignored(p, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			data, err := fs.ReadFile(fsys, path.Join(p, indexIgnoreFile))
			if err == nil {
				lines := strings.Split(string(data), "\n")
				matchers = append(matchers, matcher{dir: p, m: ignore.CompileIgnoreLines(lines...)})
			} else if !errors.Is(err, fs.ErrNotExist) {
				sink.errorf(path.Join(p, indexIgnoreFile), "", "cannot read: %v", err)
			}
			return nil
		}
		switch strings.ToLower(path.Ext(p)) {
		case ".json", ".yaml", ".yml":
			if d.Name() != indexIgnoreFile {
				files = append(files, p)
			}
		}
		return nil
	})
	return files, err
}

// fbcFile is the result of parsing one file.
type fbcFile struct {
	cfg      declConfig
	problems problemSink
	// scratch is the buffer bundle objects of an on-disk file are decoded
	// into while it is parsed.
	scratch []byte
}

// parseFBCFile parses one JSON or YAML stream. diskPath is set when the file
// lives on disk, in which case bundle manifests stay there.
func parseFBCFile(rel string, data []byte, disk *diskFile) *fbcFile {
	out := &fbcFile{}
	isYAML := strings.ToLower(path.Ext(rel)) != ".json"
	var docs []docSpan
	if isYAML {
		docs = splitYAML(data)
	} else {
		var err error
		var errAt int
		docs, errAt, err = splitJSON(data)
		if err != nil {
			line := 1 + bytes.Count(data[:errAt], []byte("\n"))
			out.problems.errorf(rel, fmt.Sprintf("document %d", len(docs)+1), "not valid JSON at line %d: %v; the rest of the file is skipped", line, err)
		}
	}
	for i, d := range docs {
		field := fmt.Sprintf("document %d", i+1)
		raw := data[d.off : d.off+d.n]
		js := raw
		if isYAML {
			if yamlBlank(raw) {
				continue
			}
			var err error
			if js, err = yamlDocumentToJSON(raw); err != nil {
				out.problems.errorf(rel, field, "not valid YAML: %v", err)
				continue
			}
			if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
				continue
			}
		}
		var b fbcBlob
		if !quickFBCBlob(js, &b) {
			b = fbcBlob{}
			if err := jsonv1.Unmarshal(js, &b); err != nil {
				out.problems.errorf(rel, field, "not a catalog document: %v", err)
				continue
			}
		}
		out.add(rel, field, &b, js, raw, d, disk, isYAML)
	}
	out.scratch = nil
	return out
}

// add records one document. raw is the document as it is in the file and
// js the same as JSON; for on-disk files, bundle objects are validated here
// and located in raw so that reading them later needs no JSON parsing.
func (f *fbcFile) add(rel, field string, b *fbcBlob, js, raw []byte, d docSpan, disk *diskFile, isYAML bool) {
	sink := &f.problems
	switch b.Schema {
	case "":
		sink.errorf(rel, field, "schema: missing; every catalog document needs one")
	case SchemaPackage:
		field = fmt.Sprintf("%s (olm.package %q)", field, b.Name)
		if b.Name == "" {
			sink.errorf(rel, field, "name: missing")
			return
		}
		f.cfg.packages = append(f.cfg.packages, &declPackage{
			Name: b.Name, DefaultChannel: b.DefaultChannel, Description: b.Description, Icon: b.Icon,
			src: rel, field: field, sum: sha256.Sum256(js),
		})
	case SchemaChannel:
		field = fmt.Sprintf("%s (olm.channel %q)", field, b.Name)
		if b.Package == "" || b.Name == "" {
			sink.errorf(rel, field, "package and name are required")
			return
		}
		c := &declChannel{Package: b.Package, Name: b.Name, Properties: b.Properties, src: rel, field: field}
		if len(b.Entries) > 0 {
			if err := jsonv1.Unmarshal(b.Entries, &c.Entries); err != nil {
				sink.errorf(rel, field, "entries: %v", err)
				return
			}
		}
		f.cfg.channels = append(f.cfg.channels, c)
	case SchemaBundle:
		field = fmt.Sprintf("%s (olm.bundle %q)", field, b.Name)
		if b.Package == "" || b.Name == "" {
			sink.errorf(rel, field, "package and name are required")
			return
		}
		db := &declBundle{
			Package: b.Package, Name: b.Name, Image: b.Image, RelatedImages: b.RelatedImages,
			src: rel, field: field, sum: sha256.Sum256(js),
		}
		var inline inlineManifests
		var refs []objectRef
		mh := newManifestsHash()
		located := true
		search := 0
		props := b.Properties[:0:0]
		// On disk only the objects' heads and digest are kept, so each
		// object is decoded into one buffer of the file's.
		var scratch *[]byte
		if disk != nil {
			scratch = &f.scratch
		}
		for i, p := range b.Properties {
			switch p.Type {
			case PropertyBundleObject:
				m, data, err := decodeBundleObjectData(p.Value, scratch)
				if err != nil {
					sink.errorf(rel, fmt.Sprintf("%s properties[%d]", field, i), "%v", err)
					return
				}
				mh.add(m)
				if disk == nil {
					inline = append(inline, m)
					continue
				}
				ref := objectRef{apiVersion: m.APIVersion, kind: m.Kind, name: m.Name, off: -1}
				if located {
					if at := bytes.Index(raw[search:], data); at >= 0 {
						ref.off, ref.n = search+at, len(data)
						search += at + len(data)
					} else {
						located = false
					}
				}
				refs = append(refs, ref)
			case PropertyCSVMetadata:
				if disk == nil {
					db.csvMetadata = p.Value
				}
			default:
				props = append(props, p)
			}
		}
		db.Properties = props
		sum := mh.sum()
		db.manifestsDigest = sha256Digest(sum)
		switch {
		case disk != nil && len(refs) > 0:
			db.manifests = &blobRef{
				path: disk.path, off: int64(d.off), n: int64(d.n), size: disk.size, modTime: disk.modTime,
				yaml: isYAML, objects: refs, located: located, sum: sum,
			}
		case len(inline) > 0:
			db.manifests = inline
		}
		f.cfg.bundles = append(f.cfg.bundles, db)
	case SchemaDeprecations:
		field = fmt.Sprintf("%s (olm.deprecations %q)", field, b.Package)
		dd := &declDeprecations{Package: b.Package, src: rel, field: field}
		if err := jsonv1.Unmarshal(js, dd); err != nil {
			sink.errorf(rel, field, "entries: %v", err)
			return
		}
		if dd.Package == "" {
			sink.errorf(rel, field, "package: missing")
			return
		}
		f.cfg.deprecations = append(f.cfg.deprecations, dd)
	default:
		f.cfg.others = append(f.cfg.others, Meta{Schema: b.Schema, Package: b.Package, Name: b.Name, Blob: append(json.RawMessage(nil), js...), Source: rel})
	}
}

type docSpan struct{ off, n int }

// splitJSON splits a stream of JSON values by scanning brackets and strings
// only; each value is fully parsed (and checked) later. On a syntax error it
// returns the values read so far, the byte offset of the error and the error.
func splitJSON(data []byte) ([]docSpan, int, error) {
	var spans []docSpan
	i := 0
	for {
		for i < len(data) && isJSONSpace(data[i]) {
			i++
		}
		if i == len(data) {
			return spans, 0, nil
		}
		end, err := scanJSONValue(data, i)
		if err != nil {
			return spans, end, err
		}
		spans = append(spans, docSpan{off: i, n: end - i})
		i = end
	}
}

// scanJSONValue returns the end of the object or array starting at i.
func scanJSONValue(data []byte, i int) (int, error) {
	return scanJSONValueDepth(data, i, 0)
}

// errTooDeep refuses a value nested deeper than asked.
var errTooDeep = errors.New("nested too deep")

// scanJSONValueDepth is scanJSONValue refusing, when maxDepth > 0, a value
// whose objects and arrays nest deeper than maxDepth.
func scanJSONValueDepth(data []byte, i, maxDepth int) (int, error) {
	if c := data[i]; c != '{' && c != '[' {
		return i, fmt.Errorf("invalid character %q looking for the start of a document", c)
	}
	depth := 0
	for j := i; j < len(data); j++ {
		switch data[j] {
		case '{', '[':
			depth++
			if maxDepth > 0 && depth > maxDepth {
				return j, errTooDeep
			}
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case '"':
			end, ok := stringEnd(data, j+1)
			if !ok {
				return len(data), io.ErrUnexpectedEOF
			}
			j = end
		}
	}
	return len(data), io.ErrUnexpectedEOF
}

// stringEnd returns the index of the quote closing the JSON string whose
// contents start at i: the first quote after i not escaped by an odd
// number of backslashes. Strings in catalogs run to megabytes of base64,
// so the quotes are found with bytes.IndexByte rather than byte by byte.
func stringEnd(data []byte, i int) (int, bool) {
	for {
		k := bytes.IndexByte(data[i:], '"')
		if k < 0 {
			return len(data), false
		}
		q := i + k
		backslashes := 0
		for p := q - 1; p >= i && data[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q, true
		}
		i = q + 1
	}
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// splitYAML splits a YAML stream at "---" document markers.
func splitYAML(data []byte) []docSpan {
	var spans []docSpan
	start, pos := 0, 0
	for pos < len(data) {
		end := bytes.IndexByte(data[pos:], '\n')
		lineEnd := len(data)
		if end >= 0 {
			lineEnd = pos + end + 1
		}
		line := data[pos:lineEnd]
		if isDocMarker(line) {
			if pos > start {
				spans = append(spans, docSpan{off: start, n: pos - start})
			}
			start = lineEnd
		}
		pos = lineEnd
	}
	if start < len(data) {
		spans = append(spans, docSpan{off: start, n: len(data) - start})
	}
	return spans
}

func isDocMarker(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := bytes.TrimRight(line[3:], "\r\n")
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t'
}

// yamlDocumentToJSON converts one document of a YAML stream to JSON, framed
// as operator-registry's stream reader (apimachinery's YAMLReader over its
// LineReader) hands documents to the same converter (sigs.k8s.io/yaml, YAML
// 1.1 rules; internal/yamljson gives its answer in one pass, byte for
// byte): every line ends with a line feed, the last line of the file
// included. Without that, a block scalar ending a file that has no final
// newline (`message: |` as the last key) would lose the newline YAML's clip
// chomping keeps.
func yamlDocumentToJSON(doc []byte) ([]byte, error) {
	if n := len(doc); n > 0 && doc[n-1] != '\n' {
		framed := make([]byte, n+1)
		copy(framed, doc)
		framed[n] = '\n'
		doc = framed
	}
	d := yamlDocs.Get().(*yamljson.Doc)
	defer yamlDocs.Put(d)
	js, _, err := d.Convert(doc)
	return js, err
}

// diskFile identifies a catalog file on disk for lazy manifest reads.
type diskFile struct {
	path    string
	size    int64
	modTime time.Time
}
