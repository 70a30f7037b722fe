package subscription

import (
	"context"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

// InstalledKinds are the kinds the controller watches to correct drift, by
// Ferry's owner labels. The manager's cache should select them by
// install.LabelManagedBy so that it holds only what Ferry installed.
var InstalledKinds = []client.Object{
	&appsv1.Deployment{}, &corev1.ServiceAccount{}, &corev1.Service{}, &corev1.ConfigMap{},
	&rbacv1.Role{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
	&apiextensionsv1.CustomResourceDefinition{},
}

// InstalledCache is the manager's cache configuration for InstalledKinds:
// only objects labelled as installed by Ferry, so that the cache does not
// hold every ServiceAccount, ConfigMap and RBAC object of the cluster. An
// object Ferry did not create is therefore absent from this cache: who owns
// an object is always read from the API server (Reconciler.APIReader).
func InstalledCache() map[client.Object]cache.ByObject {
	managed := labels.SelectorFromSet(labels.Set{install.LabelManagedBy: install.ManagedByValue})
	out := make(map[client.Object]cache.ByObject, len(InstalledKinds))
	for _, kind := range InstalledKinds {
		out[kind] = cache.ByObject{Label: managed}
	}
	return out
}

// SetupWithManager registers the controller. events delivers CatalogSources
// whose content or connection changed.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, events <-chan event.GenericEvent) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("subscription").
		For(&v1alpha1.Subscription{}, builder.WithPredicates(specOrLifecycleChanged)).
		// Children report their progress to their parent.
		Watches(&v1alpha1.Subscription{}, handler.EnqueueRequestsFromMapFunc(parentOf)).
		WatchesRawSource(source.Channel(events, handler.EnqueueRequestsFromMapFunc(r.subscriptionsOfCatalog)))
	for _, kind := range InstalledKinds {
		b = b.Watches(kind, handler.EnqueueRequestsFromMapFunc(ownerOf), builder.WithPredicates(ownedByFerry))
	}
	return b.Complete(r)
}

// specOrLifecycleChanged passes creations, deletions and updates of the
// spec, annotations, finalizers or deletion timestamp, not status writes.
var specOrLifecycleChanged = predicate.Or(
	predicate.GenerationChangedPredicate{},
	predicate.AnnotationChangedPredicate{},
	predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !e.ObjectOld.GetDeletionTimestamp().Equal(e.ObjectNew.GetDeletionTimestamp()) ||
			len(e.ObjectOld.GetFinalizers()) != len(e.ObjectNew.GetFinalizers())
	}},
)

var ownedByFerry = predicate.NewPredicateFuncs(func(o client.Object) bool {
	return o.GetLabels()[install.LabelOwnerName] != ""
})

// ownerOf maps an installed object to the Subscription that owns it: by the
// owner annotation, which names it exactly, else by the owner labels (whose
// values are shortened for long names).
func ownerOf(_ context.Context, o client.Object) []reconcile.Request {
	if ns, name, ok := strings.Cut(o.GetAnnotations()[install.AnnotationOwner], "/"); ok && ns != "" && name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	}
	l := o.GetLabels()
	if l[install.LabelOwnerName] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: l[install.LabelOwnerNamespace], Name: l[install.LabelOwnerName]}}}
}

// parentOf maps a child Subscription to its parent.
func parentOf(_ context.Context, o client.Object) []reconcile.Request {
	p := o.GetLabels()[LabelParent]
	if p == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: p}}}
}

// subscriptionsOfCatalog maps a CatalogSource to the Subscriptions that may use it.
func (r *Reconciler) subscriptionsOfCatalog(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.SubscriptionList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, s := range list.Items {
		if s.Spec.Catalog == "" || s.Spec.Catalog == o.GetName() || s.Status.Catalog == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
	}
	return out
}
