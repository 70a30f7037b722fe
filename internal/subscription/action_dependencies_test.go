package subscription

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogsource"
)

// depCatalog is catalog "cat": pkg 1.0.0 requires dep >=1.0.0 <2.0.0,
// pkg 1.1.0 (its upgrade) requires dep >=1.1.0 <2.0.0; dep 1.0.0 and 1.1.0
// are in its channel stable.
func depCatalog(t *testing.T) *catalogsource.Snapshot {
	t.Helper()
	docs := []string{
		`{"schema":"olm.package","name":"pkg","defaultChannel":"stable"}`,
		`{"schema":"olm.channel","package":"pkg","name":"stable","entries":[{"name":"pkg.v1.0.0"},{"name":"pkg.v1.1.0","replaces":"pkg.v1.0.0"}]}`,
		`{"schema":"olm.package","name":"dep","defaultChannel":"stable"}`,
		`{"schema":"olm.channel","package":"dep","name":"stable","entries":[{"name":"dep.v1.0.0"},{"name":"dep.v1.1.0","replaces":"dep.v1.0.0"}]}`,
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		docs = append(docs,
			fmt.Sprintf(`{"schema":"olm.bundle","package":"pkg","name":"pkg.v%s","image":"registry.example.com/pkg:%s","properties":[`+
				`{"type":"olm.package","value":{"packageName":"pkg","version":%q}},`+
				`{"type":"olm.package.required","value":{"packageName":"dep","versionRange":">=%s <2.0.0"}}]}`, v, v, v, v),
			fmt.Sprintf(`{"schema":"olm.bundle","package":"dep","name":"dep.v%s","image":"registry.example.com/dep:%s","properties":[`+
				`{"type":"olm.package","value":{"packageName":"dep","version":%q}}]}`, v, v, v))
	}
	fsys := fstest.MapFS{"catalog.json": &fstest.MapFile{Data: []byte(strings.Join(docs, "\n"))}}
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "cat", FS: fsys, Format: catalog.FormatFBC}}, catalog.WithStrict(true))
	if err != nil {
		t.Fatal(err)
	}
	return &catalogsource.Snapshot{Name: "cat", Catalog: c, Digest: c.Digest, Connected: true}
}

// snapshotCatalogs serves catalog snapshots as the store does once they
// arrived, without manifests: what the controller observes of dependencies
// needs no bundle content.
type snapshotCatalogs []*catalogsource.Snapshot

func (s snapshotCatalogs) Get(name string) (*catalogsource.Snapshot, bool) {
	for _, c := range s {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

func (s snapshotCatalogs) State(name string) (*catalogsource.Snapshot, bool) { return s.Get(name) }

func (s snapshotCatalogs) List() []*catalogsource.Snapshot { return s }

func (s snapshotCatalogs) Manifests(_ context.Context, catalogName, pkg, bundle string) ([]catalog.Manifest, error) {
	return nil, fmt.Errorf("bundle %s of package %q in catalog %q: %w (this test bed serves no manifests)", bundle, pkg, catalogName, catalogsource.ErrNotFound)
}

// depSub is a Subscription of the bed's namespace, labelled with parent
// (none when ""), as an admin creates it.
func (b *actionBed) depSub(name, pkg, parent, versionRange, requiredBy string) *v1alpha1.Subscription {
	b.t.Helper()
	s := &v1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: name},
		Spec:       v1alpha1.SubscriptionSpec{Catalog: "cat", Package: pkg, Channel: "stable", VersionRange: versionRange, ServiceAccountName: b.sub.Spec.ServiceAccountName},
	}
	if parent != "" {
		s.Labels = map[string]string{LabelParent: parent}
		s.Annotations = map[string]string{AnnotationRequiredBy: requiredBy}
	}
	if err := b.env.Client.Create(b.ctx, s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// installedAs records in s's status that version of its package is
// installed, as its own reconciles would.
func (b *actionBed) installedAs(s *v1alpha1.Subscription, version string) {
	b.t.Helper()
	s.Status.InstalledVersion = version
	s.Status.InstalledBundle = s.Spec.Package + ".v" + version
	s.Status.Catalog = "cat"
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: v1alpha1.TypeInstalled, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonInstalled, Message: "installed by the test", ObservedGeneration: s.Generation})
	if err := b.env.Client.Status().Update(b.ctx, s); err != nil {
		b.t.Fatal(err)
	}
}

// subscriptions are the Subscriptions of the bed's namespace, by name.
func (b *actionBed) subscriptions() map[string]v1alpha1.Subscription {
	b.t.Helper()
	var list v1alpha1.SubscriptionList
	if err := b.env.Client.List(b.ctx, &list, client.InNamespace(b.ns)); err != nil {
		b.t.Fatal(err)
	}
	out := map[string]v1alpha1.Subscription{}
	for _, s := range list.Items {
		out[s.Name] = s
	}
	return out
}

// TestActionWaitDependencies: the parent's ServiceAccount creates the
// child Subscription of a missing dependency and updates the children
// Ferry created for the parent to what its target requires now; a
// Subscription the user created is waited for, never changed. A paused
// parent, or one whose upgrade waits for approval, creates and changes
// nothing. Each case observes the cluster and the catalog, decides and
// acts, as a reconcile does.
func TestActionWaitDependencies(t *testing.T) {
	const (
		newReq = "pkg 1.1.0 requires dep >=1.1.0 <2.0.0"
		oldReq = "pkg 1.0.0 requires dep >=1.0.0 <2.0.0"
	)
	// child is what a dependency Subscription must be after the action.
	type child struct {
		name, versionRange, requiredBy string
		// parent is its label; "" for none.
		parent string
		// created by the action: its whole spec is checked.
		created bool
	}
	tests := []struct {
		name string
		spec v1alpha1.SubscriptionSpec
		// before prepares the namespace.
		before func(b *actionBed)
		action action
		// message is part of the decision's message.
		message string
		// children are the dependency Subscriptions after the action (the
		// parent's own excluded); unchanged lists those that must keep
		// their resourceVersion.
		children  []child
		unchanged []string
		event     string
	}{
		{
			name:   "a missing dependency gets a child Subscription, created as the parent's ServiceAccount",
			before: func(*actionBed) {}, action: actWaitDependencies,
			message:  "dep (Subscription dep to be created, " + newReq + ")",
			children: []child{{name: "dep", parent: "s", versionRange: ">=1.1.0 <2.0.0", requiredBy: newReq, created: true}},
			event:    "Normal DependencySubscribed",
		},
		{
			name: "a name taken by a Subscription of another package: the child is named after its parent",
			before: func(b *actionBed) {
				b.depSub("dep", "other", "", "", "")
			},
			action: actWaitDependencies, message: "dep (Subscription dep to be created, " + newReq + ")",
			children:  []child{{name: "dep"}, {name: "s-dep", parent: "s", versionRange: ">=1.1.0 <2.0.0", requiredBy: newReq, created: true}},
			unchanged: []string{"dep"},
			event:     "Normal DependencySubscribed",
		},
		{
			name: "a child Ferry created for an older requirement follows the new one",
			before: func(b *actionBed) {
				b.depSub("dep", "dep", "s", ">=1.0.0 <2.0.0", oldReq)
			},
			action:   actWaitDependencies,
			message:  `dep (Subscription dep to be updated to versionRange ">=1.1.0 <2.0.0", ` + newReq + ")",
			children: []child{{name: "dep", parent: "s", versionRange: ">=1.1.0 <2.0.0", requiredBy: newReq}},
			event:    "Normal DependencyUpdated",
		},
		{
			// The resolver keeps an installed dependency and does not list
			// it: the requirement is read from the target bundle.
			name: "an installed child Ferry created follows the new requirement the resolver does not list",
			before: func(b *actionBed) {
				b.installedAs(b.depSub("dep", "dep", "s", ">=1.0.0 <2.0.0", oldReq), "1.1.0")
			},
			action:   actWaitDependencies,
			message:  `dep (Subscription dep to be updated to versionRange ">=1.1.0 <2.0.0", ` + newReq + ")",
			children: []child{{name: "dep", parent: "s", versionRange: ">=1.1.0 <2.0.0", requiredBy: newReq}},
			event:    "Normal DependencyUpdated",
		},
		{
			name: "a Subscription the user created is waited for and left alone",
			before: func(b *actionBed) {
				b.depSub("dep", "dep", "", ">=1.0.0 <2.0.0", "")
			},
			action:    actWaitDependencies,
			message:   "dep (Subscription dep, " + newReq + ")",
			children:  []child{{name: "dep", versionRange: ">=1.0.0 <2.0.0"}},
			unchanged: []string{"dep"},
		},
		{
			name: "another parent's child is waited for and left alone",
			before: func(b *actionBed) {
				b.depSub("dep", "dep", "other", ">=1.0.0 <2.0.0", oldReq)
			},
			action:    actWaitDependencies,
			message:   "dep (Subscription dep, " + newReq + ")",
			children:  []child{{name: "dep", parent: "other", versionRange: ">=1.0.0 <2.0.0", requiredBy: oldReq}},
			unchanged: []string{"dep"},
		},
		{
			name:   "a paused parent creates nothing",
			spec:   v1alpha1.SubscriptionSpec{Paused: true},
			before: func(*actionBed) {}, action: actHold,
		},
		{
			name: "a paused parent changes no child",
			spec: v1alpha1.SubscriptionSpec{Paused: true},
			before: func(b *actionBed) {
				b.depSub("dep", "dep", "s", ">=1.0.0 <2.0.0", oldReq)
			},
			action:    actHold,
			children:  []child{{name: "dep", parent: "s", versionRange: ">=1.0.0 <2.0.0", requiredBy: oldReq}},
			unchanged: []string{"dep"},
		},
		{
			// 1.0.0 is installed without its dependency (the namespace
			// had one that was deleted since): the upgrade to 1.1.0 and
			// the child it needs wait for spec.approvedVersion.
			name: "an upgrade waiting for approval creates nothing",
			spec: v1alpha1.SubscriptionSpec{Approval: v1alpha1.ApprovalManual},
			before: func(b *actionBed) {
				b.installedParent("1.0.0")
			},
			action: actHoldForApproval,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, tt.spec)
			b.r.Catalogs = snapshotCatalogs{depCatalog(t)}
			tt.before(b)
			before := b.subscriptions()
			b.events()
			x := b.exec()
			f, err := b.r.observe(b.ctx, x.sub, x.ap)
			if err != nil {
				t.Fatalf("observe: %v", err)
			}
			d := decide(f, healthTimeout(x.sub))
			if d.action != tt.action {
				t.Fatalf("action %s (%s: %s), want %s", d.action, d.reason, d.message, tt.action)
			}
			res := b.r.act(b.ctx, x, f, d)
			if res.err != nil {
				t.Fatalf("%s: %v", d.action, res.err)
			}
			if tt.action == actWaitDependencies {
				if !strings.Contains(d.message, tt.message) {
					t.Errorf("message %q, want it to contain %q", d.message, tt.message)
				}
				if p := res.progressing; res.phase != phaseWaiting || p == nil || !p.status || p.reason != v1alpha1.ReasonDependencyNotReady || p.message != d.message || res.requeue != b.r.healthRequeue() {
					t.Errorf("result phase %d, progressing %+v, requeue %v; want waiting, %s %q, the health requeue", res.phase, p, res.requeue, v1alpha1.ReasonDependencyNotReady, d.message)
				}
			}
			if tt.action == actHoldForApproval {
				// What approving would create is said, not done.
				want := "approving it also installs or changes dependencies: dep (Subscription dep to be created, " + newReq + ")"
				if d.upgrade == nil || d.upgrade.reason != v1alpha1.ReasonUpgradePending || !strings.Contains(d.upgrade.message, want) {
					t.Errorf("UpgradeAvailable %+v, want %s saying %q", d.upgrade, v1alpha1.ReasonUpgradePending, want)
				}
			}
			// What the reconcile would write is valid.
			summarize(f, d, res)
			if err := b.r.writeStatus(b.ctx, x); err != nil {
				t.Fatalf("writing the status: %v", err)
			}

			after := b.subscriptions()
			delete(after, b.sub.Name)
			if len(after) != len(tt.children) {
				t.Errorf("dependency Subscriptions %v, want %d", keys(after), len(tt.children))
			}
			for _, want := range tt.children {
				got, ok := after[want.name]
				if !ok {
					t.Errorf("no Subscription %s", want.name)
					continue
				}
				if got.Labels[LabelParent] != want.parent {
					t.Errorf("%s: label %s=%q, want %q", want.name, LabelParent, got.Labels[LabelParent], want.parent)
				}
				if want.parent != "" || want.created {
					if got.Annotations[AnnotationRequiredBy] != want.requiredBy {
						t.Errorf("%s: annotation %s=%q, want %q", want.name, AnnotationRequiredBy, got.Annotations[AnnotationRequiredBy], want.requiredBy)
					}
				}
				if want.versionRange != "" && got.Spec.VersionRange != want.versionRange {
					t.Errorf("%s: versionRange %q, want %q", want.name, got.Spec.VersionRange, want.versionRange)
				}
				if want.created {
					wantSpec := v1alpha1.SubscriptionSpec{
						Catalog: "cat", Package: "dep", Channel: "stable", VersionRange: want.versionRange, StartingVersion: "1.1.0",
						ServiceAccountName: b.sub.Spec.ServiceAccountName, Approval: b.sub.Spec.Approval,
					}
					if got.Spec.Catalog != wantSpec.Catalog || got.Spec.Package != wantSpec.Package || got.Spec.Channel != wantSpec.Channel ||
						got.Spec.StartingVersion != wantSpec.StartingVersion || got.Spec.ServiceAccountName != wantSpec.ServiceAccountName ||
						got.Spec.Approval != wantSpec.Approval || got.Spec.Paused || got.Spec.ApprovedVersion != "" {
						t.Errorf("%s: spec %+v, want %+v", want.name, got.Spec, wantSpec)
					}
				}
			}
			for _, name := range tt.unchanged {
				if after[name].ResourceVersion != before[name].ResourceVersion {
					t.Errorf("Subscription %s was changed: %+v", name, after[name])
				}
			}
			// Children are written as the parent's ServiceAccount, never
			// with the installer's own rights.
			var writes []request
			for _, r := range b.requests.all() {
				if r.method != http.MethodGet && strings.Contains(r.path, "/namespaces/"+b.ns+"/subscriptions") && !strings.HasSuffix(r.path, "/status") {
					writes = append(writes, r)
				}
			}
			for _, w := range writes {
				if w.as != b.serviceAccount() {
					t.Errorf("%s, want it made as %s", w, b.serviceAccount())
				}
			}
			if wantWrites := tt.event != ""; (len(writes) > 0) != wantWrites {
				t.Errorf("writes of Subscriptions %v, want some: %v", writes, wantWrites)
			}
			evs := b.events()
			if tt.event == "" && len(evs) > 0 || tt.event != "" && (len(evs) != 1 || !strings.HasPrefix(evs[0], tt.event)) {
				t.Errorf("events %q, want %q", evs, tt.event)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// installedParent installs version of the bed's Subscription, healthy, as
// its reconciles would have: the revision, its objects and the status.
func (b *actionBed) installedParent(version string) {
	b.t.Helper()
	b.install(version, reasonInstall, 0, cm(b.ns, "op", version))
	x := b.exec()
	f := b.facts(x)
	if res := b.r.inSync(b.ctx, x, f, keepDecision(actInSync, f.current)); res.err != nil || res.phase != phaseHealthy {
		b.t.Fatalf("in sync: phase %d, err %v", res.phase, res.err)
	}
	if err := b.r.patchStatus(b.ctx, x); err != nil {
		b.t.Fatal(err)
	}
}
