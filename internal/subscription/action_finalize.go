package subscription

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

// finalize removes what the deleted Subscription installed, then lets it
// go. Its result has no progressing note when it is done or waiting for
// objects to go: the status is then not written.
func (r *Reconciler) finalize(ctx context.Context, x *exec) result {
	sub := x.sub
	if !controllerutil.ContainsFinalizer(sub, Finalizer) {
		return result{}
	}
	if x.ap == nil {
		// The installer may not act: say so; the objects stay until it may.
		_, err := r.applierFor(ctx, sub)
		return result{phase: phaseFailed, requeue: catalogRequeue, progressing: &note{false, cannotActReason(err), fmt.Sprintf("cannot uninstall: %v", err)}}
	}
	policy := sub.Spec.EffectiveCRDDeletionPolicy()
	inventory, err := r.unsharedInventory(ctx, sub, policy)
	if err != nil {
		return result{err: err}
	}
	res, err := x.ap.Uninstall(ctx, inventory, policy, install.ForOwner(types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}))
	if err != nil {
		return result{err: err}
	}
	if res.Remaining > 0 {
		return result{requeue: time.Second}
	}
	if err := r.revisions().DeleteAll(ctx, sub); err != nil {
		return result{err: err}
	}
	x.log.Info("operator uninstalled", "package", sub.Spec.Package, "version", sub.Status.InstalledVersion, "crdDeletionPolicy", string(policy))
	controllerutil.RemoveFinalizer(sub, Finalizer)
	return result{err: r.Client.Update(ctx, sub)}
}

// unsharedInventory is what a deleted Subscription may remove: with
// crdDeletionPolicy Delete, a CRD another Subscription also installed stays.
func (r *Reconciler) unsharedInventory(ctx context.Context, sub *v1alpha1.Subscription, policy v1alpha1.CRDDeletionPolicy) ([]v1alpha1.ObjectReference, error) {
	if policy != v1alpha1.CRDDeletionDelete {
		return sub.Status.Inventory, nil
	}
	var list v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	shared := map[v1alpha1.ObjectReference]bool{}
	for _, o := range list.Items {
		if o.Namespace == sub.Namespace && o.Name == sub.Name {
			continue
		}
		for _, ref := range o.Status.Inventory {
			if ref.Kind == "CustomResourceDefinition" {
				shared[ref] = true
			}
		}
	}
	out := make([]v1alpha1.ObjectReference, 0, len(sub.Status.Inventory))
	for _, ref := range sub.Status.Inventory {
		if !shared[ref] {
			out = append(out, ref)
		}
	}
	return out, nil
}
