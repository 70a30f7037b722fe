package subscription

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// waitHealthy waits for the current revision to become healthy: the health
// is read again (observe) on every requeue until the revision's health
// timeout. Past it, a cluster to blame (actWaitCluster) keeps it waiting,
// and says so. A revision that already failed its gate stays failed until
// it becomes healthy after all. The revision is applied again (so drift is
// corrected) unless this installer applied it, as the Subscription's
// generation asks, less than reapplyBound ago, and no installed object of
// the Subscription changed since (appliedRecords): a plain recheck only
// reads health.
func (r *Reconciler) waitHealthy(ctx context.Context, x *exec, f *facts, d decision) result {
	sub := x.sub
	rev := f.current
	if r.applied.current(sub, x.heard, rev, time.Now(), r.reapplyBound) {
		x.log.V(1).Info("health recheck: nothing drifted, not applied again", "subscription", sub.Name, "revision", rev.Spec.Revision)
	} else if res, ok := r.reapply(ctx, x, f, d); !ok {
		return res
	}
	res := result{phase: phaseProgressing, rev: rev, progressing: &note{true, d.reason, d.message}, requeue: r.healthRequeue()}
	switch {
	case rev.Status.Outcome == v1alpha1.OutcomeFailed:
		res.phase, res.progressing.status = phaseFailed, false
	case d.action == actWaitCluster:
		r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonWaitingForCluster, "HealthCheck", "%s", d.message)
		x.log.Info("waiting for the cluster", "subscription", sub.Name, "revision", rev.Spec.Revision, "health", d.message)
	}
	res.err = r.pruneHistory(ctx, sub)
	return res
}

// reapply applies the current content again; ok is false when it could
// not, with the result to report.
func (r *Reconciler) reapply(ctx context.Context, x *exec, f *facts, d decision) (result, bool) {
	sub := x.sub
	w := d.want
	objs, err := r.objectsOf(ctx, sub, w)
	if err != nil {
		return result{err: err}, false
	}
	apply, kept, err := r.keepCRDVersions(ctx, objs, w.reason != reasonInstall && w.reason != reasonUpgrade)
	if err != nil {
		return result{err: err}, false
	}
	if len(kept) > 0 {
		x.log.V(1).Info("CRD left in place", "subscription", sub.Name, "reason", strings.Join(kept, "; "))
	}
	return r.applyObjects(ctx, x, f, f.current, w.target, apply)
}
