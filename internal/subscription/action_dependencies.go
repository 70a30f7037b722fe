package subscription

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// waitDependencies creates a child Subscription for every dependency that
// no Subscription in the namespace provides yet, updates the children Ferry
// created for this Subscription to what its target requires now, and waits
// until every dependency is installed at a version the target accepts
// (children report their progress to their parent). Children are written
// as the parent's ServiceAccount.
func (r *Reconciler) waitDependencies(ctx context.Context, x *exec, f *facts, d decision) result {
	sub := x.sub
	for _, dep := range f.dependencies {
		if dep.child != nil && dep.update == nil {
			continue
		}
		w, err := x.writer()
		if err != nil {
			return result{phase: phaseWaiting, err: err}
		}
		if dep.child != nil {
			// The child follows its parent's requirement; a conflict (the
			// user changed it meanwhile) is retried with what is read then.
			// A merge patch (the ServiceAccount may patch Subscriptions, not
			// update them), refused when the child changed since it was read.
			patch := client.MergeFromWithOptions(dep.child, client.MergeFromWithOptimisticLock{})
			if err := w.Patch(ctx, dep.update.DeepCopy(), patch); err != nil {
				return result{phase: phaseWaiting, err: fmt.Errorf("updating Subscription %s for dependency %s: %w", dep.child.Name, dep.dep.Package, err)}
			}
			r.Recorder.Eventf(sub, dep.update, corev1.EventTypeNormal, v1alpha1.EventReasonDependencyUpdated, "Subscribe", "updated Subscription %s for %s: versionRange %q, channel %q (%s)", dep.child.Name, dep.dep.Package, dep.update.Spec.VersionRange, dep.update.Spec.Channel, dep.dep.RequiredBy)
			continue
		}
		child := dep.create.DeepCopy()
		child.Spec.ServiceAccountName = sub.Spec.ServiceAccountName
		err = w.Create(ctx, child)
		if apierrors.IsAlreadyExists(err) {
			// The name is taken by a Subscription of another package.
			child.Name = fmt.Sprintf("%s-%s", sub.Name, dep.dep.Package)
			err = w.Create(ctx, child)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return result{phase: phaseWaiting, err: fmt.Errorf("creating Subscription for dependency %s: %w", dep.dep.Package, err)}
		}
		r.Recorder.Eventf(sub, child, corev1.EventTypeNormal, v1alpha1.EventReasonDependencySubscribed, "Subscribe", "created Subscription %s for %s (%s)", child.Name, dep.dep.Package, dep.dep.RequiredBy)
	}
	return result{phase: phaseWaiting, progressing: &note{true, d.reason, d.message}, requeue: r.healthRequeue()}
}

// releaseDependencies releases the children Ferry created for this
// Subscription that the installed version no longer needs (they lose the
// parent's label and are annotated with it; they are not deleted: other
// things may use the operator they run), then does what InSync does.
func (r *Reconciler) releaseDependencies(ctx context.Context, x *exec, f *facts, d decision) result {
	sub := x.sub
	w, err := x.writer()
	if err != nil {
		return result{phase: phaseWaiting, err: err}
	}
	for _, c := range f.released {
		patch := client.MergeFromWithOptions(c, client.MergeFromWithOptimisticLock{})
		if err := w.Patch(ctx, release(sub, c), patch); err != nil && !apierrors.IsNotFound(err) {
			return result{err: fmt.Errorf("releasing Subscription %s (%s), no longer required: %w", c.Name, c.Spec.Package, err)}
		}
		r.Recorder.Eventf(sub, c, corev1.EventTypeNormal, v1alpha1.EventReasonDependencyReleased, "Release", "%s %s no longer requires %s: Subscription %s keeps running without the label %s; delete it to uninstall %s", sub.Spec.Package, d.want.target.Version, c.Spec.Package, c.Name, LabelParent, c.Spec.Package)
	}
	return r.inSync(ctx, x, f, d)
}
