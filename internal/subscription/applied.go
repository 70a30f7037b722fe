package subscription

import (
	"context"
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// appliedRecords remembers, per Subscription, what this installer last
// applied without error, and counts the drift signals heard of for it (a
// watch event of an installed object), so that a health recheck applies
// again only when something may have drifted. It holds one entry per
// Subscription reconciled; an entry is forgotten when its Subscription is
// gone. Nothing of it survives a restart: the first reconcile after one
// applies again.
type appliedRecords struct {
	mu    sync.Mutex
	heard map[types.NamespacedName]uint64
	last  map[types.NamespacedName]appliedRecord
}

// appliedRecord is one apply without error.
type appliedRecord struct {
	// heard is the count of drift signals when the reconcile that applied
	// started: a signal during it counts as not applied.
	heard uint64
	// revision and digest name what was applied; generation is the
	// Subscription's then.
	revision   int64
	digest     string
	generation int64
	at         time.Time
}

// noteDrift counts a drift signal for key.
func (a *appliedRecords) noteDrift(key types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.heard == nil {
		a.heard = map[types.NamespacedName]uint64{}
	}
	a.heard[key]++
}

// heardOf is the count of drift signals for key so far.
func (a *appliedRecords) heardOf(key types.NamespacedName) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.heard[key]
}

// record notes that rev was applied for sub without error, by a reconcile
// that started when heard drift signals had been counted.
func (a *appliedRecords) record(sub *v1alpha1.Subscription, heard uint64, rev *v1alpha1.Revision, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.last = map[types.NamespacedName]appliedRecord{}
	}
	a.last[client.ObjectKeyFromObject(sub)] = appliedRecord{heard: heard, revision: rev.Spec.Revision, digest: rev.Spec.ContentDigest, generation: sub.Generation, at: now}
}

// forget drops what is known of key: its Subscription is gone.
func (a *appliedRecords) forget(key types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.heard, key)
	delete(a.last, key)
}

// current reports whether rev, as the Subscription's generation asks, was
// applied without error less than bound ago, and no drift signal was heard
// of since the reconcile that applied it started (heard is the count when
// this reconcile started). A bound of 0 is never current.
func (a *appliedRecords) current(sub *v1alpha1.Subscription, heard uint64, rev *v1alpha1.Revision, now time.Time, bound time.Duration) bool {
	if bound <= 0 || rev == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.last[client.ObjectKeyFromObject(sub)]
	return ok && r.heard == heard && r.revision == rev.Spec.Revision && r.digest == rev.Spec.ContentDigest &&
		r.generation == sub.Generation && now.Sub(r.at) < bound
}

// installedEvents enqueues the Subscription that owns an installed object
// (ownerOf) on every event of it, and counts the event as a drift signal
// unless it only changed the status of an object whose generation tracks
// its spec (a Deployment becoming available is no drift).
func (r *Reconciler) installedEvents() handler.EventHandler {
	enqueue := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request], drift bool) {
		for _, req := range ownerOf(ctx, o) {
			if drift {
				r.applied.noteDrift(req.NamespacedName)
			}
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, true)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectNew, q, mayHaveDrifted(e.ObjectOld, e.ObjectNew))
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, true)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q, true)
		},
	}
}

// mayHaveDrifted reports whether an update of an installed object may have
// changed what Ferry applied: anything but a status change of an object
// whose metadata.generation tracks its spec. A periodic resync (the same
// resourceVersion) counts as drift: it is the bound on what a missed event
// could leave uncorrected.
func mayHaveDrifted(old, cur client.Object) bool {
	return old.GetResourceVersion() == cur.GetResourceVersion() ||
		cur.GetGeneration() == 0 || old.GetGeneration() != cur.GetGeneration() ||
		!cur.GetDeletionTimestamp().Equal(old.GetDeletionTimestamp()) ||
		!maps.Equal(old.GetLabels(), cur.GetLabels()) || !maps.Equal(old.GetAnnotations(), cur.GetAnnotations()) ||
		!equality.Semantic.DeepEqual(old.GetOwnerReferences(), cur.GetOwnerReferences())
}
