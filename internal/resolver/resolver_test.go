package resolver

import (
	"context"
	"fmt"
	"os"
	"testing"
)

func sub(ns, name, pkg string) Subscription {
	return Subscription{Namespace: ns, Name: name, Catalog: "community", Package: pkg}
}

func with(s Subscription, f func(*Subscription)) Subscription {
	f(&s)
	return s
}

type scenario struct {
	name      string
	catalogs  func(testing.TB) []Snapshot
	installed []Installed
	subs      []Subscription
}

func community(docs ...any) func(testing.TB) []Snapshot {
	return func(tb testing.TB) []Snapshot { return []Snapshot{snapshot(tb, "community", 0, flat(docs...)...)} }
}

func TestResolveScenarios(t *testing.T) {
	for _, tc := range scenarios() {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Catalogs: tc.catalogs(t), Installed: tc.installed, Subscriptions: tc.subs}
			res, err := Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Decisions) != len(tc.subs) {
				t.Fatalf("got %d decisions for %d subscriptions", len(res.Decisions), len(tc.subs))
			}
			for _, d := range res.Decisions {
				got := describe(d)
				if os.Getenv("RESOLVER_PRINT") != "" {
					t.Logf("%q:\n%s", d.Subscription, got)
				}
				if os.Getenv("RESOLVER_GOLDEN") != "" {
					fmt.Printf("GOLDEN\t%s\t%s\t%q\n", tc.name, d.Subscription, got)
				}
				if want, ok := wantDecisions[tc.name][d.Subscription]; !ok || got != want {
					t.Errorf("%s:\ngot:\n%s\nwant:\n%s", d.Subscription, got, want)
				}
			}
			// The same input always gives the same answer.
			again, err := Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for i := range res.Decisions {
				if a, b := describe(res.Decisions[i]), describe(again.Decisions[i]); a != b {
					t.Errorf("not deterministic:\n%s\nvs\n%s", a, b)
				}
			}
		})
	}
}

func scenarios() []scenario {
	etcd := func(extra ...string) []string {
		return flat(pkgDoc("etcd", "alpha"),
			chDoc("etcd", "alpha", ent("etcd", "0.9.2"), ent("etcd", "0.9.4", "replaces", "0.9.2")),
			bundleDoc("etcd", "0.9.2"),
			bundleDoc("etcd", "0.9.4", extra...))
	}
	return []scenario{
		{
			name:     "fresh install takes the head of the default channel",
			catalogs: community(simplePkg("etcd", "alpha", "0.9.0", "0.9.2", "0.9.4")),
			subs:     []Subscription{sub("ns", "etcd", "etcd")},
		},
		{
			name:     "range limits a fresh install",
			catalogs: community(simplePkg("etcd", "alpha", "0.9.0", "0.9.2", "1.0.0")),
			subs: []Subscription{
				with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.Range = "<1.0.0" }),
				with(sub("ns2", "etcd", "etcd"), func(s *Subscription) { s.Range = ">=2.0.0" }),
			},
		},
		{
			name:     "pinned starting version",
			catalogs: community(simplePkg("etcd", "alpha", "0.9.0", "0.9.2", "0.9.4")),
			subs: []Subscription{
				with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.StartingVersion = "0.9.2" }),
				with(sub("ns2", "etcd", "etcd"), func(s *Subscription) { s.StartingVersion = "0.9.3" }),
			},
		},
		{
			name:      "upgrade follows replaces one hop and never downgrades",
			catalogs:  community(simplePkg("etcd", "alpha", "0.9.0", "0.9.2", "0.9.4")),
			installed: []Installed{installed("ns", "etcd", "0.9.2", "community")},
			subs:      []Subscription{sub("ns", "etcd", "etcd")},
		},
		{
			name: "skipRange jumps to the head",
			catalogs: community(pkgDoc("etcd", "stable"),
				chDoc("etcd", "stable", ent("etcd", "1.0.0"), ent("etcd", "1.1.0", "replaces", "1.0.0"),
					ent("etcd", "1.3.0", "replaces", "1.1.0", "skipRange", ">=1.0.0 <1.3.0")),
				bundleDoc("etcd", "1.0.0"), bundleDoc("etcd", "1.1.0"), bundleDoc("etcd", "1.3.0")),
			installed: []Installed{installed("ns", "etcd", "1.0.0", "community")},
			subs:      []Subscription{sub("ns", "etcd", "etcd")},
		},
		{
			name: "skips prune a bad release",
			catalogs: community(pkgDoc("etcd", "stable"),
				chDoc("etcd", "stable", ent("etcd", "1.0.0"), ent("etcd", "1.1.0", "replaces", "1.0.0"),
					ent("etcd", "1.1.1", "replaces", "1.1.0"), ent("etcd", "1.2.0", "replaces", "1.1.0", "skips", "1.1.1")),
				bundleDoc("etcd", "1.0.0"), bundleDoc("etcd", "1.1.0"), bundleDoc("etcd", "1.1.1"), bundleDoc("etcd", "1.2.0")),
			installed: []Installed{installed("ns", "etcd", "1.1.1", "community"), installed("ns2", "etcd", "1.0.0", "community")},
			subs:      []Subscription{sub("ns", "etcd", "etcd"), sub("ns2", "etcd", "etcd")},
		},
		{
			name:      "nothing newer",
			catalogs:  community(simplePkg("etcd", "alpha", "0.9.0", "0.9.2")),
			installed: []Installed{installed("ns", "etcd", "0.9.2", "community")},
			subs:      []Subscription{sub("ns", "etcd", "etcd")},
		},
		{
			name: "multiple channels and the default channel",
			catalogs: community(pkgDoc("etcd", "stable"),
				chDoc("etcd", "stable", ent("etcd", "1.0.0"), ent("etcd", "1.1.0", "replaces", "1.0.0")),
				chDoc("etcd", "fast", ent("etcd", "1.1.0"), ent("etcd", "1.2.0", "replaces", "1.1.0")),
				bundleDoc("etcd", "1.0.0"), bundleDoc("etcd", "1.1.0"), bundleDoc("etcd", "1.2.0")),
			subs: []Subscription{
				sub("ns", "etcd", "etcd"),
				with(sub("ns2", "etcd", "etcd"), func(s *Subscription) { s.Channel = "fast" }),
				with(sub("ns3", "etcd", "etcd"), func(s *Subscription) { s.Channel = "beta" }),
			},
		},
		{
			name: "installed version missing from the catalog",
			catalogs: community(pkgDoc("etcd", "alpha"),
				chDoc("etcd", "alpha", ent("etcd", "0.9.2", "replaces", "0.9.1"), ent("etcd", "0.9.4", "replaces", "0.9.2")),
				bundleDoc("etcd", "0.9.2"), bundleDoc("etcd", "0.9.4")),
			installed: []Installed{
				{Namespace: "ns", Package: "etcd", Version: mustV("0.9.1"), Bundle: "etcd.v0.9.1", Catalog: "community"},
				{Namespace: "ns2", Package: "etcd", Version: mustV("0.8.0"), Bundle: "etcd.v0.8.0", Catalog: "community"},
			},
			subs: []Subscription{sub("ns", "etcd", "etcd"), sub("ns2", "etcd", "etcd")},
		},
		{
			name: "deprecated bundles",
			catalogs: community(simplePkg("etcd", "alpha", "0.9.0", "0.9.2", "0.9.4"),
				deprecateBundle("etcd", "0.9.4", "data loss on restart"),
				simplePkg("lonely", "alpha", "1.0.0"),
				deprecateBundle("lonely", "1.0.0", "use etcd")),
			subs: []Subscription{sub("ns", "etcd", "etcd"), sub("ns", "lonely", "lonely")},
		},
		{
			name: "missing dependency",
			catalogs: community(etcd(needsPkg("prometheus", ">=2.0.0")),
				simplePkg("prometheus", "beta", "1.2.0", "1.3.0")),
			subs: []Subscription{with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.StartingVersion = "0.9.4" })},
		},
		{
			name: "upgrade skips a candidate whose dependency is missing",
			catalogs: community(etcd(needsPkg("prometheus", ">=2.0.0")),
				simplePkg("prometheus", "beta", "1.2.0", "1.3.0")),
			installed: []Installed{installed("ns", "etcd", "0.9.2", "community")},
			subs:      []Subscription{sub("ns", "etcd", "etcd")},
		},
		{
			name: "diamond dependencies share one version",
			catalogs: community(
				pkgDoc("app", "stable"),
				chDoc("app", "stable", ent("app", "1.0.0")),
				bundleDoc("app", "1.0.0", needsPkg("left", ">=1.0.0"), needsPkg("right", ">=1.0.0")),
				pkgDoc("left", "stable"), chDoc("left", "stable", ent("left", "1.0.0")),
				bundleDoc("left", "1.0.0", needsPkg("base", ">=1.0.0")),
				pkgDoc("right", "stable"), chDoc("right", "stable", ent("right", "1.0.0")),
				bundleDoc("right", "1.0.0", needsPkg("base", ">=1.1.0 <2.0.0")),
				simplePkg("base", "stable", "1.0.0", "1.1.0", "1.2.0", "2.0.0")),
			subs: []Subscription{sub("ns", "app", "app")},
		},
		{
			name: "conflicting ranges in a diamond",
			catalogs: community(
				pkgDoc("app", "stable"),
				chDoc("app", "stable", ent("app", "1.0.0")),
				bundleDoc("app", "1.0.0", needsPkg("left", ">=1.0.0"), needsPkg("right", ">=1.0.0")),
				pkgDoc("left", "stable"), chDoc("left", "stable", ent("left", "1.0.0")),
				bundleDoc("left", "1.0.0", needsPkg("base", "<1.1.0")),
				pkgDoc("right", "stable"), chDoc("right", "stable", ent("right", "1.0.0")),
				bundleDoc("right", "1.0.0", needsPkg("base", ">=1.1.0")),
				simplePkg("base", "stable", "1.0.0", "1.1.0")),
			subs: []Subscription{sub("ns", "app", "app")},
		},
		{
			name: "the complete search backs off a newer dependency",
			catalogs: community(
				pkgDoc("app", "stable"), chDoc("app", "stable", ent("app", "1.0.0")),
				bundleDoc("app", "1.0.0", needsPkg("left", ">=1.0.0"), needsPkg("right", ">=1.0.0")),
				pkgDoc("left", "stable"), chDoc("left", "stable", ent("left", "1.0.0"), ent("left", "2.0.0", "replaces", "1.0.0")),
				bundleDoc("left", "1.0.0", needsPkg("base", ">=1.0.0")),
				bundleDoc("left", "2.0.0", needsPkg("base", "<1.1.0")),
				pkgDoc("right", "stable"), chDoc("right", "stable", ent("right", "1.0.0")),
				bundleDoc("right", "1.0.0", needsPkg("base", ">=1.1.0")),
				simplePkg("base", "stable", "1.0.0", "1.1.0")),
			subs: []Subscription{sub("ns", "app", "app"), with(sub("ns", "left", "left"), func(s *Subscription) { s.Range = "" })},
		},
		{
			name: "dependency cycle",
			catalogs: community(
				pkgDoc("a", "stable"), chDoc("a", "stable", ent("a", "1.0.0")), bundleDoc("a", "1.0.0", needsPkg("b", ">=1.0.0")),
				pkgDoc("b", "stable"), chDoc("b", "stable", ent("b", "1.0.0")), bundleDoc("b", "1.0.0", needsPkg("a", ">=1.0.0"))),
			subs: []Subscription{sub("ns", "a", "a")},
		},
		{
			name: "an API provided by two packages",
			catalogs: community(
				pkgDoc("app", "stable"), chDoc("app", "stable", ent("app", "1.0.0")),
				bundleDoc("app", "1.0.0", needsAPI("monitoring.io", "v1", "Monitor")),
				pkgDoc("zmon", "stable"), chDoc("zmon", "stable", ent("zmon", "1.0.0")),
				bundleDoc("zmon", "1.0.0", providesAPI("monitoring.io", "v1", "Monitor")),
				pkgDoc("amon", "stable"), chDoc("amon", "stable", ent("amon", "1.0.0")),
				bundleDoc("amon", "1.0.0", providesAPI("monitoring.io", "v1", "Monitor"))),
			installed: []Installed{installed("other", "zmon", "1.0.0", "community")},
			subs:      []Subscription{sub("ns", "app", "app"), sub("ns2", "amon", "amon")},
		},
		{
			name: "two catalogs with priority",
			catalogs: func(tb testing.TB) []Snapshot {
				return []Snapshot{
					snapshot(tb, "community", 0, flat(
						pkgDoc("app", "stable"), chDoc("app", "stable", ent("app", "1.0.0")),
						bundleDoc("app", "1.0.0", needsPkg("base", ">=1.0.0")),
						simplePkg("base", "stable", "1.0.0", "1.5.0"))...),
					snapshot(tb, "certified", 10, flat(
						simplePkg("base", "stable", "1.0.0", "1.2.0"))...),
					snapshot(tb, "partner", 5, flat(
						pkgDoc("tool", "stable"), chDoc("tool", "stable", ent("tool", "1.0.0")),
						bundleDoc("tool", "1.0.0", needsPkg("base", ">=1.0.0")))...),
				}
			},
			subs: []Subscription{
				sub("ns", "app", "app"),
				with(sub("ns2", "tool", "tool"), func(s *Subscription) { s.Catalog = "partner" }),
				with(sub("ns3", "base", "base"), func(s *Subscription) { s.Catalog = "" }),
			},
		},
		{
			name: "an unsatisfiable subscription does not block its neighbours",
			catalogs: community(etcd(needsPkg("prometheus", ">=2.0.0")),
				simplePkg("prometheus", "beta", "1.2.0", "1.3.0"),
				simplePkg("redis", "stable", "6.0.0")),
			subs: []Subscription{
				with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.Range = ">=0.9.4" }),
				sub("ns", "redis", "redis"),
			},
		},
		{
			name: "a dependency limited by another subscription",
			catalogs: community(etcd(needsPkg("prometheus", ">=2.0.0")),
				simplePkg("prometheus", "beta", "1.2.0", "1.3.0", "2.0.0"),
				simplePkg("redis", "stable", "6.0.0")),
			subs: []Subscription{
				with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.Range = ">=0.9.4" }),
				with(sub("ns", "prometheus", "prometheus"), func(s *Subscription) { s.Range = "<2.0.0" }),
				sub("ns", "redis", "redis"),
			},
		},
		{
			name: "linked subscriptions fail together and name the link",
			catalogs: community(etcd(needsPkg("prometheus", ">=2.0.0")),
				pkgDoc("thanos", "stable"), chDoc("thanos", "stable", ent("thanos", "1.0.0")),
				bundleDoc("thanos", "1.0.0", needsPkg("prometheus", "<2.0.0")),
				simplePkg("prometheus", "beta", "1.2.0", "1.3.0", "2.0.0"),
				simplePkg("redis", "stable", "6.0.0")),
			subs: []Subscription{
				with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.Range = ">=0.9.4" }),
				sub("ns", "thanos", "thanos"),
				sub("ns", "redis", "redis"),
				sub("ns2", "thanos", "thanos"),
			},
		},
		{
			name: "dependency already installed is kept",
			catalogs: community(etcd(needsPkg("prometheus", ">=1.0.0")),
				simplePkg("prometheus", "beta", "1.2.0", "1.3.0")),
			installed: []Installed{installed("ns", "prometheus", "1.2.0", "community")},
			subs:      []Subscription{with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.Range = ">=0.9.4" })},
		},
		{
			name: "installed dependency outside the range",
			catalogs: community(etcd(needsPkg("prometheus", ">=1.3.0")),
				simplePkg("prometheus", "beta", "1.2.0", "1.3.0")),
			installed: []Installed{installed("ns", "prometheus", "1.2.0", "community")},
			subs:      []Subscription{with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.Range = ">=0.9.4" })},
		},
		{
			name:      "manual approval",
			catalogs:  community(simplePkg("etcd", "alpha", "0.9.0", "0.9.2", "0.9.4")),
			installed: []Installed{installed("ns", "etcd", "0.9.2", "community"), installed("ns2", "etcd", "0.9.2", "community")},
			subs: []Subscription{
				with(sub("ns", "etcd", "etcd"), func(s *Subscription) { s.Approval = ApprovalManual }),
				with(sub("ns2", "etcd", "etcd"), func(s *Subscription) { s.Approval = ApprovalManual; s.ApprovedVersion = "0.9.4" }),
			},
		},
		{
			name:     "unknown catalog and package",
			catalogs: community(simplePkg("etcd", "alpha", "0.9.0")),
			subs: []Subscription{
				with(sub("ns", "a", "etcd"), func(s *Subscription) { s.Catalog = "nowhere" }),
				sub("ns", "b", "nope"),
				with(sub("ns", "c", "etcd"), func(s *Subscription) { s.Range = "not a range" }),
			},
		},
	}
}
