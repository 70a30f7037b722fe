package subscription

import (
	"strings"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/resolver"
	"github.com/ferrydev/ferry/internal/revision"
)

// TestActionInstall: install records a revision of the wanted content and
// applies it; content it may not apply records and applies nothing.
func TestActionInstall(t *testing.T) {
	tests := []struct {
		name string
		// before prepares the bed; it returns the number of revisions it
		// recorded.
		before func(b *actionBed) int
		d      func(ns string) decision
		// wantRev is the recorded revision (0: none), with its reason;
		// wantValue the applied ConfigMap's value ("" : not applied).
		wantRev    int64
		wantReason string
		wantValue  string
		// phase and reason of the result when nothing is applied.
		phase  phase
		reason string
		event  string
	}{
		{
			name:    "first install records revision 1 and applies it",
			before:  func(*actionBed) int { return 0 },
			d:       func(ns string) decision { return installDecision("1.0.0", reasonInstall, 0, cm(ns, "op", "one")) },
			wantRev: 1, wantReason: reasonInstall, wantValue: "one", phase: phaseProgressing, reason: v1alpha1.ReasonWaitingForHealthy,
		},
		{
			name: "an upgrade records the next revision with its reason",
			before: func(b *actionBed) int {
				b.finish(b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one")), v1alpha1.OutcomeHealthy)
				return 1
			},
			d:       func(ns string) decision { return installDecision("1.1.0", reasonUpgrade, 0, cm(ns, "op", "two")) },
			wantRev: 2, wantReason: reasonUpgrade, wantValue: "two", phase: phaseProgressing, reason: v1alpha1.ReasonWaitingForHealthy,
		},
		{
			name: "an object of another owner is a conflict: nothing recorded nor applied",
			before: func(b *actionBed) int {
				other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: "op"}, Data: map[string]string{"value": "theirs"}}
				if err := b.env.Client.Create(b.ctx, other); err != nil {
					b.t.Fatal(err)
				}
				return 0
			},
			d:         func(ns string) decision { return installDecision("1.0.0", reasonInstall, 0, cm(ns, "op", "one")) },
			wantValue: "theirs", phase: phaseFailed, reason: v1alpha1.ReasonOwnershipConflict, event: "Warning OwnershipConflict",
		},
		{
			name:   "what the ServiceAccount may not write is refused before anything is recorded",
			before: func(*actionBed) int { return 0 },
			d: func(ns string) decision {
				// The tenant may not write into kube-system.
				return installDecision("1.0.0", reasonInstall, 0, cm(ns, "op", "one"), cm("kube-system", "ferry-"+ns, "x"))
			},
			phase: phaseFailed, reason: v1alpha1.ReasonPermissionsMissing, event: "Warning PermissionsMissing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, v1alpha1.SubscriptionSpec{})
			n := tt.before(b)
			b.events()
			x := b.exec()
			res := b.r.install(b.ctx, x, b.facts(x), tt.d(b.ns))
			if tt.wantRev == 0 && res.err != nil && tt.reason == "" {
				t.Fatalf("install: %v", res.err)
			}
			if res.phase != tt.phase || res.progressing == nil || res.progressing.reason != tt.reason {
				t.Fatalf("result phase %d, progressing %+v, err %v; want phase %d reason %s", res.phase, res.progressing, res.err, tt.phase, tt.reason)
			}
			revs := b.revisions()
			sub := b.get()
			if tt.wantRev == 0 {
				if len(revs) != n {
					t.Errorf("%d revisions recorded, want %d", len(revs), n)
				}
				if sub.Status.CurrentRevision != int64(n) {
					t.Errorf("status.currentRevision %d, want %d", sub.Status.CurrentRevision, n)
				}
			} else {
				if res.err != nil {
					t.Fatalf("install: %v", res.err)
				}
				last := revs[len(revs)-1]
				if len(revs) != int(tt.wantRev) || last.Spec.Revision != tt.wantRev || last.Spec.Reason != tt.wantReason || last.Status.Outcome != v1alpha1.OutcomeProgressing {
					t.Errorf("revisions %s, want revision %d %s Progressing last", outcomesOf(revs), tt.wantRev, tt.wantReason)
				}
				if sub.Status.CurrentRevision != tt.wantRev || res.rev == nil || res.rev.Spec.Revision != tt.wantRev {
					t.Errorf("status.currentRevision %d, result revision %v; want %d", sub.Status.CurrentRevision, res.rev, tt.wantRev)
				}
				if !hasRef(sub.Status.Inventory, "ConfigMap", b.ns, "op") {
					t.Errorf("inventory %v lacks the ConfigMap", sub.Status.Inventory)
				}
				if res.requeue != b.r.healthRequeue() {
					t.Errorf("requeue %v, want the health requeue", res.requeue)
				}
			}
			got := b.configMap("op")
			switch {
			case tt.wantValue == "" && got != nil:
				t.Errorf("ConfigMap applied: %v", got.Data)
			case tt.wantValue != "" && (got == nil || got.Data["value"] != tt.wantValue):
				t.Errorf("ConfigMap %v, want value %q", got, tt.wantValue)
			}
			evs := b.events()
			if tt.event == "" && len(evs) > 0 || tt.event != "" && (len(evs) != 1 || !strings.HasPrefix(evs[0], tt.event)) {
				t.Errorf("events %q, want %q", evs, tt.event)
			}
		})
	}
}

func outcomesOf(revs []v1alpha1.Revision) string {
	var s []string
	for _, r := range revs {
		s = append(s, r.Spec.Reason+"/"+string(r.Status.Outcome))
	}
	return strings.Join(s, " ")
}

func hasRef(inv []v1alpha1.ObjectReference, kind, ns, name string) bool {
	for _, r := range inv {
		if r.Kind == kind && r.Namespace == ns && r.Name == name {
			return true
		}
	}
	return false
}

// resolvedFacts are the facts of x when the catalog resolves the
// Subscription to version of pkg with objs as its rendered objects, as
// observe makes them: the health of what is applied, and whether that
// content failed its gate before and the retry annotation grants it
// another try.
func (b *actionBed) resolvedFacts(x *exec, version, reason string, objs ...*unstructured.Unstructured) *facts {
	b.t.Helper()
	f := b.facts(x)
	if f.current != nil {
		h, err := x.ap.Health(b.ctx, x.sub.Status.Inventory)
		if err != nil {
			b.t.Fatal(err)
		}
		f.health = &h
	}
	f.catalog = catalogFacts{usable: true, reachable: true, message: `CatalogSource "cat" serves the test's content`}
	status := resolver.StatusInstall
	if x.sub.Status.InstalledBundle != "" {
		status = resolver.StatusUpgrade
	}
	target := revision.Target{Catalog: "cat", Bundle: "pkg.v" + version, Version: version}
	f.resolution = &resolver.Decision{Subscription: x.sub.Namespace + "/" + x.sub.Name, Status: status,
		Target: &resolver.Target{Catalog: "cat", Package: "pkg", Bundle: target.Bundle, Version: semver.MustParse(version), Channel: "stable"}}
	digest, err := revision.Digest(objs)
	if err != nil {
		b.t.Fatal(err)
	}
	c := &candidate{content: content{target: target, objects: objs, digest: digest, reason: reason}}
	c.failed = failedWith(f.revisions, digest)
	c.retry = c.failed != nil && x.sub.Annotations[AnnotationRetryUpgrade] == c.failed.Spec.Version
	f.candidate = c
	return f
}

// TestActionInstallRetry: an upgrade that failed its health gate (and was
// rolled back) is installed again only when the annotation
// operators.ferry.dev/retry-upgrade names its version; the annotation is
// then consumed, and status.failedUpgrade cleared.
func TestActionInstallRetry(t *testing.T) {
	tests := []struct {
		name string
		// annotation is the retry annotation's value; "" for none.
		annotation string
		retried    bool
	}{
		{name: "with the annotation the failed version is installed again", annotation: "1.1.0", retried: true},
		{name: "without the annotation it is not"},
		{name: "an annotation naming another version does not retry it", annotation: "1.0.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, v1alpha1.SubscriptionSpec{})
			b.installedParent("1.0.0")
			// 1.1.0 misses its gate and is rolled back to 1.0.0, healthy.
			b.install("1.1.0", reasonUpgrade, 0, cm(b.ns, "op", "1.1.0"))
			x := b.exec()
			f := b.facts(x)
			rb := b.r.rollback(b.ctx, x, f, &f.revisions[0], "set by the test: not healthy")
			if rb.err != nil || rb.rev == nil {
				t.Fatalf("rollback: %v", rb.err)
			}
			if err := b.r.patchStatus(b.ctx, x); err != nil {
				t.Fatal(err)
			}
			x = b.exec()
			if res := b.r.inSync(b.ctx, x, b.facts(x), keepDecision(actInSync, rb.rev)); res.err != nil {
				t.Fatalf("in sync: %v", res.err)
			}
			if err := b.r.patchStatus(b.ctx, x); err != nil {
				t.Fatal(err)
			}
			if tt.annotation != "" {
				s := b.get()
				patch := client.MergeFrom(s.DeepCopy())
				s.Annotations = map[string]string{AnnotationRetryUpgrade: tt.annotation}
				if err := b.env.Client.Patch(b.ctx, s, patch); err != nil {
					t.Fatal(err)
				}
			}
			if fu := b.get().Status.FailedUpgrade; fu == nil || fu.Version != "1.1.0" {
				t.Fatalf("status.failedUpgrade %+v, want 1.1.0", fu)
			}
			b.events()

			// The catalog still resolves to 1.1.0, with the same content.
			x = b.exec()
			f = b.resolvedFacts(x, "1.1.0", reasonUpgrade, cm(b.ns, "op", "1.1.0"))
			if f.candidate.failed == nil || f.candidate.failed.Spec.Revision != 2 {
				t.Fatalf("the candidate's failed revision %+v, want revision 2", f.candidate.failed)
			}
			d := decide(f, healthTimeout(x.sub))
			res := b.r.act(b.ctx, x, f, d)
			if res.err != nil {
				t.Fatalf("%s: %v", d.action, res.err)
			}
			summarize(f, d, res)
			if err := b.r.writeStatus(b.ctx, x); err != nil {
				t.Fatalf("writing the status: %v", err)
			}
			sub := b.get()
			revs := b.revisions()
			if !tt.retried {
				if d.action != actInSync || d.upgrade == nil || d.upgrade.reason != v1alpha1.ReasonUpgradeFailed ||
					!strings.Contains(d.upgrade.message, "the annotation "+AnnotationRetryUpgrade+"=1.1.0 is set") {
					t.Errorf("decision %s, upgrade %+v; want InSync, %s naming the annotation", d.action, d.upgrade, v1alpha1.ReasonUpgradeFailed)
				}
				if len(revs) != 3 || sub.Status.CurrentRevision != 3 {
					t.Errorf("revisions %s, current %d; want the rollback current", outcomesOf(revs), sub.Status.CurrentRevision)
				}
				if got := b.configMap("op"); got == nil || got.Data["value"] != "1.0.0" {
					t.Errorf("ConfigMap %v, want 1.0.0 kept", got)
				}
				if sub.Status.FailedUpgrade == nil || sub.Annotations[AnnotationRetryUpgrade] != tt.annotation {
					t.Errorf("failedUpgrade %+v, annotations %v; want both kept", sub.Status.FailedUpgrade, sub.Annotations)
				}
				if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeUpgradeAvailable); c == nil || c.Reason != v1alpha1.ReasonUpgradeFailed {
					t.Errorf("UpgradeAvailable %+v, want %s", c, v1alpha1.ReasonUpgradeFailed)
				}
				return
			}
			if d.action != actInstall || !d.consumeRetry {
				t.Fatalf("decision %s (consume the retry: %v), want Install consuming it", d.action, d.consumeRetry)
			}
			last := revs[len(revs)-1]
			if len(revs) != 4 || last.Spec.Version != "1.1.0" || last.Spec.Reason != reasonUpgrade || last.Status.Outcome != v1alpha1.OutcomeProgressing || sub.Status.CurrentRevision != 4 {
				t.Errorf("revisions %s, current %d; want 1.1.0 recorded again as revision 4", outcomesOf(revs), sub.Status.CurrentRevision)
			}
			if got := b.configMap("op"); got == nil || got.Data["value"] != "1.1.0" {
				t.Errorf("ConfigMap %v, want 1.1.0 applied", got)
			}
			if _, ok := sub.Annotations[AnnotationRetryUpgrade]; ok || sub.Status.FailedUpgrade != nil {
				t.Errorf("annotations %v, failedUpgrade %+v; want the retry consumed", sub.Annotations, sub.Status.FailedUpgrade)
			}
			if sub.Status.State != v1alpha1.StateUpgrading {
				t.Errorf("state %s, want %s", sub.Status.State, v1alpha1.StateUpgrading)
			}
		})
	}
}

// TestActionInstallApplyFails: content the API server refuses is recorded
// and retried within its health timeout; past it, the revision fails its
// gate (an install) or is rolled back (an upgrade). What is written is
// valid: every condition has a reason.
func TestActionInstallApplyFails(t *testing.T) {
	tests := []struct {
		name string
		// upgrade: 1.0.0 is installed, healthy, before.
		upgrade bool
		// pastTimeout: a reconcile past the health timeout follows the
		// install.
		pastTimeout bool
		// outcome of the refused revision; phase, Progressing reason and
		// state written after the last reconcile.
		outcome v1alpha1.RevisionOutcome
		phase   phase
		reason  string
		state   v1alpha1.SubscriptionState
		// current is status.currentRevision; value ConfigMap op's value.
		current int64
		value   string
		event   string
	}{
		{
			name:    "within its timeout an install is retried",
			outcome: v1alpha1.OutcomeProgressing, phase: phaseProgressing, reason: v1alpha1.ReasonApplyFailed, state: v1alpha1.StateInstalling,
			current: 1, value: "1.0.0",
		},
		{
			name: "past its timeout an install fails its gate", pastTimeout: true,
			outcome: v1alpha1.OutcomeFailed, phase: phaseFailed, reason: v1alpha1.ReasonHealthGateFailed, state: v1alpha1.StateFailed,
			current: 1, value: "1.0.0", event: "Warning HealthGateFailed",
		},
		{
			name: "within its timeout an upgrade is retried", upgrade: true,
			outcome: v1alpha1.OutcomeProgressing, phase: phaseProgressing, reason: v1alpha1.ReasonApplyFailed, state: v1alpha1.StateUpgrading,
			current: 2, value: "1.1.0",
		},
		{
			// Decided as a rollback: the state says so, as for a health
			// gate missed.
			name: "past its timeout an upgrade is rolled back", upgrade: true, pastTimeout: true,
			outcome: v1alpha1.OutcomeRolledBack, phase: phaseProgressing, reason: v1alpha1.ReasonWaitingForHealthy, state: v1alpha1.StateUpgrading,
			current: 3, value: "1.0.0", event: "Warning RolledBack",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, v1alpha1.SubscriptionSpec{})
			version, reason, n := "1.0.0", reasonInstall, int64(1)
			if tt.upgrade {
				b.installedParent("1.0.0")
				version, reason, n = "1.1.0", reasonUpgrade, 2
			}
			b.events()
			objs := []*unstructured.Unstructured{cm(b.ns, "op", version), refusedConfigMap(b.ns)}
			x := b.exec()
			f := b.facts(x)
			d := installDecision(version, reason, 0, objs...)
			res := b.r.install(b.ctx, x, f, d)
			if !tt.pastTimeout {
				if !apierrors.IsInvalid(res.err) || res.phase != tt.phase || res.progressing == nil || !res.progressing.status || res.progressing.reason != tt.reason ||
					!strings.Contains(res.progressing.message, "applying pkg "+version+": ") {
					t.Fatalf("install: phase %d, progressing %+v, err %v; want the refusal, retried", res.phase, res.progressing, res.err)
				}
			} else {
				if res.err == nil {
					t.Fatalf("install of content the API server refuses: phase %d, no error", res.phase)
				}
				if err := b.r.patchStatus(b.ctx, x); err != nil {
					t.Fatal(err)
				}
				// The next reconcile, past the timeout: the health judges
				// Deployments and CRDs, not ConfigMaps, so the revision is
				// in sync but for its apply, which fails again.
				x = b.exec()
				f = b.facts(x)
				started := f.current.CreationTimestamp.Time
				if s := f.current.Status.StartedAt; s != nil {
					started = s.Time
				}
				f.now = started.Add(healthTimeout(x.sub) + time.Second)
				b.events()
				want := actGateFailed
				if tt.upgrade {
					want = actRollback
				}
				d, res = b.r.run(b.ctx, x, f, keepDecision(actInSync, f.current))
				if d.action != want || res.err != nil || res.phase != tt.phase || res.progressing == nil || res.progressing.reason != tt.reason {
					t.Fatalf("in sync past the timeout: %s, phase %d, progressing %+v, err %v; want %s, phase %d, %s", d.action, res.phase, res.progressing, res.err, want, tt.phase, tt.reason)
				}
			}
			summarize(f, d, res)
			if err := b.r.writeStatus(b.ctx, x); err != nil {
				t.Fatalf("writing the status: %v", err)
			}
			sub := b.get()
			if sub.Status.State != tt.state || sub.Status.CurrentRevision != tt.current {
				t.Errorf("state %s, current revision %d; want %s, %d", sub.Status.State, sub.Status.CurrentRevision, tt.state, tt.current)
			}
			for _, c := range sub.Status.Conditions {
				if c.Reason == "" {
					t.Errorf("condition %s without a reason: %q", c.Type, c.Message)
				}
			}
			if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeProgressing); c == nil || c.Reason != tt.reason {
				t.Errorf("Progressing %+v, want %s", c, tt.reason)
			}
			if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeReady); c == nil || c.Status != metav1.ConditionFalse {
				t.Errorf("Ready %+v, want False", c)
			}
			if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeRolledBack); tt.outcome == v1alpha1.OutcomeRolledBack &&
				(c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonHealthGateFailed || !strings.Contains(c.Message, "apply failed: ")) {
				t.Errorf("RolledBack %+v, want True HealthGateFailed with the apply's failure", c)
			}
			revs := b.revisions()
			var refused *v1alpha1.Revision
			for i := range revs {
				if revs[i].Spec.Revision == n {
					refused = &revs[i]
				}
			}
			if refused == nil || refused.Status.Outcome != tt.outcome {
				t.Fatalf("revisions %s, want revision %d %s", outcomesOf(revs), n, tt.outcome)
			}
			if tt.pastTimeout {
				fu := sub.Status.FailedUpgrade
				if fu == nil || fu.Revision != n || !strings.HasPrefix(fu.Reason, "apply failed: ") || !strings.Contains(refused.Status.Message, "apply failed: ") {
					t.Errorf("failedUpgrade %+v, revision message %q; want the apply's failure", fu, refused.Status.Message)
				}
			}
			if got := b.configMap("op"); got == nil || got.Data["value"] != tt.value {
				t.Errorf("ConfigMap op %v, want value %s", got, tt.value)
			}
			evs := b.events()
			if tt.event == "" && len(evs) > 0 || tt.event != "" && (len(evs) != 1 || !strings.HasPrefix(evs[0], tt.event)) {
				t.Errorf("events %q, want %q", evs, tt.event)
			}
		})
	}
}

// refusedConfigMap is a ConfigMap the API server refuses (Invalid): its
// data key is not a valid key. Nothing checked before the apply sees it.
func refusedConfigMap(ns string) *unstructured.Unstructured {
	u := cm(ns, "refused", "x")
	_ = unstructured.SetNestedStringMap(u.Object, map[string]string{"not a key!": "x"}, "data")
	return u
}
