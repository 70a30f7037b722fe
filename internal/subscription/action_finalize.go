package subscription

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/tenancy"
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
		_, err := r.applierFor(ctx, sub)
		if len(sub.Status.Inventory) == 0 {
			// Nothing was installed (a Subscription refused for want of a
			// ServiceAccount): nothing to delete as anyone.
			return r.release(ctx, x)
		}
		leave, lerr := r.namespaceTerminating(ctx, sub.Namespace)
		if lerr != nil {
			return result{err: lerr}
		}
		if leave {
			// No event: nothing can be created in a namespace being deleted.
			x.log.Info("uninstall left objects behind", "subscription", sub.Name, "namespace", sub.Namespace, "reason", cannotActReason(err),
				"message", "the namespace is being deleted and the installer may not act for the Subscription; objects outside the namespace are left in place", "error", err.Error())
			return r.release(ctx, x)
		}
		// The installer may not act: say so; the objects stay until it may.
		return result{phase: phaseFailed, requeue: catalogRequeue, progressing: &note{false, cannotActReason(err), fmt.Sprintf("cannot uninstall: %v", err)}}
	}
	policy := sub.Spec.EffectiveCRDDeletionPolicy()
	inventory, err := r.unsharedInventory(ctx, sub, policy)
	if err != nil {
		return result{err: err}
	}
	res, err := x.ap.Uninstall(ctx, inventory, policy, install.ForOwner(types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}))
	var pm *tenancy.PermissionsMissingError
	if err != nil && !errors.As(err, &pm) && apierrors.IsForbidden(err) {
		// The preflight passed, then a delete was refused: the
		// ServiceAccount lost a right in between (its RoleBinding goes with
		// a namespace being deleted, in any order).
		leave, lerr := r.namespaceTerminating(ctx, sub.Namespace)
		if lerr != nil {
			return result{err: errors.Join(err, lerr)}
		}
		if leave {
			// The refusals themselves are not logged: they are the
			// expected end of the ServiceAccount's rights, not an error.
			x.log.Info("uninstall left objects behind", "subscription", sub.Name, "namespace", sub.Namespace,
				"message", "the namespace is being deleted and the API server refused deletes as the ServiceAccount, whose rights go with the namespace; objects outside the namespace are left in place")
			return r.release(ctx, x)
		}
	}
	if errors.As(err, &pm) {
		leave, lerr := r.namespaceTerminating(ctx, sub.Namespace)
		if lerr != nil {
			return result{err: lerr}
		}
		if leave {
			// The namespace is going, with the ServiceAccount's rights:
			// its objects go with it; what lies outside it is left.
			// No event: nothing can be created in a namespace being deleted.
			x.log.Info("uninstall left objects behind", "subscription", sub.Name, "namespace", sub.Namespace, "serviceAccount", pm.Identity.Namespace+"/"+pm.Identity.Name,
				"message", "the namespace is being deleted and the ServiceAccount may no longer delete what it installed; objects outside the namespace are left in place", "missing", pm.Error())
			return r.release(ctx, x)
		}
		// Nothing was deleted: say what is missing; the objects stay until
		// the ServiceAccount may delete them.
		msg := fmt.Sprintf("cannot uninstall, nothing was deleted: %v", pm)
		x.log.Info("permissions missing", "subscription", sub.Name, "serviceAccount", pm.Identity.Namespace+"/"+pm.Identity.Name, "missing", len(pm.Missing))
		return result{phase: phaseFailed, requeue: catalogRequeue, explanation: &msg, progressing: &note{false, v1alpha1.ReasonPermissionsMissing, msg}}
	}
	if err != nil {
		// Retried with backoff; the status says what stops the uninstall.
		return result{err: err, progressing: &note{true, v1alpha1.ReasonDeleting, fmt.Sprintf("deleting: %v", err)}}
	}
	if res.Remaining > 0 {
		return result{requeue: time.Second}
	}
	x.log.Info("operator uninstalled", "package", sub.Spec.Package, "version", sub.Status.InstalledVersion, "crdDeletionPolicy", string(policy))
	return r.release(ctx, x)
}

// release deletes the Subscription's revisions and lets it go.
func (r *Reconciler) release(ctx context.Context, x *exec) result {
	sub := x.sub
	if err := r.revisions().DeleteAll(ctx, sub); err != nil {
		return result{err: err}
	}
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
