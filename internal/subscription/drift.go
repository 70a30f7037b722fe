package subscription

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/kinds"
)

// Defaults of the drift watches; SetupOptions change them.
const (
	// DefaultResyncPeriod is how often every installed object and every
	// Subscription is handed to the controller again, even when nothing
	// was heard of them: the bound on how late a change the watches missed
	// is corrected.
	DefaultResyncPeriod = 10 * time.Minute
	// DefaultAPIPollInterval is how often the installer asks discovery
	// whether the API of an optional kind (kinds.Kind.Optional) not yet
	// watched is served now.
	DefaultAPIPollInterval = time.Minute
)

// SetupOption refines SetupWithManager.
type SetupOption func(*setupOptions)

type setupOptions struct {
	resync  time.Duration
	apiPoll time.Duration
	// workers is how many Subscriptions are reconciled at once.
	workers int
}

// WithResyncPeriod sets how often every installed object and every
// Subscription is reconciled again without an event; DefaultResyncPeriod
// when d is not positive.
func WithResyncPeriod(d time.Duration) SetupOption {
	return func(o *setupOptions) {
		if d > 0 {
			o.resync = d
		}
	}
}

// WithAPIPollInterval sets how often discovery is asked for the APIs of
// optional kinds not yet watched; DefaultAPIPollInterval when d is not
// positive. An inventory that holds such a kind asks at once.
func WithAPIPollInterval(d time.Duration) SetupOption {
	return func(o *setupOptions) {
		if d > 0 {
			o.apiPoll = d
		}
	}
}

// managedSelector selects the objects Ferry installed.
func managedSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{install.LabelManagedBy: install.ManagedByValue})
}

// metadataOf is the metadata-only object of one kind at one version, as
// the caches and watches use it.
func metadataOf(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// newInstalledCache is the cache the drift watches read: metadata only,
// and only of objects labelled as installed by Ferry, so that it never
// holds the cluster's unrelated objects. It is separate from the manager's
// cache so that informers for kinds whose API appears later are label
// selected too.
func newInstalledCache(mgr ctrl.Manager, resync time.Duration) (cache.Cache, error) {
	return cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: managedSelector(),
		DefaultTransform:     cache.TransformStripManagedFields(),
		SyncPeriod:           &resync,
	})
}

// driftWatcher starts the watch of every optional kind once its API is
// served: at start, every poll interval, and at once when an inventory
// names a kind not watched yet. A kind whose API is absent is skipped
// quietly (at debug level) and tried again.
type driftWatcher struct {
	log    logr.Logger
	mapper meta.RESTMapper
	// watch starts the controller's watch of one kind at one version.
	watch    func(schema.GroupVersionKind) error
	interval time.Duration
	poke     chan struct{}

	mu      sync.Mutex
	pending map[schema.GroupKind]kinds.Kind // not watched yet
}

func newDriftWatcher(log logr.Logger, mapper meta.RESTMapper, interval time.Duration, watch func(schema.GroupVersionKind) error, pending []kinds.Kind) *driftWatcher {
	w := &driftWatcher{log: log, mapper: mapper, watch: watch, interval: interval, poke: make(chan struct{}, 1), pending: map[schema.GroupKind]kinds.Kind{}}
	for _, k := range pending {
		w.pending[k.GroupKind()] = k
	}
	return w
}

// Start runs until ctx ends.
func (w *driftWatcher) Start(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		if w.startServed() == 0 {
			return nil // every kind is watched
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.poke:
		}
	}
}

// NeedLeaderElection: watches feed the controller, which runs on the
// leader only.
func (w *driftWatcher) NeedLeaderElection() bool { return true }

// startServed starts the watch of every pending kind whose API is served
// and returns how many are still pending. Only Start calls it; w.mu is not
// held while a watch starts, which waits for the controller: the
// controller's event handlers (noteInventory) must never wait for it.
func (w *driftWatcher) startServed() int {
	w.mu.Lock()
	pending := make([]kinds.Kind, 0, len(w.pending))
	for _, k := range w.pending {
		pending = append(pending, k)
	}
	w.mu.Unlock()
	left := len(pending)
	for _, k := range pending {
		mapping, err := w.mapper.RESTMapping(k.GroupKind())
		if err != nil {
			if absent(err) {
				w.log.V(1).Info("API not served, drift of this kind is watched once it is", "kind", k.String())
			} else {
				w.log.Info("cannot tell whether an API is served, asking again later", "kind", k.String(), "error", err.Error())
			}
			continue
		}
		if err := w.watch(mapping.GroupVersionKind); err != nil {
			w.log.Info("cannot watch installed objects, trying again later", "kind", k.String(), "version", mapping.GroupVersionKind.Version, "error", err.Error())
			continue
		}
		w.log.Info("watching installed objects for drift", "kind", k.String(), "version", mapping.GroupVersionKind.Version)
		w.mu.Lock()
		delete(w.pending, k.GroupKind())
		w.mu.Unlock()
		left--
	}
	return left
}

// absent reports whether err says the API is not served, rather than that
// discovery could not be asked.
func absent(err error) bool {
	var failed *apiutil.ErrResourceDiscoveryFailed
	if errors.As(err, &failed) {
		for _, e := range *failed {
			if !apierrors.IsNotFound(e) && !meta.IsNoMatchError(e) {
				return false
			}
		}
		return true
	}
	return meta.IsNoMatchError(err)
}

// noteInventory asks for the pending kinds an inventory names to be looked
// up at once, without waiting for the next poll.
func (w *driftWatcher) noteInventory(_ context.Context, o client.Object) []reconcile.Request {
	sub, ok := o.(*v1alpha1.Subscription)
	if !ok {
		return nil
	}
	w.mu.Lock()
	wanted := false
	for _, ref := range sub.Status.Inventory {
		if _, ok := w.pending[schema.GroupKind{Group: ref.Group, Kind: ref.Kind}]; ok {
			wanted = true
			break
		}
	}
	w.mu.Unlock()
	if wanted {
		select {
		case w.poke <- struct{}{}:
		default: // a look-up is due already
		}
	}
	return nil
}

// installedSource is the watch of one installed kind: metadata only, from
// the label-selected cache, each change or deletion enqueueing the owner.
func installedSource(c cache.Cache, gvk schema.GroupVersionKind, h handler.EventHandler) source.Source {
	return source.Kind(c, client.Object(metadataOf(gvk)), h, ownedByFerry)
}
