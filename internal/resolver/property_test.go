package resolver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
)

// randomRequest builds a small random world: packages with a few versions,
// dependencies on packages and APIs, shared APIs, installed operators and
// subscriptions in two namespaces.
func randomRequest(tb testing.TB, seed uint64, single bool) Request {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pkgs := []string{"a", "b", "c", "d", "e"}[:3+rng.IntN(3)]
	apis := []string{"X", "Y"}
	var docs []string
	versions := map[string][]string{}
	for _, p := range pkgs {
		n := 1 + rng.IntN(4)
		var vs []string
		for i := range n {
			vs = append(vs, fmt.Sprintf("1.%d.0", i))
		}
		versions[p] = vs
	}
	for _, p := range pkgs {
		vs := versions[p]
		docs = append(docs, pkgDoc(p, "stable"))
		var entries []string
		for i, v := range vs {
			var props []string
			if rng.IntN(3) == 0 {
				props = append(props, providesAPI("test.io", "v1", apis[rng.IntN(len(apis))]))
			}
			if rng.IntN(3) == 0 {
				q := pkgs[rng.IntN(len(pkgs))]
				if q != p {
					k := rng.IntN(4)
					if rng.IntN(2) == 0 {
						props = append(props, needsPkg(q, fmt.Sprintf(">=1.%d.0", k)))
					} else {
						props = append(props, needsPkg(q, fmt.Sprintf("<1.%d.0", k)))
					}
				} else {
					props = append(props, needsPkg("missing", ">=1.0.0"))
				}
			}
			if rng.IntN(5) == 0 {
				props = append(props, needsAPI("test.io", "v1", apis[rng.IntN(len(apis))]))
			}
			docs = append(docs, bundleDoc(p, v, props...))
			switch {
			case i == 0:
				entries = append(entries, ent(p, v))
			case i >= 2 && rng.IntN(2) == 0:
				entries = append(entries, ent(p, v, "replaces", vs[i-1], "skipRange", fmt.Sprintf(">=1.0.0 <%s", v)))
			default:
				entries = append(entries, ent(p, v, "replaces", vs[i-1]))
			}
		}
		docs = append(docs, chDoc(p, "stable", entries...))
	}
	req := Request{Catalogs: []Snapshot{snapshot(tb, "community", 0, docs...)}}
	nss := []string{"a", "b"}
	if single {
		p := pkgs[rng.IntN(len(pkgs))]
		s := sub("a", "s", p)
		if rng.IntN(3) == 0 {
			s.Range = fmt.Sprintf("<1.%d.0", 1+rng.IntN(3))
		}
		req.Subscriptions = []Subscription{s}
		return req
	}
	providers := map[string]string{}
	for _, p := range pkgs {
		if rng.IntN(3) != 0 {
			continue
		}
		ns := nss[rng.IntN(2)]
		vs := versions[p]
		v := vs[rng.IntN(len(vs))]
		b := req.Catalogs[0].Catalog.Bundle(p, bname(p, v))
		clash := false
		for _, g := range b.ProvidedAPIs {
			if q, ok := providers[g.Kind]; ok && q != p {
				clash = true
			}
		}
		if clash {
			continue
		}
		for _, g := range b.ProvidedAPIs {
			providers[g.Kind] = p
		}
		req.Installed = append(req.Installed, installed(ns, p, v, "community"))
	}
	for i := range 1 + rng.IntN(4) {
		s := sub(nss[rng.IntN(2)], fmt.Sprintf("s%d", i), pkgs[rng.IntN(len(pkgs))])
		if rng.IntN(3) == 0 {
			s.Range = fmt.Sprintf(">=1.%d.0", rng.IntN(3))
		}
		req.Subscriptions = append(req.Subscriptions, s)
	}
	return req
}

// checkPlan verifies that the plan satisfies every constraint.
func checkPlan(t *testing.T, req Request, res Result) {
	t.Helper()
	cat := req.Catalogs[0].Catalog
	type placed struct {
		b         *catalog.Bundle
		installed bool
	}
	final := map[scopePkg]placed{}
	put := func(ns string, b *catalog.Bundle, inst bool, why string) {
		sp := scopePkg{ns, b.Package}
		if cur, ok := final[sp]; ok && cur.b != b {
			t.Errorf("%s: two versions of %s in %q: %s and %s", why, b.Package, ns, cur.b.Name, b.Name)
		}
		final[sp] = placed{b, inst && final[sp].installed || inst && final[sp].b == nil}
	}
	subPkg := map[scopePkg]bool{}
	for _, s := range req.Subscriptions {
		subPkg[scopePkg{s.Namespace, s.Package}] = true
	}
	inst := map[scopePkg]Installed{}
	for _, in := range req.Installed {
		inst[scopePkg{in.Namespace, in.Package}] = in
	}
	for _, d := range res.Decisions {
		s := req.Subscriptions[slices.IndexFunc(req.Subscriptions, func(s Subscription) bool { return s.Key() == d.Subscription })]
		if d.Status == StatusUnsatisfiable {
			if d.Explanation == nil || d.Explanation.Message == "" {
				t.Errorf("%s: unsatisfiable without explanation", d.Subscription)
			}
			continue
		}
		b := cat.Bundle(d.Target.Package, d.Target.Bundle)
		in, isInst := inst[scopePkg{s.Namespace, s.Package}]
		ch := cat.Package(s.Package).Channel(d.Target.Channel)
		switch {
		case isInst && b.Version.EQ(in.Version):
		case isInst:
			if b.Version.LT(in.Version) {
				t.Errorf("%s: downgrade to %s", d.Subscription, b.Version)
			}
			if _, ok := ch.Entry(b.Name).UpgradesFrom(bname(s.Package, in.Version.String()), &in.Version); !ok {
				t.Errorf("%s: no edge from %s to %s", d.Subscription, in.Version, b.Version)
			}
		default:
			if ch.Entry(b.Name) == nil {
				t.Errorf("%s: %s not in channel", d.Subscription, b.Name)
			}
		}
		if s.Range != "" && (!isInst || !b.Version.EQ(in.Version)) {
			if r, _ := catalog.ParseRange(s.Range); !r(b.Version) {
				t.Errorf("%s: %s outside %s", d.Subscription, b.Version, s.Range)
			}
		}
		put(s.Namespace, b, isInst && b.Version.EQ(in.Version), d.Subscription)
		for _, dep := range d.Dependencies {
			put(dep.Namespace, cat.Bundle(dep.Package, dep.Bundle), false, d.Subscription+" dependency")
		}
	}
	for sp, in := range inst {
		if !subPkg[sp] {
			put(sp.scope, cat.Bundle(in.Package, bname(in.Package, in.Version.String())), true, "installed")
		}
	}
	// Every new bundle's requirements are met; one package per API.
	providers := map[catalog.GVK]map[string]bool{}
	for _, p := range final {
		for _, g := range p.b.ProvidedAPIs {
			if providers[g] == nil {
				providers[g] = map[string]bool{}
			}
			providers[g][p.b.Package] = true
		}
	}
	for g, ps := range providers {
		if len(ps) > 1 {
			t.Errorf("API %s provided by %d packages: %v", g, len(ps), ps)
		}
	}
	for sp, p := range final {
		if p.installed {
			continue
		}
		for _, q := range p.b.RequiredPackages {
			got, ok := final[scopePkg{sp.scope, q.PackageName}]
			r, _ := catalog.ParseRange(q.VersionRange)
			if !ok || !r(got.b.Version) {
				t.Errorf("%s in %q requires %s %s: not met", p.b.Name, sp.scope, q.PackageName, q.VersionRange)
			}
		}
		for _, g := range p.b.RequiredAPIs {
			if len(providers[g]) == 0 {
				t.Errorf("%s in %q requires API %s: not met", p.b.Name, sp.scope, g)
			}
		}
	}
}

// bruteForce reports whether one subscription (no installed operators) has
// any solution, by trying every choice of at most one bundle per package.
func bruteForce(req Request) bool {
	cat := req.Catalogs[0].Catalog
	s := req.Subscriptions[0]
	rng := func(string) bool { return true }
	if s.Range != "" {
		r, _ := catalog.ParseRange(s.Range)
		rng = func(v string) bool { return r(mustV(v)) }
	}
	pkgs := cat.Packages
	choice := make([]*catalog.Bundle, len(pkgs))
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(pkgs) {
			return valid(cat, choice, s, rng)
		}
		choice[i] = nil
		if try(i + 1) {
			return true
		}
		for _, b := range pkgs[i].Bundles {
			choice[i] = b
			if try(i + 1) {
				return true
			}
		}
		return false
	}
	return try(0)
}

func valid(cat *catalog.Catalog, choice []*catalog.Bundle, s Subscription, inRange func(string) bool) bool {
	by := map[string]*catalog.Bundle{}
	providers := map[catalog.GVK]string{}
	for _, b := range choice {
		if b == nil {
			continue
		}
		by[b.Package] = b
		for _, g := range b.ProvidedAPIs {
			if p, ok := providers[g]; ok && p != b.Package {
				return false
			}
			providers[g] = b.Package
		}
	}
	t := by[s.Package]
	if t == nil || !inRange(t.Version.String()) || cat.Package(s.Package).Channel("stable").Entry(t.Name) == nil {
		return false
	}
	for _, b := range by {
		for _, q := range b.RequiredPackages {
			r, _ := catalog.ParseRange(q.VersionRange)
			if d := by[q.PackageName]; d == nil || !r(d.Version) {
				return false
			}
		}
		for _, g := range b.RequiredAPIs {
			if _, ok := providers[g]; !ok {
				return false
			}
		}
	}
	return true
}

func propertyCheck(t *testing.T, seed uint64) {
	for _, single := range []bool{false, true} {
		req := randomRequest(t, seed, single)
		res, err := Resolve(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, req, res)
		again, _ := Resolve(context.Background(), req)
		if !reflect.DeepEqual(res, again) {
			t.Errorf("seed %d: not deterministic", seed)
		}
		if single {
			unsat := res.Decisions[0].Status == StatusUnsatisfiable
			if exists := bruteForce(req); exists == unsat {
				t.Errorf("seed %d: resolver says unsatisfiable=%v, exhaustive search finds a solution=%v: %s", seed, unsat, exists, describe(res.Decisions[0]))
			}
		}
	}
}

func TestResolveProperties(t *testing.T) {
	for seed := range uint64(400) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { propertyCheck(t, seed) })
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []uint64{1, 7, 42, 1000} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { propertyCheck(t, seed) })
}
