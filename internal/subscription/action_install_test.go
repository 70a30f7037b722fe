package subscription

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
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
