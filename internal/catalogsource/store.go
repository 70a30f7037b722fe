package catalogsource

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/lru"
)

// Snapshot is what the Store holds for one CatalogSource. Snapshots are
// immutable: the Store replaces them, never changes them.
type Snapshot struct {
	// Name of the CatalogSource.
	Name string
	// Priority of the CatalogSource, from its spec.
	Priority int32
	// Address the catalog is followed at.
	Address string
	// Digest of Catalog, or "" before the first content arrived.
	Digest string
	// Catalog is the last good content, without manifests; nil before the
	// first content arrived. It was fetched from this CatalogSource's own
	// address, never taken from another CatalogSource that claims the same
	// digest: read only. Bundles carry no manifests; see Store.Manifests.
	Catalog *catalog.Catalog
	// Updated is when the current digest was received.
	Updated time.Time
	// Connected is true while the catalog is followed.
	Connected bool
	// Err is the last connection error, nil while connected.
	Err error
}

// ErrNotFound is returned by Store.Manifests for an unknown catalog or bundle.
var ErrNotFound = errors.New("not found")

// ErrBundleChanged is returned by Store.Manifests when the catalog now serves
// different content for the bundle than the held snapshot says; an event
// for the new snapshot follows.
var ErrBundleChanged = errors.New("bundle changed in the catalog")

// ContentMismatchError is returned by Store.Manifests when a catalog answers
// GetBundle with content that does not match what it announced: another
// package or bundle than the snapshot names, manifests that do not hash to
// the manifests digest the snapshot announced for the bundle (or no such
// digest announced at all), or manifests without the bundle's
// ClusterServiceVersion. Nothing of the answer is kept.
type ContentMismatchError struct {
	// Catalog is the CatalogSource, Address where it is served.
	Catalog, Address string
	// Package and Bundle name the bundle asked for.
	Package, Bundle string
	// Reason says what does not match.
	Reason string
}

func (e *ContentMismatchError) Error() string {
	return fmt.Sprintf("catalog %q at %s: bundle %s of package %q: %s; the answer is refused", e.Catalog, e.Address, e.Bundle, e.Package, e.Reason)
}

// BundlePendingError is returned by Store.Manifests for a bundle the
// catalog lists by image only and whose manifests digest its snapshot does
// not announce yet: catalogd pulls the image when the bundle is asked for
// and announces the digest in its next snapshot. Nothing is installed from
// the answer that triggered the pull; the bundle installs once a snapshot
// announces the digest and the manifests hash to it. The Store sends an
// event for the catalog after a while, so that a failed pull is tried again.
type BundlePendingError struct {
	// Catalog is the CatalogSource, Address where it is served.
	Catalog, Address string
	// Package and Bundle name the bundle asked for.
	Package, Bundle string
	// Image is the bundle image the snapshot names.
	Image string
	// ManifestsDigest is what catalogd computed from the pulled image, not
	// yet announced in a snapshot; "" when the pull did not succeed.
	ManifestsDigest string
	// Err is catalogd's answer when the pull did not succeed.
	Err error
	// Retry is when the Store sends the catalog's event again.
	Retry time.Duration
}

func (e *BundlePendingError) Error() string {
	head := fmt.Sprintf("catalog %q at %s: bundle %s of package %q is listed by image only", e.Catalog, e.Address, e.Bundle, e.Package)
	if e.Err != nil {
		return fmt.Sprintf("%s, and catalogd has not pulled its image %s: %v; asked again in %s", head, e.Image, e.Err, e.Retry)
	}
	return fmt.Sprintf("%s: catalogd pulled its image %s (manifests digest %s); waiting for the catalog to announce that digest in a new snapshot", head, e.Image, e.ManifestsDigest)
}

func (e *BundlePendingError) Unwrap() error { return e.Err }

// Defaults for the Store's options.
const (
	DefaultEventBuffer        = 256
	DefaultManifestCacheBytes = 128 << 20
	// DefaultPendingRetry is how long after a bundle image was found not
	// pulled the Store sends the catalog's event again: catalogd answers a
	// failed pull from memory for as long.
	DefaultPendingRetry = catalogd.BundlePullRetryAfter
	// pendingAskTimeout bounds the GetBundle call that makes catalogd pull
	// a bundle image. catalogd finishes the pull without the caller and
	// announces the digest in a new snapshot.
	pendingAskTimeout = 20 * time.Second
)

type storeOptions struct {
	eventBuffer   int
	manifestBytes int64
	pendingRetry  time.Duration
}

// Option configures NewStore.
type Option func(*storeOptions)

// WithEventBuffer sets the capacity of the Events channel.
func WithEventBuffer(n int) Option { return func(o *storeOptions) { o.eventBuffer = n } }

// WithManifestCacheBytes bounds the manifests cached by bundle digest (by
// the size of their JSON); 0 disables the cache.
func WithManifestCacheBytes(n int64) Option { return func(o *storeOptions) { o.manifestBytes = n } }

// WithPendingRetry sets how long after a bundle image was found not pulled
// the catalog's event is sent again (default DefaultPendingRetry).
func WithPendingRetry(d time.Duration) Option { return func(o *storeOptions) { o.pendingRetry = d } }

// Store holds the catalogs of all CatalogSources. It is safe for concurrent
// use. Everything is kept per CatalogSource: a catalog claiming another's
// digest, for the whole catalog or for a bundle, gets nothing of the other's
// content and cannot change it.
type Store struct {
	mu      sync.RWMutex
	sources map[string]*storeEntry
	events  *notifier
	// cache holds manifests by manifestKey (CatalogSource, address, bundle
	// digest, manifests digest); only manifests that hash to the manifests
	// digest are put in.
	cache *lru.Cache[string, []catalog.Manifest]
	// pendingRetry and retrying: at most one timer per catalog sends its
	// event again after a bundle image was found not pulled.
	pendingRetry time.Duration
	retryMu      sync.Mutex
	retrying     map[string]bool
	// flights are the GetBundle calls in progress by manifestKey: callers
	// that miss the cache for a key being fetched wait for that answer
	// instead of asking again.
	flightMu sync.Mutex
	flights  map[string]*flight
}

// flight is one GetBundle call in progress for a manifestKey.
type flight struct {
	// done is closed once ms and err are set.
	done chan struct{}
	ms   []catalog.Manifest
	err  error
	// abandoned: the caller that asked gave up (its context is done), so
	// err says nothing about the bundle; who waited asks again.
	abandoned bool
	// joined counts the callers that waited for it (flightMu).
	joined int
}

type storeEntry struct {
	snap   *Snapshot
	client *Client
}

// manifestKey is the cache key of a bundle's manifests: the CatalogSource,
// its address, and the bundle and manifests digests it announced, never the
// digests alone.
func manifestKey(catalogName, address, bundleDigest, manifestsDigest string) string {
	return catalogName + "\x00" + address + "\x00" + bundleDigest + "\x00" + manifestsDigest
}

// NewStore returns an empty store.
func NewStore(opts ...Option) *Store {
	o := storeOptions{eventBuffer: DefaultEventBuffer, manifestBytes: DefaultManifestCacheBytes, pendingRetry: DefaultPendingRetry}
	for _, opt := range opts {
		opt(&o)
	}
	if o.pendingRetry <= 0 {
		o.pendingRetry = DefaultPendingRetry
	}
	return &Store{
		sources:      map[string]*storeEntry{},
		events:       newNotifier(o.eventBuffer),
		cache:        lru.New[string, []catalog.Manifest](o.manifestBytes),
		pendingRetry: o.pendingRetry,
		retrying:     map[string]bool{},
		flights:      map[string]*flight{},
	}
}

// Get returns the last good content of a CatalogSource, also while it is
// disconnected. ok is false until content has arrived.
func (s *Store) Get(name string) (*Snapshot, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.sources[name]
	if e == nil || e.snap.Catalog == nil {
		return nil, false
	}
	return e.snap, true
}

// State returns what is known of a followed CatalogSource, with or without
// content (Catalog is nil until the first content arrives).
func (s *Store) State(name string) (*Snapshot, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.sources[name]
	if e == nil {
		return nil, false
	}
	return e.snap, true
}

// List returns every CatalogSource that has content, sorted by name.
func (s *Store) List() []*Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Snapshot, 0, len(s.sources))
	for _, e := range s.sources {
		if e.snap.Catalog != nil {
			out = append(out, e.snap)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Events delivers a CatalogSource object (name only) each time a catalog's
// digest, connection state or priority changes, or it is removed. Sending never
// blocks the followers: when the buffer is full, events are queued, one per
// CatalogSource. The channel has one reader, typically a controller's
// source.Channel.
func (s *Store) Events() <-chan event.GenericEvent { return s.events.C() }

// Manifests returns the manifests of a bundle of the named catalog, fetched
// with GetBundle over that catalog's connection and cached by (catalog,
// bundle digest, manifests digest). The answer is checked against what the
// catalog announced in its snapshot: the same package, bundle and digest;
// manifests that hash (catalog.ManifestsDigest) to the manifests digest
// announced for the bundle, which must be announced (fail closed: a catalog
// that announces none cannot be verified and its bundles are refused); and
// exactly one ClusterServiceVersion, named as the bundle. A bundle listed by
// image only whose digest is not announced yet is asked for, which makes
// catalogd pull its image, and fails with *BundlePendingError (see
// askPending). It fails with ErrNotFound
// for an unknown catalog or bundle, with ErrBundleChanged when the catalog
// no longer serves the bundle the snapshot holds, and with
// *ContentMismatchError for an answer that does not match. Callers that
// miss the cache for a bundle while it is being fetched wait for that
// answer: one GetBundle per bundle at a time (fetchOnce). The result is
// shared: callers must not modify it.
func (s *Store) Manifests(ctx context.Context, catalogName, pkg, bundle string) ([]catalog.Manifest, error) {
	s.mu.RLock()
	e := s.sources[catalogName]
	var snap *Snapshot
	var cl *Client
	if e != nil {
		snap, cl = e.snap, e.client
	}
	s.mu.RUnlock()
	if snap == nil || snap.Catalog == nil {
		return nil, fmt.Errorf("catalog %q: %w", catalogName, ErrNotFound)
	}
	b := snap.Catalog.Bundle(pkg, bundle)
	if b == nil {
		return nil, fmt.Errorf("bundle %s of package %q in catalog %q: %w", bundle, pkg, catalogName, ErrNotFound)
	}
	announced := b.ManifestsDigest()
	key := manifestKey(catalogName, snap.Address, b.Digest(), announced)
	if ms, ok := s.cache.Get(key); ok {
		return ms, nil
	}
	if cl == nil {
		return nil, fmt.Errorf("catalog %q is not followed", catalogName)
	}
	mismatch := func(format string, args ...any) error {
		return &ContentMismatchError{Catalog: catalogName, Address: cl.Address(), Package: pkg, Bundle: bundle, Reason: fmt.Sprintf(format, args...)}
	}
	if announced == "" && b.Image != "" {
		return nil, s.askPending(ctx, cl, snap, b, mismatch)
	}
	if announced == "" {
		// Fail closed: nothing could be verified, so nothing is fetched.
		return nil, mismatch("%s", reasonNoManifestsDigest)
	}
	return s.fetchOnce(ctx, key, func(ctx context.Context) ([]catalog.Manifest, error) {
		return s.fetch(ctx, cl, catalogName, pkg, bundle, b.Digest(), announced, key, mismatch)
	})
}

// fetchOnce returns what fetch answers for key, calling it once for all
// the callers that ask for key while it runs: the first calls it, with its
// context; the others wait for its answer, each until its own context is
// done. When the first gave up (its context done), those waiting ask
// again.
func (s *Store) fetchOnce(ctx context.Context, key string, fetch func(context.Context) ([]catalog.Manifest, error)) ([]catalog.Manifest, error) {
	for {
		s.flightMu.Lock()
		if fl := s.flights[key]; fl != nil {
			fl.joined++
			s.flightMu.Unlock()
			select {
			case <-fl.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if fl.abandoned && ctx.Err() == nil {
				continue
			}
			return fl.ms, fl.err
		}
		fl := &flight{done: make(chan struct{})}
		s.flights[key] = fl
		s.flightMu.Unlock()
		return s.lead(ctx, key, fl, fetch)
	}
}

// lead runs fetch for the flight fl of key and hands its answer to every
// caller waiting for it, even when fetch panics.
func (s *Store) lead(ctx context.Context, key string, fl *flight, fetch func(context.Context) ([]catalog.Manifest, error)) ([]catalog.Manifest, error) {
	fl.err = errors.New("fetching the bundle's manifests stopped")
	defer func() {
		fl.abandoned = fl.err != nil && ctx.Err() != nil
		s.flightMu.Lock()
		delete(s.flights, key)
		s.flightMu.Unlock()
		close(fl.done)
	}()
	if ms, ok := s.cache.Get(key); ok {
		// Put by a flight that ended after this caller missed the cache.
		fl.ms, fl.err = ms, nil
		return ms, nil
	}
	fl.ms, fl.err = fetch(ctx)
	return fl.ms, fl.err
}

// fetch asks the catalog over cl for a bundle, checks the answer against
// the digests its snapshot announced, and caches it under key.
func (s *Store) fetch(ctx context.Context, cl *Client, catalogName, pkg, bundle, digest, announced, key string, mismatch func(string, ...any) error) ([]catalog.Manifest, error) {
	bundleFetches.Inc()
	got, err := cl.Bundle(ctx, pkg, bundle)
	if err != nil {
		return nil, fmt.Errorf("catalog at %s: bundle %s: %s", cl.Address(), bundle, grpcMessage(err))
	}
	if got.GetPackage() != pkg || got.GetName() != bundle {
		return nil, mismatch("the answer is bundle %s of package %q", got.GetName(), got.GetPackage())
	}
	if got.GetDigest() != digest {
		// Not cached: the next snapshot says what the catalog serves now.
		return nil, fmt.Errorf("catalog %q: bundle %s: %w (announced %s, served %s)", catalogName, bundle, ErrBundleChanged, digest, got.GetDigest())
	}
	ms := ManifestsOf(got)
	if received := catalog.ManifestsDigest(ms); received != announced {
		return nil, mismatch("the manifests received hash to %s, the catalog announced %s", received, announced)
	}
	if reason := checkCSV(ms, bundle); reason != "" {
		return nil, mismatch("%s", reason)
	}
	s.cache.Put(key, ms, catalog.ManifestsSize(ms))
	return ms, nil
}

// askPending asks catalogd for a bundle listed by image only whose
// manifests digest the snapshot does not announce, so that catalogd pulls
// the image, and says what it answered. Nothing of the answer is installed
// or cached: the digest counts only once a snapshot (bound to the catalog
// digest) announces it. An answer without a manifests digest is a catalogd
// that announces none (refused as such); an answer whose manifests do not
// hash to the digest it names, or that names another bundle or image, is
// refused as a mismatch.
func (s *Store) askPending(ctx context.Context, cl *Client, snap *Snapshot, b *catalog.Bundle, mismatch func(string, ...any) error) error {
	pending := &BundlePendingError{Catalog: snap.Name, Address: cl.Address(), Package: b.Package, Bundle: b.Name, Image: b.Image, Retry: s.pendingRetry}
	ctx, cancel := context.WithTimeout(ctx, pendingAskTimeout)
	defer cancel()
	got, err := cl.Bundle(ctx, b.Package, b.Name)
	if err != nil {
		s.retryLater(snap.Name)
		pending.Err = errors.New(grpcMessage(err))
		return pending
	}
	switch {
	case got.GetPackage() != b.Package || got.GetName() != b.Name:
		return mismatch("the answer is bundle %s of package %q", got.GetName(), got.GetPackage())
	case got.GetDigest() != b.Digest():
		return fmt.Errorf("catalog %q: bundle %s: %w (announced %s, served %s)", snap.Name, b.Name, ErrBundleChanged, b.Digest(), got.GetDigest())
	case got.GetImage() != b.Image:
		return mismatch("the answer names bundle image %s, the snapshot %s", got.GetImage(), b.Image)
	case got.GetManifestsDigest() == "":
		return mismatch("%s", reasonNoManifestsDigest)
	}
	if received := catalog.ManifestsDigest(ManifestsOf(got)); received != got.GetManifestsDigest() {
		return mismatch("the manifests received hash to %s, the answer names %s", received, got.GetManifestsDigest())
	}
	s.retryLater(snap.Name)
	pending.ManifestsDigest = got.GetManifestsDigest()
	return pending
}

// retryLater sends name's event after the pending retry, unless a timer
// for name already runs.
func (s *Store) retryLater(name string) {
	s.retryMu.Lock()
	defer s.retryMu.Unlock()
	if s.retrying[name] {
		return
	}
	s.retrying[name] = true
	time.AfterFunc(s.pendingRetry, func() {
		s.retryMu.Lock()
		delete(s.retrying, name)
		s.retryMu.Unlock()
		s.events.notify(name)
	})
}

// reasonNoManifestsDigest is the ContentMismatchError reason for a bundle
// whose snapshot announced no manifests digest.
const reasonNoManifestsDigest = "the catalog announced no manifests digest for the bundle, so its manifests cannot be verified (a catalogd older than manifests digests: upgrade it)"

// checkCSV says what is wrong when ms does not hold exactly one
// ClusterServiceVersion named bundle.
func checkCSV(ms []catalog.Manifest, bundle string) string {
	var names []string
	for _, m := range ms {
		if m.Kind == catalog.KindClusterServiceVersion {
			names = append(names, m.Name)
		}
	}
	switch {
	case len(names) == 1 && names[0] == bundle:
		return ""
	case len(names) == 0:
		return "the manifests hold no ClusterServiceVersion"
	default:
		return fmt.Sprintf("the manifests hold ClusterServiceVersions %v, want exactly %s", names, bundle)
	}
}

// change says what an update changed.
type change struct {
	// public: digest, connection state or priority, what Events reports.
	public bool
	// any: anything the status shows.
	any bool
}

// update replaces the snapshot of name with what fn makes of a copy of it,
// creating the entry when needed, and emits an event for a public change.
func (s *Store) update(name string, fn func(*Snapshot)) change {
	s.mu.Lock()
	e := s.sources[name]
	if e == nil {
		e = &storeEntry{snap: &Snapshot{Name: name}}
		s.sources[name] = e
	}
	old := e.snap
	next := *old
	fn(&next)
	if next.Catalog != nil {
		next.Digest = next.Catalog.Digest
	}
	e.snap = &next
	s.mu.Unlock()
	c := change{public: old.Digest != next.Digest || old.Connected != next.Connected || old.Priority != next.Priority}
	c.any = c.public || old.Address != next.Address || errText(old.Err) != errText(next.Err)
	if c.public {
		s.events.notify(name)
	}
	return c
}

// setClient records the connection Manifests uses for name; a nil c clears
// it only when old is still the recorded one.
func (s *Store) setClient(name string, c, old *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sources[name]
	if e == nil {
		e = &storeEntry{snap: &Snapshot{Name: name}}
		s.sources[name] = e
	}
	if c != nil || e.client == old {
		e.client = c
	}
}

// remove forgets name and emits an event when it was known.
func (s *Store) remove(name string) {
	s.mu.Lock()
	_, ok := s.sources[name]
	delete(s.sources, name)
	s.mu.Unlock()
	if ok {
		s.events.notify(name)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// objectFor is the object events carry.
func objectFor(name string) *v1alpha1.CatalogSource {
	return &v1alpha1.CatalogSource{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CatalogSource"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
}

// notifier sends events on a buffered channel without ever blocking the
// sender: when the channel is full, names are queued (once each) and a
// goroutine delivers them in order.
type notifier struct {
	ch      chan event.GenericEvent
	mu      sync.Mutex
	queue   []string
	queued  map[string]bool
	pumping bool
}

func newNotifier(buffer int) *notifier {
	return &notifier{ch: make(chan event.GenericEvent, buffer), queued: map[string]bool{}}
}

func (n *notifier) C() <-chan event.GenericEvent { return n.ch }

func (n *notifier) notify(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.pumping {
		select {
		case n.ch <- event.GenericEvent{Object: objectFor(name)}:
			return
		default:
		}
	}
	if n.queued[name] {
		return
	}
	n.queued[name] = true
	n.queue = append(n.queue, name)
	if !n.pumping {
		n.pumping = true
		go n.pump()
	}
}

func (n *notifier) pump() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.pumping = false
			n.mu.Unlock()
			return
		}
		name := n.queue[0]
		n.queue = n.queue[1:]
		delete(n.queued, name)
		n.mu.Unlock()
		n.ch <- event.GenericEvent{Object: objectFor(name)}
	}
}
