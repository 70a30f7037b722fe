package catalog

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// The encoding is part of the protocol between catalogd and the installer:
// these digests must never change. They were computed independently of
// ManifestsDigest, from the encoding its doc comment states.
func TestManifestsDigestGolden(t *testing.T) {
	cm := Manifest{APIVersion: "v1", Kind: "ConfigMap", Name: "cm", JSON: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}}`)}
	csv := Manifest{APIVersion: "operators.coreos.com/v1alpha1", Kind: "ClusterServiceVersion", Name: "foo.v1.0.0", JSON: []byte(`{"kind":"ClusterServiceVersion"}`)}
	for _, tc := range []struct {
		name string
		ms   []Manifest
		want string
	}{
		{name: "no manifests", ms: nil,
			want: "sha256:ee9f8ad8f6b07e3890615c4d3d52acde8db7f9214087b8f0244a3830e2698de2"},
		{name: "one manifest", ms: []Manifest{cm},
			want: "sha256:c957d2c10e144a351a716d569a2ff37912c00cdbaac5db03cb12ae11a05f418f"},
		{name: "two manifests in served order", ms: []Manifest{cm, csv},
			want: "sha256:1c705eee2abb248298b779b0ec66ac9021aadd2150ede9083bbca4c94f092ceb"},
		{name: "empty fields", ms: []Manifest{{}},
			want: "sha256:f729c52ba4ab1b4537891ee4781d25e25e06769a15bcf5040d6d1a38fb3d76e2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ManifestsDigest(tc.ms); got != tc.want {
				t.Errorf("ManifestsDigest = %s, want %s", got, tc.want)
			}
		})
	}
}

// Lists that a naive concatenation would confuse hash differently.
func TestManifestsDigestUnambiguous(t *testing.T) {
	a := Manifest{APIVersion: "v1", Kind: "ConfigMap", Name: "a", JSON: []byte(`{"a":1}`)}
	b := Manifest{APIVersion: "v1", Kind: "Secret", Name: "b", JSON: []byte(`{"b":2}`)}
	lists := map[string][]Manifest{
		"none":                        nil,
		"a":                           {a},
		"b":                           {b},
		"a then b":                    {a, b},
		"b then a":                    {b, a},
		"a twice":                     {a, a},
		"one empty manifest":          {{}},
		"two empty manifests":         {{}, {}},
		"field boundary moved":        {{APIVersion: "v1C", Kind: "onfigMap", Name: "a", JSON: []byte(`{"a":1}`)}},
		"name and json boundary":      {{APIVersion: "v1", Kind: "ConfigMap", Name: `a{"a"`, JSON: []byte(`:1}`)}},
		"two manifests as one's json": {{APIVersion: "v1", Kind: "ConfigMap", Name: "a", JSON: []byte(`{"a":1}` + "\x00\x00\x00\x00\x00\x00\x00\x02v1")}},
		"zero byte in a name":         {{APIVersion: "v1", Kind: "ConfigMap", Name: "a\x00", JSON: []byte(`{"a":1}`)}},
	}
	seen := map[string]string{}
	for name, ms := range lists {
		d := ManifestsDigest(ms)
		if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
			t.Errorf("%s: digest %q is not sha256:<hex>", name, d)
		}
		if other, ok := seen[d]; ok {
			t.Errorf("%q and %q hash alike: %s", name, other, d)
		}
		seen[d] = name
	}
}

// Every bundle's manifests, as Manifests returns them (and catalogd serves
// them), hash to the ManifestsDigest computed at load, whatever the source:
// registry+v1 directories, a file-based catalog read into memory, and one
// whose objects are read again from disk, located in the file or parsed.
func TestServedManifestsHashToManifestsDigest(t *testing.T) {
	yamlObject := "\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n\n"
	jsonObject := "  {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm\"}}\n"
	catalogWith := func(object func(string) string) string {
		return docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0")),
			fbcB("foo", "foo.v1.0.0", "1.0.0", object(jsonObject), object(yamlObject)),
			fbcB("foo", "foo.v1.1.0", "1.1.0", object(yamlObject), object(jsonObject)))
	}
	fbc := catalogWith(objectProp)
	// The same data with its first character escaped cannot be located in
	// the file, so the document is parsed when the manifests are read.
	unlocated := catalogWith(func(m string) string {
		data := base64.StdEncoding.EncodeToString([]byte(m))
		return fmt.Sprintf(`{"type":"olm.bundle.object","value":{"data":"\u%04x%s"}}`, data[0], data[1:])
	})
	for _, tc := range []struct {
		name string
		load func(t *testing.T) *Catalog
	}{
		{name: "registry+v1 tree", load: func(t *testing.T) *Catalog {
			return loadFS(t, treeFS(bundleSpec{pkg: "foo", version: "1.0.0"}, bundleSpec{pkg: "foo", version: "1.1.0", replaces: "foo.v1.0.0"}))
		}},
		{name: "file-based catalog in memory", load: func(t *testing.T) *Catalog {
			return loadFS(t, fstest.MapFS{"catalog.json": mapFile(fbc)})
		}},
		{name: "file-based catalog on disk, objects located", load: func(t *testing.T) *Catalog {
			c, _ := loadDisk(t, fbc, WithManifestCache(0))
			return c
		}},
		{name: "file-based catalog on disk, objects parsed", load: func(t *testing.T) *Catalog {
			c, _ := loadDisk(t, unlocated, WithManifestCache(0))
			if r, ok := c.Bundle("foo", "foo.v1.0.0").manifests.(*blobRef); !ok || r.located {
				t.Fatal("the objects were located in the file; the test needs them parsed")
			}
			return c
		}},
		{name: "file-based catalog on disk, cached", load: func(t *testing.T) *Catalog {
			c, _ := loadDisk(t, fbc)
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.load(t)
			if len(c.Problems) > 0 {
				t.Fatalf("problems: %v", problemStrings(c))
			}
			checkManifestsDigests(t, c, 2)
		})
	}
}

// checkManifestsDigests checks every bundle of c (at least minBundles) and
// that different manifests have different digests.
func checkManifestsDigests(t *testing.T, c *Catalog, minBundles int) {
	t.Helper()
	n := 0
	byDigest := map[string]string{}
	for _, p := range c.Packages {
		for _, b := range p.Bundles {
			n++
			ms, err := b.Manifests()
			if err != nil {
				t.Errorf("bundle %s: %v", b.Name, err)
				continue
			}
			got, want := ManifestsDigest(ms), b.ManifestsDigest()
			if got != want {
				t.Errorf("bundle %s: its %d manifests hash to %s, the catalog announces %s", b.Name, len(ms), got, want)
			}
			if other, ok := byDigest[want]; ok && len(ms) > 0 {
				t.Errorf("bundles %s and %s have the same manifests digest %s", other, b.Name, want)
			}
			byDigest[want] = b.Name
		}
	}
	if n < minBundles {
		t.Errorf("%d bundles checked, want at least %d", n, minBundles)
	}
}

// A catalog file rewritten in place with other manifests, keeping its size
// and modification time, is caught when the manifests are read again.
func TestManifestsReadAgainMustHashAsLoaded(t *testing.T) {
	content := docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0")),
		fbcB("foo", "foo.v1.0.0", "1.0.0", objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"aa"}}`)))
	c, file := loadDisk(t, content, WithManifestCache(0))
	b := c.Bundle("foo", "foo.v1.0.0")
	if _, err := b.Manifests(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(content, objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"aa"}}`),
		objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bb"}}`), 1)
	if len(other) != len(content) || other == content {
		t.Fatal("the rewritten file must differ and keep its size")
	}
	if err := os.WriteFile(file, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, time.Time{}, st.ModTime()); err != nil {
		t.Fatal(err)
	}
	_, err = b.Manifests()
	want := file + " changed since the catalog was loaded (the bundle's manifests no longer hash to " + b.ManifestsDigest() + "); a reload is pending"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// loadDisk writes content as catalog.json of a new directory and loads it;
// it returns the catalog and the file.
func loadDisk(t *testing.T, content string, opts ...Option) (*Catalog, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(context.Background(), []Source{DirSource(filepath.Dir(file))}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, file
}

// The catalog digest covers every bundle's manifests digest, so that a
// change of the manifests is announced.
func TestCatalogDigestCoversManifestsDigest(t *testing.T) {
	c := loadFS(t, treeFS(bundleSpec{pkg: "foo", version: "1.0.0"}))
	if d := digest(c); d != c.Digest {
		t.Fatalf("digest recomputed %s, loaded %s", d, c.Digest)
	}
	b := c.Bundle("foo", "foo.v1.0.0")
	b.manifestsDigest = ManifestsDigest(nil)
	if d := digest(c); d == c.Digest {
		t.Errorf("the catalog digest %s did not change with the bundle's manifests digest", d)
	}
}
