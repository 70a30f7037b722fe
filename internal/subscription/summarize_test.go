package subscription

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/resolver"
)

// TestSummarize: status.state and the Installed and Progressing conditions
// are derived once, from the decision and the action's result.
func TestSummarize(t *testing.T) {
	rev := func(bundle, reason string, outcome v1alpha1.RevisionOutcome) *v1alpha1.Revision {
		return &v1alpha1.Revision{Spec: v1alpha1.RevisionSpec{Revision: 2, Package: "pkg", Bundle: bundle, Version: "x", Reason: reason}, Status: v1alpha1.RevisionStatus{Outcome: outcome}}
	}
	type want struct {
		state           v1alpha1.SubscriptionState
		progressing     metav1.ConditionStatus
		progressingWhy  string
		installed       metav1.ConditionStatus // "" when not set
		installedReason string
	}
	tests := []struct {
		name      string
		installed string
		d         decision
		res       result
		want      want
	}{
		{
			name: "paused", d: decision{action: actHold, reason: v1alpha1.ReasonPaused, message: "paused"},
			res:  hold(decision{reason: v1alpha1.ReasonPaused, message: "paused"}),
			want: want{state: v1alpha1.StatePaused, progressing: metav1.ConditionFalse, progressingWhy: v1alpha1.ReasonPaused},
		},
		{
			name: "no catalog yet", d: decision{action: actWaitCatalog, reason: v1alpha1.ReasonCatalogUnavailable, message: "no catalog"},
			res:  waitCatalog(decision{reason: v1alpha1.ReasonCatalogUnavailable, message: "no catalog"}),
			want: want{state: v1alpha1.StateResolving, progressing: metav1.ConditionTrue, progressingWhy: v1alpha1.ReasonCatalogUnavailable},
		},
		{
			name: "cannot act with nothing installed", d: decision{action: actCannotAct, reason: v1alpha1.ReasonNoServiceAccount, message: "cannot act: no ServiceAccount"},
			res:  result{phase: phaseFailed, progressing: &note{false, v1alpha1.ReasonNoServiceAccount, "cannot act: no ServiceAccount"}},
			want: want{state: v1alpha1.StateFailed, progressing: metav1.ConditionFalse, progressingWhy: v1alpha1.ReasonNoServiceAccount, installed: metav1.ConditionFalse, installedReason: v1alpha1.ReasonNoServiceAccount},
		},
		{
			name: "cannot act keeps an installed operator installed", installed: "pkg.v1",
			d:    decision{action: actCannotAct, reason: v1alpha1.ReasonPermissionsMissing, message: "cannot act"},
			res:  result{phase: phaseFailed, progressing: &note{false, v1alpha1.ReasonPermissionsMissing, "cannot act"}},
			want: want{state: v1alpha1.StateInstalled, progressing: metav1.ConditionFalse, progressingWhy: v1alpha1.ReasonPermissionsMissing},
		},
		{
			name: "dependencies with nothing installed", d: decision{action: actWaitDependencies, reason: v1alpha1.ReasonDependencyNotReady, message: "waiting"},
			res:  result{phase: phaseWaiting, progressing: &note{true, v1alpha1.ReasonDependencyNotReady, "waiting"}},
			want: want{state: v1alpha1.StateInstalling, progressing: metav1.ConditionTrue, progressingWhy: v1alpha1.ReasonDependencyNotReady, installed: metav1.ConditionFalse, installedReason: v1alpha1.ReasonDependencyNotReady},
		},
		{
			name: "first install applied", d: decision{action: actInstall},
			res:  result{phase: phaseProgressing, rev: rev("pkg.v1", reasonInstall, v1alpha1.OutcomeProgressing), progressing: &note{true, v1alpha1.ReasonWaitingForHealthy, "waiting"}},
			want: want{state: v1alpha1.StateInstalling, progressing: metav1.ConditionTrue, progressingWhy: v1alpha1.ReasonWaitingForHealthy, installed: metav1.ConditionFalse, installedReason: v1alpha1.ReasonInstalling},
		},
		{
			name: "upgrade applied", installed: "pkg.v1", d: decision{action: actInstall},
			res:  result{phase: phaseProgressing, rev: rev("pkg.v2", reasonUpgrade, v1alpha1.OutcomeProgressing), progressing: &note{true, v1alpha1.ReasonWaitingForHealthy, "waiting"}},
			want: want{state: v1alpha1.StateUpgrading, progressing: metav1.ConditionTrue, progressingWhy: v1alpha1.ReasonWaitingForHealthy},
		},
		{
			name: "reconfiguration waiting", installed: "pkg.v1", d: decision{action: actWaitHealthy, reason: v1alpha1.ReasonWaitingForHealthy, message: "waiting"},
			res:  result{phase: phaseProgressing, rev: rev("pkg.v1", reasonReconfigure, v1alpha1.OutcomeProgressing), progressing: &note{true, v1alpha1.ReasonWaitingForHealthy, "waiting"}},
			want: want{state: v1alpha1.StateInstalled, progressing: metav1.ConditionTrue, progressingWhy: v1alpha1.ReasonWaitingForHealthy, installed: metav1.ConditionFalse, installedReason: v1alpha1.ReasonWaitingForHealthy},
		},
		{
			name: "waiting for the cluster", installed: "pkg.v1", d: decision{action: actWaitCluster, reason: v1alpha1.ReasonWaitingForCluster, message: "node down"},
			res:  result{phase: phaseProgressing, rev: rev("pkg.v2", reasonUpgrade, v1alpha1.OutcomeProgressing), progressing: &note{true, v1alpha1.ReasonWaitingForCluster, "node down"}},
			want: want{state: v1alpha1.StateUpgrading, progressing: metav1.ConditionTrue, progressingWhy: v1alpha1.ReasonWaitingForCluster},
		},
		{
			name: "rolled back", installed: "pkg.v1", d: decision{action: actRollback},
			res: result{phase: phaseProgressing, rev: rev("pkg.v1", reasonRollback, v1alpha1.OutcomeProgressing),
				progressing: &note{true, v1alpha1.ReasonWaitingForHealthy, "rolling back"}, rolledBack: &note{true, v1alpha1.ReasonHealthGateFailed, "restored"}},
			want: want{state: v1alpha1.StateUpgrading, progressing: metav1.ConditionTrue, progressingWhy: v1alpha1.ReasonWaitingForHealthy},
		},
		{
			name: "gate failed with nothing to return to", d: decision{action: actGateFailed},
			res: result{phase: phaseFailed, rev: rev("pkg.v1", reasonInstall, v1alpha1.OutcomeFailed),
				progressing: &note{false, v1alpha1.ReasonHealthGateFailed, "failed"}, installed: &note{false, v1alpha1.ReasonHealthGateFailed, "failed"}},
			want: want{state: v1alpha1.StateFailed, progressing: metav1.ConditionFalse, progressingWhy: v1alpha1.ReasonHealthGateFailed, installed: metav1.ConditionFalse, installedReason: v1alpha1.ReasonHealthGateFailed},
		},
		{
			name: "in sync", installed: "pkg.v1", d: decision{action: actInSync},
			res: result{phase: phaseHealthy, rev: rev("pkg.v1", reasonInstall, v1alpha1.OutcomeHealthy),
				progressing: &note{false, v1alpha1.ReasonInstalled, "nothing to do"}, installed: &note{true, v1alpha1.ReasonInstalled, "healthy"}},
			want: want{state: v1alpha1.StateInstalled, progressing: metav1.ConditionFalse, progressingWhy: v1alpha1.ReasonInstalled, installed: metav1.ConditionTrue, installedReason: v1alpha1.ReasonInstalled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := decideFacts("", "")
			f.resolution = nil
			if tt.installed != "" {
				f.sub.Status.InstalledVersion, f.sub.Status.InstalledBundle = "1", tt.installed
			}
			summarize(f, tt.d, tt.res)
			s := f.sub.Status
			if s.State != tt.want.state {
				t.Errorf("state = %s, want %s", s.State, tt.want.state)
			}
			p := meta.FindStatusCondition(s.Conditions, v1alpha1.TypeProgressing)
			if p == nil || p.Status != tt.want.progressing || p.Reason != tt.want.progressingWhy || p.ObservedGeneration != f.sub.Generation {
				t.Errorf("Progressing = %+v, want %s %s", p, tt.want.progressing, tt.want.progressingWhy)
			}
			wantReady := metav1.ConditionFalse
			if tt.want.installed == metav1.ConditionTrue && tt.want.progressing == metav1.ConditionFalse {
				wantReady = metav1.ConditionTrue
			}
			if r := meta.FindStatusCondition(s.Conditions, v1alpha1.TypeReady); r == nil || r.Status != wantReady || (wantReady == metav1.ConditionFalse && r.Reason == v1alpha1.ReasonInstalled) {
				t.Errorf("Ready = %+v, want %s", r, wantReady)
			}
			i := meta.FindStatusCondition(s.Conditions, v1alpha1.TypeInstalled)
			switch {
			case tt.want.installed == "" && i != nil:
				t.Errorf("Installed = %+v, want none", i)
			case tt.want.installed != "" && (i == nil || i.Status != tt.want.installed || i.Reason != tt.want.installedReason):
				t.Errorf("Installed = %+v, want %s %s", i, tt.want.installed, tt.want.installedReason)
			}
		})
	}
}

// TestSummarizeResolution: what the catalogs and the resolver said is
// written whatever the action.
func TestSummarizeResolution(t *testing.T) {
	f := decideFacts("", "1.0.0")
	f.resolution.Warnings = []string{"package pkg is deprecated: use other"}
	f.latest = "1.2.0"
	f.catalog.digest = "sha256:abc"
	summarize(f, decision{action: actInstall}, result{phase: phaseProgressing})
	s := f.sub.Status
	r := meta.FindStatusCondition(s.Conditions, v1alpha1.TypeResolved)
	if r == nil || r.Reason != v1alpha1.ReasonResolved || r.Message != `pkg 1.0.0 from catalog "cat", channel "stable"; package pkg is deprecated: use other` {
		t.Errorf("Resolved = %+v", r)
	}
	if s.LatestVersion != "1.2.0" || s.CatalogDigest != "sha256:abc" {
		t.Errorf("latest %q, catalog digest %q", s.LatestVersion, s.CatalogDigest)
	}

	f = decideFacts("", "")
	f.resolution = &resolver.Decision{Status: resolver.StatusUnsatisfiable, Explanation: &resolver.Explanation{Message: "nothing fits"}}
	d := decide(f, decideTimeout)
	summarize(f, d, result{phase: phaseFailed})
	if r := meta.FindStatusCondition(f.sub.Status.Conditions, v1alpha1.TypeResolved); r == nil || r.Reason != v1alpha1.ReasonUnsatisfiable || f.sub.Status.Explanation != "nothing fits" {
		t.Errorf("Resolved = %+v, explanation %q", r, f.sub.Status.Explanation)
	}
	if f.sub.Status.State != v1alpha1.StateFailed {
		t.Errorf("state = %s", f.sub.Status.State)
	}
}
