package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

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
// file-based catalogs the objects are read again from disk; an error means
// the file changed since the catalog was loaded.
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
	objects int
}

func (r *blobRef) count() int { return r.objects }

func (r *blobRef) manifests() ([]Manifest, error) {
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
	if r.yaml {
		if buf, err = yaml.YAMLToJSON(buf); err != nil {
			return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
		}
	}
	var doc struct {
		Properties []Property `json:"properties"`
	}
	if err := json.Unmarshal(buf, &doc); err != nil {
		return nil, fmt.Errorf("reading bundle manifests from %s: %w", r.path, err)
	}
	out := make([]Manifest, 0, r.objects)
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
	var o struct {
		Data string `json:"data"`
		Ref  string `json:"ref"`
	}
	if err := json.Unmarshal(v, &o); err != nil {
		return Manifest{}, fmt.Errorf("olm.bundle.object is not {data}: %w", err)
	}
	if o.Data == "" {
		if o.Ref != "" {
			return Manifest{}, fmt.Errorf("olm.bundle.object refers to %q; only inline data is supported", o.Ref)
		}
		return Manifest{}, fmt.Errorf("olm.bundle.object has no data")
	}
	raw, err := base64.StdEncoding.DecodeString(o.Data)
	if err != nil {
		return Manifest{}, fmt.Errorf("olm.bundle.object data is not base64: %w", err)
	}
	return parseManifestJSON(raw)
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
	// encoding/json matches keys case-insensitively; Kubernetes does not, so
	// the top-level keys are read exactly.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
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
			if err := json.Unmarshal(v, dst); err != nil {
				return Manifest{}, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return Manifest{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, JSON: raw}, nil
}
