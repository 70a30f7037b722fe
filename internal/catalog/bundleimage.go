package catalog

import (
	"context"
	"fmt"
	"sync"
)

// BundleImage names a bundle a catalog lists by image only: an olm.bundle
// with an image and no olm.bundle.object properties.
type BundleImage struct {
	Package string
	// Name is the bundle's name, which its ClusterServiceVersion must have.
	Name string
	// Image is the bundle image reference as the catalog gives it.
	Image string
}

// BundleImages supplies the objects of bundles a catalog lists by image
// only. Implementations check that what they return is the named bundle.
type BundleImages interface {
	// Cached returns the bundle's objects when they are at hand without
	// contacting a registry.
	Cached(b BundleImage) ([]Manifest, bool)
	// Pull fetches the bundle image and returns its objects.
	Pull(ctx context.Context, b BundleImage) ([]Manifest, error)
}

// WithBundleImages gives bundles listed by image only their objects from
// bi. Objects at hand are served from the start, with their manifests
// digest. The others are pulled during Load when eager is set (a failure
// is a warning naming the bundle, and the pull is tried again when the
// bundle's manifests are asked for); otherwise they are pulled on the
// first request, and the bundle's manifests digest is announced empty
// until a load finds them at hand.
func WithBundleImages(bi BundleImages, eager bool) Option {
	return func(o *options) { o.bundleImages, o.eagerImages = bi, eager }
}

// imageManifests pulls a bundle's objects from its image on first use; a
// failed pull is tried again on the next use.
type imageManifests struct {
	ref BundleImage
	bi  BundleImages
	mu  sync.Mutex
	ms  []Manifest
}

func (m *imageManifests) manifests() ([]Manifest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ms != nil {
		return m.ms, nil
	}
	ms, err := m.bi.Pull(context.Background(), m.ref)
	if err != nil {
		return nil, fmt.Errorf("bundle image %s: %w", m.ref.Image, err)
	}
	m.ms = ms
	return ms, nil
}

// count is 1 until pulled: the bundle has objects, in its image.
func (m *imageManifests) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ms != nil {
		return len(m.ms)
	}
	return 1
}

// resolveBundleImages gives every served bundle listed by image only its
// objects or a way to pull them, and recomputes the catalog digest when a
// bundle's manifests digest changed.
func resolveBundleImages(ctx context.Context, c *Catalog, images []imageOnly, o options, sink *problemSink) error {
	changed := false
	set := func(b *Bundle, ms manifestSource, digest string) {
		if b != nil {
			changed = changed || b.manifestsDigest != digest
			b.manifests, b.manifestsDigest = ms, digest
		}
	}
	var pending []imageOnly
	for _, im := range images {
		if ms, ok := o.bundleImages.Cached(im.ref); ok {
			set(im.bundle, inlineManifests(ms), ManifestsDigest(ms))
			continue
		}
		set(im.bundle, &imageManifests{ref: im.ref, bi: o.bundleImages}, "")
		pending = append(pending, im)
	}
	if o.eagerImages && len(pending) > 0 {
		pulled := make([][]Manifest, len(pending))
		errs := make([]error, len(pending))
		if err := forEach(ctx, len(pending), func(i int) {
			pulled[i], errs[i] = o.bundleImages.Pull(ctx, pending[i].ref)
		}); err != nil {
			return err
		}
		for i, im := range pending {
			if err := errs[i]; err != nil {
				mark := len(sink.list)
				sink.warnf(im.src, joinField(im.field, "image"), "pulling bundle image %s failed: %v; the bundle is listed, and asking for its manifests tries the pull again", im.ref.Image, err)
				sink.tag(mark, im.ref.Package, im.ref.Name)
				continue
			}
			set(im.bundle, inlineManifests(pulled[i]), ManifestsDigest(pulled[i]))
		}
	}
	if changed {
		c.Digest = digest(c)
	}
	return nil
}
