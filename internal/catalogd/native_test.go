package catalogd_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

func nativeClient(t *testing.T) (catalogv1.CatalogServiceClient, *catalog.Catalog) {
	t.Helper()
	c := sampleCatalog(t)
	return catalogv1.NewCatalogServiceClient(startServer(t, catalogd.NewHolder(c))), c
}

// brokenCatalogDir writes a catalog with one good bundle and one whose
// skipRange cannot be parsed.
func brokenCatalogDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.0.0", channels: []string{"stable"}})
	writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.1.0", channels: []string{"stable"}, replaces: "demo.v1.0.0", skipRange: "not a range"})
	return dir
}

func TestNativeGetCatalogInfo(t *testing.T) {
	sample := sampleCatalog(t)
	broken := loadDir(t, brokenCatalogDir(t))
	if len(broken.Problems.Errors()) == 0 {
		t.Fatal("the broken fixture has no problems")
	}
	for _, tc := range []struct {
		name            string
		cat             *catalog.Catalog
		includeProblems bool
		counts          [3]int32
		problems        int
		sources         []string
	}{
		{name: "sample", cat: sample, counts: [3]int32{3, 5, 11}, sources: []string{"bundles"}},
		{name: "sample with problems requested", cat: sample, includeProblems: true, counts: [3]int32{3, 5, 11}, sources: []string{"bundles"}},
		{name: "problems counted, not listed", cat: broken, counts: [3]int32{1, 1, 1}, problems: len(broken.Problems)},
		{name: "problems listed", cat: broken, includeProblems: true, counts: [3]int32{1, 1, 1}, problems: len(broken.Problems)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := catalogv1.NewCatalogServiceClient(startServer(t, catalogd.NewHolder(tc.cat)))
			info, err := cl.GetCatalogInfo(context.Background(), &catalogv1.GetCatalogInfoRequest{IncludeProblems: tc.includeProblems})
			if err != nil {
				t.Fatal(err)
			}
			if info.Digest != tc.cat.Digest || !strings.HasPrefix(info.Digest, "sha256:") {
				t.Errorf("digest %q, want %q", info.Digest, tc.cat.Digest)
			}
			if got := [3]int32{info.PackageCount, info.ChannelCount, info.BundleCount}; got != tc.counts {
				t.Errorf("counts %v, want %v", got, tc.counts)
			}
			if int(info.ProblemCount) != tc.problems {
				t.Errorf("problem_count %d, want %d", info.ProblemCount, tc.problems)
			}
			if !info.LoadedAt.AsTime().Equal(tc.cat.LoadedAt.Truncate(time.Nanosecond)) {
				t.Errorf("loaded_at %v, want %v", info.LoadedAt.AsTime(), tc.cat.LoadedAt)
			}
			if tc.sources != nil && !slices.Equal(info.Sources, tc.sources) {
				t.Errorf("sources %v, want %v", info.Sources, tc.sources)
			}
			if !tc.includeProblems {
				if len(info.Problems) != 0 {
					t.Errorf("problems listed without include_problems: %v", info.Problems)
				}
				return
			}
			if len(info.Problems) != tc.problems {
				t.Fatalf("%d problems listed, want %d", len(info.Problems), tc.problems)
			}
			for i, p := range info.Problems {
				want := tc.cat.Problems[i]
				if p.Path != want.Path || p.Field != want.Field || p.Reason != want.Reason || p.Severity != string(want.Severity) ||
					p.Package != want.Package || p.Bundle != want.Bundle {
					t.Errorf("problem %d = %v, want %+v", i, p, want)
				}
			}
			if tc.problems > 0 && !slices.ContainsFunc(info.Problems, func(p *catalogv1.Problem) bool {
				return p.Severity == "error" && strings.Contains(p.Field, "olm.skipRange")
			}) {
				t.Errorf("no error about the skipRange in %v", info.Problems)
			}
		})
	}
}

func TestNativeListPackages(t *testing.T) {
	cl, c := nativeClient(t)
	resp, err := cl.ListPackages(context.Background(), &catalogv1.ListPackagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Digest != c.Digest {
		t.Errorf("digest %q, want %q", resp.Digest, c.Digest)
	}
	type sum struct {
		name, def, channels, latest string
		bundles                     int32
	}
	var got []sum
	for _, p := range resp.Packages {
		got = append(got, sum{p.Name, p.DefaultChannel, strings.Join(p.Channels, ","), p.LatestVersion, p.BundleCount})
		if p.Deprecation != nil {
			t.Errorf("%s is deprecated: %v", p.Name, p.Deprecation)
		}
	}
	want := []sum{
		{metrics, "stable", "stable", "1.1.0", 2},
		{lighthouse, "stable", "fast,stable", "1.3.0", 6},
		{signal, "stable", "stable,stable-v2", "1.1.0", 3},
	}
	if !slices.Equal(got, want) {
		t.Errorf("packages\n%v\nwant\n%v", got, want)
	}
}

func TestNativeGetPackage(t *testing.T) {
	cl, c := nativeClient(t)
	type entry struct{ name, version, replaces, skips, skipRange string }
	type channel struct {
		name, head, headVersion string
		entries                 []entry
	}
	lhEntries := []entry{
		{lh("1.0.0"), "1.0.0", "", "", ""},
		{lh("1.1.0"), "1.1.0", lh("1.0.0"), "", ""},
		{lh("1.1.1"), "1.1.1", lh("1.1.0"), "", ""},
		{lh("1.2.0"), "1.2.0", lh("1.1.0"), lh("1.1.1"), ">=1.0.0 <1.2.0"},
		{lh("1.3.0"), "1.3.0", lh("1.2.0"), "", ""},
	}
	for _, tc := range []struct {
		name     string
		req      string
		code     codes.Code
		def      string
		channels []channel
	}{
		{name: "lighthouse-operator", req: lighthouse, def: "stable", channels: []channel{
			{"fast", lh("1.4.0"), "1.4.0", append(slices.Clone(lhEntries), entry{lh("1.4.0"), "1.4.0", lh("1.3.0"), "", ""})},
			{"stable", lh("1.3.0"), "1.3.0", lhEntries},
		}},
		{name: "signal-store", req: signal, def: "stable", channels: []channel{
			{"stable", "signal-store.v1.1.0", "1.1.0", []entry{
				{"signal-store.v1.0.0", "1.0.0", "", "", ""},
				{"signal-store.v1.1.0", "1.1.0", "signal-store.v1.0.0", "", ""},
			}},
			{"stable-v2", "signal-store.v2.0.0", "2.0.0", []entry{{"signal-store.v2.0.0", "2.0.0", "", "", ">=1.0.0 <2.0.0"}}},
		}},
		{name: "unknown package", req: "nope", code: codes.NotFound},
		{name: "empty name", req: "", code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := cl.GetPackage(context.Background(), &catalogv1.GetPackageRequest{Name: tc.req})
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if p.Name != tc.req || p.DefaultChannel != tc.def || p.Digest != c.Digest {
				t.Errorf("package %q default %q digest %q", p.Name, p.DefaultChannel, p.Digest)
			}
			if p.Description == "" {
				t.Error("no description")
			}
			var got []channel
			for _, ch := range p.Channels {
				g := channel{name: ch.Name, head: ch.Head, headVersion: ch.HeadVersion}
				for _, e := range ch.Entries {
					g.entries = append(g.entries, entry{e.Name, e.Version, e.Replaces, strings.Join(e.Skips, ","), e.SkipRange})
				}
				got = append(got, g)
			}
			if len(got) != len(tc.channels) {
				t.Fatalf("channels %v, want %v", got, tc.channels)
			}
			for i := range got {
				if got[i].name != tc.channels[i].name || got[i].head != tc.channels[i].head || got[i].headVersion != tc.channels[i].headVersion ||
					!slices.Equal(got[i].entries, tc.channels[i].entries) {
					t.Errorf("channel %d\n%v\nwant\n%v", i, got[i], tc.channels[i])
				}
			}
		})
	}
}

func TestNativeListBundles(t *testing.T) {
	cl, _ := nativeClient(t)
	all := []string{
		"beacon-metrics.v1.0.0", "beacon-metrics.v1.1.0",
		lh("1.0.0"), lh("1.1.0"), lh("1.1.1"), lh("1.2.0"), lh("1.3.0"), lh("1.4.0"),
		"signal-store.v1.0.0", "signal-store.v1.1.0", "signal-store.v2.0.0",
	}
	for _, tc := range []struct {
		name      string
		req       *catalogv1.ListBundlesRequest
		code      codes.Code
		want      []string
		manifests bool
	}{
		{name: "everything", req: &catalogv1.ListBundlesRequest{}, want: all},
		{name: "everything with manifests", req: &catalogv1.ListBundlesRequest{IncludeManifests: true}, want: all, manifests: true},
		{name: "package", req: &catalogv1.ListBundlesRequest{Package: lighthouse},
			want: []string{lh("1.0.0"), lh("1.1.0"), lh("1.1.1"), lh("1.2.0"), lh("1.3.0"), lh("1.4.0")}},
		{name: "package and channel", req: &catalogv1.ListBundlesRequest{Package: lighthouse, Channel: "stable"},
			want: []string{lh("1.0.0"), lh("1.1.0"), lh("1.1.1"), lh("1.2.0"), lh("1.3.0")}},
		{name: "package, channel and range", req: &catalogv1.ListBundlesRequest{Package: lighthouse, Channel: "fast", VersionRange: ">=1.2.0"},
			want: []string{lh("1.2.0"), lh("1.3.0"), lh("1.4.0")}},
		{name: "range over all packages", req: &catalogv1.ListBundlesRequest{VersionRange: ">=1.1.0 <2.0.0"},
			want: []string{"beacon-metrics.v1.1.0", lh("1.1.0"), lh("1.1.1"), lh("1.2.0"), lh("1.3.0"), lh("1.4.0"), "signal-store.v1.1.0"}},
		{name: "range matching nothing", req: &catalogv1.ListBundlesRequest{Package: signal, VersionRange: ">=3.0.0"}},
		{name: "channel with manifests", req: &catalogv1.ListBundlesRequest{Package: signal, Channel: "stable-v2", IncludeManifests: true},
			want: []string{"signal-store.v2.0.0"}, manifests: true},
		{name: "invalid range", req: &catalogv1.ListBundlesRequest{VersionRange: "not a range"}, code: codes.InvalidArgument},
		{name: "channel without package", req: &catalogv1.ListBundlesRequest{Channel: "stable"}, code: codes.InvalidArgument},
		{name: "unknown package", req: &catalogv1.ListBundlesRequest{Package: "nope"}, code: codes.NotFound},
		{name: "unknown channel", req: &catalogv1.ListBundlesRequest{Package: lighthouse, Channel: "beta"}, code: codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := cl.ListBundles(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := recvAll[catalogv1.Bundle](stream)
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			var names []string
			for _, b := range got {
				names = append(names, b.Name)
				if tc.manifests != (len(b.Manifests) > 0) {
					t.Errorf("%s: %d manifests, include_manifests=%v", b.Name, len(b.Manifests), tc.req.IncludeManifests)
				}
				if !strings.HasPrefix(b.Digest, "sha256:") || b.Package == "" || b.Version == "" || len(b.Channels) == 0 {
					t.Errorf("%s: incomplete bundle %v", b.Name, b)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("bundles %v, want %v", names, tc.want)
			}
		})
	}
}

func TestNativeGetBundle(t *testing.T) {
	cl, c := nativeClient(t)
	for _, tc := range []struct {
		name      string
		req       *catalogv1.GetBundleRequest
		code      codes.Code
		want      string
		channels  []string
		manifests []string // kind/name, in order
	}{
		{name: "by name", req: &catalogv1.GetBundleRequest{Package: lighthouse, Name: lh("1.2.0")}, want: lh("1.2.0"),
			channels: []string{"fast", "stable"},
			manifests: []string{
				"ConfigMap/lighthouse-operator-config", "Service/lighthouse-operator-metrics",
				"ClusterServiceVersion/" + lh("1.2.0"), "CustomResourceDefinition/beacons.lighthouse.ferry.dev",
			}},
		{name: "by version", req: &catalogv1.GetBundleRequest{Package: lighthouse, Version: "1.4.0"}, want: lh("1.4.0"),
			channels: []string{"fast"},
			manifests: []string{
				"ConfigMap/lighthouse-operator-config", "Service/lighthouse-operator-metrics",
				"ClusterServiceVersion/" + lh("1.4.0"), "CustomResourceDefinition/beacons.lighthouse.ferry.dev",
			}},
		{name: "by version, other package", req: &catalogv1.GetBundleRequest{Package: metrics, Version: "1.0.0"}, want: "beacon-metrics.v1.0.0",
			channels: []string{"stable"},
			manifests: []string{
				"ClusterServiceVersion/beacon-metrics.v1.0.0", "CustomResourceDefinition/beaconmetrics.metrics.ferry.dev",
			}},
		{name: "unknown name", req: &catalogv1.GetBundleRequest{Package: lighthouse, Name: lh("9.9.9")}, code: codes.NotFound},
		{name: "name of another package", req: &catalogv1.GetBundleRequest{Package: signal, Name: lh("1.0.0")}, code: codes.NotFound},
		{name: "unknown version", req: &catalogv1.GetBundleRequest{Package: lighthouse, Version: "9.9.9"}, code: codes.NotFound},
		{name: "unknown package", req: &catalogv1.GetBundleRequest{Package: "nope", Version: "1.0.0"}, code: codes.NotFound},
		{name: "invalid version", req: &catalogv1.GetBundleRequest{Package: lighthouse, Version: "one"}, code: codes.InvalidArgument},
		{name: "name and version", req: &catalogv1.GetBundleRequest{Package: lighthouse, Name: lh("1.0.0"), Version: "1.0.0"}, code: codes.InvalidArgument},
		{name: "neither name nor version", req: &catalogv1.GetBundleRequest{Package: lighthouse}, code: codes.InvalidArgument},
		{name: "no package", req: &catalogv1.GetBundleRequest{Name: lh("1.0.0")}, code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cl.GetBundle(context.Background(), tc.req)
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if b.Name != tc.want || b.Package != tc.req.Package || !slices.Equal(b.Channels, tc.channels) {
				t.Errorf("got %s/%s in %v, want %s/%s in %v", b.Package, b.Name, b.Channels, tc.req.Package, tc.want, tc.channels)
			}
			cb := c.Bundle(b.Package, b.Name)
			if b.Version != cb.Version.String() || b.Digest != cb.Digest() {
				t.Errorf("version %s digest %s, want %s %s", b.Version, b.Digest, cb.Version, cb.Digest())
			}
			var kinds []string
			for _, m := range b.Manifests {
				kinds = append(kinds, m.Kind+"/"+m.Name)
				if m.ApiVersion == "" || m.Json == "" {
					t.Errorf("manifest %s/%s without apiVersion or json", m.Kind, m.Name)
				}
			}
			if !slices.Equal(kinds, tc.manifests) {
				t.Errorf("manifests %v, want %v", kinds, tc.manifests)
			}
			csv, err := cb.CSV()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(b.Manifests, func(m *catalogv1.Manifest) bool { return m.Json == string(csv) }) {
				t.Error("the CSV's JSON is not among the manifests")
			}
		})
	}
}

func TestNativeGetSuccessors(t *testing.T) {
	cl, c := nativeClient(t)
	for _, tc := range []struct {
		name string
		req  *catalogv1.GetSuccessorsRequest
		code codes.Code
		want []string // channel/entry/edge, highest first within a channel
	}{
		{name: "replaces and skipRange", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, Channel: "stable", FromVersion: "1.0.0"},
			want: []string{"stable/" + lh("1.2.0") + "/skipRange", "stable/" + lh("1.1.0") + "/replaces"}},
		{name: "replaces wins over skipRange", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, Channel: "stable", FromVersion: "1.1.0"},
			want: []string{"stable/" + lh("1.2.0") + "/replaces", "stable/" + lh("1.1.1") + "/replaces"}},
		{name: "skips", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, Channel: "stable", FromVersion: "1.1.1"},
			want: []string{"stable/" + lh("1.2.0") + "/skips"}},
		{name: "skips by name only", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, Channel: "fast", FromName: lh("1.1.1")},
			want: []string{"fast/" + lh("1.2.0") + "/skips"}},
		{name: "stable head has none", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, Channel: "stable", FromVersion: "1.3.0"}},
		{name: "every channel", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, FromVersion: "1.2.0"},
			want: []string{"fast/" + lh("1.3.0") + "/replaces", "stable/" + lh("1.3.0") + "/replaces"}},
		{name: "fast only", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, FromVersion: "1.3.0"},
			want: []string{"fast/" + lh("1.4.0") + "/replaces"}},
		{name: "skipRange across channels", req: &catalogv1.GetSuccessorsRequest{Package: signal, Channel: "stable-v2", FromVersion: "1.1.0"},
			want: []string{"stable-v2/signal-store.v2.0.0/skipRange"}},
		{name: "bundle no longer served", req: &catalogv1.GetSuccessorsRequest{Package: signal, FromName: "signal-store.v1.0.5", FromVersion: "1.0.5"},
			want: []string{"stable-v2/signal-store.v2.0.0/skipRange"}},
		{name: "version not served", req: &catalogv1.GetSuccessorsRequest{Package: signal, FromVersion: "1.0.5"}, code: codes.NotFound},
		{name: "unknown package", req: &catalogv1.GetSuccessorsRequest{Package: "nope", FromVersion: "1.0.0"}, code: codes.NotFound},
		{name: "unknown channel", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, Channel: "beta", FromVersion: "1.0.0"}, code: codes.NotFound},
		{name: "invalid version", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse, FromVersion: "one"}, code: codes.InvalidArgument},
		{name: "no from", req: &catalogv1.GetSuccessorsRequest{Package: lighthouse}, code: codes.InvalidArgument},
		{name: "no package", req: &catalogv1.GetSuccessorsRequest{FromVersion: "1.0.0"}, code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := cl.GetSuccessors(context.Background(), tc.req)
			checkCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			if resp.Digest != c.Digest {
				t.Errorf("digest %q, want %q", resp.Digest, c.Digest)
			}
			var got []string
			for _, s := range resp.Successors {
				got = append(got, s.Channel+"/"+s.Entry.Name+"/"+s.Edge)
				if want := strings.TrimPrefix(s.Entry.Name, tc.req.Package+".v"); s.Entry.Version != want {
					t.Errorf("entry %s has version %s", s.Entry.Name, s.Entry.Version)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("successors %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNativeGetSnapshot(t *testing.T) {
	cl, c := nativeClient(t)
	for _, tc := range []struct {
		name        string
		ifNoneMatch string
		notModified bool
	}{
		{name: "full"},
		{name: "other digest", ifNoneMatch: "sha256:0000", notModified: false},
		{name: "current digest", ifNoneMatch: c.Digest, notModified: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := cl.GetSnapshot(context.Background(), &catalogv1.GetSnapshotRequest{IfNoneMatch: tc.ifNoneMatch})
			if err != nil {
				t.Fatal(err)
			}
			chunks, err := recvAll[catalogv1.SnapshotChunk](stream)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) == 0 || chunks[0].GetInfo() == nil {
				t.Fatalf("first chunk is not the info: %v", chunks)
			}
			info := chunks[0].GetInfo()
			if info.Digest != c.Digest || info.BundleCount != 11 || chunks[0].NotModified != tc.notModified {
				t.Errorf("info %v not_modified %v", info, chunks[0].NotModified)
			}
			if tc.notModified {
				if len(chunks) != 1 {
					t.Errorf("%d chunks after not_modified, want only the info", len(chunks))
				}
				return
			}
			var order []string
			for _, ch := range chunks[1:] {
				if ch.NotModified {
					t.Error("not_modified set on a later chunk")
				}
				switch {
				case ch.GetPackage() != nil:
					p := ch.GetPackage()
					order = append(order, "package:"+p.Name)
					if p.Digest != c.Digest || len(p.Channels) == 0 || len(p.Channels[0].Entries) == 0 {
						t.Errorf("package %s incomplete: %v", p.Name, p)
					}
				case ch.GetBundle() != nil:
					b := ch.GetBundle()
					order = append(order, "bundle:"+b.Name)
					if len(b.Manifests) != 0 {
						t.Errorf("bundle %s carries %d manifests", b.Name, len(b.Manifests))
					}
				default:
					t.Errorf("unexpected chunk %v", ch)
				}
			}
			want := []string{
				"package:" + metrics, "package:" + lighthouse, "package:" + signal,
				"bundle:beacon-metrics.v1.0.0", "bundle:beacon-metrics.v1.1.0",
				"bundle:" + lh("1.0.0"), "bundle:" + lh("1.1.0"), "bundle:" + lh("1.1.1"),
				"bundle:" + lh("1.2.0"), "bundle:" + lh("1.3.0"), "bundle:" + lh("1.4.0"),
				"bundle:signal-store.v1.0.0", "bundle:signal-store.v1.1.0", "bundle:signal-store.v2.0.0",
			}
			if !slices.Equal(order, want) {
				t.Errorf("chunks\n%v\nwant\n%v", order, want)
			}
		})
	}
}

func TestNativeWatch(t *testing.T) {
	sample := sampleCatalog(t)
	h := catalogd.NewHolder(sample)
	cl := catalogv1.NewCatalogServiceClient(startServer(t, h))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := cl.Watch(ctx, &catalogv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *catalogv1.CatalogEvent, 8)
	go func() {
		defer close(events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	next := func(what string) *catalogv1.CatalogEvent {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("%s: stream ended", what)
			}
			return ev
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no event", what)
		}
		return nil
	}
	// nothing asserts that no event arrives within a short wait.
	nothing := func(what string) {
		t.Helper()
		select {
		case ev := <-events:
			t.Fatalf("%s: unexpected event %v", what, ev)
		case <-time.After(300 * time.Millisecond):
		}
	}

	if ev := next("first event"); ev.Info.GetDigest() != sample.Digest || ev.Info.GetPackageCount() != 3 {
		t.Fatalf("first event %v, want digest %s", ev, sample.Digest)
	}
	nothing("before any swap")

	// The same content loaded again has the same digest: watchers are not woken.
	if h.Swap(sampleCatalog(t)) {
		t.Error("Swap reported a change for the same digest")
	}
	nothing("after swapping the same digest")

	dir := t.TempDir()
	writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.0.0", channels: []string{"stable"}})
	other := loadDir(t, dir)
	if other.Digest == sample.Digest {
		t.Fatal("fixture has the sample's digest")
	}
	if !h.Swap(other) {
		t.Error("Swap reported no change for a new digest")
	}
	if ev := next("after swap"); ev.Info.GetDigest() != other.Digest || ev.Info.GetPackageCount() != 1 {
		t.Fatalf("event %v, want digest %s", ev, other.Digest)
	}

	h.Swap(sample)
	if ev := next("after swapping back"); ev.Info.GetDigest() != sample.Digest {
		t.Fatalf("event %v, want digest %s", ev, sample.Digest)
	}
}
