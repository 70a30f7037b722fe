package subscription

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/resolver"
)

// testCatalog is a file-based catalog "cat" with package pkg (channels
// stable, the default, and fast; versions 1.0.0, 1.1.0 and 1.2.0, the last
// two requiring a package no catalog has) and the given olm.deprecations
// entries, "<schema>/<name>=<message>".
func testCatalog(t *testing.T, deprecations ...string) []resolver.Snapshot {
	t.Helper()
	docs := []string{
		`{"schema":"olm.package","name":"pkg","defaultChannel":"stable"}`,
		`{"schema":"olm.channel","package":"pkg","name":"stable","entries":[{"name":"pkg.v1.0.0"},{"name":"pkg.v1.1.0","replaces":"pkg.v1.0.0"},{"name":"pkg.v1.2.0","replaces":"pkg.v1.1.0"}]}`,
		`{"schema":"olm.channel","package":"pkg","name":"fast","entries":[{"name":"pkg.v1.0.0"}]}`,
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		props := fmt.Sprintf(`{"type":"olm.package","value":{"packageName":"pkg","version":%q}}`, v)
		if v != "1.0.0" {
			props += `,{"type":"olm.package.required","value":{"packageName":"missing","versionRange":">=1.0.0"}}`
		}
		docs = append(docs, fmt.Sprintf(`{"schema":"olm.bundle","package":"pkg","name":"pkg.v%s","image":"registry.example.com/pkg:%s","properties":[%s]}`, v, v, props))
	}
	if len(deprecations) > 0 {
		var entries []string
		for _, d := range deprecations {
			ref, msg, _ := strings.Cut(d, "=")
			schema, name, _ := strings.Cut(ref, "/")
			entries = append(entries, fmt.Sprintf(`{"reference":{"schema":%q,"name":%q},"message":%q}`, schema, name, msg))
		}
		docs = append(docs, `{"schema":"olm.deprecations","package":"pkg","entries":[`+strings.Join(entries, ",")+`]}`)
	}
	fsys := fstest.MapFS{"catalog.json": &fstest.MapFile{Data: []byte(strings.Join(docs, "\n"))}}
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "cat", FS: fsys, Format: catalog.FormatFBC}}, catalog.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	return []resolver.Snapshot{{Name: "cat", Catalog: c}}
}

// TestSummarizeDeprecation: the deprecation conditions say what the
// catalog deprecates of the package, the channel followed and the
// installed bundle, and disappear when it no longer does.
func TestSummarizeDeprecation(t *testing.T) {
	type want map[string]string // condition type -> message; absent when not listed
	tests := []struct {
		name         string
		deprecations []string
		channel      string
		installed    string
		want         want
	}{
		{name: "nothing deprecated", installed: "1.0.0", want: want{}},
		{
			name: "default channel deprecated", deprecations: []string{"olm.channel/stable=stable is retired; use fast"},
			want: want{
				v1alpha1.TypeChannelDeprecated: `channel "stable" is deprecated in catalog "cat": stable is retired; use fast`,
				v1alpha1.TypeDeprecated:        `channel "stable" is deprecated in catalog "cat": stable is retired; use fast`,
			},
		},
		{
			name: "another channel deprecated", deprecations: []string{"olm.channel/fast=fast is gone"}, installed: "1.0.0",
			want: want{},
		},
		{
			name: "followed channel deprecated", deprecations: []string{"olm.channel/fast=fast is gone"}, channel: "fast",
			want: want{
				v1alpha1.TypeChannelDeprecated: `channel "fast" is deprecated in catalog "cat": fast is gone`,
				v1alpha1.TypeDeprecated:        `channel "fast" is deprecated in catalog "cat": fast is gone`,
			},
		},
		{
			name: "package and installed bundle deprecated", installed: "1.0.0",
			deprecations: []string{"olm.package/=pkg is retired", "olm.bundle/pkg.v1.0.0=1.0.0 leaks memory"},
			want: want{
				v1alpha1.TypePackageDeprecated: `package pkg is deprecated in catalog "cat": pkg is retired`,
				v1alpha1.TypeBundleDeprecated:  `installed bundle pkg.v1.0.0 is deprecated in catalog "cat": 1.0.0 leaks memory`,
				v1alpha1.TypeDeprecated:        `package pkg is deprecated in catalog "cat": pkg is retired; installed bundle pkg.v1.0.0 is deprecated in catalog "cat": 1.0.0 leaks memory`,
			},
		},
		{
			name: "a bundle not installed", installed: "1.0.0", deprecations: []string{"olm.bundle/pkg.v1.1.0=do not use"},
			want: want{},
		},
	}
	all := []string{v1alpha1.TypeDeprecated, v1alpha1.TypePackageDeprecated, v1alpha1.TypeChannelDeprecated, v1alpha1.TypeBundleDeprecated}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := decideFacts(tt.installed, "")
			f.sub.Spec.Catalog, f.sub.Spec.Channel = "cat", tt.channel
			// Left by an earlier reconcile: removed unless still true.
			for _, typ := range all {
				setCondition(f.sub, typ, metav1.ConditionTrue, v1alpha1.ReasonDeprecated, "stale")
			}
			f.deprecation = observeDeprecation(f.sub, nil, testCatalog(t, tt.deprecations...))
			summarize(f, decision{action: actWaitCatalog}, result{phase: phaseWaiting})
			for _, typ := range all {
				c := meta.FindStatusCondition(f.sub.Status.Conditions, typ)
				msg, ok := tt.want[typ]
				switch {
				case !ok && c != nil:
					t.Errorf("%s = %+v, want none", typ, c)
				case ok && (c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonDeprecated || c.Message != msg || c.ObservedGeneration != f.sub.Generation):
					t.Errorf("%s = %+v, want True %s %q", typ, c, v1alpha1.ReasonDeprecated, msg)
				}
			}
		})
	}
}

// TestSummarizeDeprecationWithoutCatalog: when no catalog has the package
// (or none was looked at) the deprecation conditions stay as they are.
func TestSummarizeDeprecationWithoutCatalog(t *testing.T) {
	f := decideFacts("1.0.0", "")
	f.sub.Spec.Package = "other"
	setCondition(f.sub, v1alpha1.TypeDeprecated, metav1.ConditionTrue, v1alpha1.ReasonDeprecated, "earlier")
	if f.deprecation = observeDeprecation(f.sub, nil, testCatalog(t, "olm.package/=pkg is retired")); f.deprecation != nil {
		t.Fatalf("facts for a package no catalog has: %+v", f.deprecation)
	}
	summarize(f, decision{action: actWaitCatalog}, result{phase: phaseWaiting})
	if c := meta.FindStatusCondition(f.sub.Status.Conditions, v1alpha1.TypeDeprecated); c == nil || c.Message != "earlier" {
		t.Errorf("Deprecated = %+v, want it kept", c)
	}
}

// TestObserveDeprecationCatalog: the catalog looked in is spec.catalog
// only when set; otherwise the one the installed version came from, or the
// first that has the package when that one is gone.
func TestObserveDeprecationCatalog(t *testing.T) {
	deprecated := testCatalog(t, "olm.package/=pkg is retired")[0]
	plain := testCatalog(t)[0]
	tests := []struct {
		name         string
		spec, status string
		snaps        []resolver.Snapshot
		want         string // catalog looked in; "" for none
		deprecated   bool
	}{
		{name: "spec.catalog", spec: "b", snaps: []resolver.Snapshot{{Name: "a", Catalog: plain.Catalog}, {Name: "b", Catalog: deprecated.Catalog}}, want: "b", deprecated: true},
		{name: "spec.catalog gone", spec: "c", snaps: []resolver.Snapshot{{Name: "a", Catalog: plain.Catalog}}},
		{name: "installed from", status: "b", snaps: []resolver.Snapshot{{Name: "a", Catalog: plain.Catalog}, {Name: "b", Catalog: deprecated.Catalog}}, want: "b", deprecated: true},
		{name: "installed from a catalog gone", status: "c", snaps: []resolver.Snapshot{{Name: "a", Catalog: deprecated.Catalog}, {Name: "b", Catalog: plain.Catalog}}, want: "a", deprecated: true},
		{name: "first with the package", snaps: []resolver.Snapshot{{Name: "a", Catalog: plain.Catalog}, {Name: "b", Catalog: deprecated.Catalog}}, want: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := &v1alpha1.Subscription{Spec: v1alpha1.SubscriptionSpec{Package: "pkg", Catalog: tt.spec}}
			sub.Status.Catalog = tt.status
			got := observeDeprecation(sub, nil, tt.snaps)
			switch {
			case tt.want == "" && got != nil:
				t.Errorf("facts = %+v, want none", got)
			case tt.want != "" && (got == nil || got.catalog != tt.want || (got.pkg != nil) != tt.deprecated):
				t.Errorf("facts = %+v, want catalog %s, package deprecated %t", got, tt.want, tt.deprecated)
			}
		})
	}
}

// TestSummarizeCandidates: status.resolution shows, from a real
// resolution, the bundle chosen and why every other one was passed over.
func TestSummarizeCandidates(t *testing.T) {
	type entry struct {
		bundle string
		chosen bool
		reason resolver.Reason
		// message is a part of the message.
		message string
	}
	tests := []struct {
		name         string
		versionRange string
		deprecations []string
		want         []entry
	}{
		{
			name: "pinned to one version", versionRange: "1.0.0",
			want: []entry{
				{bundle: "pkg.v1.0.0", chosen: true, message: "chosen"},
				{bundle: "pkg.v1.2.0", reason: resolver.ReasonOutsideRange, message: "1.0.0"},
				{bundle: "pkg.v1.1.0", reason: resolver.ReasonOutsideRange, message: "1.0.0"},
			},
		},
		{
			name: "unsatisfiable dependency", versionRange: ">=1.1.0",
			want: []entry{
				{bundle: "pkg.v1.2.0", reason: resolver.ReasonDependency, message: "missing"},
				{bundle: "pkg.v1.1.0", reason: resolver.ReasonDependency, message: "missing"},
				{bundle: "pkg.v1.0.0", reason: resolver.ReasonOutsideRange, message: ">=1.1.0"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := &v1alpha1.Subscription{Spec: v1alpha1.SubscriptionSpec{Package: "pkg", Catalog: "cat", Channel: "stable", VersionRange: tt.versionRange}}
			sub.Namespace, sub.Name = "ns", "s"
			res, err := resolver.Resolve(context.Background(), resolver.Request{
				Catalogs: testCatalog(t, tt.deprecations...),
				Subscriptions: []resolver.Subscription{{
					Namespace: "ns", Name: "s", Catalog: "cat", Package: "pkg", Channel: "stable", Range: tt.versionRange,
					Approval: resolver.Approval(v1alpha1.ApprovalAutomatic),
				}},
			})
			if err != nil {
				t.Fatal(err)
			}
			d := res.Decision("ns/s")
			summarizeCandidates(sub, d, nil)
			got := sub.Status.Resolution
			if len(got) != len(tt.want) || sub.Status.ResolutionOmitted != 0 {
				t.Fatalf("resolution = %+v (omitted %d), want %d entries", got, sub.Status.ResolutionOmitted, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Catalog != "cat" || g.Bundle != w.bundle || g.Version != strings.TrimPrefix(w.bundle, "pkg.v") || g.Chosen != w.chosen || g.Reason != string(w.reason) || !strings.Contains(g.Message, w.message) {
					t.Errorf("resolution[%d] = %+v, want %+v", i, g, w)
				}
			}
			// The same resolution again leaves the list as it is.
			first := &sub.Status.Resolution[0]
			summarizeCandidates(sub, d, nil)
			if &sub.Status.Resolution[0] != first {
				t.Error("an unchanged resolution rewrote status.resolution")
			}
			// Without a resolution it stays; a refused request clears it.
			summarizeCandidates(sub, nil, nil)
			if len(sub.Status.Resolution) != len(tt.want) {
				t.Errorf("no resolution changed status.resolution to %+v", sub.Status.Resolution)
			}
			summarizeCandidates(sub, nil, fmt.Errorf("invalid range"))
			if sub.Status.Resolution != nil || sub.Status.ResolutionOmitted != 0 {
				t.Errorf("a refused request left status.resolution %+v", sub.Status.Resolution)
			}
		})
	}
}
