package subscription

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// TestActionInSync: the current revision is applied again (drift undone)
// and recorded healthy; its version becomes the installed one, and an
// upgrade waiting for approval is said.
func TestActionInSync(t *testing.T) {
	tests := []struct {
		name string
		// before installs; it returns the current revision.
		before  func(b *actionBed) *v1alpha1.Revision
		act     action
		pending *v1alpha1.AvailableUpgrade
		// installed is the installed version after; reason the Progressing
		// reason; event the recorded event ("": none).
		installed, reason, event string
		requeue                  time.Duration
	}{
		{
			name: "a first install becomes the installed version",
			before: func(b *actionBed) *v1alpha1.Revision {
				return b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"))
			},
			act:       actInSync,
			installed: "1.0.0", reason: v1alpha1.ReasonInstalled, event: "Normal Installed", requeue: time.Millisecond,
		},
		{
			name: "an upgrade becomes the installed version",
			before: func(b *actionBed) *v1alpha1.Revision {
				b.inSync(b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one")))
				return b.install("1.1.0", reasonUpgrade, 0, cm(b.ns, "op", "two"))
			},
			act:       actInSync,
			installed: "1.1.0", reason: v1alpha1.ReasonInstalled, event: "Normal Upgraded", requeue: time.Millisecond,
		},
		{
			name: "an installed version in sync records nothing new",
			before: func(b *actionBed) *v1alpha1.Revision {
				rev := b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"))
				b.inSync(rev)
				return rev
			},
			act:       actInSync,
			installed: "1.0.0", reason: v1alpha1.ReasonInstalled,
		},
		{
			name: "an upgrade waiting for approval is said",
			before: func(b *actionBed) *v1alpha1.Revision {
				rev := b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"))
				b.inSync(rev)
				return rev
			},
			act: actHoldForApproval, pending: &v1alpha1.AvailableUpgrade{Version: "1.1.0"},
			installed: "1.0.0", reason: v1alpha1.ReasonUpgradePending,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, v1alpha1.SubscriptionSpec{})
			rev := tt.before(b)
			b.drift("op")
			b.events()
			x := b.exec()
			d := keepDecision(tt.act, rev)
			d.pending = tt.pending
			res := b.r.inSync(b.ctx, x, b.facts(x), d)
			if res.err != nil || res.phase != phaseHealthy || res.requeue != tt.requeue {
				t.Fatalf("phase %d, requeue %v, err %v; want healthy, requeue %v", res.phase, res.requeue, res.err, tt.requeue)
			}
			if res.progressing == nil || res.progressing.reason != tt.reason || res.installed == nil || !res.installed.status {
				t.Errorf("progressing %+v, installed %+v; want %s, installed", res.progressing, res.installed, tt.reason)
			}
			if tt.pending != nil && !strings.Contains(res.progressing.message, tt.pending.Version) {
				t.Errorf("progressing %q does not name %s", res.progressing.message, tt.pending.Version)
			}
			if s := x.sub.Status; s.InstalledVersion != tt.installed || s.InstalledBundle != rev.Spec.Bundle || s.Catalog != rev.Spec.Catalog {
				t.Errorf("installed %s %s from %s, want %s %s from %s", s.InstalledVersion, s.InstalledBundle, s.Catalog, tt.installed, rev.Spec.Bundle, rev.Spec.Catalog)
			}
			revs := b.revisions()
			if last := revs[len(revs)-1]; last.Spec.Revision != rev.Spec.Revision || last.Status.Outcome != v1alpha1.OutcomeHealthy {
				t.Errorf("revisions %s: want revision %d Healthy last", outcomesOf(revs), rev.Spec.Revision)
			}
			if got := b.configMap("op"); got == nil || got.Data["value"] != map[bool]string{true: "two", false: "one"}[tt.installed == "1.1.0"] {
				t.Errorf("drift not undone: %v", got)
			}
			evs := b.events()
			if tt.event == "" && len(evs) > 0 || tt.event != "" && (len(evs) != 1 || !strings.HasPrefix(evs[0], tt.event)) {
				t.Errorf("events %q, want %q", evs, tt.event)
			}
		})
	}
}

// inSync records rev healthy and installed, in the status as summarize
// writes it.
func (b *actionBed) inSync(rev *v1alpha1.Revision) {
	b.t.Helper()
	x := b.exec()
	res := b.r.inSync(b.ctx, x, b.facts(x), keepDecision(actInSync, rev))
	if res.err != nil {
		b.t.Fatal(res.err)
	}
	if err := b.r.patchStatus(b.ctx, x); err != nil {
		b.t.Fatal(err)
	}
}

// drift changes the ConfigMap's value as someone else would.
func (b *actionBed) drift(name string) {
	b.t.Helper()
	c := b.configMap(name)
	if c == nil {
		b.t.Fatalf("no ConfigMap %s", name)
	}
	c.Data["value"] = "drifted"
	if err := b.env.Client.Update(b.ctx, c); err != nil {
		b.t.Fatal(err)
	}
}
