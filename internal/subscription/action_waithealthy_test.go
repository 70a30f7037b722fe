package subscription

import (
	"strings"
	"testing"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// TestActionWaitHealthy: the current revision is applied again (drift
// undone) while it is waited for; a cluster to blame is said in an event;
// a revision that failed its gate stays failed.
func TestActionWaitHealthy(t *testing.T) {
	tests := []struct {
		name    string
		act     action
		outcome v1alpha1.RevisionOutcome
		phase   phase
		// progressing is the Progressing status; event the recorded event.
		progressing bool
		event       string
	}{
		{name: "a progressing revision is waited for", act: actWaitHealthy, outcome: v1alpha1.OutcomeProgressing, phase: phaseProgressing, progressing: true},
		{name: "a cluster to blame is said", act: actWaitCluster, outcome: v1alpha1.OutcomeProgressing, phase: phaseProgressing, progressing: true, event: "Warning WaitingForCluster"},
		{name: "a revision that failed its gate stays failed", act: actWaitHealthy, outcome: v1alpha1.OutcomeFailed, phase: phaseFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, v1alpha1.SubscriptionSpec{})
			rev := b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"))
			if tt.outcome != v1alpha1.OutcomeProgressing {
				b.finish(rev, tt.outcome)
			}
			b.drift("op")
			b.events()
			x := b.exec()
			f := b.facts(x)
			d := keepDecision(tt.act, f.current)
			res := b.r.waitHealthy(b.ctx, x, f, d)
			if res.err != nil || res.phase != tt.phase || res.requeue != b.r.healthRequeue() {
				t.Fatalf("phase %d, requeue %v, err %v; want phase %d, the health requeue", res.phase, res.requeue, res.err, tt.phase)
			}
			if p := res.progressing; p == nil || p.status != tt.progressing || p.reason != d.reason || p.message != d.message {
				t.Errorf("progressing %+v, want %v %s %q", p, tt.progressing, d.reason, d.message)
			}
			if got := b.configMap("op"); got == nil || got.Data["value"] != "one" {
				t.Errorf("drift not undone: %v", got)
			}
			revs := b.revisions()
			if len(revs) != 1 || revs[0].Status.Outcome != tt.outcome || x.sub.Status.CurrentRevision != rev.Spec.Revision {
				t.Errorf("revisions %s, current %d; want one, %s, current", outcomesOf(revs), x.sub.Status.CurrentRevision, tt.outcome)
			}
			evs := b.events()
			if tt.event == "" && len(evs) > 0 || tt.event != "" && (len(evs) != 1 || !strings.HasPrefix(evs[0], tt.event)) {
				t.Errorf("events %q, want %q", evs, tt.event)
			}
		})
	}
}
