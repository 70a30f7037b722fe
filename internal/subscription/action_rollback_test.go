package subscription

import (
	"strings"
	"testing"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// TestActionRollback: a revision that missed its health gate is rolled
// back to the last healthy revision's objects, or, with nothing to return
// to, marked failed.
func TestActionRollback(t *testing.T) {
	const cause = "deployment op: 0/1 replicas available"
	tests := []struct {
		name string
		// before installs what the test needs; it returns the revision to
		// return to, nil when there is none.
		before func(b *actionBed) *v1alpha1.Revision
		// gate is true for the action without anything to return to.
		gate bool
		// revisions are the reasons and outcomes of the revisions after.
		revisions string
		// value of the ConfigMap op after; current the current revision.
		value   string
		current int64
		phase   phase
		event   string
	}{
		{
			name: "restores the last healthy revision's objects as a new revision",
			before: func(b *actionBed) *v1alpha1.Revision {
				one := b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"), cm(b.ns, "kept", "one"))
				b.finish(one, v1alpha1.OutcomeHealthy)
				b.install("1.1.0", reasonUpgrade, 0, cm(b.ns, "op", "two"), cm(b.ns, "kept", "two"))
				return one
			},
			revisions: "Install/Healthy Upgrade/RolledBack Rollback/Progressing",
			value:     "one", current: 3, phase: phaseProgressing, event: "Warning RolledBack",
		},
		{
			name: "restores past a revision that failed before",
			before: func(b *actionBed) *v1alpha1.Revision {
				one := b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"), cm(b.ns, "kept", "one"))
				b.finish(one, v1alpha1.OutcomeHealthy)
				b.finish(b.install("1.1.0", reasonUpgrade, 0, cm(b.ns, "op", "two"), cm(b.ns, "kept", "two")), v1alpha1.OutcomeFailed)
				b.install("1.2.0", reasonUpgrade, 0, cm(b.ns, "op", "three"), cm(b.ns, "kept", "three"))
				return one
			},
			revisions: "Install/Healthy Upgrade/Failed Upgrade/RolledBack Rollback/Progressing",
			value:     "one", current: 4, phase: phaseProgressing, event: "Warning RolledBack",
		},
		{
			name: "an install with nothing to return to is marked failed",
			before: func(b *actionBed) *v1alpha1.Revision {
				b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"), cm(b.ns, "kept", "one"))
				return nil
			},
			gate: true, revisions: "Install/Failed", value: "one", current: 1, phase: phaseFailed, event: "Warning HealthGateFailed",
		},
		{
			name: "an upgrade that may not roll back is marked failed and stays applied",
			before: func(b *actionBed) *v1alpha1.Revision {
				b.finish(b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"), cm(b.ns, "kept", "one")), v1alpha1.OutcomeHealthy)
				b.install("1.1.0", reasonUpgrade, 0, cm(b.ns, "op", "two"), cm(b.ns, "kept", "two"))
				return nil
			},
			gate: true, revisions: "Install/Healthy Upgrade/Failed", value: "two", current: 2, phase: phaseFailed, event: "Warning HealthGateFailed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, v1alpha1.SubscriptionSpec{})
			prev := tt.before(b)
			b.events()
			x := b.exec()
			f := b.facts(x)
			failed := f.current
			var res result
			if tt.gate {
				res = b.r.gateFailed(b.ctx, x, f, cause)
			} else {
				res = b.r.rollback(b.ctx, x, f, prev, cause)
			}
			if res.err != nil || res.phase != tt.phase {
				t.Fatalf("phase %d, err %v; want phase %d", res.phase, res.err, tt.phase)
			}
			revs := b.revisions()
			if got := outcomesOf(revs); got != tt.revisions {
				t.Errorf("revisions %q, want %q", got, tt.revisions)
			}
			if fu := x.sub.Status.FailedUpgrade; fu == nil || fu.Revision != failed.Spec.Revision || fu.Version != failed.Spec.Version || fu.Reason != cause {
				t.Errorf("failedUpgrade %+v, want revision %d (%s): %s", fu, failed.Spec.Revision, failed.Spec.Version, cause)
			}
			if got := b.configMap("op"); got == nil || got.Data["value"] != tt.value {
				t.Errorf("ConfigMap op %v, want value %q", got, tt.value)
			}
			if got := b.configMap("kept"); got == nil || got.Data["value"] != tt.value {
				t.Errorf("ConfigMap kept %v, want value %q", got, tt.value)
			}
			// The status summarize writes: the current revision.
			if x.sub.Status.CurrentRevision != tt.current {
				t.Errorf("status.currentRevision %d, want %d", x.sub.Status.CurrentRevision, tt.current)
			}
			if prev != nil {
				last := revs[len(revs)-1]
				if last.Spec.RollbackOf != prev.Spec.Revision || last.Spec.Version != prev.Spec.Version || last.Spec.ContentDigest != prev.Spec.ContentDigest {
					t.Errorf("restored revision %d: rollbackOf %d, version %s, digest %s; want %d, %s, %s", last.Spec.Revision,
						last.Spec.RollbackOf, last.Spec.Version, last.Spec.ContentDigest, prev.Spec.Revision, prev.Spec.Version, prev.Spec.ContentDigest)
				}
				// Written first: the failed revision's outcome is in the status.
				if stored := b.get(); stored.Status.FailedUpgrade == nil || stored.Status.FailedUpgrade.Revision != failed.Spec.Revision {
					t.Errorf("stored failedUpgrade %+v, want revision %d", stored.Status.FailedUpgrade, failed.Spec.Revision)
				}
				if x.sub.Status.TargetVersion != prev.Spec.Version || res.rolledBack == nil || !res.rolledBack.status || res.rolledBack.reason != v1alpha1.ReasonHealthGateFailed {
					t.Errorf("targetVersion %s, rolledBack %+v; want %s, true HealthGateFailed", x.sub.Status.TargetVersion, res.rolledBack, prev.Spec.Version)
				}
			} else if res.progressing == nil || res.progressing.status || res.progressing.reason != v1alpha1.ReasonHealthGateFailed || !strings.Contains(res.progressing.message, cause) {
				t.Errorf("progressing %+v, want false HealthGateFailed with the cause", res.progressing)
			}
			evs := b.events()
			if len(evs) != 1 || !strings.HasPrefix(evs[0], tt.event) || !strings.Contains(evs[0], cause) {
				t.Errorf("events %q, want one %q with the cause", evs, tt.event)
			}
		})
	}
}
