package catalogd_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// answerGauges reads the answer cache's gauges.
// waitAnswers waits until the answer cache holds want answers (heads are
// kept ready in the background) and returns the gauges as last read.
func waitAnswers(t *testing.T, m *catalogd.Metrics, want float64) (bytes, answers float64) {
	t.Helper()
	_ = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		bytes, answers = answerGauges(t, m)
		return answers == want, nil
	})
	return bytes, answers
}

func answerGauges(t *testing.T, m *catalogd.Metrics) (bytes, answers float64) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "ferry_catalogd_answer_cache_bytes":
			bytes = mf.GetMetric()[0].GetGauge().GetValue()
			found++
		case "ferry_catalogd_answer_cache_answers":
			answers = mf.GetMetric()[0].GetGauge().GetValue()
			found++
		}
	}
	if found != 2 {
		t.Fatalf("answer cache gauges missing (%d of 2 found)", found)
	}
	return bytes, answers
}

// TestAnswerCache: single-bundle answers are kept once per catalog digest
// and bundle (every channel head is kept ready), are the same over gRPC as
// in the process, and are kept within the budget.
func TestAnswerCache(t *testing.T) {
	tests := []struct {
		name      string
		budget    int64
		keepHeads bool
	}{
		{name: "default budget keeps every channel head", budget: catalogd.DefaultAnswerCacheBytes, keepHeads: true},
		{name: "zero budget keeps none", budget: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sampleCatalog(t)
			h := catalogd.NewHolder(c)
			m := catalogd.NewMetrics()
			limits := catalogd.DefaultLimits()
			limits.AnswerCacheBytes = tt.budget
			cl := api.NewRegistryClient(startServer(t, h, catalogd.WithMetrics(m), catalogd.WithLimits(limits)))
			p := c.Packages[0]
			ch := p.Channel(p.DefaultChannel)
			req := &api.GetBundleInChannelRequest{PkgName: p.Name, ChannelName: ch.Name}
			ctx := context.Background()

			first, err := cl.GetBundleForChannel(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			second, err := cl.GetBundleForChannel(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(first, second) {
				t.Errorf("the second answer differs from the first")
			}
			local, err := catalogd.NewRegistryServer(h).GetBundleForChannel(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(first, local) {
				t.Errorf("the answer over gRPC differs from the answer in the process:\n%v\n%v", first, local)
			}
			if first.GetCsvName() != ch.Head || first.GetCsvJson() == "" || first.GetReplaces() != "" || len(first.GetSkips()) != 0 {
				t.Errorf("answer %s: csvJson %d bytes, replaces %q, skips %v; want the head %s with content, no replaces or skips",
					first.GetCsvName(), len(first.GetCsvJson()), first.GetReplaces(), first.GetSkips(), ch.Head)
			}
			want := 0.0
			if tt.keepHeads {
				want = float64(c.Counts().Channels)
			}
			// Heads are kept ready in the background: wait for them.
			bytes, answers := waitAnswers(t, m, want)
			if answers != want {
				t.Errorf("%v answers kept, want %v", answers, want)
			}
			if size := float64(proto.Size(first)); tt.keepHeads && bytes < size {
				t.Errorf("%v bytes counted for an answer of %v", bytes, size)
			}
			if bytes > float64(tt.budget) {
				t.Errorf("%v bytes kept, over the budget of %d", bytes, tt.budget)
			}
		})
	}
}

// TestAnswerCacheReload: after a reload to a catalog with another digest,
// a single-bundle answer comes from the new catalog, not from the cache.
func TestAnswerCacheReload(t *testing.T) {
	dir := t.TempDir()
	write := func(kind string) {
		writeFile(t, filepath.Join(dir, "demo", "catalog.json"), `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}
{"schema":"olm.channel","package":"demo","name":"stable","entries":[{"name":"demo.v1.0.0"}]}
{"schema":"olm.bundle","package":"demo","name":"demo.v1.0.0","image":"registry.example.com/demo-bundle:v1.0.0","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}},{"type":"olm.gvk","value":{"group":"demo.example.com","version":"v1","kind":"`+kind+`"}}]}
`)
	}
	write("First")
	c1 := loadDir(t, dir)
	h := catalogd.NewHolder(c1)
	cl := api.NewRegistryClient(startServer(t, h))
	req := &api.GetBundleRequest{PkgName: "demo", ChannelName: "stable", CsvName: "demo.v1.0.0"}
	kind := func() string {
		t.Helper()
		b, err := cl.GetBundle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.GetProvidedApis()) != 1 {
			t.Fatalf("provided APIs %v, want one", b.GetProvidedApis())
		}
		return b.GetProvidedApis()[0].GetKind()
	}
	if got := kind(); got != "First" {
		t.Fatalf("first catalog: kind %q", got)
	}
	write("Second")
	c2 := loadDir(t, dir)
	if c2.Digest == c1.Digest {
		t.Fatalf("fixture: the reloaded catalog has the same digest")
	}
	h.Swap(c2)
	if got := kind(); got != "Second" {
		t.Errorf("after the reload GetBundle answers kind %q, want the new catalog's Second", got)
	}
}

// flakyImages is a bundle image source whose first pulls fail.
type flakyImages struct {
	mu       sync.Mutex
	failures int
	pulls    int
	objects  []catalog.Manifest
}

func (f *flakyImages) Cached(catalog.BundleImage) ([]catalog.Manifest, bool) { return nil, false }

func (f *flakyImages) Pull(_ context.Context, _ catalog.BundleImage) ([]catalog.Manifest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls++
	if f.pulls <= f.failures {
		return nil, errors.New("registry.example.com: connection refused")
	}
	return f.objects, nil
}

// TestAnswerCacheFailedPull: a single-bundle answer for a bundle listed by
// image only is kept once its objects are known; a failed pull is an error
// that is not kept, and the next request pulls again.
func TestAnswerCacheFailedPull(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "demo", "catalog.json"), `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}
{"schema":"olm.channel","package":"demo","name":"stable","entries":[{"name":"demo.v1.0.0"}]}
{"schema":"olm.bundle","package":"demo","name":"demo.v1.0.0","image":"registry.example.com/demo-bundle:v1.0.0","properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}}]}
`)
	csv := `{"apiVersion":"operators.coreos.com/v1alpha1","kind":"ClusterServiceVersion","metadata":{"name":"demo.v1.0.0"}}`
	images := &flakyImages{failures: 1, objects: []catalog.Manifest{{
		APIVersion: "operators.coreos.com/v1alpha1", Kind: catalog.KindClusterServiceVersion, Name: "demo.v1.0.0", JSON: []byte(csv),
	}}}
	c := loadDir(t, dir, catalog.WithBundleImages(images, false))
	m := catalogd.NewMetrics()
	cl := api.NewRegistryClient(startServer(t, catalogd.NewHolder(c), catalogd.WithMetrics(m)))
	req := &api.GetBundleRequest{PkgName: "demo", ChannelName: "stable", CsvName: "demo.v1.0.0"}

	_, err := cl.GetBundle(context.Background(), req)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("first GetBundle: %v, want Unavailable (the pull fails)", err)
	}
	if _, answers := answerGauges(t, m); answers != 0 {
		t.Fatalf("a failed pull was kept as an answer (%v answers)", answers)
	}
	for i := 0; i < 2; i++ {
		b, err := cl.GetBundle(context.Background(), req)
		if err != nil {
			t.Fatalf("GetBundle %d after the failure: %v", i+2, err)
		}
		if b.GetCsvJson() != csv || len(b.GetObject()) != 1 {
			t.Errorf("GetBundle %d: csvJson %q, %d objects; want the pulled CSV", i+2, b.GetCsvJson(), len(b.GetObject()))
		}
	}
	if _, answers := answerGauges(t, m); answers != 1 {
		t.Errorf("%v answers kept after the pull succeeded, want 1", answers)
	}
	images.mu.Lock()
	defer images.mu.Unlock()
	if images.pulls != 2 {
		t.Errorf("%d pulls, want 2 (one failed, one kept)", images.pulls)
	}
}

// TestLimitsAnswerCacheBytes: the answer cache budget may be zero, never
// negative.
func TestLimitsAnswerCacheBytes(t *testing.T) {
	tests := []struct {
		name    string
		bytes   int64
		wantErr bool
	}{
		{name: "default", bytes: catalogd.DefaultAnswerCacheBytes},
		{name: "zero keeps none", bytes: 0},
		{name: "negative", bytes: -1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := catalogd.DefaultLimits()
			l.AnswerCacheBytes = tt.bytes
			err := l.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--answer-cache-bytes") {
				t.Errorf("error %q does not name --answer-cache-bytes", err)
			}
		})
	}
}

// TestAnswerCacheWarmsAfterFirstCatalog: a server started before any
// catalog is loaded keeps the heads ready once one is swapped in.
func TestAnswerCacheWarmsAfterFirstCatalog(t *testing.T) {
	h := catalogd.NewHolder(nil)
	m := catalogd.NewMetrics()
	_ = startServer(t, h, catalogd.WithMetrics(m))
	c := sampleCatalog(t)
	h.Swap(c)
	want := float64(c.Counts().Channels)
	_, answers := waitAnswers(t, m, want)
	if answers != want {
		t.Errorf("%v answers kept after the first catalog was swapped in, want %v", answers, want)
	}
}
