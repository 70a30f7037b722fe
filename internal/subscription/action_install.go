package subscription

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/revision"
)

// install records a new revision of the wanted content and applies it: an
// install, upgrade, reconfiguration or downgrade, or a restored revision
// (spec.rollbackTo, or the last healthy one). Every object is checked for
// ownership before the revision is recorded: content that would take over
// an object Ferry did not create for this Subscription is never recorded
// nor applied. Its health is judged by the next reconciles.
func (r *Reconciler) install(ctx context.Context, x *exec, f *facts, d decision) result {
	sub := x.sub
	w := d.want
	objs, err := r.objectsOf(ctx, sub, w)
	if err != nil {
		return result{err: err}
	}
	if d.consumeRetry {
		// The retry is granted once: the annotation is consumed.
		if err := r.consumeRetry(ctx, sub); err != nil {
			return result{err: err}
		}
		sub.Status.FailedUpgrade = nil
	}
	// Only a new version changes a CRD: restoring, downgrading or
	// re-applying the installed version leaves installed CRDs as they are.
	apply, kept, err := r.keepCRDVersions(ctx, objs, w.reason != reasonInstall && w.reason != reasonUpgrade)
	if err != nil {
		return result{err: err}
	}
	if len(kept) > 0 {
		x.log.Info("CRD left in place", "subscription", sub.Name, "reason", strings.Join(kept, "; "))
	}
	if err := x.ap.Preflight(ctx, r.rendered(sub, w.target, apply), adoptionOf(sub)); err != nil {
		if res, ok := r.ownershipConflict(x, w.target.Version, err); ok {
			return res
		}
		return result{err: err}
	}
	// The ServiceAccount must be allowed every write before the revision is
	// recorded: no half-install.
	if err := x.ap.Authorized(ctx, r.rendered(sub, w.target, apply), sub.Status.Inventory); err != nil {
		if res, ok := r.ownershipConflict(x, w.target.Version, err); ok {
			return res
		}
		return result{err: err}
	}
	rev, err := r.revisions().Create(ctx, sub, revision.New{Target: w.target, Objects: objs, Reason: w.reason, RollbackOf: w.rollbackOf},
		func() error { return r.patchStatus(ctx, x) })
	if err != nil {
		return result{err: err}
	}
	sub.Status.CurrentRevision = rev.Spec.Revision
	// Written now: a crash before the end of the reconcile must not lose
	// which revision is being applied, nor what it may create.
	sub.Status.Inventory = unionInventory(sub.Status.Inventory, inventoryOf(apply))
	if err := r.patchStatus(ctx, x); err != nil {
		return result{err: err}
	}
	x.log.Info("revision recorded", "subscription", sub.Name, "revision", rev.Spec.Revision, "version", rev.Spec.Version, "reason", rev.Spec.Reason)
	if res, ok := r.applyObjects(ctx, x, f, rev, w.target, apply); !ok {
		return res
	}
	msg := fmt.Sprintf("waiting for %s %s (revision %d) to become healthy: applied", rev.Spec.Package, rev.Spec.Version, rev.Spec.Revision)
	return result{phase: phaseProgressing, rev: rev, progressing: &note{true, v1alpha1.ReasonWaitingForHealthy, msg},
		requeue: r.healthRequeue(), err: r.pruneHistory(ctx, sub)}
}
