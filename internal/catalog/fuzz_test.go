package catalog

import (
	"context"
	"testing"
	"testing/fstest"
)

// FuzzFBC feeds arbitrary file-based catalog documents, as JSON and as YAML,
// through parsing and validation: any input yields problems, never a panic.
func FuzzFBC(f *testing.F) {
	f.Add([]byte(docs(fbcPkg("foo", "stable"), fbcCh("foo", "stable", entry("foo.v1.0.0"), entry("foo.v1.1.0", "replaces", "foo.v1.0.0", "skipRange", "<1.1.0")),
		fbcB("foo", "foo.v1.0.0", "1.0.0"), fbcB("foo", "foo.v1.1.0", "1.1.0", objectProp(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`)))), false)
	f.Add([]byte("---\nschema: olm.package\nname: bar\ndefaultChannel: a\n---\nschema: olm.channel\npackage: bar\nname: a\nentries:\n- name: b\n  skips: [c]\n"), true)
	f.Add([]byte(`{"schema":"olm.bundle","package":"p","name":"b","properties":[{"type":"olm.constraint","value":{"all":{"constraints":[{"not":{}}]}}}]}`), false)
	f.Add([]byte(`{"schema":"olm.deprecations","package":"p","entries":[{"reference":{"schema":"olm.bundle"}}]}`), false)
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		name := "c.json"
		if yaml {
			name = "c.yaml"
		}
		c, err := Load(context.Background(), []Source{{Name: "fuzz", FS: fstest.MapFS{name: &fstest.MapFile{Data: data}}, Format: FormatFBC}})
		if err != nil {
			t.Fatalf("Load returned an error instead of problems: %v", err)
		}
		checkInvariants(t, c)
	})
}

// FuzzBundle feeds arbitrary annotations, CSV, dependencies and properties
// files through the registry+v1 bundle loader.
func FuzzBundle(f *testing.F) {
	good := bundleSpec{pkg: "foo", version: "1.0.0", skipRange: "<1.0.0",
		deps:  "dependencies:\n- type: olm.package\n  value: {packageName: bar, version: '>=1.0.0'}\n- type: olm.gvk\n  value: {group: a, version: v1, kind: K}\n",
		props: "properties:\n- type: olm.maxOpenShiftVersion\n  value: 4.9\n"}.bundleFiles()
	csv := good["manifests/foo.clusterserviceversion.yaml"]
	f.Add(good["metadata/annotations.yaml"], csv, good["metadata/dependencies.yaml"], good["metadata/properties.yaml"])
	f.Add("annotations: {}", "kind: ClusterServiceVersion", "dependencies: [1]", "properties: {}")
	f.Add("annotations:\n  operators.operatorframework.io.bundle.package.v1: foo\n", "ApiVersion: x\n---\n- a\n", ":", "dependencies: []")
	f.Fuzz(func(t *testing.T, annotations, csv, deps, props string) {
		fsys := fstest.MapFS{
			"foo/1.0.0/metadata/annotations.yaml":                {Data: []byte(annotations)},
			"foo/1.0.0/manifests/foo.clusterserviceversion.yaml": {Data: []byte(csv)},
			"foo/1.0.0/manifests/widgets.crd.yaml":               {Data: []byte(good["manifests/widgets.crd.yaml"])},
			"foo/1.0.0/metadata/dependencies.yaml":               {Data: []byte(deps)},
			"foo/1.0.0/metadata/properties.yaml":                 {Data: []byte(props)},
			"foo/1.1.0/metadata/annotations.yaml":                {Data: []byte(good["metadata/annotations.yaml"])},
			"foo/1.1.0/manifests/foo.clusterserviceversion.yaml": {Data: []byte(csv)},
		}
		c, err := Load(context.Background(), []Source{{Name: "fuzz", FS: fsys, Format: FormatBundleTree}})
		if err != nil {
			t.Fatalf("Load returned an error instead of problems: %v", err)
		}
		checkInvariants(t, c)
	})
}

// FuzzRange checks that any text given as a version range is accepted or
// refused without a panic.
func FuzzRange(f *testing.F) {
	for _, s := range []string{">=1.0.0 <2.0.0", "<v2.3.1", "1.0.0 || >=3.0.0-rc.1", "", ">=", "v"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _, _ = parseRangeLenient(s)
	})
}

// checkInvariants asserts what every served catalog guarantees.
func checkInvariants(t *testing.T, c *Catalog) {
	t.Helper()
	for _, p := range c.Packages {
		if p.Channel(p.DefaultChannel) == nil {
			t.Fatalf("package %s served without its default channel", p.Name)
		}
		for _, ch := range p.Channels {
			if ch.HeadEntry() == nil {
				t.Fatalf("channel %s/%s served without a head", p.Name, ch.Name)
			}
			for _, e := range ch.Entries {
				if e.Bundle == nil || p.Bundle(e.Name) != e.Bundle {
					t.Fatalf("entry %s of %s/%s has no served bundle", e.Name, p.Name, ch.Name)
				}
			}
		}
		for _, b := range p.Bundles {
			if len(b.Channels) == 0 {
				t.Fatalf("bundle %s served in no channel", b.Name)
			}
		}
	}
	for _, pr := range c.Problems {
		if pr.Path == "" || pr.Reason == "" {
			t.Fatalf("problem without path or reason: %+v", pr)
		}
	}
}
