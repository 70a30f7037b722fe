package catalogd_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// TestRegistryBundlePath: a bundle with an image is listed without content,
// and a single-bundle answer still carries what the catalog has.
func TestRegistryBundlePath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "demo", "catalog.json"), `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}
{"schema":"olm.channel","package":"demo","name":"stable","entries":[{"name":"demo.v1.0.0"},{"name":"demo.v1.1.0","replaces":"demo.v1.0.0"}]}
{"schema":"olm.bundle","package":"demo","name":"demo.v1.0.0","image":"registry.example.com/demo-bundle:v1.0.0","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}}]}
{"schema":"olm.bundle","package":"demo","name":"demo.v1.1.0","image":"registry.example.com/demo-bundle:v1.1.0","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.1.0"}},{"type":"olm.gvk","value":{"group":"demo.example.com","version":"v1","kind":"Demo"}}]}
`)
	c := loadDir(t, dir)
	if c.Package("demo") == nil {
		t.Fatalf("fixture not loaded: %v", c.Problems)
	}
	cl := api.NewRegistryClient(startServer(t, catalogd.NewHolder(c)))
	got := listRegistryBundles(t, cl)
	if len(got) != 2 {
		t.Fatalf("%d bundles, want 2", len(got))
	}
	for i, b := range got {
		want := []string{"registry.example.com/demo-bundle:v1.0.0", "registry.example.com/demo-bundle:v1.1.0"}[i]
		if b.BundlePath != want {
			t.Errorf("bundle %d: bundlePath %q, want %q", i, b.BundlePath, want)
		}
		if b.CsvJson != "" || len(b.Object) != 0 {
			t.Errorf("%s: has an image but carries content (%d objects)", b.CsvName, len(b.Object))
		}
	}
	b, err := cl.GetBundleForChannel(context.Background(), &api.GetBundleInChannelRequest{PkgName: "demo", ChannelName: "stable"})
	if err != nil {
		t.Fatal(err)
	}
	if b.CsvName != "demo.v1.1.0" || b.BundlePath != "registry.example.com/demo-bundle:v1.1.0" || b.Replaces != "" || len(b.ProvidedApis) != 1 {
		t.Errorf("head %v", b)
	}
}
