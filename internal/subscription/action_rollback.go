package subscription

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/revision"
)

// rollback handles the current revision missing its health gate (cause
// says why) by restoring prev, the last healthy revision, as a new
// revision. No installed CRD is changed (see keepCRDVersions).
func (r *Reconciler) rollback(ctx context.Context, x *exec, f *facts, prev *v1alpha1.Revision, cause string) result {
	sub := x.sub
	rev := f.current
	revs := r.revisions()
	timeout := healthTimeout(sub)
	sub.Status.FailedUpgrade = failedUpgrade(rev, cause)
	objs, err := revs.Load(ctx, sub, prev)
	if err != nil {
		return result{err: err}
	}
	apply, kept, err := r.keepCRDVersions(ctx, objs, true)
	if err != nil {
		return result{err: err}
	}
	// The failed revision's outcome is written first: if the installer
	// stops now, the next reconcile sees it failed and restores prev.
	failedMsg := fmt.Sprintf("%s %s (revision %d) did not become healthy within %s: %s; rolling back to %s (revision %d)",
		rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision, timeout, cause, prev.Spec.Version, prev.Spec.Revision)
	if err := revs.Finish(ctx, rev, v1alpha1.OutcomeRolledBack, failedMsg); err != nil {
		return result{err: err}
	}
	if err := r.patchStatus(ctx, x); err != nil {
		return result{err: err}
	}
	target := revision.Target{Catalog: prev.Spec.Catalog, Bundle: prev.Spec.Bundle, Version: prev.Spec.Version}
	rb, err := revs.Create(ctx, sub, revision.New{Target: target, Objects: objs, Reason: reasonRollback, RollbackOf: prev.Spec.Revision},
		func() error { return r.patchStatus(ctx, x) })
	if err != nil {
		return result{err: err}
	}
	start := time.Now()
	res, applyErr := x.ap.Apply(ctx, r.rendered(sub, target, apply), sub.Status.Inventory, adoptionOf(sub))
	since(applySeconds, start)
	upgradesTotal.WithLabelValues(sub.Spec.Package, resultRolledBack).Inc()
	if applyErr != nil {
		rollbacksTotal.WithLabelValues(sub.Spec.Package, resultFailed).Inc()
	} else {
		rollbacksTotal.WithLabelValues(sub.Spec.Package, resultSucceeded).Inc()
		r.applied.record(sub, x.heard, rb, time.Now())
	}
	if len(res.Inventory) > 0 {
		sub.Status.Inventory = res.Inventory
	}
	msg := fmt.Sprintf("%s %s (revision %d) did not become healthy within %s: %s; restored %s (revision %d) as revision %d",
		rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision, timeout, cause, prev.Spec.Version, prev.Spec.Revision, rb.Spec.Revision)
	if applyErr != nil {
		msg = fmt.Sprintf("%s %s (revision %d) did not become healthy within %s: %s; restoring %s (revision %d) as revision %d failed so far: %v",
			rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision, timeout, cause, prev.Spec.Version, prev.Spec.Revision, rb.Spec.Revision, applyErr)
	}
	if len(kept) > 0 {
		msg += "; " + strings.Join(kept, "; ")
	}
	if deps := r.dependencyNote(ctx, sub); deps != "" {
		msg += "; " + deps
	}
	if err := revs.Finish(ctx, rev, v1alpha1.OutcomeRolledBack, msg); err != nil {
		return result{err: err}
	}
	sub.Status.Inventory = unionInventory(sub.Status.Inventory, inventoryOf(apply))
	sub.Status.CurrentRevision = rb.Spec.Revision
	sub.Status.TargetVersion = prev.Spec.Version
	r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.EventReasonRolledBack, "Rollback", "%s", msg)
	x.log.Info("upgrade rolled back", "subscription", sub.Name, "failedVersion", rev.Spec.Version, "restoredVersion", prev.Spec.Version, "cause", cause)
	return result{
		phase: phaseProgressing, rev: rb, requeue: r.healthRequeue(), err: applyErr,
		rolledBack:  &note{true, v1alpha1.ReasonHealthGateFailed, msg},
		progressing: &note{true, v1alpha1.ReasonWaitingForHealthy, fmt.Sprintf("rolling back to %s (revision %d)", prev.Spec.Version, rb.Spec.Revision)},
	}
}

// gateFailed marks the current revision failed: it missed its health gate
// (cause says why) with nothing to return to (an install, a rollback, or
// rollbackPolicy Never).
func (r *Reconciler) gateFailed(ctx context.Context, x *exec, f *facts, cause string) result {
	sub := x.sub
	rev := f.current
	sub.Status.FailedUpgrade = failedUpgrade(rev, cause)
	msg := fmt.Sprintf("revision %d (%s %s) did not become healthy within %s: %s", rev.Spec.Revision, rev.Spec.Package, rev.Spec.Version, healthTimeout(sub), cause)
	if err := r.revisions().Finish(ctx, rev, v1alpha1.OutcomeFailed, msg); err != nil {
		return result{err: err}
	}
	r.Recorder.Eventf(sub, nil, corev1.EventTypeWarning, v1alpha1.ReasonHealthGateFailed, "HealthCheck", "%s", msg)
	if rev.Spec.Reason == reasonUpgrade || rev.Spec.Reason == reasonDowngrade {
		upgradesTotal.WithLabelValues(sub.Spec.Package, resultFailed).Inc()
	}
	res := result{phase: phaseFailed, rev: rev, progressing: &note{false, v1alpha1.ReasonHealthGateFailed, msg}, requeue: r.healthRequeue()}
	if sub.Status.InstalledBundle == "" {
		res.installed = &note{false, v1alpha1.ReasonHealthGateFailed, msg}
	}
	return res
}

func failedUpgrade(rev *v1alpha1.Revision, cause string) *v1alpha1.FailedUpgrade {
	return &v1alpha1.FailedUpgrade{
		Version: rev.Spec.Version, Bundle: rev.Spec.Bundle, Revision: rev.Spec.Revision,
		ContentDigest: rev.Spec.ContentDigest, Reason: cause, Time: metav1.Now(),
	}
}

// dependencyNote says what happened to dependencies in a rollback: each is
// its own Subscription, with its own revisions and health gate.
func (r *Reconciler) dependencyNote(ctx context.Context, sub *v1alpha1.Subscription) string {
	var children v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &children, client.InNamespace(sub.Namespace), client.MatchingLabels{LabelParent: sub.Name}); err != nil || len(children.Items) == 0 {
		return ""
	}
	var names []string
	for _, c := range children.Items {
		names = append(names, fmt.Sprintf("%s %s", c.Spec.Package, c.Status.InstalledVersion))
	}
	return "dependencies (" + strings.Join(names, ", ") + ") are not rolled back: each is its own Subscription and keeps the version it runs, with its own health gate and rollback"
}
