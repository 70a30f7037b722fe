package subscription

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// waitDependencies creates a child Subscription for every dependency that
// no Subscription in the namespace provides yet, and waits until all are
// installed (children report their progress to their parent).
func (r *Reconciler) waitDependencies(ctx context.Context, x *exec, f *facts, d decision) result {
	sub := x.sub
	for _, dep := range f.dependencies {
		if dep.child != nil {
			continue
		}
		// The child is created by, and installs with, the parent's
		// ServiceAccount.
		w, err := x.writer()
		if err != nil {
			return result{phase: phaseWaiting, err: err}
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
