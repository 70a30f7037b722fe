package catalog

import (
	"slices"
	"testing"
)

func TestLoadBundleTree(t *testing.T) {
	foo := func(v string) bundleSpec { return bundleSpec{pkg: "foo", version: v} }
	with := func(b bundleSpec, f func(*bundleSpec)) bundleSpec { f(&b); return b }
	csvFile := "manifests/foo.clusterserviceversion.yaml"

	tests := []struct {
		name         string
		bundles      []bundleSpec
		extra        map[string]string // extra files relative to the tree root
		wantServed   []string
		wantProblems []string
	}{
		{
			name: "valid chain with replaces, skips and skipRange",
			bundles: []bundleSpec{
				foo("1.0.0"),
				with(foo("1.1.0"), func(b *bundleSpec) { b.replaces = "foo.v1.0.0" }),
				with(foo("1.1.1"), func(b *bundleSpec) { b.replaces = "foo.v1.1.0" }),
				with(foo("1.2.0"), func(b *bundleSpec) {
					b.replaces, b.skips, b.skipRange = "foo.v1.1.0", []string{"foo.v1.1.1"}, ">=1.0.0 <1.2.0"
				}),
			},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]", "foo/foo.v1.1.1[stable]", "foo/foo.v1.2.0[stable]"},
		},
		{
			name: "package differs from directory",
			bundles: []bundleSpec{
				foo("1.0.0"),
				with(foo("1.2.0"), func(b *bundleSpec) { b.annPkg, b.replaces = "bar", "foo.v1.0.0" }),
			},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: operators/foo/1.2.0/metadata/annotations.yaml: operators.operatorframework.io.bundle.package.v1: package "bar" differs from directory "foo"`,
			},
		},
		{
			name: "manifest with ApiVersion instead of apiVersion",
			bundles: []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) {
				b.replaces, b.csvHeader = "foo.v1.0.0", "ApiVersion: operators.coreos.com/v1alpha1"
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: operators/foo/1.1.0/` + csvFile + `: apiVersion: missing (found "ApiVersion"; field names are case-sensitive)`,
			},
		},
		{
			name: "no manifests directory, manifests at the root",
			bundles: []bundleSpec{
				foo("1.0.0"),
				with(foo("1.1.0"), func(b *bundleSpec) {
					b.replaces = "foo.v1.0.0"
					b.omit = []string{csvFile, "manifests/widgets.crd.yaml"}
					b.files = map[string]string{"foo.clusterserviceversion.yaml": "kind: ClusterServiceVersion\n"}
				}),
			},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				"error: operators/foo/1.1.0/manifests/: directory missing; 1 manifest files lie at the bundle root, but registry+v1 requires them under manifests/",
			},
		},
		{
			name: "stray manifests at the root next to manifests/",
			bundles: []bundleSpec{with(foo("1.0.0"), func(b *bundleSpec) {
				b.files = map[string]string{"old.clusterserviceversion.yaml": "kind: ClusterServiceVersion\n"}
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				"warning: operators/foo/1.0.0/: 1 files outside manifests/ are not part of the bundle and were ignored: old.clusterserviceversion.yaml",
			},
		},
		{
			name:       "bundle nested one level down",
			bundles:    []bundleSpec{with(foo("1.0.0"), func(b *bundleSpec) { b.dir = "1.0.0/bundle" })},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				"warning: operators/foo/1.0.0/: bundle found one level down in bundle/; loaded from there",
			},
		},
		{
			name: "dependencies file that does not parse",
			bundles: []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) {
				b.replaces = "foo.v1.0.0"
				b.deps = "dependencies:\n  - type: olm.gvk\n      value:\n        group: x\n"
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				"error: operators/foo/1.1.0/metadata/dependencies.yaml: not valid YAML: error converting YAML to JSON: yaml: line 3: mapping values are not allowed in this context",
			},
		},
		{
			name: "misnamed dependency.yaml",
			bundles: []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) {
				b.replaces = "foo.v1.0.0"
				b.files = map[string]string{"metadata/dependency.yaml": "dependencies: []\n"}
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				"error: operators/foo/1.1.0/metadata/dependency.yaml: unknown metadata file (expected dependencies.yaml or properties.yaml); the bundle is not served because what it declares would be ignored",
			},
		},
		{
			name: "properties.yaml holding dependencies",
			bundles: []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) {
				b.replaces = "foo.v1.0.0"
				b.props = "dependencies:\n- type: olm.package\n  value: {packageName: bar, version: 1.0.0}\n"
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: operators/foo/1.1.0/metadata/properties.yaml: dependencies: dependencies belong in dependencies.yaml; a properties file holds "properties:", so these would be ignored`,
			},
		},
		{
			name: "dependency with an invalid range",
			bundles: []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) {
				b.replaces = "foo.v1.0.0"
				b.deps = "dependencies:\n- type: olm.package\n  value: {packageName: bar, version: \">=one\"}\n"
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: operators/foo/1.1.0/metadata/dependencies.yaml: dependencies[0].value.version: ">=one" is not a version range: Could not get version from string: ">=one"`,
			},
		},
		{
			name:       "skipRange with a v before the version",
			bundles:    []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) { b.replaces, b.skipRange = "foo.v1.0.0", "<v1.1.0" })},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]"},
			wantProblems: []string{
				`warning: operators/foo/1.1.0/` + csvFile + `: metadata.annotations["olm.skipRange"]: "<v1.1.0" has a "v" before a version; read as "<1.1.0"`,
			},
		},
		{
			name: "stranded bundle",
			bundles: []bundleSpec{
				foo("1.0.0"),
				with(foo("1.1.0"), func(b *bundleSpec) { b.replaces = "foo.v1.0.0" }),
				with(foo("1.2.0"), func(b *bundleSpec) { b.replaces = "foo.v1.1.0" }),
				with(foo("1.1.5"), func(b *bundleSpec) { b.replaces = "foo.v1.0.0" }),
			},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]", "foo/foo.v1.2.0[stable]"},
			wantProblems: []string{
				`error: operators/foo/1.1.5: channel "stable": stranded: not reachable by the replaces chain from head "foo.v1.2.0" and not skipped; dropped from channel "stable"`,
				`error: operators/foo/: channel "stable": channel "stable" has 2 heads [foo.v1.1.5 foo.v1.2.0]; serving the highest version "foo.v1.2.0" as head, the others are stranded`,
			},
		},
		{
			name: "invalid relatedImages entry",
			bundles: []bundleSpec{with(foo("1.0.0"), func(b *bundleSpec) {
				b.related = "  - name: operator\n    image: quay.io/foo/op:v1\n  - name: broken\n    image: \"\"\n"
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`warning: operators/foo/1.0.0/` + csvFile + `: spec.relatedImages[1]: image is empty; entry "broken" ignored`,
			},
		},
		{
			name:       "missing annotations.yaml",
			bundles:    []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) { b.omit = []string{"metadata/annotations.yaml"} })},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				"error: operators/foo/1.1.0/metadata/annotations.yaml: missing; every registry+v1 bundle needs it",
			},
		},
		{
			name:       "version that is not semver",
			bundles:    []bundleSpec{foo("1.0.0"), {pkg: "foo", version: "1.1", replaces: "foo.v1.0.0"}},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: operators/foo/1.1/` + csvFile + `: spec.version: "1.1" is not a semantic version: No Major.Minor.Patch elements found`,
			},
		},
		{
			name: "two CSVs",
			bundles: []bundleSpec{foo("1.0.0"), with(foo("1.1.0"), func(b *bundleSpec) {
				b.replaces = "foo.v1.0.0"
				b.files = map[string]string{"manifests/other.clusterserviceversion.yaml": "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: other\n"}
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				"error: operators/foo/1.1.0/manifests/: a bundle needs exactly one ClusterServiceVersion, found 2 [foo.clusterserviceversion.yaml other.clusterserviceversion.yaml]",
			},
		},
		{
			name: "multi-document manifest file",
			bundles: []bundleSpec{with(foo("1.0.0"), func(b *bundleSpec) {
				b.files = map[string]string{"manifests/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# comment only\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n"}
			})},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
		},
		{
			name:       "semver-mode package from ci.yaml",
			bundles:    []bundleSpec{foo("1.0.0"), foo("1.1.0"), with(foo("2.0.0"), func(b *bundleSpec) { b.channels = "stable,fast"; b.def = "stable" })},
			extra:      map[string]string{"foo/ci.yaml": "updateGraph: semver-mode\n"},
			wantServed: []string{"foo/foo.v1.0.0[stable]", "foo/foo.v1.1.0[stable]", "foo/foo.v2.0.0[fast stable]"},
		},
		{
			name:       "the same CSV name twice",
			bundles:    []bundleSpec{foo("1.0.0"), with(foo("1.0.0"), func(b *bundleSpec) { b.dir = "1.0.0-copy" })},
			wantServed: []string{"foo/foo.v1.0.0[stable]"},
			wantProblems: []string{
				`error: operators/foo/1.0.0-copy/: bundle "foo.v1.0.0" is also defined in 1.0.0/ of the same package; this copy is not served`,
				`warning: operators/foo/1.0.0-copy/` + csvFile + `: spec.version: version 1.0.0 differs from directory "1.0.0-copy"; the CSV's version is used`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := treeFS(tc.bundles...)
			for p, c := range tc.extra {
				fsys[p] = mapFile(c)
			}
			c := loadFS(t, fsys)
			if got := served(c); !slices.Equal(got, tc.wantServed) {
				t.Errorf("served:\n got %q\nwant %q", got, tc.wantServed)
			}
			if got := problemStrings(c); !slices.Equal(got, tc.wantProblems) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.wantProblems)
			}
		})
	}
}
