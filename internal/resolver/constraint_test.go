package resolver

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func constraintProp(value string) string {
	return fmt.Sprintf(`{"type":"olm.constraint","value":%s}`, value)
}

func celProp(rule, failure string) string {
	return constraintProp(fmt.Sprintf(`{"failureMessage":%q,"cel":{"rule":%q}}`, failure, rule))
}

func labelProp(label string) string {
	return fmt.Sprintf(`{"type":"olm.label","value":{"label":%q}}`, label)
}

func needsLabel(label string) string {
	return fmt.Sprintf(`{"type":"olm.label.required","value":{"label":%q}}`, label)
}

// pkgAtLeast is a CEL rule met by package pkg at version min or higher.
func pkgAtLeast(pkg, min string) string {
	return fmt.Sprintf(`properties.exists(p, p.type == "olm.package" && p.value.packageName == %q && semver_compare(p.value.version, %q) >= 0)`, pkg, min)
}

// expensiveRule is true, but costs far more than MaxCELCost to evaluate.
const expensiveRule = `[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, [0,1,2,3,4,5,6,7,8,9].all(c, [0,1,2,3,4,5,6,7,8,9].all(d, [0,1,2,3,4,5,6,7,8,9].all(e, a + b + c + d + e >= 0)))))`

func TestResolveConstraints(t *testing.T) {
	// b has 1.0.0 (provides API X, label gold), 1.2.0 and 2.0.0.
	b := flat(pkgDoc("b", "stable"),
		bundleDoc("b", "1.0.0", providesAPI("test.io", "v1", "X"), labelProp("gold")),
		bundleDoc("b", "1.2.0"),
		bundleDoc("b", "2.0.0"),
		chDoc("b", "stable", ent("b", "1.0.0"), ent("b", "1.2.0", "replaces", "1.0.0"), ent("b", "2.0.0", "replaces", "1.2.0")))
	// a is one version with the given properties.
	a := func(props ...string) []string {
		return flat(pkgDoc("a", "stable"), bundleDoc("a", "1.0.0", props...), chDoc("a", "stable", ent("a", "1.0.0")))
	}
	for _, tc := range []struct {
		name      string
		docs      []string
		installed []Installed
		others    []Subscription // besides ns/a
		status    Status
		target    string
		deps      []string // bundles installed as dependencies
		rejected  map[string]Reason
		code      Code
		text      []string // substrings of the decision as described
	}{
		{
			name:   "cel rule with semver_compare picks the highest bundle that passes",
			docs:   flat(a(celProp(pkgAtLeast("b", "1.1.0"), "b 1.1 or later is needed")), b),
			status: StatusInstall, target: "a.v1.0.0", deps: []string{"b.v2.0.0"},
		},
		{
			name:   "semver_compare parses leniently",
			docs:   flat(a(celProp(`properties.exists(p, p.type == "olm.package" && p.value.packageName == "b" && semver_compare(p.value.version, "v1.1") < 0)`, "")), b),
			status: StatusInstall, target: "a.v1.0.0", deps: []string{"b.v1.0.0"},
		},
		{
			name:   "cel rule met by no bundle explains itself with the failure message",
			docs:   flat(a(celProp(pkgAtLeast("b", "3.0.0"), "b 3 or later is needed")), b),
			status: StatusUnsatisfiable, code: CodeConstraint,
			rejected: map[string]Reason{"a.v1.0.0": ReasonConstraint},
			text:     []string{`a 1.0.0 requires a bundle matching CEL rule`, `("b 3 or later is needed"), but no bundle matches it`},
		},
		{
			name: "a cel rule that does not compile passes over its bundle only",
			docs: flat(pkgDoc("a", "stable"),
				bundleDoc("a", "1.0.0"),
				bundleDoc("a", "1.1.0", celProp(`properties.exists(p, p.type ==`, "")),
				chDoc("a", "stable", ent("a", "1.0.0"), ent("a", "1.1.0", "replaces", "1.0.0")), b),
			status: StatusInstall, target: "a.v1.0.0",
			rejected: map[string]Reason{"a.v1.1.0": ReasonInvalidConstraint},
			text:     []string{`the constraint of properties[1] (olm.constraint), but it cannot be evaluated: CEL rule "properties.exists(p, p.type ==" does not compile`},
		},
		{
			name:   "a cel rule that is not boolean cannot be evaluated",
			docs:   flat(a(celProp(`size(properties)`, "")), b),
			status: StatusUnsatisfiable, code: CodeConstraint,
			rejected: map[string]Reason{"a.v1.0.0": ReasonInvalidConstraint},
			text:     []string{`gives int, not bool`},
		},
		{
			name:   "a cel rule beyond the cost limit counts as false",
			docs:   flat(a(celProp(expensiveRule, "too expensive")), b),
			status: StatusUnsatisfiable, code: CodeConstraint,
			rejected: map[string]Reason{"a.v1.0.0": ReasonConstraint},
			text:     []string{`("too expensive"), but no bundle matches it`},
		},
		{
			name:     "an unknown field in a constraint is refused",
			docs:     flat(a(constraintProp(`{"cel":{"rule":"true"},"failureMesage":"typo"}`)), b),
			status:   StatusUnsatisfiable,
			rejected: map[string]Reason{"a.v1.0.0": ReasonInvalidConstraint},
			text:     []string{`unknown field "failureMesage"`},
		},
		{
			name:   "any of two packages is met by the one a catalog has",
			docs:   flat(a(constraintProp(`{"failureMessage":"Service Binding Operator is required","any":{"constraints":[{"package":{"packageName":"absent","versionRange":">=1.0.0"}},{"package":{"packageName":"b","versionRange":">=1.0.0 <2.0.0"}}]}}`)), b),
			status: StatusInstall, target: "a.v1.0.0", deps: []string{"b.v1.2.0"},
		},
		{
			name:   "any of absent packages fails with the bundle's message",
			docs:   flat(a(constraintProp(`{"failureMessage":"Service Binding Operator is required","any":{"constraints":[{"package":{"packageName":"sbo","versionRange":">=1.0.0"}},{"package":{"packageName":"rh-sbo","versionRange":">=1.0.0"}}]}}`)), b),
			status: StatusUnsatisfiable, code: CodeConstraint,
			text: []string{`a 1.0.0 requires a bundle matching any of (package sbo >=1.0.0, package rh-sbo >=1.0.0) ("Service Binding Operator is required"), but no bundle matches it`},
		},
		{
			name:   "all tests one bundle: package b that provides API X",
			docs:   flat(a(constraintProp(`{"all":{"constraints":[{"package":{"packageName":"b","versionRange":">=1.0.0"}},{"gvk":{"group":"test.io","version":"v1","kind":"X"}}]}}`)), b),
			status: StatusInstall, target: "a.v1.0.0", deps: []string{"b.v1.0.0"},
		},
		{
			name:   "not inside all excludes versions",
			docs:   flat(a(constraintProp(`{"all":{"constraints":[{"package":{"packageName":"b","versionRange":">=1.0.0"}},{"not":{"constraints":[{"package":{"packageName":"b","versionRange":">=2.0.0"}}]}}]}}`)), b),
			status: StatusInstall, target: "a.v1.0.0", deps: []string{"b.v1.2.0"},
		},
		{
			name:   "a not alone is met by the declaring bundle itself, as in operator-framework",
			docs:   flat(a(constraintProp(`{"not":{"constraints":[{"package":{"packageName":"b","versionRange":">=0.0.0"}}]}}`)), b),
			status: StatusInstall, target: "a.v1.0.0",
		},
		{
			name:   "gvk constraint is met by the API's provider",
			docs:   flat(a(constraintProp(`{"failureMessage":"needs X","gvk":{"group":"test.io","version":"v1","kind":"X"}}`)), b),
			status: StatusInstall, target: "a.v1.0.0", deps: []string{"b.v1.0.0"},
			text: []string{`requires API test.io/v1, Kind=X ("needs X")`},
		},
		{
			name:   "package constraint names its failure message",
			docs:   flat(a(constraintProp(`{"failureMessage":"b 3 is needed","package":{"packageName":"b","versionRange":">=3.0.0"}}`)), b),
			status: StatusUnsatisfiable, code: CodeConstraint,
			text: []string{`a 1.0.0 requires b >=3.0.0 ("b 3 is needed"), but catalog "community" has b 1.0.0, 1.2.0 and 2.0.0 only`},
		},
		{
			name:   "olm.label.required is met by a bundle with the label",
			docs:   flat(a(needsLabel("gold")), b),
			status: StatusInstall, target: "a.v1.0.0", deps: []string{"b.v1.0.0"},
		},
		{
			name:   "olm.label.required without a bundle having the label",
			docs:   flat(a(needsLabel("platinum")), b),
			status: StatusUnsatisfiable, code: CodeConstraint,
			text: []string{`a 1.0.0 requires a bundle with label "platinum", but no bundle matches it`},
		},
		{
			name:      "an installed operator meets a cel rule, and blocks other versions of its package",
			docs:      flat(a(celProp(pkgAtLeast("b", "1.1.0"), "")), b),
			installed: []Installed{installed("ns", "b", "1.2.0", "community")},
			status:    StatusInstall, target: "a.v1.0.0",
		},
		{
			name:      "an installed operator that fails the rule leaves nothing to meet it",
			docs:      flat(a(celProp(pkgAtLeast("b", "1.1.0"), "b 1.1 or later is needed")), b),
			installed: []Installed{installed("ns", "b", "1.0.0", "community")},
			status:    StatusUnsatisfiable, code: CodeConstraint,
			text: []string{`("b 1.1 or later is needed"), but no bundle that can be chosen matches it: b 1.2.0 passes, but b 1.0.0 is installed in namespace "ns"`},
		},
		{
			name:   "a subscription holding the package to other versions leaves nothing to meet it",
			docs:   flat(a(needsLabel("gold")), b),
			others: []Subscription{with(sub("ns", "b", "b"), func(s *Subscription) { s.Range = ">=1.2.0" })},
			status: StatusUnsatisfiable, code: CodeConstraint,
			text: []string{`a 1.0.0 requires a bundle with label "gold", but no bundle that can be chosen matches it: b 1.0.0 passes, but subscription ns/b does not allow it`},
		},
		{
			name: "a newer version passed over for its constraint, an older one chosen",
			docs: flat(pkgDoc("a", "stable"),
				bundleDoc("a", "1.0.0"),
				bundleDoc("a", "1.1.0", needsLabel("platinum")),
				chDoc("a", "stable", ent("a", "1.0.0"), ent("a", "1.1.0", "replaces", "1.0.0")), b),
			status: StatusInstall, target: "a.v1.0.0",
			rejected: map[string]Reason{"a.v1.1.0": ReasonConstraint},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{
				Catalogs:      []Snapshot{snapshot(t, "community", 0, tc.docs...)},
				Installed:     tc.installed,
				Subscriptions: append([]Subscription{sub("ns", "a", "a")}, tc.others...),
			}
			res, err := Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			d := res.Decisions[0]
			got := describe(d)
			if testing.Verbose() {
				t.Log(got)
			}
			if d.Status != tc.status {
				t.Fatalf("status %s, want %s:\n%s", d.Status, tc.status, got)
			}
			if tc.target != "" && (d.Target == nil || d.Target.Bundle != tc.target) {
				t.Errorf("target is not %s:\n%s", tc.target, got)
			}
			var deps []string
			for _, dep := range d.Dependencies {
				deps = append(deps, dep.Bundle)
			}
			if fmt.Sprint(deps) != fmt.Sprint(tc.deps) {
				t.Errorf("dependencies %v, want %v:\n%s", deps, tc.deps, got)
			}
			if tc.code != "" && (d.Explanation == nil || d.Explanation.Code != tc.code) {
				t.Errorf("explanation code is not %s:\n%s", tc.code, got)
			}
			for bundle, why := range tc.rejected {
				found := false
				for _, r := range d.Rejected {
					if r.Bundle == bundle {
						found = true
						if r.Reason != why {
							t.Errorf("%s rejected as %s, want %s:\n%s", bundle, r.Reason, why, got)
						}
					}
				}
				if !found {
					t.Errorf("%s is not rejected:\n%s", bundle, got)
				}
			}
			for _, c := range d.Candidates {
				if why, ok := tc.rejected[c.Bundle]; ok && c.Reason != why {
					t.Errorf("candidate %s: reason %s, want %s", c.Bundle, c.Reason, why)
				}
			}
			for _, want := range tc.text {
				if !strings.Contains(got, want) {
					t.Errorf("decision does not say %q:\n%s", want, got)
				}
			}
		})
	}
}

// TestResolveConstraintOptionsBounded: a rule every bundle passes offers
// at most MaxConstraintOptions bundles, the most preferred, and says so.
func TestResolveConstraintOptionsBounded(t *testing.T) {
	docs := flat(pkgDoc("a", "stable"), bundleDoc("a", "1.0.0", celProp(`properties.exists(p, p.type == "olm.package" && p.value.packageName != "a")`, "")), chDoc("a", "stable", ent("a", "1.0.0")))
	for i := range MaxConstraintOptions + 10 {
		docs = append(docs, simplePkg(fmt.Sprintf("p%03d", i), "stable", "1.0.0")...)
	}
	req := Request{Catalogs: []Snapshot{snapshot(t, "community", 0, docs...)}, Subscriptions: []Subscription{sub("ns", "a", "a")}}
	r, err := newResolver(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r.prepare(r.subs[0])
	reqs := r.requirements(r.subs[0].cands[0])
	if len(reqs) != 1 {
		t.Fatalf("%d requirements, want 1", len(reqs))
	}
	q := reqs[0]
	if len(q.options) != MaxConstraintOptions || q.truncated != 10 {
		t.Fatalf("%d options and %d left out, want %d and 10", len(q.options), q.truncated, MaxConstraintOptions)
	}
	if q.options[0].pkg != "p000" {
		t.Errorf("first option %s, want p000 1.0.0", q.options[0])
	}
	if tail := r.reqTail(q, nil); !strings.Contains(tail, "10 less preferred bundles not considered") {
		t.Errorf("requirement does not say it was bounded: %s", tail)
	}
}

// TestResolveCELCached: one rule is evaluated once per candidate bundle,
// however many bundles declare it.
func TestResolveCELCached(t *testing.T) {
	rule := pkgAtLeast("b", "1.1.0")
	docs := flat(pkgDoc("a", "stable"),
		bundleDoc("a", "1.0.0", celProp(rule, "")), bundleDoc("a", "1.1.0", celProp(rule, "")),
		chDoc("a", "stable", ent("a", "1.0.0"), ent("a", "1.1.0", "replaces", "1.0.0")),
		simplePkg("b", "stable", "1.0.0", "1.2.0"))
	req := Request{Catalogs: []Snapshot{snapshot(t, "community", 0, docs...)}, Subscriptions: []Subscription{sub("ns", "a", "a")}}
	r, err := newResolver(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r.prepare(r.subs[0])
	for _, c := range r.subs[0].cands {
		r.requirements(c)
	}
	if len(r.programs) != 1 {
		t.Errorf("%d programs compiled, want 1", len(r.programs))
	}
	// Four bundles (a 1.0.0, a 1.1.0, b 1.0.0, b 1.2.0): one evaluation each.
	if len(r.celResults) != 4 {
		t.Errorf("%d evaluations cached, want 4", len(r.celResults))
	}
}

// TestResolveCELBudget: one resolution spends at most MaxCELTotalCost on
// CEL; a constraint that needs more passes over its bundle and says so.
func TestResolveCELBudget(t *testing.T) {
	// Every evaluation of the rule fails, and a failed evaluation counts
	// MaxCELCost: the budget lasts MaxCELTotalCost/MaxCELCost evaluations.
	rule := `semver_compare("not a version", "1.0.0") == 0`
	docs := flat(pkgDoc("a", "stable"), bundleDoc("a", "1.0.0", celProp(rule, "")), chDoc("a", "stable", ent("a", "1.0.0")))
	for i := range MaxCELTotalCost/MaxCELCost + 10 {
		docs = append(docs, simplePkg(fmt.Sprintf("p%03d", i), "stable", "1.0.0")...)
	}
	res, err := Resolve(context.Background(), Request{Catalogs: []Snapshot{snapshot(t, "community", 0, docs...)}, Subscriptions: []Subscription{sub("ns", "a", "a")}})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Decisions[0]
	if d.Status != StatusUnsatisfiable || len(d.Rejected) != 1 || d.Rejected[0].Reason != ReasonInvalidConstraint {
		t.Fatalf("want a 1.0.0 passed over as InvalidConstraint:\n%s", describe(d))
	}
	if want := "spent its CEL budget"; !strings.Contains(d.Rejected[0].Message, want) {
		t.Errorf("rejection does not say %q: %s", want, d.Rejected[0].Message)
	}
}
