package catalog

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// fbcPkg, fbcCh and fbcB build file-based catalog documents as JSON text.
func fbcPkg(name, def string) string {
	return fmt.Sprintf(`{"schema":"olm.package","name":%q,"defaultChannel":%q}`, name, def)
}

func fbcCh(pkg, name string, entries ...string) string {
	return fmt.Sprintf(`{"schema":"olm.channel","package":%q,"name":%q,"entries":[%s]}`, pkg, name, strings.Join(entries, ","))
}

func entry(name string, edges ...string) string {
	s := fmt.Sprintf(`{"name":%q`, name)
	for i := 0; i+1 < len(edges); i += 2 {
		switch edges[i] {
		case "skips":
			s += fmt.Sprintf(`,"skips":[%q]`, edges[i+1])
		default:
			s += fmt.Sprintf(`,%q:%q`, edges[i], edges[i+1])
		}
	}
	return s + "}"
}

func fbcB(pkg, name, version string, extraProps ...string) string {
	props := []string{fmt.Sprintf(`{"type":"olm.package","value":{"packageName":%q,"version":%q}}`, pkg, version)}
	props = append(props, extraProps...)
	return fmt.Sprintf(`{"schema":"olm.bundle","package":%q,"name":%q,"image":"quay.io/x/%s:v%s","properties":[%s]}`, pkg, name, pkg, version, strings.Join(props, ","))
}

func objectProp(manifest string) string {
	return fmt.Sprintf(`{"type":"olm.bundle.object","value":{"data":%q}}`, base64.StdEncoding.EncodeToString([]byte(manifest)))
}

func docs(d ...string) string { return strings.Join(d, "\n") + "\n" }

func TestLoadFBC(t *testing.T) {
	good := docs(
		fbcPkg("foo", "stable"),
		fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0"), entry("foo.v1.2.0", "replaces", "foo.v1.1.0", "skipRange", ">=1.0.0 <1.2.0")),
		fbcB("foo", "foo.v1.0.0", "1.0.0"),
		fbcB("foo", "foo.v1.1.0", "1.1.0"),
		fbcB("foo", "foo.v1.2.0", "1.2.0", `{"type":"olm.gvk","value":{"group":"x.io","version":"v1","kind":"Foo"}}`),
	)
	tests := []struct {
		name         string
		files        map[string]string
		wantServed   []string
		wantProblems []string
	}{
		{
			name:       "valid JSON stream",
			files:      map[string]string{"foo/catalog.json": good},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]", "foo/foo.v1.2.0[stable]"},
		},
		{
			name: "YAML multi-document, recursive, with .indexignore",
			files: map[string]string{
				"bar/package.yaml":           "---\nschema: olm.package\nname: bar\ndefaultChannel: alpha\n---\nschema: olm.channel\npackage: bar\nname: alpha\nentries:\n- name: bar.v0.1.0\n",
				"bar/deep/nested/bundle.yml": "# the bundle\nschema: olm.bundle\npackage: bar\nname: bar.v0.1.0\nimage: quay.io/x/bar:v0.1.0\nproperties:\n- type: olm.package\n  value: {packageName: bar, version: 0.1.0}\n- type: custom.example.com/opaque\n  value: [1, 2]\n",
				"bar/.indexignore":           "ignored/\n*.md\n",
				"bar/ignored/broken.json":    "{not json",
				"bar/README.md":              "not a catalog",
				"bar/notes.txt":              "not a catalog either",
			},
			wantServed: []string{"bar/bar.v0.1.0[alpha]"},
		},
		{
			name:       "bundle in no channel",
			files:      map[string]string{"c.json": good + fbcB("foo", "foo.v9.0.0", "9.0.0")},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]", "foo/foo.v1.2.0[stable]"},
			wantProblems: []string{
				`error: fbc/c.json: bundle "foo.v9.0.0" is in no channel of package "foo"; not served`,
			},
		},
		{
			name: "entry without a bundle",
			files: map[string]string{"c.json": docs(fbcPkg("foo", "stable"),
				fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0")),
				fbcB("foo", "foo.v1.0.0", "1.0.0"))},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: fbc/c.json: document 2 (olm.channel "stable") entry "foo.v1.1.0": no servable bundle "foo.v1.1.0" in package "foo"; entry dropped`,
			},
		},
		{
			name: "default channel missing",
			files: map[string]string{"c.json": docs(fbcPkg("foo", "fast"),
				fbcCh("foo", "stable", entry("foo.v1.0.0")), fbcB("foo", "foo.v1.0.0", "1.0.0"))},
			wantProblems: []string{
				`error: fbc/c.json: document 1 (olm.package "foo") defaultChannel: package "foo" is not served: its default channel "fast" does not exist or is not servable`,
			},
		},
		{
			name: "cycle",
			files: map[string]string{"c.json": docs(fbcPkg("foo", "stable"),
				fbcCh("foo", "stable", entry("foo.v1.0.0", "replaces", "foo.v1.1.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0")),
				fbcB("foo", "foo.v1.0.0", "1.0.0"), fbcB("foo", "foo.v1.1.0", "1.1.0"))},
			wantProblems: []string{
				`error: fbc/c.json: bundle "foo.v1.0.0" is in no channel of package "foo"; not served`,
				`error: fbc/c.json: bundle "foo.v1.1.0" is in no channel of package "foo"; not served`,
				`error: fbc/c.json: document 1 (olm.package "foo") defaultChannel: package "foo" is not served: it has no servable channel`,
				`error: fbc/c.json: document 2 (olm.channel "stable"): channel "stable" has no head: every entry is replaced or skipped by another (a cycle); channel not served`,
			},
		},
		{
			name: "olm.package property missing or wrong",
			files: map[string]string{"c.json": docs(fbcPkg("foo", "stable"),
				fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0"), entry("foo.v1.2.0", "replaces", "foo.v1.1.0")),
				fbcB("foo", "foo.v1.0.0", "1.0.0"),
				`{"schema":"olm.bundle","package":"foo","name":"foo.v1.1.0","properties":[]}`,
				fbcB("bar", "foo.v1.2.0", "1.2.0"))},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: fbc/c.json: document 2 (olm.channel "stable") entry "foo.v1.1.0": no servable bundle "foo.v1.1.0" in package "foo"; entry dropped`,
				`error: fbc/c.json: document 2 (olm.channel "stable") entry "foo.v1.2.0": no servable bundle "foo.v1.2.0" in package "foo"; entry dropped`,
				`error: fbc/c.json: document 4 (olm.bundle "foo.v1.1.0") properties: no olm.package property; a bundle must carry exactly one`,
				`error: fbc/c.json: document 5 (olm.bundle "foo.v1.2.0"): package "bar" has no olm.package document; bundle "foo.v1.2.0" is not served`,
			},
		},
		{
			name:       "invalid JSON keeps what came before",
			files:      map[string]string{"c.json": good + `{"schema": "olm.bundle", "name": ` + "\n" + fbcB("foo", "foo.v2.0.0", "2.0.0")},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]", "foo/foo.v1.2.0[stable]"},
			wantProblems: []string{
				`error: fbc/c.json: document 6: not valid JSON at line 7: unexpected EOF; the rest of the file is skipped`,
			},
		},
		{
			name: "bad property values",
			files: map[string]string{"c.json": docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0")),
				fbcB("foo", "foo.v1.0.0", "1.0.0", `{"type":"olm.package.required","value":{"packageName":"bar","versionRange":"not a range"}}`,
					`{"type":"olm.constraint","value":{"failureMessage":"x","gvk":{"group":"a","version":"v1","kind":"K"},"package":{"packageName":"p","versionRange":">=1.0.0"}}}`))},
			wantProblems: []string{
				`error: fbc/c.json: document 1 (olm.package "foo") defaultChannel: package "foo" is not served: it has no servable channel`,
				`error: fbc/c.json: document 2 (olm.channel "stable") entry "foo.v1.0.0": no servable bundle "foo.v1.0.0" in package "foo"; entry dropped`,
				`error: fbc/c.json: document 2 (olm.channel "stable"): channel "stable" of package "foo" has no servable entries; not served`,
				`error: fbc/c.json: document 3 (olm.bundle "foo.v1.0.0") properties[1] (olm.package.required): versionRange "not a range": "not a range" is not a version range: Could not get version from string: "not"`,
				`error: fbc/c.json: document 3 (olm.bundle "foo.v1.0.0") properties[2] (olm.constraint): exactly one of gvk, package, cel, all, any, not must be set, found 2`,
			},
		},
		{
			name: "two heads",
			files: map[string]string{"c.json": docs(fbcPkg("foo", "stable"),
				fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v2.0.0")),
				fbcB("foo", "foo.v1.0.0", "1.0.0"), fbcB("foo", "foo.v2.0.0", "2.0.0"))},
			wantServed: []string{"foo/foo.v2.0.0[stable]"},
			wantProblems: []string{
				`error: fbc/c.json: bundle "foo.v1.0.0" is in no channel of package "foo"; not served`,
				`error: fbc/c.json: document 2 (olm.channel "stable") entry "foo.v1.0.0": stranded: not reachable by the replaces chain from head "foo.v2.0.0" and not skipped; dropped from channel "stable"`,
				`error: fbc/c.json: document 2 (olm.channel "stable"): channel "stable" has 2 heads [foo.v1.0.0 foo.v2.0.0]; serving the highest version "foo.v2.0.0" as head, the others are stranded`,
			},
		},
		{
			name:       "duplicates and missing schema",
			files:      map[string]string{"c.json": good + docs(fbcB("foo", "foo.v1.0.0", "1.0.0"), fbcPkg("foo", "stable"), `{"name":"x"}`)},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]", "foo/foo.v1.2.0[stable]"},
			wantProblems: []string{
				`error: fbc/c.json: document 6 (olm.bundle "foo.v1.0.0"): bundle "foo.v1.0.0" is defined again (first in fbc/c.json); this definition is not served`,
				`error: fbc/c.json: document 7 (olm.package "foo"): package "foo" is declared again (first in fbc/c.json); this declaration is ignored`,
				`error: fbc/c.json: document 8: schema: missing; every catalog document needs one`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for p, c := range tc.files {
				fsys[p] = mapFile(c)
			}
			c, err := Load(context.Background(), []Source{{Name: "fbc", FS: fsys, Format: FormatFBC}})
			if err != nil {
				t.Fatal(err)
			}
			if got := served(c); !slices.Equal(got, tc.wantServed) {
				t.Errorf("served:\n got %q\nwant %q", got, tc.wantServed)
			}
			if got := problemStrings(c); !slices.Equal(got, tc.wantProblems) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.wantProblems)
			}
		})
	}
}

func TestFBCModel(t *testing.T) {
	fsys := fstest.MapFS{"c.json": mapFile(docs(
		fbcPkg("foo", "stable"),
		fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0"),
			entry("foo.v1.2.0", "replaces", "foo.v1.1.0", "skips", "foo.v1.1.0"), entry("foo.v1.3.0", "replaces", "foo.v1.2.0", "skipRange", ">=1.0.0 <1.3.0")),
		fbcCh("foo", "fast", entry("foo.v1.3.0")),
		fbcB("foo", "foo.v1.0.0", "1.0.0"),
		fbcB("foo", "foo.v1.1.0", "1.1.0"),
		fbcB("foo", "foo.v1.2.0", "1.2.0", `{"type":"olm.gvk","value":{"group":"x.io","version":"v1","kind":"Foo"}}`, `{"type":"example.com/opaque","value":{"a":1}}`),
		fbcB("foo", "foo.v1.3.0", "1.3.0", `{"type":"olm.gvk","value":{"group":"x.io","version":"v1","kind":"Foo"}}`,
			`{"type":"olm.package.required","value":{"packageName":"bar","versionRange":">=1.0.0 <2.0.0"}}`,
			`{"type":"olm.gvk.required","value":{"group":"y.io","version":"v1","kind":"Bar"}}`,
			objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}}`)),
		`{"schema":"olm.deprecations","package":"foo","entries":[{"reference":{"schema":"olm.bundle","name":"foo.v1.0.0"},"message":"use 1.3"},{"reference":{"schema":"olm.channel","name":"fast"},"message":"fast is gone"},{"reference":{"schema":"olm.package"},"message":"foo is retired"}]}`,
		`{"schema":"example.com/custom","package":"foo","name":"x","data":1}`,
	))}
	c, err := Load(context.Background(), []Source{{Name: "fbc", FS: fsys}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Problems) != 0 {
		t.Fatalf("problems: %v", c.Problems)
	}
	p := c.Package("foo")
	if got := c.Counts(); got != (Counts{Packages: 1, Channels: 2, Bundles: 4}) {
		t.Errorf("counts = %+v", got)
	}
	stable := p.Channel("stable")
	if stable.Head != "foo.v1.3.0" || p.Channel("fast").Head != "foo.v1.3.0" {
		t.Errorf("heads = %s, %s", stable.Head, p.Channel("fast").Head)
	}
	b := p.Bundle("foo.v1.3.0")
	if !slices.Equal(b.Channels, []string{"fast", "stable"}) {
		t.Errorf("channels = %v", b.Channels)
	}
	if len(b.ProvidedAPIs) != 1 || len(b.RequiredAPIs) != 1 || len(b.RequiredPackages) != 1 || b.RequiredPackages[0].VersionRange != ">=1.0.0 <2.0.0" {
		t.Errorf("derived = %+v %+v %+v", b.ProvidedAPIs, b.RequiredAPIs, b.RequiredPackages)
	}
	for _, prop := range b.Properties {
		if prop.Type == PropertyBundleObject {
			t.Errorf("olm.bundle.object kept among properties")
		}
	}
	ms, err := b.Manifests()
	if err != nil || len(ms) != 1 || ms[0].Kind != "ConfigMap" || ms[0].Name != "cm" {
		t.Errorf("manifests = %+v, %v", ms, err)
	}
	if p.Bundle("foo.v1.2.0").Properties[2].Type != "example.com/opaque" {
		t.Errorf("unknown property not kept: %+v", p.Bundle("foo.v1.2.0").Properties)
	}
	if got := providerNames(c.Providers(GVK{Group: "x.io", Version: "v1", Kind: "Foo"})); !slices.Equal(got, []string{"foo.v1.2.0", "foo.v1.3.0"}) {
		t.Errorf("providers = %v", got)
	}
	if p.Deprecation == nil || p.Channel("fast").Deprecation == nil || p.Bundle("foo.v1.0.0").Deprecation.Message != "use 1.3" {
		t.Errorf("deprecations not applied")
	}
	if len(c.Others) != 1 || c.Others[0].Schema != "example.com/custom" {
		t.Errorf("others = %+v", c.Others)
	}
	v110 := p.Bundle("foo.v1.1.0").Version
	succ := stable.Successors("foo.v1.1.0", &v110)
	var got []string
	for _, s := range succ {
		got = append(got, s.Entry.Name+"/"+string(s.Edge))
	}
	if want := []string{"foo.v1.3.0/skipRange", "foo.v1.2.0/replaces"}; !slices.Equal(got, want) {
		t.Errorf("successors of 1.1.0 = %v, want %v", got, want)
	}
}

func providerNames(bs []*Bundle) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

func TestDigest(t *testing.T) {
	base := treeFS(bundleSpec{pkg: "foo", version: "1.0.0"}, bundleSpec{pkg: "foo", version: "1.1.0", replaces: "foo.v1.0.0"})
	a, b := loadFS(t, base), loadFS(t, base)
	if a.Digest != b.Digest || !strings.HasPrefix(a.Digest, "sha256:") {
		t.Fatalf("digest not deterministic: %s vs %s", a.Digest, b.Digest)
	}
	changed := treeFS(bundleSpec{pkg: "foo", version: "1.0.0"}, bundleSpec{pkg: "foo", version: "1.1.0", replaces: "foo.v1.0.0", skipRange: "<1.1.0"})
	if loadFS(t, changed).Digest == a.Digest {
		t.Fatal("digest did not change with the content")
	}
}

func TestStrict(t *testing.T) {
	fsys := treeFS(bundleSpec{pkg: "foo", version: "1.0.0"}, bundleSpec{pkg: "foo", version: "1.1.0", annPkg: "bar"})
	_, err := Load(context.Background(), []Source{{Name: "operators", FS: fsys}}, WithStrict(true))
	var se *StrictError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want StrictError", err)
	}
	want := `catalog refused in strict mode: operators/foo/1.1.0/metadata/annotations.yaml: operators.operatorframework.io.bundle.package.v1: package "bar" differs from directory "foo"`
	if err.Error() != want {
		t.Errorf("err = %q\nwant %q", err, want)
	}
	// Warnings alone do not refuse the catalog.
	warn := treeFS(bundleSpec{pkg: "foo", version: "1.0.0", files: map[string]string{"stray.yaml": "kind: x\n"}})
	if _, err := Load(context.Background(), []Source{{Name: "operators", FS: warn}}, WithStrict(true)); err != nil {
		t.Errorf("strict load with warnings only: %v", err)
	}
}

func TestLazyManifestsFromDisk(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog.json")
	content := docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0")),
		fbcB("foo", "foo.v1.0.0", "1.0.0", objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}}`)))
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without the cache, every read goes to the file.
	c, err := Load(context.Background(), []Source{DirSource(dir)}, WithManifestCache(0))
	if err != nil {
		t.Fatal(err)
	}
	cached, err := Load(context.Background(), []Source{DirSource(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cached.Bundle("foo", "foo.v1.0.0").Manifests(); err != nil {
		t.Fatal(err)
	}
	b := c.Bundle("foo", "foo.v1.0.0")
	if _, ok := b.manifests.(*blobRef); !ok {
		t.Fatalf("manifests of an on-disk catalog are held as %T, want a reference to the file", b.manifests)
	}
	ms, err := b.Manifests()
	if err != nil || len(ms) != 1 || ms[0].Name != "cm" {
		t.Fatalf("manifests = %+v, %v", ms, err)
	}
	if err := os.WriteFile(file, []byte(content+"\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Manifests(); err == nil || !strings.Contains(err.Error(), "changed since the catalog was loaded") {
		t.Errorf("after the file changed: err = %v", err)
	}
	// A cached read still answers with the content the catalog was loaded with.
	if ms, err := cached.Bundle("foo", "foo.v1.0.0").Manifests(); err != nil || len(ms) != 1 {
		t.Errorf("cached read after the file changed: %v, %v", ms, err)
	}
	// Once the cache is dropped, the next read goes to the file again.
	cached.DropManifestCache()
	if _, err := cached.Bundle("foo", "foo.v1.0.0").Manifests(); err == nil || !strings.Contains(err.Error(), "changed since the catalog was loaded") {
		t.Errorf("read after the cache was dropped: err = %v, want the file's change noticed", err)
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want Format
	}{
		{"single bundle", fstest.MapFS{"metadata/annotations.yaml": mapFile("annotations: {}")}, FormatBundle},
		{"bundle tree", treeFS(bundleSpec{pkg: "foo", version: "1.0.0"}), FormatBundleTree},
		{"nested bundle tree", treeFS(bundleSpec{pkg: "foo", version: "1.0.0", dir: "1.0.0/bundle"}), FormatBundleTree},
		{"fbc", fstest.MapFS{"foo/catalog.json": mapFile(fbcPkg("foo", "stable"))}, FormatFBC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectFormat(tc.fsys); got != tc.want {
				t.Errorf("DetectFormat = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestOnDiskObjectsValidatedAtLoad: an on-disk catalog keeps manifests on
// disk but still refuses a bundle whose objects do not decode.
func TestOnDiskObjectsValidatedAtLoad(t *testing.T) {
	dir := t.TempDir()
	content := docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0")),
		fbcB("foo", "foo.v1.0.0", "1.0.0", `{"type":"olm.bundle.object","value":{"data":"!!!not-base64"}}`))
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(context.Background(), []Source{{Name: "fbc", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	want := `error: fbc/catalog.json: document 3 (olm.bundle "foo.v1.0.0") properties[1]: olm.bundle.object data is not base64: illegal base64 data at input byte 0`
	if got := problemStrings(c); !slices.Contains(got, want) {
		t.Errorf("problems = %q, want %q among them", got, want)
	}
	if c.Bundle("foo", "foo.v1.0.0") != nil {
		t.Error("bundle with undecodable objects is served")
	}
}
