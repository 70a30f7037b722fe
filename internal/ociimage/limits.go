package ociimage

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// Limits bound what one pull downloads and unpacks.
type Limits struct {
	// MaxCatalogBytes bounds a catalog image: the sum of its compressed
	// layers, and the uncompressed bytes read from them.
	MaxCatalogBytes int64
	// MaxBundleBytes bounds a bundle image the same way.
	MaxBundleBytes int64
	// MaxEntries bounds the tar entries read from one image's layers.
	MaxEntries int
	// MaxLayers bounds the layers of one image.
	MaxLayers int
	// BundleCacheBytes bounds the unpacked bundle images kept on disk; the
	// least recently used are removed beyond it.
	BundleCacheBytes int64
}

// DefaultLimits are the limits catalogd starts with.
func DefaultLimits() Limits {
	return Limits{
		MaxCatalogBytes:  2 << 30,
		MaxBundleBytes:   64 << 20,
		MaxEntries:       500_000,
		MaxLayers:        128,
		BundleCacheBytes: 2 << 30,
	}
}

// AddFlags registers the limits as flags of serve.
func (l *Limits) AddFlags(fl *pflag.FlagSet) {
	fl.Int64Var(&l.MaxCatalogBytes, "max-catalog-image-bytes", l.MaxCatalogBytes, "largest catalog image pulled: compressed layers and unpacked bytes")
	fl.Int64Var(&l.MaxBundleBytes, "max-bundle-image-bytes", l.MaxBundleBytes, "largest bundle image pulled: compressed layers and unpacked bytes")
	fl.IntVar(&l.MaxEntries, "max-image-entries", l.MaxEntries, "most tar entries read from one image's layers")
	fl.IntVar(&l.MaxLayers, "max-image-layers", l.MaxLayers, "most layers of one image")
	fl.Int64Var(&l.BundleCacheBytes, "bundle-cache-bytes", l.BundleCacheBytes, "bytes of unpacked bundle images kept on disk (least recently used removed beyond)")
}

// Validate reports every limit that is not positive.
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max-catalog-image-bytes", l.MaxCatalogBytes}, {"max-bundle-image-bytes", l.MaxBundleBytes},
		{"max-image-entries", int64(l.MaxEntries)}, {"max-image-layers", int64(l.MaxLayers)},
		{"bundle-cache-bytes", l.BundleCacheBytes},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s: %d: must be positive", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}
