package resolver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
)

// bundlePred is a constraint as the test understands it, to check the
// resolver's answers independently of its encoding.
type bundlePred func(b *catalog.Bundle, labels []string) bool

// constraintWorld is a small random catalog whose bundles declare
// constraints of every kind, with one subscription.
type constraintWorld struct {
	req    Request
	preds  map[string][]bundlePred // bundle name -> its constraints
	labels map[string][]string     // bundle name -> its olm.label values
}

func randomConstraintWorld(tb testing.TB, seed uint64) constraintWorld {
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	pkgs := []string{"a", "b", "c", "d"}[:2+rng.IntN(3)]
	w := constraintWorld{preds: map[string][]bundlePred{}, labels: map[string][]string{}}
	atLeast := func(min string) func(v string) bool {
		m := mustV(min)
		return func(v string) bool { return mustV(v).GTE(m) }
	}
	var docs []string
	for _, p := range pkgs {
		n := 1 + rng.IntN(3)
		docs = append(docs, pkgDoc(p, "stable"))
		var entries []string
		for i := range n {
			v := fmt.Sprintf("1.%d.0", i)
			name := bname(p, v)
			var props []string
			if rng.IntN(3) == 0 {
				l := []string{"x", "y"}[rng.IntN(2)]
				props = append(props, labelProp(l))
				w.labels[name] = append(w.labels[name], l)
			}
			if rng.IntN(2) == 0 {
				q := pkgs[rng.IntN(len(pkgs))]
				k := fmt.Sprintf("1.%d.0", rng.IntN(3))
				m := fmt.Sprintf("1.%d.0", 1+rng.IntN(3))
				var pred bundlePred
				switch rng.IntN(5) {
				case 0: // any of two packages
					q2 := pkgs[rng.IntN(len(pkgs))]
					props = append(props, constraintProp(fmt.Sprintf(`{"failureMessage":"needs %s or %s","any":{"constraints":[{"package":{"packageName":%q,"versionRange":">=%s"}},{"package":{"packageName":%q,"versionRange":">=%s"}}]}}`, q, q2, q, k, q2, m)))
					pred = func(b *catalog.Bundle, _ []string) bool {
						return b.Package == q && atLeast(k)(b.Version.String()) || b.Package == q2 && atLeast(m)(b.Version.String())
					}
				case 1: // a version window: all of package >= k, not >= m
					props = append(props, constraintProp(fmt.Sprintf(`{"all":{"constraints":[{"package":{"packageName":%q,"versionRange":">=%s"}},{"not":{"constraints":[{"package":{"packageName":%q,"versionRange":">=%s"}}]}}]}}`, q, k, q, m)))
					pred = func(b *catalog.Bundle, _ []string) bool {
						return b.Package == q && atLeast(k)(b.Version.String()) && !atLeast(m)(b.Version.String())
					}
				case 2: // CEL over the package property
					props = append(props, celProp(pkgAtLeast(q, k), ""))
					pred = func(b *catalog.Bundle, _ []string) bool { return b.Package == q && atLeast(k)(b.Version.String()) }
				case 3: // CEL over labels
					l := []string{"x", "y"}[rng.IntN(2)]
					props = append(props, celProp(fmt.Sprintf(`properties.exists(p, p.type == "olm.label" && p.value.label == %q)`, l), ""))
					pred = func(_ *catalog.Bundle, ls []string) bool { return slices.Contains(ls, l) }
				default: // olm.label.required
					l := []string{"x", "y"}[rng.IntN(2)]
					props = append(props, needsLabel(l))
					pred = func(_ *catalog.Bundle, ls []string) bool { return slices.Contains(ls, l) }
				}
				w.preds[name] = append(w.preds[name], pred)
			}
			docs = append(docs, bundleDoc(p, v, props...))
			if i == 0 {
				entries = append(entries, ent(p, v))
			} else {
				entries = append(entries, ent(p, v, "replaces", fmt.Sprintf("1.%d.0", i-1)))
			}
		}
		docs = append(docs, chDoc(p, "stable", entries...))
	}
	w.req = Request{
		Catalogs:      []Snapshot{snapshot(tb, "community", 0, docs...)},
		Subscriptions: []Subscription{sub("ns", "s", pkgs[rng.IntN(len(pkgs))])},
	}
	return w
}

// valid reports whether a set of bundles, at most one per package, meets
// every constraint of every bundle in it.
func (w constraintWorld) valid(chosen []*catalog.Bundle) bool {
	for _, b := range chosen {
		for _, pred := range w.preds[b.Name] {
			if !slices.ContainsFunc(chosen, func(c *catalog.Bundle) bool { return pred(c, w.labels[c.Name]) }) {
				return false
			}
		}
	}
	return true
}

// exists searches every choice of at most one bundle per package that
// includes a version of the subscribed package.
func (w constraintWorld) exists() bool {
	cat := w.req.Catalogs[0].Catalog
	want := w.req.Subscriptions[0].Package
	var chosen []*catalog.Bundle
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(cat.Packages) {
			return slices.ContainsFunc(chosen, func(b *catalog.Bundle) bool { return b.Package == want }) && w.valid(chosen)
		}
		if cat.Packages[i].Name != want && try(i+1) {
			return true
		}
		for _, b := range cat.Packages[i].Bundles {
			chosen = append(chosen, b)
			ok := try(i + 1)
			chosen = chosen[:len(chosen)-1]
			if ok {
				return true
			}
		}
		return false
	}
	return try(0)
}

// TestResolveConstraintProperties: on random worlds with constraints of
// every kind, the resolver finds a plan exactly when one exists, and its
// plan meets every constraint.
func TestResolveConstraintProperties(t *testing.T) {
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { constraintPropertyCheck(t, seed) })
	}
}

func FuzzResolveConstraints(f *testing.F) {
	for _, s := range []uint64{3, 11, 97} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { constraintPropertyCheck(t, seed) })
}

func constraintPropertyCheck(t *testing.T, seed uint64) {
	w := randomConstraintWorld(t, seed)
	res, err := Resolve(context.Background(), w.req)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Decisions[0]
	exists := w.exists()
	if (d.Status != StatusUnsatisfiable) != exists {
		t.Fatalf("seed %d: resolver: %s, exhaustive search finds a plan: %v\n%s", seed, d.Status, exists, describe(d))
	}
	if d.Status == StatusUnsatisfiable {
		if d.Explanation == nil || d.Explanation.Message == "" {
			t.Fatalf("seed %d: unsatisfiable without explanation", seed)
		}
		return
	}
	cat := w.req.Catalogs[0].Catalog
	plan := []*catalog.Bundle{cat.Bundle(d.Target.Package, d.Target.Bundle)}
	for _, dep := range d.Dependencies {
		plan = append(plan, cat.Bundle(dep.Package, dep.Bundle))
	}
	if !w.valid(plan) {
		t.Errorf("seed %d: the plan does not meet every constraint:\n%s", seed, describe(d))
	}
}
