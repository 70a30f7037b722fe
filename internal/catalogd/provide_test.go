package catalogd_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// TestRegistryProvidersAtHeads: the "latest" and "default" provider queries
// look at channel heads only, and list one entry per skipped bundle, as
// operator-registry does; the "all" query looks at every entry.
func TestRegistryProvidersAtHeads(t *testing.T) {
	dir := t.TempDir()
	gvk := `{"type":"olm.gvk","value":{"group":"old.example.com","version":"v1","kind":"Old"}}`
	writeFile(t, filepath.Join(dir, "demo", "catalog.json"), `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}
{"schema":"olm.channel","package":"demo","name":"stable","entries":[{"name":"demo.v1.0.0"},{"name":"demo.v1.1.0","replaces":"demo.v1.0.0"},{"name":"demo.v1.2.0","replaces":"demo.v1.1.0","skips":["demo.v1.1.0","demo.v0.9.0"]}]}
{"schema":"olm.channel","package":"demo","name":"legacy","entries":[{"name":"demo.v1.0.0"},{"name":"demo.v1.1.0","replaces":"demo.v1.0.0","skips":["demo.v1.0.0","demo.v0.9.0"]}]}
{"schema":"olm.bundle","package":"demo","name":"demo.v1.0.0","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}},`+gvk+`]}
{"schema":"olm.bundle","package":"demo","name":"demo.v1.1.0","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.1.0"}},`+gvk+`]}
{"schema":"olm.bundle","package":"demo","name":"demo.v1.2.0","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.2.0"}}]}
`)
	c := loadDir(t, dir)
	if len(c.Problems) != 0 {
		t.Fatalf("fixture problems: %v", c.Problems)
	}
	cl := api.NewRegistryClient(startServer(t, catalogd.NewHolder(c)))
	ctx := context.Background()
	entries := func(stream interface {
		Recv() (*api.ChannelEntry, error)
	}) []string {
		got, err := recvAll[api.ChannelEntry](stream)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, e.ChannelName+":"+e.BundleName+"<"+e.Replaces)
		}
		return out
	}

	latest, err := cl.GetLatestChannelEntriesThatProvide(ctx, &api.GetLatestProvidersRequest{Group: "old.example.com", Version: "v1", Kind: "Old"})
	if err != nil {
		t.Fatal(err)
	}
	// The stable head (1.2.0) no longer provides the API; legacy's head does,
	// and of its skips only the one in the channel counts.
	if got, want := entries(latest), []string{"legacy:demo.v1.1.0<demo.v1.0.0"}; !slices.Equal(got, want) {
		t.Errorf("latest providers = %q, want %q", got, want)
	}
	all, err := cl.GetChannelEntriesThatProvide(ctx, &api.GetAllProvidersRequest{Group: "old.example.com", Version: "v1", Kind: "Old"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"legacy:demo.v1.0.0<", "stable:demo.v1.0.0<",
		"legacy:demo.v1.1.0<demo.v1.0.0", "legacy:demo.v1.1.0<demo.v0.9.0",
		"stable:demo.v1.1.0<demo.v1.0.0",
	}
	if got := entries(all); !slices.Equal(got, want) {
		t.Errorf("all providers = %q, want %q", got, want)
	}
	_, err = cl.GetDefaultBundleThatProvides(ctx, &api.GetDefaultProviderRequest{Group: "old.example.com", Version: "v1", Kind: "Old"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("default provider: err = %v, want NotFound (the default channel's head does not provide it)", err)
	}
}

// TestRegistryAnswersFollowSwaps: cached answers belong to one loaded
// catalog; after a swap the new catalog answers.
func TestRegistryAnswersFollowSwaps(t *testing.T) {
	dir := t.TempDir()
	doc := func(versions ...string) string {
		s := `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}` + "\n"
		var entries []string
		for i, v := range versions {
			e := `{"name":"demo.v` + v + `"`
			if i > 0 {
				e += `,"replaces":"demo.v` + versions[i-1] + `"`
			}
			entries = append(entries, e+"}")
			s += `{"schema":"olm.bundle","package":"demo","name":"demo.v` + v + `","image":"registry.example.com/demo:v` + v + `","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"` + v + `"}}]}` + "\n"
		}
		return s + `{"schema":"olm.channel","package":"demo","name":"stable","entries":[` + strings.Join(entries, ",") + `]}` + "\n"
	}
	writeFile(t, filepath.Join(dir, "catalog.json"), doc("1.0.0"))
	h := catalogd.NewHolder(loadDir(t, dir))
	cl := api.NewRegistryClient(startServer(t, h))
	ctx := context.Background()
	head := func() string {
		b, err := cl.GetBundleForChannel(ctx, &api.GetBundleInChannelRequest{PkgName: "demo", ChannelName: "stable"})
		if err != nil {
			t.Fatal(err)
		}
		return b.CsvName
	}
	if got := head(); got != "demo.v1.0.0" || len(listRegistryBundles(t, cl)) != 1 {
		t.Fatalf("before: head %s", got)
	}
	writeFile(t, filepath.Join(dir, "catalog.json"), doc("1.0.0", "1.1.0"))
	h.Swap(loadDir(t, dir))
	if got := head(); got != "demo.v1.1.0" {
		t.Errorf("after the swap the head is %s", got)
	}
	if n := len(listRegistryBundles(t, cl)); n != 2 {
		t.Errorf("after the swap ListBundles has %d bundles", n)
	}
}
