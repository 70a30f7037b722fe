package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
)

// bundleSpec describes a registry+v1 bundle for tests.
type bundleSpec struct {
	pkg, version string
	dir          string // directory name under the package; default the version
	annPkg       string // package named in annotations; default pkg
	channels     string // comma-separated; default "stable"
	def          string
	replaces     string
	skips        []string
	skipRange    string
	deps         string            // metadata/dependencies.yaml
	props        string            // metadata/properties.yaml
	files        map[string]string // extra files relative to the bundle dir
	omit         []string          // files to leave out, relative to the bundle dir
	csvHeader    string            // replaces the first line of the CSV
	related      string            // spec.relatedImages YAML
}

func csvName(pkg, version string) string { return pkg + ".v" + version }

func (b bundleSpec) bundleFiles() map[string]string {
	annPkg := b.annPkg
	if annPkg == "" {
		annPkg = b.pkg
	}
	channels := b.channels
	if channels == "" {
		channels = "stable"
	}
	ann := fmt.Sprintf(`annotations:
  operators.operatorframework.io.bundle.mediatype.v1: registry+v1
  operators.operatorframework.io.bundle.manifests.v1: manifests/
  operators.operatorframework.io.bundle.metadata.v1: metadata/
  operators.operatorframework.io.bundle.package.v1: %s
  operators.operatorframework.io.bundle.channels.v1: %s
`, annPkg, channels)
	if b.def != "" {
		ann += "  operators.operatorframework.io.bundle.channel.default.v1: " + b.def + "\n"
	}
	var csv strings.Builder
	header := "apiVersion: operators.coreos.com/v1alpha1"
	if b.csvHeader != "" {
		header = b.csvHeader
	}
	fmt.Fprintf(&csv, "%s\nkind: ClusterServiceVersion\nmetadata:\n  name: %s\n", header, csvName(b.pkg, b.version))
	if b.skipRange != "" {
		fmt.Fprintf(&csv, "  annotations:\n    olm.skipRange: %q\n", b.skipRange)
	}
	fmt.Fprintf(&csv, "spec:\n  version: %s\n", b.version)
	if b.replaces != "" {
		fmt.Fprintf(&csv, "  replaces: %s\n", b.replaces)
	}
	if len(b.skips) > 0 {
		csv.WriteString("  skips:\n")
		for _, s := range b.skips {
			fmt.Fprintf(&csv, "  - %s\n", s)
		}
	}
	if b.related != "" {
		csv.WriteString("  relatedImages:\n" + b.related)
	}
	fmt.Fprintf(&csv, "  customresourcedefinitions:\n    owned:\n    - name: widgets.%s.example.com\n      version: v1\n      kind: Widget\n", b.pkg)
	csv.WriteString("  install:\n    strategy: deployment\n    spec:\n      deployments: []\n")
	crd := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.%[1]s.example.com
spec:
  group: %[1]s.example.com
  names:
    kind: Widget
    plural: widgets
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
`, b.pkg)
	files := map[string]string{
		"metadata/annotations.yaml":                          ann,
		"manifests/" + b.pkg + ".clusterserviceversion.yaml": csv.String(),
		"manifests/widgets.crd.yaml":                         crd,
	}
	if b.deps != "" {
		files["metadata/dependencies.yaml"] = b.deps
	}
	if b.props != "" {
		files["metadata/properties.yaml"] = b.props
	}
	for k, v := range b.files {
		files[k] = v
	}
	for _, o := range b.omit {
		delete(files, o)
	}
	return files
}

// treeFS lays bundles out as <package>/<version>/.
func treeFS(specs ...bundleSpec) fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, b := range specs {
		dir := b.dir
		if dir == "" {
			dir = b.version
		}
		for p, content := range b.bundleFiles() {
			fsys[b.pkg+"/"+dir+"/"+p] = &fstest.MapFile{Data: []byte(content)}
		}
	}
	return fsys
}

func loadFS(t *testing.T, fsys fstest.MapFS, opts ...Option) *Catalog {
	t.Helper()
	c, err := Load(context.Background(), []Source{{Name: "operators", FS: fsys}}, opts...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// served lists "package/bundle[channels]" for every served bundle.
func served(c *Catalog) []string {
	var out []string
	for _, p := range c.Packages {
		for _, b := range p.Bundles {
			out = append(out, fmt.Sprintf("%s/%s%v", p.Name, b.Name, b.Channels))
		}
	}
	return out
}

func problemStrings(c *Catalog) []string {
	out := make([]string, 0, len(c.Problems))
	for _, p := range c.Problems {
		out = append(out, string(p.Severity)+": "+p.String())
	}
	sort.Strings(out)
	return out
}

func mapFile(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
