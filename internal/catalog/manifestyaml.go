package catalog

import (
	"sync"
	"unicode/utf8"

	"github.com/ferrydev/ferry/internal/yamljson"
)

// yamlDocs reuses the parsers of bundle directory documents.
var yamlDocs = sync.Pool{New: func() any { return new(yamljson.Doc) }}

// notYAMLError is a document that is not valid YAML.
type notYAMLError struct{ err error }

func (e *notYAMLError) Error() string { return e.err.Error() }
func (e *notYAMLError) Unwrap() error { return e.err }

// convertedManifest is one document of a bundle directory, converted.
type convertedManifest struct {
	m Manifest
	// crd holds the CustomResourceDefinition fields the loader reads when
	// they were read during the conversion; nil otherwise.
	crd *crdDoc
	// csv holds the ClusterServiceVersion fields the loader reads, the same
	// way; nil otherwise.
	csv *csvDoc
}

// convertManifestYAML converts one YAML document of a bundle directory to
// JSON, with the same bytes as yamlDocumentToJSON, and reads its head as
// parseManifestJSON does. When the one-pass converter answers, the head
// (and a CRD's fields) come from its tree and the JSON is not scanned again;
// otherwise the library converts and parseManifestJSON reads. A *notYAMLError
// is a document the library refuses; other errors are parseManifestJSON's.
func convertManifestYAML(doc []byte) (convertedManifest, error) {
	if n := len(doc); n > 0 && doc[n-1] != '\n' {
		framed := make([]byte, n+1)
		copy(framed, doc)
		framed[n] = '\n'
		doc = framed
	}
	d := yamlDocs.Get().(*yamljson.Doc)
	defer func() {
		d.Reset()
		yamlDocs.Put(d)
	}()
	if root, ok := d.Parse(doc); ok {
		if js, ok := root.JSON(); ok {
			if m, ok := exactHead(root); ok {
				m.JSON = js
				out := convertedManifest{m: m}
				switch m.Kind {
				case kindCRD:
					out.crd = exactCRD(root)
				case KindClusterServiceVersion:
					out.csv = exactCSV(root)
				}
				return out, nil
			}
			m, err := parseManifestJSON(js)
			return convertedManifest{m: m}, err
		}
	}
	js, err := yamlDocumentToJSON(doc)
	if err != nil {
		return convertedManifest{}, &notYAMLError{err}
	}
	m, err := parseManifestJSON(js)
	return convertedManifest{m: m}, err
}

const kindCRD = "CustomResourceDefinition"

// field looks key up in a mapping as encoding/json would fill a struct
// field named key: found is the value of the exact key; exact is false
// when the mapping also holds a key encoding/json could take for it (one
// differing in case, or any non-ASCII key), and the caller must then leave
// the reading to encoding/json.
func field(m yamljson.Value, key string) (v yamljson.Value, found, exact bool) {
	exact = true
	m.Each(func(k []byte, e yamljson.Value) bool {
		if string(k) == key {
			// Keep looking: a key differing in case may follow.
			v, found = e, true
			return true
		}
		if !asciiOnly(k) || (len(k) == len(key) && equalFoldASCII(k, key)) {
			exact = false
			return false
		}
		return true
	})
	return v, found, exact
}

func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func equalFoldASCII(a []byte, b string) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// strField reads an optional string field; ok is false when encoding/json
// must decide.
func strField(m yamljson.Value, key string) (string, bool) {
	v, found, exact := field(m, key)
	if !exact {
		return "", false
	}
	if !found {
		return "", true
	}
	return v.Str()
}

// mapField reads an optional mapping field; ok is false when encoding/json
// must decide. A missing field gives a zero Value with present false.
func mapField(m yamljson.Value, key string) (v yamljson.Value, present, ok bool) {
	v, found, exact := field(m, key)
	if !exact {
		return v, false, false
	}
	if !found {
		return v, false, true
	}
	return v, true, v.Kind() == yamljson.Map
}

// exactHead reads apiVersion, kind and metadata.name as parseManifestJSON
// would, when the document leaves no doubt about them.
func exactHead(root yamljson.Value) (Manifest, bool) {
	if root.Kind() != yamljson.Map {
		return Manifest{}, false
	}
	apiVersion, ok := strField(root, "apiVersion")
	if !ok {
		return Manifest{}, false
	}
	kind, ok := strField(root, "kind")
	if !ok {
		return Manifest{}, false
	}
	md, present, ok := mapField(root, "metadata")
	if !ok {
		return Manifest{}, false
	}
	name := ""
	if present {
		if name, ok = strField(md, "name"); !ok {
			return Manifest{}, false
		}
	}
	return Manifest{APIVersion: apiVersion, Kind: kind, Name: name}, true
}

// exactCRD reads the CRD fields json.Unmarshal would read into a crdDoc,
// or nil when the document leaves any doubt.
func exactCRD(root yamljson.Value) *crdDoc {
	var crd crdDoc
	spec, present, ok := mapField(root, "spec")
	if !ok {
		return nil
	}
	if !present {
		return &crd
	}
	if crd.Spec.Group, ok = strField(spec, "group"); !ok {
		return nil
	}
	if crd.Spec.Version, ok = strField(spec, "version"); !ok {
		return nil
	}
	names, present, ok := mapField(spec, "names")
	if !ok {
		return nil
	}
	if present {
		if crd.Spec.Names.Kind, ok = strField(names, "kind"); !ok {
			return nil
		}
	}
	versions, found, exact := field(spec, "versions")
	if !exact || (found && versions.Kind() != yamljson.Seq) {
		return nil
	}
	if !found {
		return &crd
	}
	crd.Spec.Versions = make([]struct {
		Name string `json:"name"`
	}, 0, versions.Len())
	good := true
	versions.Each(func(_ []byte, v yamljson.Value) bool {
		if v.Kind() != yamljson.Map {
			good = false
			return false
		}
		name, ok := strField(v, "name")
		if !ok {
			good = false
			return false
		}
		crd.Spec.Versions = append(crd.Spec.Versions, struct {
			Name string `json:"name"`
		}{name})
		return true
	})
	if !good {
		return nil
	}
	return &crd
}

// seqField calls each for every entry of an optional sequence field, after
// init with the number of entries when the field is present (encoding/json
// makes an empty, not a nil, slice of []); ok is false when encoding/json
// must decide (each returning false included).
func seqField(m yamljson.Value, key string, init func(n int), each func(yamljson.Value) bool) bool {
	v, found, exact := field(m, key)
	if !exact || (found && v.Kind() != yamljson.Seq) {
		return false
	}
	if !found {
		return true
	}
	init(v.Len())
	good := true
	v.Each(func(_ []byte, e yamljson.Value) bool {
		good = each(e)
		return good
	})
	return good
}

// strFields reads string fields of a mapping into dst, key by key.
func strFields(m yamljson.Value, dst map[string]*string) bool {
	if m.Kind() != yamljson.Map {
		return false
	}
	for key, p := range dst {
		var ok bool
		if *p, ok = strField(m, key); !ok {
			return false
		}
	}
	return true
}

// exactCSV reads the ClusterServiceVersion fields json.Unmarshal would read
// into a csvDoc, or nil when the document leaves any doubt.
func exactCSV(root yamljson.Value) *csvDoc {
	var csv csvDoc
	md, present, ok := mapField(root, "metadata")
	if !ok {
		return nil
	}
	if present {
		if csv.Metadata.Name, ok = strField(md, "name"); !ok {
			return nil
		}
		ann, present, ok := mapField(md, "annotations")
		if !ok {
			return nil
		}
		if present {
			csv.Metadata.Annotations = make(map[string]string, ann.Len())
			good := true
			ann.Each(func(k []byte, v yamljson.Value) bool {
				s, ok := v.Str()
				csv.Metadata.Annotations[string(k)] = s
				good = ok
				return ok
			})
			if !good {
				return nil
			}
		}
	}
	spec, present, ok := mapField(root, "spec")
	if !ok {
		return nil
	}
	if !present {
		return &csv
	}
	sp := &csv.Spec
	if !strFields(spec, map[string]*string{"replaces": &sp.Replaces, "description": &sp.Description}) {
		return nil
	}
	v, found, exact := field(spec, "version")
	if !exact {
		return nil
	}
	if found {
		s, ok := v.Str()
		if !ok {
			if s, ok = v.Number(); !ok {
				return nil
			}
		}
		sp.Version = flexString(s)
	}
	if !seqField(spec, "skips", func(n int) { sp.Skips = make([]string, 0, n) }, func(e yamljson.Value) bool {
		s, ok := e.Str()
		sp.Skips = append(sp.Skips, s)
		return ok
	}) {
		return nil
	}
	crds, present, ok := mapField(spec, "customresourcedefinitions")
	if !ok {
		return nil
	}
	if present {
		for key, dst := range map[string]*[]crdDescription{"owned": &sp.CustomResourceDefinitions.Owned, "required": &sp.CustomResourceDefinitions.Required} {
			if !seqField(crds, key, func(n int) { *dst = make([]crdDescription, 0, n) }, func(e yamljson.Value) bool {
				var d crdDescription
				*dst = append(*dst, d)
				last := &(*dst)[len(*dst)-1]
				return strFields(e, map[string]*string{"name": &last.Name, "version": &last.Version, "kind": &last.Kind})
			}) {
				return nil
			}
		}
	}
	if !seqField(spec, "relatedImages", func(n int) { sp.RelatedImages = make([]RelatedImage, 0, n) }, func(e yamljson.Value) bool {
		sp.RelatedImages = append(sp.RelatedImages, RelatedImage{})
		last := &sp.RelatedImages[len(sp.RelatedImages)-1]
		return strFields(e, map[string]*string{"name": &last.Name, "image": &last.Image})
	}) {
		return nil
	}
	if !seqField(spec, "icon", func(n int) {
		sp.Icon = make([]struct {
			Data      string `json:"base64data"`
			MediaType string `json:"mediatype"`
		}, 0, n)
	}, func(e yamljson.Value) bool {
		sp.Icon = append(sp.Icon, struct {
			Data      string `json:"base64data"`
			MediaType string `json:"mediatype"`
		}{})
		last := &sp.Icon[len(sp.Icon)-1]
		return strFields(e, map[string]*string{"base64data": &last.Data, "mediatype": &last.MediaType})
	}) {
		return nil
	}
	return &csv
}
