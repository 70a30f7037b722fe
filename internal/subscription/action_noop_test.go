package subscription

import (
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/events"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// TestActionsThatChangeNothing: hold, waitCatalog and markFailed write no
// object; they say why through their result, and markFailed records an
// event for a version that cannot be installed or a refused revision.
func TestActionsThatChangeNothing(t *testing.T) {
	tests := []struct {
		name      string
		installed string
		d         decision
		run       func(r *Reconciler, x *exec, d decision) result
		phase     phase
		// progressing is the Progressing status; installed the Installed
		// reason ("" when not set); event the recorded event ("" for none).
		progressing     bool
		installedReason string
		event           string
	}{
		{
			name: "hold", d: decision{action: actHold, reason: v1alpha1.ReasonPaused, message: "paused"},
			run:   func(_ *Reconciler, _ *exec, d decision) result { return hold(d) },
			phase: phaseHeld,
		},
		{
			name: "wait for the catalog", d: decision{action: actWaitCatalog, reason: v1alpha1.ReasonCatalogUnavailable, message: "fetching"},
			run:   func(_ *Reconciler, _ *exec, d decision) result { return waitCatalog(d) },
			phase: phaseWaiting, progressing: true,
		},
		{
			name: "unsatisfiable with nothing installed", d: decision{action: actFail, reason: v1alpha1.ReasonUnsatisfiable, message: "waiting for the catalog or the spec to change"},
			run:   func(r *Reconciler, x *exec, d decision) result { return r.markFailed(x, d) },
			phase: phaseFailed, installedReason: v1alpha1.ReasonNotInstalled,
		},
		{
			name: "unsatisfiable with an operator installed", installed: "1.0.0", d: decision{action: actFail, reason: v1alpha1.ReasonUnsatisfiable, message: "waiting"},
			run:   func(r *Reconciler, x *exec, d decision) result { return r.markFailed(x, d) },
			phase: phaseFailed,
		},
		{
			name: "invalid bundle", d: decision{action: actFail, reason: v1alpha1.ReasonInvalidBundle, message: "pkg 1.0.0 cannot be installed, nothing was applied: kind Gizmo"},
			run:   func(r *Reconciler, x *exec, d decision) result { return r.markFailed(x, d) },
			phase: phaseFailed, event: "Warning InvalidBundle pkg 1.0.0 cannot be installed, nothing was applied: kind Gizmo",
		},
		{
			name: "refused revision", installed: "1.1.0", d: decision{action: actRefuse, reason: v1alpha1.ReasonRevisionUntrusted, message: "spec.rollbackTo names revision 1, which is refused"},
			run:   func(r *Reconciler, x *exec, d decision) result { return r.markFailed(x, d) },
			phase: phaseFailed, event: "Warning RevisionUntrusted spec.rollbackTo names revision 1, which is refused",
		},
		{
			name: "cannot act", d: decision{action: actCannotAct, reason: v1alpha1.ReasonNoServiceAccount, message: "cannot act: no ServiceAccount"},
			run:   func(r *Reconciler, x *exec, d decision) result { return r.markFailed(x, d) },
			phase: phaseFailed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			r := &Reconciler{Recorder: rec}
			f := decideFacts(tt.installed, "")
			f.sub.Spec.RollbackTo = &v1alpha1.RollbackTarget{Revision: 1}
			x := &exec{sub: f.sub, log: logr.Discard()}
			res := tt.run(r, x, tt.d)
			if res.phase != tt.phase || res.err != nil {
				t.Errorf("phase %d, err %v; want phase %d", res.phase, res.err, tt.phase)
			}
			if res.progressing == nil || res.progressing.status != tt.progressing || res.progressing.reason != tt.d.reason || res.progressing.message != tt.d.message {
				t.Errorf("progressing = %+v, want %v %s %q", res.progressing, tt.progressing, tt.d.reason, tt.d.message)
			}
			switch {
			case res.installed == nil && tt.installedReason != "":
				t.Errorf("no Installed condition, want %s", tt.installedReason)
			case res.installed != nil && res.installed.reason != tt.installedReason:
				t.Errorf("installed = %+v, want %q", res.installed, tt.installedReason)
			}
			var got []string
			for len(rec.Events) > 0 {
				got = append(got, <-rec.Events)
			}
			if want := tt.event; (want == "" && len(got) > 0) || (want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], want))) {
				t.Errorf("events %q, want %q", got, want)
			}
		})
	}
}
