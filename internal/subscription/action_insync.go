package subscription

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// inSync applies the current, healthy revision again (drift) and records
// that it passed its health gate: its version is the installed one. For a
// Manual Subscription with an upgrade waiting for approval
// (actHoldForApproval) the status says what waits.
func (r *Reconciler) inSync(ctx context.Context, x *exec, f *facts, d decision) result {
	sub := x.sub
	rev := f.current
	if res, ok := r.reapply(ctx, x, f, d); !ok {
		return res
	}
	res := result{phase: phaseHealthy, rev: rev}
	if rev.Status.Outcome != v1alpha1.OutcomeHealthy {
		if err := r.revisions().Finish(ctx, rev, v1alpha1.OutcomeHealthy, "passed the health gate"); err != nil {
			return result{err: err}
		}
		if fu := sub.Status.FailedUpgrade; fu != nil && rev.Spec.Reason != reasonRollback && fu.ContentDigest != rev.Spec.ContentDigest {
			sub.Status.FailedUpgrade = nil
		}
	}
	if sub.Status.InstalledBundle != rev.Spec.Bundle {
		upgrade := sub.Status.InstalledBundle != ""
		verb, reason := "installed", v1alpha1.EventReasonInstalled
		switch {
		case rev.Spec.Reason == reasonRollback:
			verb, reason = "rolled back to", v1alpha1.EventReasonRolledBack
		case rev.Spec.Reason == reasonDowngrade:
			verb, reason = "downgraded to", v1alpha1.EventReasonDowngraded
		case upgrade:
			verb, reason = "upgraded to", v1alpha1.EventReasonUpgraded
		}
		if upgrade && (rev.Spec.Reason == reasonUpgrade || rev.Spec.Reason == reasonDowngrade) {
			upgradesTotal.WithLabelValues(sub.Spec.Package, resultSucceeded).Inc()
		}
		r.Recorder.Eventf(sub, nil, corev1.EventTypeNormal, reason, "Install", "%s %s %s from catalog %q (revision %d)", rev.Spec.Package, verb, rev.Spec.Version, rev.Spec.Catalog, rev.Spec.Revision)
		x.log.Info("operator "+verb, "package", rev.Spec.Package, "version", rev.Spec.Version, "catalog", rev.Spec.Catalog, "revision", rev.Spec.Revision)
		// Resolve again from the new installed version: an upgrade may
		// already be reachable from it.
		res.requeue = time.Millisecond
	}
	if rev.Spec.Reason != reasonRollback && rev.Spec.Reason != reasonReconfigure {
		if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeRolledBack); c != nil && c.Status == metav1.ConditionTrue {
			res.rolledBack = &note{false, v1alpha1.ReasonInstalled, fmt.Sprintf("revision %d (%s) is healthy", rev.Spec.Revision, rev.Spec.Version)}
		}
	}
	sub.Status.InstalledVersion = rev.Spec.Version
	sub.Status.InstalledBundle = rev.Spec.Bundle
	sub.Status.Catalog = rev.Spec.Catalog
	res.installed = &note{true, v1alpha1.ReasonInstalled, fmt.Sprintf("%s %s is installed and healthy (revision %d)", rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision)}
	res.progressing = &note{false, v1alpha1.ReasonInstalled, "nothing to do"}
	if d.pending != nil {
		res.progressing = &note{false, v1alpha1.ReasonUpgradePending, fmt.Sprintf("%s %s waits for approval", sub.Spec.Package, d.pending.Version)}
	}
	res.err = r.pruneHistory(ctx, sub)
	return res
}
