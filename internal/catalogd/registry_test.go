package catalogd_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

const (
	lighthouse = "lighthouse-operator"
	signal     = "signal-store"
	metrics    = "beacon-metrics"
)

func lh(v string) string { return lighthouse + ".v" + v }

func registryClient(t *testing.T) (api.RegistryClient, *catalog.Catalog) {
	t.Helper()
	c := sampleCatalog(t)
	return api.NewRegistryClient(startServer(t, catalogd.NewHolder(c))), c
}

// bundleKey is the part of an api.Bundle that names its place in a channel.
type bundleKey struct {
	CsvName, Package, Channel, Version, Replaces, Skips, SkipRange, BundlePath string
}

func keyOf(b *api.Bundle) bundleKey {
	return bundleKey{b.CsvName, b.PackageName, b.ChannelName, b.Version, b.Replaces, strings.Join(b.Skips, ","), b.SkipRange, b.BundlePath}
}

func entryKey(e *api.ChannelEntry) string {
	return e.PackageName + "/" + e.ChannelName + "/" + e.BundleName + "<-" + e.Replaces
}

// checkContent asserts that the bundle carries its content inline: csvJson is
// the bundle's CSV and object holds every manifest, the CSV included.
func checkContent(t *testing.T, c *catalog.Catalog, b *api.Bundle) {
	t.Helper()
	cb := c.Bundle(b.PackageName, b.CsvName)
	if cb == nil {
		t.Fatalf("bundle %s/%s is not in the catalog", b.PackageName, b.CsvName)
	}
	ms, err := cb.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Object) != len(ms) {
		t.Errorf("%s: %d objects, want %d", b.CsvName, len(b.Object), len(ms))
	}
	var csv struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(b.CsvJson), &csv); err != nil {
		t.Fatalf("%s: csvJson is not JSON: %v", b.CsvName, err)
	}
	if csv.Kind != "ClusterServiceVersion" || csv.Metadata.Name != b.CsvName {
		t.Errorf("%s: csvJson is a %s named %q", b.CsvName, csv.Kind, csv.Metadata.Name)
	}
	if !slices.Contains(b.Object, b.CsvJson) {
		t.Errorf("%s: object does not include the CSV", b.CsvName)
	}
	for i, o := range b.Object {
		if !json.Valid([]byte(o)) {
			t.Errorf("%s: object[%d] is not JSON", b.CsvName, i)
		}
	}
}

func checkCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code %v (%v), want %v", got, err, want)
	}
}

func TestRegistryListPackages(t *testing.T) {
	cl, _ := registryClient(t)
	stream, err := cl.ListPackages(context.Background(), &api.ListPackageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll[api.PackageName](stream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	if want := []string{metrics, lighthouse, signal}; !slices.Equal(names, want) {
		t.Errorf("packages %v, want %v", names, want)
	}
}

func TestRegistryGetPackage(t *testing.T) {
	cl, _ := registryClient(t)
	type ch struct{ name, head string }
	for _, tc := range []struct {
		name      string
		req       string
		code      codes.Code
		defaultCh string
		wantCh    []ch
	}{
		{name: "lighthouse-operator", req: lighthouse, defaultCh: "stable",
			wantCh: []ch{{"fast", lh("1.4.0")}, {"stable", lh("1.3.0")}}},
		{name: "signal-store", req: signal, defaultCh: "stable",
			wantCh: []ch{{"stable", "signal-store.v1.1.0"}, {"stable-v2", "signal-store.v2.0.0"}}},
		{name: "beacon-metrics", req: metrics, defaultCh: "stable",
			wantCh: []ch{{"stable", "beacon-metrics.v1.1.0"}}},
		{name: "unknown package", req: "no-such-operator", code: codes.NotFound},
		{name: "empty name", req: "", code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := cl.GetPackage(context.Background(), &api.GetPackageRequest{Name: tc.req})
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if p.Name != tc.req || p.DefaultChannelName != tc.defaultCh {
				t.Errorf("name %q default %q, want %q %q", p.Name, p.DefaultChannelName, tc.req, tc.defaultCh)
			}
			var got []ch
			for _, c := range p.Channels {
				got = append(got, ch{c.Name, c.CsvName})
			}
			if !slices.Equal(got, tc.wantCh) {
				t.Errorf("channels %v, want %v", got, tc.wantCh)
			}
		})
	}
}

func TestRegistryGetBundle(t *testing.T) {
	cl, c := registryClient(t)
	for _, tc := range []struct {
		name string
		req  *api.GetBundleRequest
		code codes.Code
		want bundleKey
	}{
		{
			name: "entry with replaces, skips and skipRange",
			req:  &api.GetBundleRequest{PkgName: lighthouse, ChannelName: "stable", CsvName: lh("1.2.0")},
			want: bundleKey{CsvName: lh("1.2.0"), Package: lighthouse, Channel: "stable", Version: "1.2.0", SkipRange: ">=1.0.0 <1.2.0"},
		},
		{
			name: "entry only in fast",
			req:  &api.GetBundleRequest{PkgName: lighthouse, ChannelName: "fast", CsvName: lh("1.4.0")},
			want: bundleKey{CsvName: lh("1.4.0"), Package: lighthouse, Channel: "fast", Version: "1.4.0"},
		},
		{
			name: "first release",
			req:  &api.GetBundleRequest{PkgName: signal, ChannelName: "stable", CsvName: "signal-store.v1.0.0"},
			want: bundleKey{CsvName: "signal-store.v1.0.0", Package: signal, Channel: "stable", Version: "1.0.0"},
		},
		{name: "bundle not in channel", req: &api.GetBundleRequest{PkgName: lighthouse, ChannelName: "stable", CsvName: lh("1.4.0")}, code: codes.NotFound},
		{name: "unknown bundle", req: &api.GetBundleRequest{PkgName: lighthouse, ChannelName: "stable", CsvName: lh("9.9.9")}, code: codes.NotFound},
		{name: "unknown channel", req: &api.GetBundleRequest{PkgName: lighthouse, ChannelName: "beta", CsvName: lh("1.0.0")}, code: codes.NotFound},
		{name: "unknown package", req: &api.GetBundleRequest{PkgName: "nope", ChannelName: "stable", CsvName: lh("1.0.0")}, code: codes.NotFound},
		{name: "missing csvName", req: &api.GetBundleRequest{PkgName: lighthouse, ChannelName: "stable"}, code: codes.InvalidArgument},
		{name: "missing channelName", req: &api.GetBundleRequest{PkgName: lighthouse, CsvName: lh("1.0.0")}, code: codes.InvalidArgument},
		{name: "missing pkgName", req: &api.GetBundleRequest{ChannelName: "stable", CsvName: lh("1.0.0")}, code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cl.GetBundle(context.Background(), tc.req)
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if got := keyOf(b); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			checkContent(t, c, b)
		})
	}
}

func TestRegistryGetBundleForChannel(t *testing.T) {
	cl, c := registryClient(t)
	for _, tc := range []struct {
		name string
		req  *api.GetBundleInChannelRequest
		code codes.Code
		want bundleKey
	}{
		{name: "lighthouse stable head", req: &api.GetBundleInChannelRequest{PkgName: lighthouse, ChannelName: "stable"},
			want: bundleKey{CsvName: lh("1.3.0"), Package: lighthouse, Channel: "stable", Version: "1.3.0"}},
		{name: "lighthouse fast head", req: &api.GetBundleInChannelRequest{PkgName: lighthouse, ChannelName: "fast"},
			want: bundleKey{CsvName: lh("1.4.0"), Package: lighthouse, Channel: "fast", Version: "1.4.0"}},
		{name: "signal-store stable-v2 head keeps its skipRange", req: &api.GetBundleInChannelRequest{PkgName: signal, ChannelName: "stable-v2"},
			want: bundleKey{CsvName: "signal-store.v2.0.0", Package: signal, Channel: "stable-v2", Version: "2.0.0", SkipRange: ">=1.0.0 <2.0.0"}},
		{name: "unknown channel", req: &api.GetBundleInChannelRequest{PkgName: lighthouse, ChannelName: "beta"}, code: codes.NotFound},
		{name: "unknown package", req: &api.GetBundleInChannelRequest{PkgName: "nope", ChannelName: "stable"}, code: codes.NotFound},
		{name: "missing channelName", req: &api.GetBundleInChannelRequest{PkgName: lighthouse}, code: codes.InvalidArgument},
		{name: "missing pkgName", req: &api.GetBundleInChannelRequest{ChannelName: "stable"}, code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cl.GetBundleForChannel(context.Background(), tc.req)
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if got := keyOf(b); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			checkContent(t, c, b)
		})
	}
}

func TestRegistryGetChannelEntriesThatReplace(t *testing.T) {
	cl, _ := registryClient(t)
	for _, tc := range []struct {
		name string
		csv  string
		code codes.Code
		want []string
	}{
		{name: "replaced in both channels by two entries", csv: lh("1.1.0"), want: []string{
			"lighthouse-operator/fast/lighthouse-operator.v1.1.1<-lighthouse-operator.v1.1.0",
			"lighthouse-operator/fast/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.0",
			"lighthouse-operator/stable/lighthouse-operator.v1.1.1<-lighthouse-operator.v1.1.0",
			"lighthouse-operator/stable/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.0",
		}},
		// A skipping entry is reported with its own replaces, as upstream does.
		{name: "skipped", csv: lh("1.1.1"), want: []string{
			"lighthouse-operator/fast/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.0",
			"lighthouse-operator/stable/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.0",
		}},
		{name: "replaced only in fast", csv: lh("1.3.0"), want: []string{
			"lighthouse-operator/fast/lighthouse-operator.v1.4.0<-lighthouse-operator.v1.3.0",
		}},
		{name: "other package", csv: "signal-store.v1.0.0", want: []string{
			"signal-store/stable/signal-store.v1.1.0<-signal-store.v1.0.0",
		}},
		{name: "channel head is replaced by nothing", csv: lh("1.4.0"), code: codes.NotFound},
		{name: "skipRange alone is not a replacement", csv: "signal-store.v1.1.0", code: codes.NotFound},
		{name: "unknown bundle", csv: "nope.v1.0.0", code: codes.NotFound},
		{name: "missing csvName", csv: "", code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := cl.GetChannelEntriesThatReplace(context.Background(), &api.GetAllReplacementsRequest{CsvName: tc.csv})
			if err != nil {
				t.Fatal(err)
			}
			got, err := recvAll[api.ChannelEntry](stream)
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			var keys []string
			for _, e := range got {
				keys = append(keys, entryKey(e))
			}
			if !slices.Equal(keys, tc.want) {
				t.Errorf("entries\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestRegistryGetBundleThatReplaces(t *testing.T) {
	cl, c := registryClient(t)
	for _, tc := range []struct {
		name string
		req  *api.GetReplacementRequest
		code codes.Code
		want bundleKey
	}{
		{name: "newest of two replacements", req: &api.GetReplacementRequest{CsvName: lh("1.1.0"), PkgName: lighthouse, ChannelName: "stable"},
			want: bundleKey{CsvName: lh("1.2.0"), Package: lighthouse, Channel: "stable", Version: "1.2.0", SkipRange: ">=1.0.0 <1.2.0"}},
		{name: "by skips", req: &api.GetReplacementRequest{CsvName: lh("1.1.1"), PkgName: lighthouse, ChannelName: "stable"},
			want: bundleKey{CsvName: lh("1.2.0"), Package: lighthouse, Channel: "stable", Version: "1.2.0", SkipRange: ">=1.0.0 <1.2.0"}},
		{name: "replaced only in fast", req: &api.GetReplacementRequest{CsvName: lh("1.3.0"), PkgName: lighthouse, ChannelName: "fast"},
			want: bundleKey{CsvName: lh("1.4.0"), Package: lighthouse, Channel: "fast", Version: "1.4.0"}},
		{name: "stable head", req: &api.GetReplacementRequest{CsvName: lh("1.3.0"), PkgName: lighthouse, ChannelName: "stable"}, code: codes.NotFound},
		{name: "skipRange alone does not replace", req: &api.GetReplacementRequest{CsvName: "signal-store.v1.1.0", PkgName: signal, ChannelName: "stable-v2"}, code: codes.NotFound},
		{name: "unknown channel", req: &api.GetReplacementRequest{CsvName: lh("1.1.0"), PkgName: lighthouse, ChannelName: "beta"}, code: codes.NotFound},
		{name: "unknown package", req: &api.GetReplacementRequest{CsvName: lh("1.1.0"), PkgName: "nope", ChannelName: "stable"}, code: codes.NotFound},
		{name: "missing csvName", req: &api.GetReplacementRequest{PkgName: lighthouse, ChannelName: "stable"}, code: codes.InvalidArgument},
		{name: "missing pkgName", req: &api.GetReplacementRequest{CsvName: lh("1.1.0"), ChannelName: "stable"}, code: codes.InvalidArgument},
		{name: "missing channelName", req: &api.GetReplacementRequest{CsvName: lh("1.1.0"), PkgName: lighthouse}, code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cl.GetBundleThatReplaces(context.Background(), tc.req)
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if got := keyOf(b); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			checkContent(t, c, b)
		})
	}
}

type gvkReq struct{ group, version, kind string }

var (
	beaconV1      = gvkReq{"lighthouse.ferry.dev", "v1", "Beacon"}
	beaconV1beta1 = gvkReq{"lighthouse.ferry.dev", "v1beta1", "Beacon"}
	beaconMetric  = gvkReq{"metrics.ferry.dev", "v1alpha1", "BeaconMetric"}
	signalStoreV1 = gvkReq{"signals.ferry.dev", "v1", "SignalStore"}
)

// gvkErrorCases are the failures every provider lookup shares.
var gvkErrorCases = []struct {
	name string
	gvk  gvkReq
	code codes.Code
}{
	{"unknown version", gvkReq{"lighthouse.ferry.dev", "v2", "Beacon"}, codes.NotFound},
	{"unknown group", gvkReq{"example.com", "v1", "Beacon"}, codes.NotFound},
	{"required but not provided", gvkReq{"", "v1", "ConfigMap"}, codes.NotFound},
	{"missing kind", gvkReq{"lighthouse.ferry.dev", "v1", ""}, codes.InvalidArgument},
	{"missing version", gvkReq{"lighthouse.ferry.dev", "", "Beacon"}, codes.InvalidArgument},
}

// providerCase is one provider lookup and the channel entries it answers.
type providerCase struct {
	name string
	gvk  gvkReq
	code codes.Code
	want []string
}

// checkProviderEntries runs the cases, plus every case of gvkErrorCases,
// against one provider lookup.
func checkProviderEntries(t *testing.T, cases []providerCase, call func(gvkReq) (grpc.ServerStreamingClient[api.ChannelEntry], error)) {
	t.Helper()
	for _, e := range gvkErrorCases {
		cases = append(cases, providerCase{name: e.name, gvk: e.gvk, code: e.code})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := streamEntries(t, func() (grpc.ServerStreamingClient[api.ChannelEntry], error) { return call(tc.gvk) })
			checkCode(t, err, tc.code)
			if tc.code == codes.OK && !slices.Equal(got, tc.want) {
				t.Errorf("entries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func streamEntries(t *testing.T, call func() (grpc.ServerStreamingClient[api.ChannelEntry], error)) ([]string, error) {
	t.Helper()
	stream, err := call()
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll[api.ChannelEntry](stream)
	var keys []string
	for _, e := range got {
		keys = append(keys, entryKey(e))
	}
	return keys, err
}

func TestRegistryGetChannelEntriesThatProvide(t *testing.T) {
	cl, _ := registryClient(t)
	cases := []providerCase{
		{name: "Beacon v1", gvk: beaconV1, want: []string{
			"lighthouse-operator/fast/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.0",
			"lighthouse-operator/fast/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.1",
			"lighthouse-operator/stable/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.0",
			"lighthouse-operator/stable/lighthouse-operator.v1.2.0<-lighthouse-operator.v1.1.1",
			"lighthouse-operator/fast/lighthouse-operator.v1.3.0<-lighthouse-operator.v1.2.0",
			"lighthouse-operator/stable/lighthouse-operator.v1.3.0<-lighthouse-operator.v1.2.0",
			"lighthouse-operator/fast/lighthouse-operator.v1.4.0<-lighthouse-operator.v1.3.0",
		}},
		{name: "SignalStore v1", gvk: signalStoreV1, want: []string{
			"signal-store/stable-v2/signal-store.v2.0.0<-",
		}},
		{name: "BeaconMetric", gvk: beaconMetric, want: []string{
			"beacon-metrics/stable/beacon-metrics.v1.0.0<-",
			"beacon-metrics/stable/beacon-metrics.v1.1.0<-beacon-metrics.v1.0.0",
		}},
	}
	checkProviderEntries(t, cases, func(g gvkReq) (grpc.ServerStreamingClient[api.ChannelEntry], error) {
		return cl.GetChannelEntriesThatProvide(context.Background(), &api.GetAllProvidersRequest{Group: g.group, Version: g.version, Kind: g.kind})
	})
}

func TestRegistryGetLatestChannelEntriesThatProvide(t *testing.T) {
	cl, _ := registryClient(t)
	cases := []providerCase{
		{name: "Beacon v1", gvk: beaconV1, want: []string{
			"lighthouse-operator/fast/lighthouse-operator.v1.4.0<-lighthouse-operator.v1.3.0",
			"lighthouse-operator/stable/lighthouse-operator.v1.3.0<-lighthouse-operator.v1.2.0",
		}},
		{name: "Beacon v1beta1", gvk: beaconV1beta1, want: []string{
			"lighthouse-operator/fast/lighthouse-operator.v1.4.0<-lighthouse-operator.v1.3.0",
			"lighthouse-operator/stable/lighthouse-operator.v1.3.0<-lighthouse-operator.v1.2.0",
		}},
		{name: "SignalStore v1", gvk: signalStoreV1, want: []string{
			"signal-store/stable-v2/signal-store.v2.0.0<-",
		}},
	}
	checkProviderEntries(t, cases, func(g gvkReq) (grpc.ServerStreamingClient[api.ChannelEntry], error) {
		return cl.GetLatestChannelEntriesThatProvide(context.Background(), &api.GetLatestProvidersRequest{Group: g.group, Version: g.version, Kind: g.kind})
	})
}

func TestRegistryGetDefaultBundleThatProvides(t *testing.T) {
	cl, c := registryClient(t)
	type tcase struct {
		name string
		gvk  gvkReq
		code codes.Code
		want bundleKey
	}
	cases := []tcase{
		{name: "Beacon v1", gvk: beaconV1, want: bundleKey{CsvName: lh("1.3.0"), Package: lighthouse, Channel: "stable", Version: "1.3.0"}},
		{name: "Beacon v1beta1", gvk: beaconV1beta1, want: bundleKey{CsvName: lh("1.3.0"), Package: lighthouse, Channel: "stable", Version: "1.3.0"}},
		{name: "BeaconMetric", gvk: beaconMetric, want: bundleKey{CsvName: "beacon-metrics.v1.1.0", Package: metrics, Channel: "stable", Version: "1.1.0"}},
		// Only 2.0.0 in stable-v2 provides SignalStore v1; stable is the default channel.
		{name: "provided outside the default channel only", gvk: signalStoreV1, code: codes.NotFound},
	}
	for _, e := range gvkErrorCases {
		cases = append(cases, tcase{name: e.name, gvk: e.gvk, code: e.code})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cl.GetDefaultBundleThatProvides(context.Background(), &api.GetDefaultProviderRequest{Group: tc.gvk.group, Version: tc.gvk.version, Kind: tc.gvk.kind})
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if got := keyOf(b); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			checkContent(t, c, b)
		})
	}
}

func listRegistryBundles(t *testing.T, cl api.RegistryClient) []*api.Bundle {
	t.Helper()
	stream, err := cl.ListBundles(context.Background(), &api.ListBundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll[api.Bundle](stream)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRegistryListBundles(t *testing.T) {
	cl, c := registryClient(t)
	got := listRegistryBundles(t, cl)

	skipLH := ">=1.0.0 <1.2.0"
	want := []bundleKey{
		{CsvName: "beacon-metrics.v1.0.0", Package: metrics, Channel: "stable", Version: "1.0.0"},
		{CsvName: "beacon-metrics.v1.1.0", Package: metrics, Channel: "stable", Version: "1.1.0", Replaces: "beacon-metrics.v1.0.0"},
		{CsvName: lh("1.0.0"), Package: lighthouse, Channel: "fast", Version: "1.0.0"},
		{CsvName: lh("1.1.0"), Package: lighthouse, Channel: "fast", Version: "1.1.0", Replaces: lh("1.0.0")},
		{CsvName: lh("1.1.1"), Package: lighthouse, Channel: "fast", Version: "1.1.1", Replaces: lh("1.1.0")},
		{CsvName: lh("1.2.0"), Package: lighthouse, Channel: "fast", Version: "1.2.0", Replaces: lh("1.1.0"), Skips: lh("1.1.1"), SkipRange: skipLH},
		{CsvName: lh("1.3.0"), Package: lighthouse, Channel: "fast", Version: "1.3.0", Replaces: lh("1.2.0")},
		{CsvName: lh("1.4.0"), Package: lighthouse, Channel: "fast", Version: "1.4.0", Replaces: lh("1.3.0")},
		{CsvName: lh("1.0.0"), Package: lighthouse, Channel: "stable", Version: "1.0.0"},
		{CsvName: lh("1.1.0"), Package: lighthouse, Channel: "stable", Version: "1.1.0", Replaces: lh("1.0.0")},
		{CsvName: lh("1.1.1"), Package: lighthouse, Channel: "stable", Version: "1.1.1", Replaces: lh("1.1.0")},
		{CsvName: lh("1.2.0"), Package: lighthouse, Channel: "stable", Version: "1.2.0", Replaces: lh("1.1.0"), Skips: lh("1.1.1"), SkipRange: skipLH},
		{CsvName: lh("1.3.0"), Package: lighthouse, Channel: "stable", Version: "1.3.0", Replaces: lh("1.2.0")},
		{CsvName: "signal-store.v1.0.0", Package: signal, Channel: "stable", Version: "1.0.0"},
		{CsvName: "signal-store.v1.1.0", Package: signal, Channel: "stable", Version: "1.1.0", Replaces: "signal-store.v1.0.0"},
		{CsvName: "signal-store.v2.0.0", Package: signal, Channel: "stable-v2", Version: "2.0.0", SkipRange: ">=1.0.0 <2.0.0"},
	}
	var keys []bundleKey
	for _, b := range got {
		keys = append(keys, keyOf(b))
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("bundles\n%v\nwant\n%v", keys, want)
	}

	// Deterministic: a second call streams the same.
	again := listRegistryBundles(t, cl)
	for i := range again {
		if keyOf(again[i]) != keys[i] {
			t.Fatalf("second ListBundles differs at %d: %+v", i, keyOf(again[i]))
		}
	}

	byKey := map[string]*api.Bundle{}
	for _, b := range got {
		// The sample bundles have no image, so each carries its content.
		checkContent(t, c, b)
		for _, p := range b.Properties {
			if p.Type == catalog.PropertyBundleObject || p.Type == catalog.PropertyCSVMetadata {
				t.Errorf("%s: property %s must not be listed", b.CsvName, p.Type)
			}
			if !json.Valid([]byte(p.Value)) {
				t.Errorf("%s: property %s value %q is not JSON", b.CsvName, p.Type, p.Value)
			}
		}
		byKey[b.ChannelName+"/"+b.CsvName] = b
	}

	type dep struct {
		Type  string
		Value map[string]string
	}
	for _, tc := range []struct {
		name     string
		key      string
		provided []string
		required []string
		deps     []dep
	}{
		{name: "no dependencies", key: "stable/" + lh("1.0.0"),
			provided: []string{"lighthouse.ferry.dev/v1beta1/Beacon"}},
		{name: "package dependency from dependencies.yaml", key: "stable/" + lh("1.1.0"),
			provided: []string{"lighthouse.ferry.dev/v1beta1/Beacon"},
			deps:     []dep{{"olm.package", map[string]string{"packageName": signal, "version": ">=1.0.0 <2.0.0"}}}},
		{name: "package dependency from properties.yaml", key: "fast/" + lh("1.4.0"),
			provided: []string{"lighthouse.ferry.dev/v1/Beacon", "lighthouse.ferry.dev/v1beta1/Beacon"},
			deps:     []dep{{"olm.package", map[string]string{"packageName": signal, "version": ">=1.1.0 <2.0.0"}}}},
		{name: "GVK dependency", key: "stable/beacon-metrics.v1.0.0",
			provided: []string{"metrics.ferry.dev/v1alpha1/BeaconMetric"},
			required: []string{"lighthouse.ferry.dev/v1beta1/Beacon"},
			deps:     []dep{{"olm.gvk", map[string]string{"group": "lighthouse.ferry.dev", "version": "v1beta1", "kind": "Beacon"}}}},
		{name: "GVK dependency on v1", key: "stable/beacon-metrics.v1.1.0",
			provided: []string{"metrics.ferry.dev/v1alpha1/BeaconMetric"},
			required: []string{"lighthouse.ferry.dev/v1/Beacon"},
			deps:     []dep{{"olm.gvk", map[string]string{"group": "lighthouse.ferry.dev", "version": "v1", "kind": "Beacon"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := byKey[tc.key]
			if b == nil {
				t.Fatalf("%s not listed", tc.key)
			}
			gvks := func(gs []*api.GroupVersionKind) []string {
				var out []string
				for _, g := range gs {
					out = append(out, g.Group+"/"+g.Version+"/"+g.Kind)
				}
				return out
			}
			if got := gvks(b.ProvidedApis); !slices.Equal(got, tc.provided) {
				t.Errorf("providedApis %v, want %v", got, tc.provided)
			}
			if got := gvks(b.RequiredApis); !slices.Equal(got, tc.required) {
				t.Errorf("requiredApis %v, want %v", got, tc.required)
			}
			if len(b.Dependencies) != len(tc.deps) {
				t.Fatalf("dependencies %v, want %v", b.Dependencies, tc.deps)
			}
			for i, d := range b.Dependencies {
				var v map[string]string
				if err := json.Unmarshal([]byte(d.Value), &v); err != nil {
					t.Fatalf("dependency %d value %q: %v", i, d.Value, err)
				}
				if d.Type != tc.deps[i].Type || !mapsEqual(v, tc.deps[i].Value) {
					t.Errorf("dependency %d = %s %v, want %s %v", i, d.Type, v, tc.deps[i].Type, tc.deps[i].Value)
				}
			}
			// olm.package gives the version; every provided API has its olm.gvk property.
			var pkgProp map[string]string
			gvkProps := 0
			for _, p := range b.Properties {
				switch p.Type {
				case catalog.PropertyPackage:
					if err := json.Unmarshal([]byte(p.Value), &pkgProp); err != nil {
						t.Fatal(err)
					}
				case catalog.PropertyGVK:
					gvkProps++
				}
			}
			if pkgProp["packageName"] != b.PackageName || pkgProp["version"] != b.Version {
				t.Errorf("olm.package property %v, want %s %s", pkgProp, b.PackageName, b.Version)
			}
			if gvkProps != len(tc.provided) {
				t.Errorf("%d olm.gvk properties, want %d", gvkProps, len(tc.provided))
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
