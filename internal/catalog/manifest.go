package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"
	"sigs.k8s.io/yaml"
)

// Manifest is one Kubernetes object a bundle ships.
type Manifest struct {
	APIVersion string
	Kind       string
	Name       string
	// JSON is the object as JSON.
	JSON json.RawMessage
}

// KindClusterServiceVersion is the kind of the CSV manifest.
const KindClusterServiceVersion = "ClusterServiceVersion"

// Manifests returns every object the bundle ships, CSV included. For large
// file-based catalogs the objects are read again from disk (recently read
// ones are cached); an error means the file changed since the catalog was
// loaded. The result is shared: callers must not modify it.
func (b *Bundle) Manifests() ([]Manifest, error) {
	if b.manifests == nil {
		return nil, nil
	}
	return b.manifests.manifests()
}

// CSV returns the bundle's ClusterServiceVersion as JSON, or nil when the
// bundle carries no CSV object.
func (b *Bundle) CSV() (json.RawMessage, error) {
	ms, err := b.Manifests()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Kind == KindClusterServiceVersion {
			return m.JSON, nil
		}
	}
	return nil, nil
}

// HasManifests reports whether the bundle carries its objects.
func (b *Bundle) HasManifests() bool { return b.manifests != nil && b.manifests.count() > 0 }

type manifestSource interface {
	manifests() ([]Manifest, error)
	count() int
}

type inlineManifests []Manifest

func (m inlineManifests) manifests() ([]Manifest, error) { return m, nil }
func (m inlineManifests) count() int                     { return len(m) }

// blobRef points at one file-based catalog document on disk.
type blobRef struct {
	path    string
	off, n  int64
	size    int64
	modTime time.Time
	yaml    bool
	objects []objectRef
	// located is true when every object's base64 data was found verbatim in
	// the document, so reading needs no parsing.
	located bool
	// cache is the catalog's cache of decoded manifests; may be nil.
	cache *manifestCache
	// sum is the manifests' digest (ManifestsDigest) computed at load; what
	// is read later must hash to it.
	sum [sha256.Size]byte
}

// objectRef is one olm.bundle.object: its head, checked at load, and where
// its base64 data lies in the document.
type objectRef struct {
	apiVersion, kind, name string
	off, n                 int
}

func (r *blobRef) count() int { return len(r.objects) }

func (r *blobRef) setCache(c *manifestCache) { r.cache = c }

func (r *blobRef) manifests() ([]Manifest, error) {
	if r.cache != nil {
		if ms, ok := r.cache.Get(r); ok {
			return ms, nil
		}
	}
	ms, err := r.decode()
	if err == nil && r.cache != nil {
		r.cache.Put(r, ms, ManifestsSize(ms))
	}
	return ms, err
}

// decode reads the objects and checks that they are the ones loaded: the
// manifests digest announced for the bundle was computed at load.
func (r *blobRef) decode() ([]Manifest, error) {
	ms, err := r.decodeObjects()
	if err != nil {
		return nil, err
	}
	h := newManifestsHash()
	for _, m := range ms {
		h.add(m)
	}
	if h.sum() != r.sum {
		return nil, fmt.Errorf("%s changed since the catalog was loaded (the bundle's manifests no longer hash to %s); a reload is pending", r.path, sha256Digest(r.sum))
	}
	return ms, nil
}

func (r *blobRef) decodeObjects() ([]Manifest, error) {
	buf, err := r.read()
	if err != nil {
		return nil, err
	}
	if !r.located {
		return r.parse(buf)
	}
	out := make([]Manifest, 0, len(r.objects))
	for _, o := range r.objects {
		js := make([]byte, base64.StdEncoding.DecodedLen(o.n))
		n, err := base64.StdEncoding.Decode(js, buf[o.off:o.off+o.n])
		if err != nil {
			return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
		}
		// The same bytes as parseManifestJSON gives at load.
		js = bytes.TrimSpace(js[:n])
		if len(js) > 0 && js[0] != '{' {
			if js, err = yaml.YAMLToJSON(js); err != nil {
				return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
			}
		}
		out = append(out, Manifest{APIVersion: o.apiVersion, Kind: o.kind, Name: o.name, JSON: js})
	}
	return out, nil
}

// read returns the document's bytes, refusing a file that changed since load.
func (r *blobRef) read() ([]byte, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, fmt.Errorf("reading bundle manifests: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading bundle manifests: %w", err)
	}
	if st.Size() != r.size || !st.ModTime().Equal(r.modTime) {
		return nil, fmt.Errorf("%s changed since the catalog was loaded; a reload is pending", r.path)
	}
	buf := make([]byte, r.n)
	if _, err := f.ReadAt(buf, r.off); err != nil {
		return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
	}
	return buf, nil
}

// parse decodes the whole document, for objects whose data could not be located.
func (r *blobRef) parse(buf []byte) ([]Manifest, error) {
	var err error
	if r.yaml {
		if buf, err = yaml.YAMLToJSON(buf); err != nil {
			return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
		}
	}
	var doc struct {
		Properties []Property `json:"properties"`
	}
	if err := jsonv1.Unmarshal(buf, &doc); err != nil {
		return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
	}
	out := make([]Manifest, 0, len(r.objects))
	for _, p := range doc.Properties {
		if p.Type != PropertyBundleObject {
			continue
		}
		m, err := decodeBundleObject(p.Value)
		if err != nil {
			return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// decodeBundleObject decodes an olm.bundle.object value {"data": base64}.
func decodeBundleObject(v json.RawMessage) (Manifest, error) {
	m, _, err := decodeBundleObjectData(v, nil)
	return m, err
}

// decodeBundleObjectData decodes and checks an olm.bundle.object value; it
// also returns the base64 text. With scratch, the object is decoded into
// *scratch (grown as needed) and the Manifest's JSON is valid only until
// the next call with the same scratch; without, it is the Manifest's own.
func decodeBundleObjectData(v json.RawMessage, scratch *[]byte) (Manifest, []byte, error) {
	data, err := objectData(v)
	if err != nil {
		return Manifest{}, nil, err
	}
	raw, err := decodeBase64(data, scratch)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("olm.bundle.object data is not base64: %w", err)
	}
	m, err := parseManifestJSON(raw)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("olm.bundle.object: %w", err)
	}
	if m.APIVersion == "" || m.Kind == "" || m.Name == "" {
		return Manifest{}, nil, fmt.Errorf("olm.bundle.object %s %q lacks apiVersion, kind or metadata.name", m.Kind, m.Name)
	}
	return m, data, nil
}

// objectData is the base64 text of an olm.bundle.object value {"data": …}.
func objectData(v json.RawMessage) ([]byte, error) {
	if data, ok := plainObjectData(v); ok {
		return data, nil
	}
	var o struct {
		Data string `json:"data"`
		Ref  string `json:"ref"`
	}
	if err := jsonv1.Unmarshal(v, &o); err != nil {
		return nil, fmt.Errorf("olm.bundle.object is not {data}: %w", err)
	}
	if o.Data == "" {
		if o.Ref != "" {
			return nil, fmt.Errorf("olm.bundle.object refers to %q; only inline data is supported", o.Ref)
		}
		return nil, fmt.Errorf("olm.bundle.object has no data")
	}
	return []byte(o.Data), nil
}

// decodeBase64 decodes data into *scratch when given (grown as needed),
// else into a buffer of its own.
func decodeBase64(data []byte, scratch *[]byte) ([]byte, error) {
	n := base64.StdEncoding.DecodedLen(len(data))
	var raw []byte
	if scratch != nil && cap(*scratch) >= n {
		raw = (*scratch)[:n]
	} else {
		raw = make([]byte, n)
		if scratch != nil {
			*scratch = raw
		}
	}
	n, err := base64.StdEncoding.Decode(raw, data)
	return raw[:n], err
}

// plainObjectData returns the base64 text of an olm.bundle.object value
// written as every catalog tool writes it, {"data":"<base64>"} (spaces
// allowed around the tokens), without decoding the JSON: a string without
// a backslash or a line break is its own value. Any other form is left to
// the JSON decoder.
func plainObjectData(v []byte) ([]byte, bool) {
	rest, ok := cutToken(v, '{')
	if !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, " \t\r\n"), []byte(`"data"`)); !ok {
		return nil, false
	}
	if rest, ok = cutToken(rest, ':'); !ok {
		return nil, false
	}
	if rest, ok = cutToken(rest, '"'); !ok {
		return nil, false
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return nil, false
	}
	data := rest[:end]
	for _, c := range []byte{'\\', '\n', '\r'} { // IndexByte scans by vector
		if bytes.IndexByte(data, c) >= 0 {
			return nil, false
		}
	}
	if rest, ok = cutToken(rest[end+1:], '}'); !ok || len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, false
	}
	return data, true
}

// cutToken returns what follows the byte c after optional JSON whitespace.
func cutToken(b []byte, c byte) ([]byte, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != c {
		return nil, false
	}
	return b[1:], true
}

// parseManifestJSON reads an object given as JSON (or YAML) and checks it
// has apiVersion and kind.
func parseManifestJSON(raw []byte) (Manifest, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] != '{' {
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return Manifest{}, fmt.Errorf("not valid YAML or JSON: %w", err)
		}
		raw = j
	}
	var fast struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	// encoding/json matches keys case-insensitively; Kubernetes does not. When
	// the exact keys appear in the text, the quick read is right; otherwise
	// the top-level keys are read exactly.
	if err := jsonv1.Unmarshal(raw, &fast); err == nil && fast.APIVersion != "" && fast.Kind != "" &&
		bytes.Contains(raw, []byte(`"apiVersion"`)) && bytes.Contains(raw, []byte(`"kind"`)) {
		return Manifest{APIVersion: fast.APIVersion, Kind: fast.Kind, Name: fast.Metadata.Name, JSON: raw}, nil
	}
	var top map[string]json.RawMessage
	if err := jsonv1.Unmarshal(raw, &top); err != nil {
		return Manifest{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var head struct {
		APIVersion string
		Kind       string
		Metadata   struct {
			Name string `json:"name"`
		}
	}
	for key, dst := range map[string]any{"apiVersion": &head.APIVersion, "kind": &head.Kind, "metadata": &head.Metadata} {
		if v, ok := top[key]; ok {
			if err := jsonv1.Unmarshal(v, dst); err != nil {
				return Manifest{}, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return Manifest{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, JSON: raw}, nil
}
