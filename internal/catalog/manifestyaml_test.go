package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// libraryManifest is what the loader read before the one-pass converter:
// the library's JSON, parseManifestJSON's head, json.Unmarshal's CRD fields.
func libraryManifest(doc []byte) (Manifest, *crdDoc, *csvDoc, error) {
	js, err := yamlDocumentToJSON(doc)
	if err != nil {
		return Manifest{}, nil, nil, &notYAMLError{err}
	}
	m, err := parseManifestJSON(js)
	if err != nil {
		return m, nil, nil, err
	}
	// An object encoding/json cannot read has no fields (the loader
	// reports it).
	switch m.Kind {
	case kindCRD:
		var crd crdDoc
		if json.Unmarshal(m.JSON, &crd) == nil {
			return m, &crd, nil, nil
		}
	case KindClusterServiceVersion:
		var csv csvDoc
		if json.Unmarshal(m.JSON, &csv) == nil {
			return m, nil, &csv, nil
		}
	}
	return m, nil, nil, nil
}

// csvs and csvsFromTree count the CSVs checkConverted saw and those read
// from the tree.
var csvs, csvsFromTree int

// checkConverted asserts that convertManifestYAML reads doc as the library
// path does.
func checkConverted(t *testing.T, name string, doc []byte) {
	t.Helper()
	got, gotErr := convertManifestYAML(doc)
	want, wantCRD, wantCSV, wantErr := libraryManifest(doc)
	var gotNotYAML, wantNotYAML *notYAMLError
	switch {
	case (gotErr == nil) != (wantErr == nil) || errors.As(gotErr, &gotNotYAML) != errors.As(wantErr, &wantNotYAML):
		t.Errorf("%s: error %v, want %v", name, gotErr, wantErr)
		return
	case gotErr != nil:
		if gotErr.Error() != wantErr.Error() {
			t.Errorf("%s: error %q, want %q", name, gotErr, wantErr)
		}
		return
	}
	if got.m.APIVersion != want.APIVersion || got.m.Kind != want.Kind || got.m.Name != want.Name || !bytes.Equal(got.m.JSON, want.JSON) {
		t.Errorf("%s: read %s %s %q (%d bytes of JSON), want %s %s %q (%d bytes)", name,
			got.m.APIVersion, got.m.Kind, got.m.Name, len(got.m.JSON), want.APIVersion, want.Kind, want.Name, len(want.JSON))
	}
	if got.crd != nil && !reflect.DeepEqual(got.crd, wantCRD) {
		t.Errorf("%s: CRD fields %+v, want %+v", name, got.crd, wantCRD)
	}
	if got.csv != nil && !reflect.DeepEqual(got.csv, wantCSV) {
		t.Errorf("%s: CSV fields %+v, want %+v", name, got.csv, wantCSV)
	}
	if got.m.Kind == KindClusterServiceVersion {
		csvs++
		if got.csv != nil {
			csvsFromTree++
		}
	}
}

func TestConvertManifestYAML(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"object", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n"},
		{"no final newline", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: |\n    b"},
		{"key case", "ApiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"},
		{"both key cases", "apiVersion: v1\napiversion: v2\nkind: ConfigMap\nmetadata:\n  name: x\n"},
		{"name case", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  Name: x\n"},
		{"numeric name", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 12\n"},
		{"null metadata", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"},
		{"metadata not a mapping", "apiVersion: v1\nkind: ConfigMap\nmetadata: x\n"},
		{"non-ASCII key", "apiVersion: v1\nkınd: ConfigMap\nkind: Secret\nmetadata:\n  name: x\n"},
		{"not an object", "- a\n- b\n"},
		{"not YAML", "a: b: c\n"},
		{"CRD", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: bs.example.com\nspec:\n  group: example.com\n  names:\n    kind: B\n  versions:\n  - name: v1\n  - name: v2\n"},
		{"CRD v1beta1", "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\nmetadata:\n  name: bs.example.com\nspec:\n  group: example.com\n  version: v1\n  names:\n    kind: B\n"},
		{"CSV", "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: a.v1.0.0\n  annotations:\n    olm.skipRange: '<1.0.0'\n    capabilities: Basic Install\nspec:\n  version: 1.0.0\n  replaces: a.v0.9.0\n  skips: []\n  description: |\n    text\n  customresourcedefinitions:\n    owned:\n    - name: bs.example.com\n      version: v1\n      kind: B\n    required: []\n  relatedImages:\n  - name: x\n    image: quay.io/x:1\n  icon:\n  - base64data: AAAA\n    mediatype: image/png\n"},
		{"CSV empty lists", "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: a.v1\n  annotations: {}\nspec:\n  version: 1.0.0\n  skips: []\n  icon: []\n  relatedImages: []\n  customresourcedefinitions:\n    owned: []\n"},
		{"CSV numeric version", "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: a.v1\nspec:\n  version: 1.5\n  skips:\n  - a.v1.4\n"},
		{"CSV odd annotations", "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: a.v1\n  annotations:\n    a: 1\nspec:\n  Version: 1.0.0\n"},
		{"CRD with odd versions", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: bs.example.com\nspec:\n  Group: x\n  versions:\n  - v1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkConverted(t, tt.name, []byte(tt.doc)) })
	}
}

// TestConvertManifestYAMLCorpus reads every document of the corpus's
// bundle directories both ways.
func TestConvertManifestYAMLCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short")
	}
	dir := t.TempDir()
	extract(t, corpusFile(t, "community-operators-messy.tar.xz"), dir)
	docs := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !manifestExts[filepath.Ext(p)] {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, d := range splitYAML(data) {
			raw := data[d.off : d.off+d.n]
			if yamlBlank(raw) {
				continue
			}
			docs++
			checkConverted(t, p, raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if docs < 1000 {
		t.Errorf("read %d documents, want the whole corpus", docs)
	}
	t.Logf("%d of %d CSVs read from the tree", csvsFromTree, csvs)
	if csvsFromTree < csvs*9/10 {
		t.Errorf("%d of %d CSVs read from the tree, want nearly all", csvsFromTree, csvs)
	}
}
