package catalogsource

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// The CatalogSource controller follows CatalogSources through the
// manager's cache (get, list, watch) and never writes their spec; the
// digest, counts and the Connected condition are written with
// Status().Patch.
//
// +kubebuilder:rbac:groups=operators.ferry.dev,resources=catalogsources,verbs=get;list;watch
// +kubebuilder:rbac:groups=operators.ferry.dev,resources=catalogsources/status,verbs=patch

// tlsRefIndex indexes CatalogSources by the Secrets and ConfigMaps their
// TLS settings name ("Secret/<name>", "ConfigMap/<name>").
const tlsRefIndex = "spec.tls.refs"

// Reconciler runs one follower per CatalogSource and writes what the
// followers see into the CatalogSource's status.
//
// The Secrets and ConfigMaps that spec.tls names are read from TLSNamespace
// only, through a cache of that namespace's Secrets and ConfigMaps, and
// watched: a rotated CA or client certificate reconnects the follower.
//
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch
type Reconciler struct {
	// Client reads CatalogSources and patches their status; the manager's
	// client when nil.
	Client client.Client
	// Store receives the catalogs. Required.
	Store *Store
	// RetryBase and RetryCap bound the reconnection backoff (defaults 500 ms and 30 s).
	RetryBase, RetryCap time.Duration
	// TLSNamespace is the only namespace Secrets and ConfigMaps named by
	// spec.tls are read from (default DefaultTLSNamespace).
	TLSNamespace string

	security  *securityBuilder
	log       logr.Logger
	changes   *notifier
	mu        sync.Mutex
	base      context.Context // followers run under it; cancelled when the manager stops
	cancel    context.CancelFunc
	followers map[string]*follower
}

// SetupWithManager registers the controller and stops every follower when
// the manager stops.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Store == nil {
		return fmt.Errorf("catalogsource: Reconciler.Store is required")
	}
	registerMetrics()
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.RetryBase <= 0 {
		r.RetryBase = defaultRetryBase
	}
	if r.RetryCap <= 0 {
		r.RetryCap = defaultRetryCap
	}
	if r.TLSNamespace == "" {
		r.TLSNamespace = DefaultTLSNamespace
	}
	r.log = mgr.GetLogger().WithName("catalogsource")
	// Only this namespace's Secrets and ConfigMaps are cached, in full: the
	// manager's cache holds neither (or only labelled ones, metadata only).
	tlsCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{r.TLSNamespace: {}},
	})
	if err != nil {
		return fmt.Errorf("catalogsource: cache of namespace %s: %w", r.TLSNamespace, err)
	}
	if err := mgr.Add(tlsCache); err != nil {
		return err
	}
	r.security = &securityBuilder{reader: tlsCache, namespace: r.TLSNamespace}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.CatalogSource{}, tlsRefIndex, tlsRefs); err != nil {
		return fmt.Errorf("catalogsource: index %s: %w", tlsRefIndex, err)
	}
	r.changes = newNotifier(DefaultEventBuffer)
	r.followers = map[string]*follower{}
	r.base, r.cancel = context.WithCancel(context.Background())
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		r.stopAll()
		return nil
	})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("catalogsource").
		For(&v1alpha1.CatalogSource{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.changes.C(), &handler.EnqueueRequestForObject{})).
		WatchesRawSource(source.Kind(tlsCache, &corev1.Secret{}, handler.TypedEnqueueRequestsFromMapFunc(referencing[*corev1.Secret](r, "Secret")))).
		WatchesRawSource(source.Kind(tlsCache, &corev1.ConfigMap{}, handler.TypedEnqueueRequestsFromMapFunc(referencing[*corev1.ConfigMap](r, "ConfigMap")))).
		Complete(r)
}

// tlsRefs lists the Secrets and ConfigMaps a CatalogSource's TLS settings
// name, as indexed under tlsRefIndex.
func tlsRefs(o client.Object) []string {
	cs, ok := o.(*v1alpha1.CatalogSource)
	if !ok || cs.Spec.TLS == nil {
		return nil
	}
	var refs []string
	if ca := cs.Spec.TLS.CABundle; ca != nil {
		if ca.ConfigMapRef != nil {
			refs = append(refs, "ConfigMap/"+ca.ConfigMapRef.Name)
		}
		if ca.SecretRef != nil {
			refs = append(refs, "Secret/"+ca.SecretRef.Name)
		}
	}
	if cc := cs.Spec.TLS.ClientCertificate; cc != nil {
		refs = append(refs, "Secret/"+cc.SecretRef.Name)
	}
	return refs
}

// referencing maps a Secret or ConfigMap of the TLS namespace to the
// CatalogSources that name it.
func referencing[T client.Object](r *Reconciler, kind string) handler.TypedMapFunc[T, reconcile.Request] {
	return func(ctx context.Context, o T) []reconcile.Request {
		var list v1alpha1.CatalogSourceList
		if err := r.Client.List(ctx, &list, client.MatchingFields{tlsRefIndex: kind + "/" + o.GetName()}); err != nil {
			r.log.Error(err, "listing the CatalogSources that name a changed object", "kind", kind, "name", o.GetName())
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, cs := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: cs.Name}})
		}
		return reqs
	}
}

// reconcileState is what the steps of one reconcile share.
type reconcileState struct {
	name string
	// obj is the CatalogSource; nil once it is gone.
	obj *v1alpha1.CatalogSource
	// before is obj as read, to patch against.
	before *v1alpha1.CatalogSource
	snap   *Snapshot
}

// step is one step of Reconcile; it returns false to end the reconcile.
type step struct {
	name string
	run  func(context.Context, *reconcileState) (bool, error)
}

// Reconcile follows the CatalogSource at its address and reports what the
// follower sees.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	st := &reconcileState{name: req.Name}
	for _, s := range []step{
		{"read", r.read},
		{"follow", r.follow},
		{"observe", r.observe},
		{"write status", r.writeStatus},
	} {
		more, err := s.run(ctx, st)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("%s: %w", s.name, err)
		}
		if !more {
			break
		}
	}
	return ctrl.Result{}, nil
}

// read fetches the CatalogSource; when it is gone or going, its follower
// stops and the Store forgets it.
func (r *Reconciler) read(ctx context.Context, st *reconcileState) (bool, error) {
	obj := &v1alpha1.CatalogSource{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: st.name}, obj)
	if apierrors.IsNotFound(err) || (err == nil && !obj.DeletionTimestamp.IsZero()) {
		r.forget(st.name)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st.obj, st.before = obj, obj.DeepCopy()
	return true, nil
}

// follow makes sure one follower runs for the CatalogSource's address and
// TLS settings. When the settings cannot be used, no follower runs, the
// content is kept and the error is recorded for the status.
func (r *Reconciler) follow(ctx context.Context, st *reconcileState) (bool, error) {
	addr, prio := st.obj.Spec.Address, st.obj.Spec.Priority
	sec, err := r.security.build(ctx, st.obj.Spec.TLS)
	if cerr := (*TLSConfigError)(nil); errors.As(err, &cerr) {
		r.stopFollower(st.name, "TLS settings unusable", "error", cerr.Error())
		r.Store.update(st.name, func(s *Snapshot) {
			s.Priority, s.Address, s.Connected, s.Err = prio, addr, false, cerr
		})
		return true, nil
	}
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.followers[st.name]
	if f != nil && f.address == addr && f.security.Fingerprint == sec.Fingerprint {
		r.Store.update(st.name, func(s *Snapshot) { s.Priority = prio })
		return true, nil
	}
	if f != nil {
		f.stop()
		if f.address != addr {
			r.log.Info("catalog address changed", "catalogSource", st.name, "from", f.address, "to", addr)
		} else {
			r.log.Info("catalog TLS settings changed", "catalogSource", st.name, "address", addr, "trust", sec.Trust)
		}
	}
	// Keep the content until the new address answers.
	r.Store.update(st.name, func(s *Snapshot) {
		s.Priority, s.Address, s.Connected, s.Err = prio, addr, false, nil
	})
	f = &follower{
		name: st.name, address: addr, security: sec, store: r.Store,
		log:     r.log.WithValues("catalogSource", st.name),
		retry:   backoff{base: r.RetryBase, cap: r.RetryCap},
		changed: r.changes.notify,
	}
	f.start(r.base)
	r.followers[st.name] = f
	return true, nil
}

// stopFollower stops the follower of name, if one runs, and logs why.
func (r *Reconciler) stopFollower(name, why string, kv ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.followers[name]; f != nil {
		f.stop()
		delete(r.followers, name)
		r.log.Info("catalog no longer followed", append([]any{"catalogSource", name, "reason", why}, kv...)...)
	}
}

// observe sets the status from what the follower last saw.
func (r *Reconciler) observe(_ context.Context, st *reconcileState) (bool, error) {
	snap, ok := r.Store.State(st.name)
	if !ok {
		return false, nil
	}
	st.snap = snap
	s := &st.obj.Status
	if snap.Catalog != nil {
		if s.Digest != snap.Digest || s.LastUpdated == nil {
			t := metav1.NewTime(snap.Updated).Rfc3339Copy()
			s.LastUpdated = &t
		}
		n := snap.Catalog.Counts()
		s.Digest, s.Packages, s.Channels, s.Bundles = snap.Digest, int32(n.Packages), int32(n.Channels), int32(n.Bundles)
	}
	switch {
	case snap.Connected:
		setCondition(st.obj, v1alpha1.TypeConnected, metav1.ConditionTrue, v1alpha1.ReasonConnected,
			"following the catalog at "+snap.Address)
	case snap.Err != nil:
		setCondition(st.obj, v1alpha1.TypeConnected, metav1.ConditionFalse, disconnectedReason(snap.Err), snap.Err.Error())
	}
	return true, nil
}

// writeStatus patches the status when it changed.
func (r *Reconciler) writeStatus(ctx context.Context, st *reconcileState) (bool, error) {
	if equality.Semantic.DeepEqual(st.before.Status, st.obj.Status) {
		return true, nil
	}
	if err := r.Client.Status().Patch(ctx, st.obj, client.MergeFrom(st.before)); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return true, nil
}

// disconnectedReason is the Connected condition's reason for err.
func disconnectedReason(err error) string {
	var cerr *TLSConfigError
	var herr *TLSHandshakeError
	switch {
	case errors.As(err, &cerr):
		return v1alpha1.ReasonTLSConfigInvalid
	case errors.As(err, &herr):
		return v1alpha1.ReasonTLSHandshakeFailed
	default:
		return v1alpha1.ReasonUnreachable
	}
}

// setCondition is the one place conditions are set.
func setCondition(obj *v1alpha1.CatalogSource, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: obj.Generation,
	})
}

// forget stops the follower of name and removes it from the Store.
func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.followers[name]; f != nil {
		f.stop()
		delete(r.followers, name)
		r.log.Info("catalog no longer followed", "catalogSource", name)
	}
	r.Store.remove(name)
}

// stopAll stops every follower; none starts afterwards.
func (r *Reconciler) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancel()
	for name, f := range r.followers {
		f.stop()
		delete(r.followers, name)
	}
}
