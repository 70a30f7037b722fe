package catalog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// IndexFormatVersion is the layout of the on-disk index; an index of
// another version is ignored and rebuilt.
const IndexFormatVersion = 1

// DefaultIndexMaxBytes bounds one index file, written or read.
const DefaultIndexMaxBytes = 512 << 20

const (
	indexMagic  = "FERRYIDX"
	indexSuffix = ".idx"
	// indexHeader is the magic, the version and the payload's sha256.
	indexHeader = len(indexMagic) + 4 + sha256.Size
)

// DefaultIndexDir is where catalogd keeps catalog indexes by default.
func DefaultIndexDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ferry", "catalog-index")
	}
	return filepath.Join(os.TempDir(), "ferry-catalog-index")
}

// IndexConfig turns on the on-disk index (see WithIndex).
type IndexConfig struct {
	// Dir holds the index files; "" turns the index off.
	Dir string
	// MaxBytes bounds one index file (0: DefaultIndexMaxBytes).
	MaxBytes int64
	// Log receives a line for every index read, written, ignored or removed.
	Log logr.Logger
}

// WithIndex keeps an index of every parsed catalog whose sources all have
// a Fingerprint in cfg.Dir, keyed by those fingerprints and the index
// format, and reads it instead of parsing when the same sources are loaded
// again. An index that is unreadable, truncated, of another version or
// whose checksum does not match is ignored, logged and rewritten. The
// directory keeps the index used last and the one before it.
func WithIndex(cfg IndexConfig) Option { return func(o *options) { o.index = cfg } }

// indexKey names the index of sources: "" when some source has no
// fingerprint or is not a file-based catalog on disk.
func indexKey(sources []Source) string {
	if len(sources) == 0 {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "ferry-index\x00%d\x00", IndexFormatVersion)
	for _, s := range sources {
		if s.Fingerprint == "" || s.Dir == "" || s.FS != nil || s.Format != FormatFBC || s.Overlay {
			return ""
		}
		abs, err := filepath.Abs(s.Dir)
		if err != nil {
			return ""
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", s.Name, abs, s.Fingerprint)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The encoded index: declConfig with every field exported.
type idxConfig struct {
	Packages     []idxPackage
	Channels     []idxChannel
	Bundles      []idxBundle
	Deprecations []idxDeprecations
	Others       []Meta
	Problems     []Problem
}

type idxPackage struct {
	Name, DefaultChannel, Description string
	Icon                              *Icon
	Src, Field                        string
	Sum                               [sha256.Size]byte
}

type idxEntry struct {
	Name, Replaces string
	Skips          []string
	SkipRange      string
}

type idxChannel struct {
	Package, Name string
	Entries       []idxEntry
	Properties    []Property
	Src, Field    string
}

type idxBundle struct {
	Package, Name, Image string
	Properties           []Property
	RelatedImages        []RelatedImage
	CSVMetadata          []byte
	Src, Field           string
	Sum                  [sha256.Size]byte
	ManifestsDigest      string
	Inline               []Manifest
	Blob                 *idxBlob
}

type idxBlob struct {
	Path          string
	Off, N, Size  int64
	ModTime       time.Time
	YAML, Located bool
	Objects       []idxObject
	Sum           [sha256.Size]byte
}

type idxObject struct {
	APIVersion, Kind, Name string
	Off, N                 int
}

type idxDeprecations struct {
	Package    string
	Entries    []deprecationItem
	Src, Field string
}

func toIndex(cfg *declConfig, problems Problems) (*idxConfig, error) {
	x := &idxConfig{Others: cfg.others, Problems: problems}
	for _, p := range cfg.packages {
		x.Packages = append(x.Packages, idxPackage{p.Name, p.DefaultChannel, p.Description, p.Icon, p.src, p.field, p.sum})
	}
	for _, c := range cfg.channels {
		ic := idxChannel{Package: c.Package, Name: c.Name, Properties: c.Properties, Src: c.src, Field: c.field}
		for _, e := range c.Entries {
			ic.Entries = append(ic.Entries, idxEntry{e.Name, e.Replaces, e.Skips, e.SkipRange})
		}
		x.Channels = append(x.Channels, ic)
	}
	for _, b := range cfg.bundles {
		ib := idxBundle{
			Package: b.Package, Name: b.Name, Image: b.Image, Properties: b.Properties, RelatedImages: b.RelatedImages,
			CSVMetadata: b.csvMetadata, Src: b.src, Field: b.field, Sum: b.sum, ManifestsDigest: b.manifestsDigest,
		}
		switch m := b.manifests.(type) {
		case nil:
		case inlineManifests:
			ib.Inline = m
		case *blobRef:
			blob := &idxBlob{Path: m.path, Off: m.off, N: m.n, Size: m.size, ModTime: m.modTime, YAML: m.yaml, Located: m.located, Sum: m.sum}
			for _, o := range m.objects {
				blob.Objects = append(blob.Objects, idxObject{o.apiVersion, o.kind, o.name, o.off, o.n})
			}
			ib.Blob = blob
		default:
			return nil, fmt.Errorf("bundle %q: manifests of type %T cannot be indexed", b.Name, m)
		}
		x.Bundles = append(x.Bundles, ib)
	}
	for _, d := range cfg.deprecations {
		x.Deprecations = append(x.Deprecations, idxDeprecations{d.Package, d.Entries, d.src, d.field})
	}
	return x, nil
}

func fromIndex(x *idxConfig) (*declConfig, Problems) {
	cfg := &declConfig{others: x.Others}
	for _, p := range x.Packages {
		cfg.packages = append(cfg.packages, &declPackage{Name: p.Name, DefaultChannel: p.DefaultChannel, Description: p.Description, Icon: p.Icon, src: p.Src, field: p.Field, sum: p.Sum})
	}
	for _, c := range x.Channels {
		dc := &declChannel{Package: c.Package, Name: c.Name, Properties: c.Properties, src: c.Src, field: c.Field}
		dc.Entries = make([]ChannelEntry, 0, len(c.Entries))
		for _, e := range c.Entries {
			dc.Entries = append(dc.Entries, ChannelEntry{Name: e.Name, Replaces: e.Replaces, Skips: e.Skips, SkipRange: e.SkipRange})
		}
		cfg.channels = append(cfg.channels, dc)
	}
	for _, b := range x.Bundles {
		db := &declBundle{
			Package: b.Package, Name: b.Name, Image: b.Image, Properties: b.Properties, RelatedImages: b.RelatedImages,
			csvMetadata: b.CSVMetadata, src: b.Src, field: b.Field, sum: b.Sum, manifestsDigest: b.ManifestsDigest,
		}
		switch {
		case b.Blob != nil:
			r := &blobRef{path: b.Blob.Path, off: b.Blob.Off, n: b.Blob.N, size: b.Blob.Size, modTime: b.Blob.ModTime, yaml: b.Blob.YAML, located: b.Blob.Located, sum: b.Blob.Sum}
			for _, o := range b.Blob.Objects {
				r.objects = append(r.objects, objectRef{apiVersion: o.APIVersion, kind: o.Kind, name: o.Name, off: o.Off, n: o.N})
			}
			db.manifests = r
		case len(b.Inline) > 0:
			db.manifests = inlineManifests(b.Inline)
		}
		cfg.bundles = append(cfg.bundles, db)
	}
	for _, d := range x.Deprecations {
		cfg.deprecations = append(cfg.deprecations, &declDeprecations{Package: d.Package, Entries: d.Entries, src: d.Src, field: d.Field})
	}
	return cfg, x.Problems
}

// IndexError says why an index file was not used.
type IndexError struct {
	Path   string
	Reason string
}

func (e *IndexError) Error() string { return "catalog index " + e.Path + ": " + e.Reason }

func (ic IndexConfig) maxBytes() int64 {
	if ic.MaxBytes > 0 {
		return ic.MaxBytes
	}
	return DefaultIndexMaxBytes
}

func (ic IndexConfig) path(key string) string { return filepath.Join(ic.Dir, key+indexSuffix) }

// readIndex returns the parsed documents and problems indexed under key;
// os.ErrNotExist (wrapped) when there is none.
func (ic IndexConfig) readIndex(key string) (*declConfig, Problems, error) {
	p := ic.path(key)
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() > ic.maxBytes()+int64(indexHeader) {
		return nil, nil, &IndexError{Path: p, Reason: fmt.Sprintf("%d bytes, over the limit of %d", st.Size(), ic.maxBytes())}
	}
	if st.Size() < int64(indexHeader) {
		return nil, nil, &IndexError{Path: p, Reason: "truncated header"}
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, &IndexError{Path: p, Reason: "reading: " + err.Error()}
	}
	if string(data[:len(indexMagic)]) != indexMagic {
		return nil, nil, &IndexError{Path: p, Reason: "not an index file"}
	}
	if v := binary.BigEndian.Uint32(data[len(indexMagic):]); v != IndexFormatVersion {
		return nil, nil, &IndexError{Path: p, Reason: fmt.Sprintf("format version %d, this catalogd reads %d", v, IndexFormatVersion)}
	}
	payload := data[indexHeader:]
	if sha256.Sum256(payload) != [sha256.Size]byte(data[len(indexMagic)+4:indexHeader]) {
		return nil, nil, &IndexError{Path: p, Reason: "checksum mismatch (truncated or corrupt)"}
	}
	var x idxConfig
	if err := gob.NewDecoder(bytes.NewReader(payload)).Decode(&x); err != nil {
		return nil, nil, &IndexError{Path: p, Reason: "decoding: " + err.Error()}
	}
	cfg, problems := fromIndex(&x)
	if err := checkFiles(cfg); err != nil {
		return nil, nil, &IndexError{Path: p, Reason: err.Error()}
	}
	return cfg, problems, nil
}

// checkFiles makes sure that every catalog file the index points into is
// the one indexed: same size and modification time.
func checkFiles(cfg *declConfig) error {
	seen := map[string]bool{}
	for _, b := range cfg.bundles {
		r, ok := b.manifests.(*blobRef)
		if !ok || seen[r.path] {
			continue
		}
		seen[r.path] = true
		st, err := os.Stat(r.path)
		if err != nil {
			return fmt.Errorf("catalog file: %w", err)
		}
		if st.Size() != r.size || !st.ModTime().Equal(r.modTime) {
			return fmt.Errorf("catalog file %s changed since it was indexed", r.path)
		}
	}
	return nil
}

// writeIndex writes the parsed documents under key, atomically.
func (ic IndexConfig) writeIndex(key string, cfg *declConfig, problems Problems) error {
	x, err := toIndex(cfg, problems)
	if err != nil {
		return err
	}
	var payload bytes.Buffer
	if err := gob.NewEncoder(&payload).Encode(x); err != nil {
		return fmt.Errorf("encoding catalog index: %w", err)
	}
	if int64(payload.Len()) > ic.maxBytes() {
		return &IndexError{Path: ic.path(key), Reason: fmt.Sprintf("%d bytes, over the limit of %d; not written", payload.Len(), ic.maxBytes())}
	}
	if err := os.MkdirAll(ic.Dir, 0o700); err != nil {
		return fmt.Errorf("catalog index directory: %w", err)
	}
	tmp, err := os.CreateTemp(ic.Dir, key+indexSuffix+".tmp*")
	if err != nil {
		return fmt.Errorf("writing catalog index: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	sum := sha256.Sum256(payload.Bytes())
	w := bufio.NewWriter(tmp)
	var version [4]byte
	binary.BigEndian.PutUint32(version[:], IndexFormatVersion)
	_, _ = w.WriteString(indexMagic)
	_, _ = w.Write(version[:])
	_, _ = w.Write(sum[:])
	_, _ = w.Write(payload.Bytes())
	err = errors.Join(w.Flush(), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), ic.path(key))
	}
	if err != nil {
		return fmt.Errorf("writing catalog index %s: %w", ic.path(key), err)
	}
	return nil
}

// prune keeps the index of key and the most recently used other index,
// and removes every other index and leftover temporary file.
func (ic IndexConfig) prune(key string) error {
	entries, err := os.ReadDir(ic.Dir)
	if err != nil {
		return err
	}
	type file struct {
		name string
		mod  time.Time
	}
	var others []file
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.Contains(name, indexSuffix) || name == key+indexSuffix {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if !strings.HasSuffix(name, indexSuffix) {
			// A temporary file another writer may still be filling: removed once stale.
			if time.Since(info.ModTime()) > time.Hour {
				errs = append(errs, os.Remove(filepath.Join(ic.Dir, name)))
			}
			continue
		}
		others = append(others, file{name, info.ModTime()})
	}
	sort.Slice(others, func(i, j int) bool { return others[i].mod.After(others[j].mod) })
	for i, f := range others {
		if i == 0 {
			continue // the previous catalog
		}
		ic.Log.Info("removing catalog index no longer served", "file", f.name)
		errs = append(errs, os.Remove(filepath.Join(ic.Dir, f.name)))
	}
	return errors.Join(errs...)
}

// loadIndexed returns the parsed documents of sources from the index, or
// parses them and writes the index.
func (ic IndexConfig) loadIndexed(key string, parse func() (*declConfig, Problems, error)) (*declConfig, Problems, bool, error) {
	start := time.Now()
	cfg, problems, err := ic.readIndex(key)
	if err == nil {
		now := time.Now()
		_ = os.Chtimes(ic.path(key), now, now) // marks it the one used last, for prune
		ic.Log.Info("catalog read from its index", "file", ic.path(key), "duration", time.Since(start).Round(time.Millisecond))
		if err := ic.prune(key); err != nil {
			ic.Log.Error(err, "pruning catalog indexes")
		}
		return cfg, problems, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		ic.Log.Error(err, "ignoring catalog index; parsing the catalog and rebuilding it")
	}
	cfg, problems, err = parse()
	if err != nil {
		return nil, nil, false, err
	}
	if err := ic.writeIndex(key, cfg, problems); err != nil {
		ic.Log.Error(err, "catalog index not written; the next start parses the catalog again")
	} else {
		ic.Log.Info("catalog index written", "file", ic.path(key))
	}
	if err := ic.prune(key); err != nil {
		ic.Log.Error(err, "pruning catalog indexes")
	}
	return cfg, problems, false, nil
}
