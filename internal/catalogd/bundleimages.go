package catalogd

import (
	"context"
	"errors"
	"fmt"
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
	// recent holds the objects of recently used bundle images, by reference.
	recent *lru.Cache[string, []catalog.Manifest]
	// pulled is signalled after a pull, for Run.
	pulled chan struct{}
}

// NewBundleImages pulls bundle images with client, each pull taking up to
// timeout; the objects of recently used images, up to memBytes, are kept
// in memory.
func NewBundleImages(client *ociimage.Client, timeout time.Duration, memBytes int64, log logr.Logger) *BundleImages {
	return &BundleImages{client: client, log: log, timeout: timeout, recent: lru.New[string, []catalog.Manifest](memBytes), pulled: make(chan struct{}, 1)}
}

var _ catalog.BundleImages = (*BundleImages)(nil)

// Cached implements catalog.BundleImages.
func (b *BundleImages) Cached(ref catalog.BundleImage) ([]catalog.Manifest, bool) {
	if ms, ok := b.recent.Get(ref.Image); ok {
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
	b.recent.Put(ref.Image, ms, catalog.ManifestsSize(ms))
	return ms, true
}

// Pull implements catalog.BundleImages.
func (b *BundleImages) Pull(ctx context.Context, ref catalog.BundleImage) ([]catalog.Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	content, err := b.client.PullBundle(ctx, ref.Image)
	if err != nil {
		b.log.Error(err, "bundle image pull failed", "package", ref.Package, "bundle", ref.Name, "image", ref.Image)
		return nil, err
	}
	ms, err := bundleObjects(content, ref)
	if err != nil {
		b.log.Error(err, "bundle image refused", "package", ref.Package, "bundle", ref.Name, "image", ref.Image, "digest", content.Digest)
		return nil, err
	}
	if err := b.client.Remember(ociimage.KindBundle, ref.Image, content.Digest); err != nil {
		b.log.Error(err, "recording the digest of a bundle image", "image", ref.Image)
	}
	b.recent.Put(ref.Image, ms, catalog.ManifestsSize(ms))
	b.log.Info("bundle image pulled", "package", ref.Package, "bundle", ref.Name, "image", ref.Image, "digest", content.Digest, "cached", content.Cached)
	select {
	case b.pulled <- struct{}{}:
	default:
	}
	return ms, nil
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
