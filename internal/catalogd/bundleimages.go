package catalogd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/lru"
	"github.com/ferrydev/ferry/internal/ociimage"
)

// BundleImages gives bundles a catalog lists by image only their objects,
// pulled from the registry+v1 bundle image into the image cache
// (catalog.BundleImages). What a bundle image holds must be the bundle the
// catalog names: the same package and a ClusterServiceVersion of the
// bundle's name, and no problem of severity error.
type BundleImages struct {
	client  *ociimage.Client
	log     logr.Logger
	timeout time.Duration
	// recent holds the objects of recently used bundle images, by key.
	recent *lru.Cache[string, []catalog.Manifest]
	// pulled is signalled after a pull, for Run.
	pulled chan struct{}
	// turns bounds the pulls running at once.
	turns chan struct{}
	// failed remembers recent failures by image reference, answered again
	// without a pull until retryAt, so that requests for a bundle whose
	// image cannot be pulled neither wait for the registry each time nor
	// make catalogd hammer it.
	mu     sync.Mutex
	failed map[string]pullFailure
	now    func() time.Time
}

type pullFailure struct {
	err     error
	retryAt time.Time
}

// Bounds of pulling bundle images.
const (
	// MaxConcurrentBundlePulls is how many bundle images are pulled at once.
	MaxConcurrentBundlePulls = 4
	// BundlePullRetryAfter is how long a failed bundle image pull is
	// answered from memory before it is tried again.
	BundlePullRetryAfter = time.Minute
	// maxFailuresKept bounds the failures remembered.
	maxFailuresKept = 10000
)

// NewBundleImages pulls bundle images with client, each pull taking up to
// timeout; the objects of recently used images, up to memBytes, are kept
// in memory.
func NewBundleImages(client *ociimage.Client, timeout time.Duration, memBytes int64, log logr.Logger) *BundleImages {
	return &BundleImages{
		client: client, log: log, timeout: timeout, recent: lru.New[string, []catalog.Manifest](memBytes),
		pulled: make(chan struct{}, 1), turns: make(chan struct{}, MaxConcurrentBundlePulls),
		failed: map[string]pullFailure{}, now: time.Now,
	}
}

var _ catalog.BundleImages = (*BundleImages)(nil)

// Cached implements catalog.BundleImages.
func (b *BundleImages) Cached(ref catalog.BundleImage) ([]catalog.Manifest, bool) {
	if ms, ok := b.recent.Get(key(ref)); ok {
		return ms, true
	}
	content, ok := b.client.CachedBundle(ref.Image)
	if !ok {
		return nil, false
	}
	ms, err := bundleObjects(content, ref)
	if err != nil {
		return nil, false
	}
	b.recent.Put(key(ref), ms, catalog.ManifestsSize(ms))
	return ms, true
}

// Pull implements catalog.BundleImages. A pull that failed less than
// BundlePullRetryAfter ago fails again at once, with the same error.
func (b *BundleImages) Pull(ctx context.Context, ref catalog.BundleImage) ([]catalog.Manifest, error) {
	if err := b.recentFailure(key(ref)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	select {
	case b.turns <- struct{}{}:
		defer func() { <-b.turns }()
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a turn to pull bundle image %s: %w", ref.Image, ctx.Err())
	}
	content, err := b.client.PullBundle(ctx, ref.Image)
	if err != nil {
		b.log.Error(err, "bundle image pull failed", "package", ref.Package, "bundle", ref.Name, "image", ref.Image)
		return nil, b.remember(key(ref), err)
	}
	ms, err := bundleObjects(content, ref)
	if err != nil {
		b.log.Error(err, "bundle image refused", "package", ref.Package, "bundle", ref.Name, "image", ref.Image, "digest", content.Digest)
		return nil, b.remember(key(ref), err)
	}
	if err := b.client.Remember(ociimage.KindBundle, ref.Image, content.Digest); err != nil {
		b.log.Error(err, "recording the digest of a bundle image", "image", ref.Image)
	}
	b.recent.Put(key(ref), ms, catalog.ManifestsSize(ms))
	b.log.Info("bundle image pulled", "package", ref.Package, "bundle", ref.Name, "image", ref.Image, "digest", content.Digest, "cached", content.Cached)
	select {
	case b.pulled <- struct{}{}:
	default:
	}
	return ms, nil
}

// key identifies a bundle image as a catalog lists it: the same image
// listed for another bundle is checked again.
func key(ref catalog.BundleImage) string {
	return ref.Image + "\x00" + ref.Package + "\x00" + ref.Name
}

func (b *BundleImages) recentFailure(k string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.failed[k]
	if !ok {
		return nil
	}
	if b.now().Before(f.retryAt) {
		return fmt.Errorf("%w (the last pull failed; the next is tried after %s)", f.err, f.retryAt.UTC().Format(time.RFC3339))
	}
	delete(b.failed, k)
	return nil
}

// remember records a failed pull and returns err.
func (b *BundleImages) remember(k string, err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.failed) >= maxFailuresKept {
		now := b.now()
		for k, f := range b.failed {
			if !now.Before(f.retryAt) {
				delete(b.failed, k)
			}
		}
	}
	if len(b.failed) < maxFailuresKept {
		b.failed[k] = pullFailure{err: err, retryAt: b.now().Add(BundlePullRetryAfter)}
	}
	return err
}

// ErrWrongBundle is returned when a bundle image holds another bundle than the catalog lists.
var ErrWrongBundle = errors.New("the bundle image holds another bundle than the catalog lists")

// bundleObjects loads an unpacked bundle image and checks it is ref.
func bundleObjects(content *ociimage.Content, ref catalog.BundleImage) ([]catalog.Manifest, error) {
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: ref.Image, Dir: content.Dir, Format: catalog.FormatBundle}}, catalog.WithManifestCache(0))
	if err != nil {
		return nil, fmt.Errorf("bundle image %s: %w", ref.Image, err)
	}
	if errs := c.Problems.Errors(); len(errs) > 0 {
		list := make([]error, 0, len(errs))
		for _, p := range errs {
			list = append(list, p)
		}
		return nil, fmt.Errorf("bundle image %s (%s) is not a valid registry+v1 bundle: %w", ref.Image, content.Digest, errors.Join(list...))
	}
	bundle := c.Bundle(ref.Package, ref.Name)
	if bundle == nil {
		var held []string
		for _, p := range c.Packages {
			for _, hb := range p.Bundles {
				held = append(held, fmt.Sprintf("%s of package %q", hb.Name, p.Name))
			}
		}
		return nil, fmt.Errorf("%w: %s (%s) holds %v, the catalog lists %s of package %q", ErrWrongBundle, ref.Image, content.Digest, held, ref.Name, ref.Package)
	}
	return bundle.Manifests()
}

// Run reloads, through reload, once pulls settle, so that a catalog that
// pulls bundle images on request announces their manifests digests. It
// returns when ctx ends.
func (b *BundleImages) Run(ctx context.Context, settle time.Duration, reload func(context.Context) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.pulled:
		}
		t := time.NewTimer(settle)
	quiet:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-b.pulled:
				t.Reset(settle)
			case <-t.C:
				break quiet
			}
		}
		_ = reload(ctx)
	}
}
