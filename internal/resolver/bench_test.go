package resolver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/corpus"
)

// syntheticRequest is 300 packages × 20 versions, 10% of bundles with
// dependencies (on packages, sometimes on APIs, a few impossible), and 1,000
// subscriptions over four namespaces, a fifth of them upgrading an
// installed version.
func syntheticRequest(tb testing.TB) Request {
	const pkgs, versions, subs = 300, 20, 1000
	rng := rand.New(rand.NewPCG(1, 2))
	name := func(i int) string { return fmt.Sprintf("pkg%03d", i) }
	var docs []string
	for p := range pkgs {
		pn := name(p)
		docs = append(docs, pkgDoc(pn, "stable"))
		var stable, fast []string
		for v := range versions {
			ver := fmt.Sprintf("1.%d.0", v)
			props := []string{providesAPI(pn+".test.io", "v1", "Kind"+pn)}
			if rng.IntN(10) == 0 {
				q := name((p + 1 + rng.IntN(pkgs-1)) % pkgs)
				switch k := rng.IntN(20); {
				case k == 0:
					props = append(props, needsPkg("absent", ">=1.0.0"))
				case k < 4:
					props = append(props, needsAPI(q+".test.io", "v1", "Kind"+q))
				default:
					props = append(props, needsPkg(q, fmt.Sprintf(">=1.%d.0", rng.IntN(versions))))
				}
			}
			docs = append(docs, bundleDoc(pn, ver, props...))
			switch {
			case v == 0:
				stable = append(stable, ent(pn, ver))
			case v%5 == 0:
				stable = append(stable, ent(pn, ver, "replaces", fmt.Sprintf("1.%d.0", v-1), "skipRange", fmt.Sprintf(">=1.0.0 <%s", ver)))
			default:
				stable = append(stable, ent(pn, ver, "replaces", fmt.Sprintf("1.%d.0", v-1)))
			}
			if v >= versions/2 {
				if v == versions/2 {
					fast = append(fast, ent(pn, ver))
				} else {
					fast = append(fast, ent(pn, ver, "replaces", fmt.Sprintf("1.%d.0", v-1)))
				}
			}
		}
		docs = append(docs, chDoc(pn, "stable", stable...), chDoc(pn, "fast", fast...))
	}
	req := Request{Catalogs: []Snapshot{snapshot(tb, "community", 0, docs...)}}
	for i := range subs {
		ns := fmt.Sprintf("ns%d", i/pkgs)
		pn := name(i % pkgs)
		s := Subscription{Namespace: ns, Name: pn, Catalog: "community", Package: pn}
		switch i % 10 {
		case 0, 1:
			req.Installed = append(req.Installed, installed(ns, pn, fmt.Sprintf("1.%d.0", rng.IntN(versions)), "community"))
		case 2:
			s.Range = fmt.Sprintf("<1.%d.0", 1+rng.IntN(versions-1))
		case 3:
			s.Channel = "fast"
		case 4:
			s.Approval = ApprovalManual
		}
		req.Subscriptions = append(req.Subscriptions, s)
	}
	return req
}

func BenchmarkResolve(b *testing.B) {
	req := syntheticRequest(b)
	ctx := context.Background()
	var res Result
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var err error
		if res, err = Resolve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	counts := map[Status]int{}
	deps := 0
	for _, d := range res.Decisions {
		counts[d.Status]++
		deps += len(d.Dependencies)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(req.Subscriptions)), "ns/subscription")
	b.ReportMetric(float64(counts[StatusUnsatisfiable]), "unsatisfiable")
	b.ReportMetric(float64(deps), "dependencies")
}

// communityCatalog loads the real community catalog of the shared corpus
// (../shared/corpus next to the module), unpacked once into the cache
// (internal/corpus). It skips when the corpus is absent.
func communityCatalog(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir := corpus.ForTest(tb, filepath.Join(filepath.Dir(here), "..", ".."), corpus.Community)
	c, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(dir)})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkResolveCommunity resolves one subscription to the default
// channel of every package of the real community catalog, each in its own
// namespace, in one request.
func BenchmarkResolveCommunity(b *testing.B) {
	c := communityCatalog(b)
	req := Request{Catalogs: []Snapshot{{Name: "community", Catalog: c}}}
	for _, p := range c.Packages {
		req.Subscriptions = append(req.Subscriptions, Subscription{Namespace: "ns-" + p.Name, Name: p.Name, Catalog: "community", Package: p.Name})
	}
	ctx := context.Background()
	var res Result
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var err error
		if res, err = Resolve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	unsat := 0
	for _, d := range res.Decisions {
		if d.Status == StatusUnsatisfiable {
			unsat++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(req.Subscriptions)), "ns/subscription")
	b.ReportMetric(float64(unsat), "unsatisfiable")
}
