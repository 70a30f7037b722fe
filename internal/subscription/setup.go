package subscription

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/kinds"
)

// InstalledCache is the manager's cache configuration for the kinds Ferry
// installs whose API is always served (kinds.All, not Optional): only
// objects labelled as installed by Ferry, metadata, typed or unstructured
// alike, so that nothing read through the manager's cached client makes it
// hold every ServiceAccount, ConfigMap, Secret and RBAC object of the
// cluster. The drift watches do not use it: they have a label-selected cache
// of their own (SetupWithManager). An object Ferry did not create is absent
// from both: who owns an object, and a Revision's blobs, are always read
// from the API server (Reconciler.APIReader).
func InstalledCache() map[client.Object]cache.ByObject {
	managed := managedSelector()
	out := map[client.Object]cache.ByObject{}
	for _, k := range kinds.All() {
		if k.Optional {
			// Not served in every cluster: a cache entry would keep
			// the manager from starting without it.
			continue
		}
		out[metadataOf(k.GroupVersionKind())] = cache.ByObject{Label: managed}
	}
	return out
}

// SetupWithManager registers the controller. events delivers CatalogSources
// whose content or connection changed.
//
// Every kind Ferry installs (kinds.All) is watched for drift, metadata only
// and only where labelled as installed by Ferry: a change or deletion of an
// installed object reconciles the Subscription that owns it. Kinds whose
// API is always served are watched from the start; optional ones (their
// CRD comes with an add-on) once discovery serves them, which is asked
// every API poll interval and at once when an inventory names such a kind.
// Every resync period, every installed object and every Subscription is
// reconciled again, whether or not a change was heard of.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, events <-chan event.GenericEvent, opts ...SetupOption) error {
	registerMetrics(mgr.GetClient())
	o := setupOptions{resync: DefaultResyncPeriod, apiPoll: DefaultAPIPollInterval, workers: DefaultMaxConcurrentReconciles}
	for _, opt := range opts {
		opt(&o)
	}
	// With the drift watches running, a health recheck applies again only
	// on drift, or once this long after the last apply (waitHealthy).
	r.reapplyBound = o.resync
	if r.KubeVersion == nil {
		// The cluster's version, from the discovery API the optional
		// kinds are looked up with, on the manager's HTTP client.
		dc, err := discovery.NewDiscoveryClientForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
		if err != nil {
			return fmt.Errorf("subscription: discovery client: %w", err)
		}
		r.KubeVersion = NewDiscoveryKubeVersion(dc, DefaultKubeVersionRefresh)
	}
	installed, err := newInstalledCache(mgr, o.resync)
	if err != nil {
		return fmt.Errorf("subscription: cache of installed objects: %w", err)
	}
	if err := mgr.Add(installed); err != nil {
		return err
	}
	var ctl controller.Controller
	var optional []kinds.Kind
	b := ctrl.NewControllerManagedBy(mgr).
		Named("subscription").
		WithOptions(controller.Options{MaxConcurrentReconciles: o.workers}).
		For(&v1alpha1.Subscription{}, builder.WithPredicates(specOrLifecycleChanged)).
		// Children report their progress to their parent.
		Watches(&v1alpha1.Subscription{}, handler.EnqueueRequestsFromMapFunc(parentOf)).
		// The periodic resync reconciles every Subscription again.
		Watches(&v1alpha1.Subscription{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(resynced)).
		WatchesRawSource(source.Channel(events, handler.EnqueueRequestsFromMapFunc(r.subscriptionsOfCatalog)))
	for _, k := range kinds.All() {
		if k.Optional {
			optional = append(optional, k)
			continue
		}
		b = b.WatchesRawSource(installedSource(installed, k.GroupVersionKind(), r.installedEvents()))
	}
	watcher := newDriftWatcher(mgr.GetLogger().WithName("drift"), mgr.GetRESTMapper(), o.apiPoll, func(gvk schema.GroupVersionKind) error {
		return ctl.Watch(installedSource(installed, gvk, r.installedEvents()))
	}, optional)
	// An inventory naming an optional kind not watched yet asks discovery
	// at once; it enqueues nothing.
	b = b.Watches(&v1alpha1.Subscription{}, handler.EnqueueRequestsFromMapFunc(watcher.noteInventory))
	if ctl, err = b.Build(r); err != nil {
		return err
	}
	return mgr.Add(watcher)
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

// resynced passes only the updates an informer's periodic resync delivers:
// the object unchanged.
var resynced = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion()
	},
}

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
