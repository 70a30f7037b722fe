package main

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/ociimage"
)

// registryFlags say how registries are spoken to: serve, publish --push,
// validate and render of an image.
type registryFlags struct {
	config   string
	caFile   string
	insecure []string
}

// addFlags registers the registry flags; prefix starts their help ("with
// --push: ").
func (f *registryFlags) addFlags(fl *pflag.FlagSet, prefix string) {
	fl.StringVar(&f.config, "registry-config", "", prefix+"Docker config file (config.json) with registry credentials; without it registries are asked anonymously")
	fl.StringVar(&f.caFile, "registry-ca-file", "", prefix+"PEM file of CA certificates registries are trusted with, in addition to the system's")
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, prefix+"registry (host or host:port) spoken to over plain HTTP (repeatable; loopback registries always are)")
}

// set reports whether any registry flag is given.
func (f registryFlags) set() bool { return f.config != "" || f.caFile != "" || len(f.insecure) > 0 }

// options are the client options the flags give.
func (f registryFlags) options() []ociimage.Option {
	opts := []ociimage.Option{ociimage.WithInsecureRegistries(f.insecure...)}
	if f.config != "" {
		opts = append(opts, ociimage.WithDockerConfig(f.config))
	}
	if f.caFile != "" {
		opts = append(opts, ociimage.WithCAFile(f.caFile))
	}
	return opts
}

// imageServeFlags are the serve flags for catalog and bundle images.
type imageServeFlags struct {
	cacheDir     string
	pollInterval time.Duration
	pullTimeout  time.Duration
	registry     registryFlags
	bundleImages string
	limits       ociimage.Limits
	// indexDir keeps the index of each catalog image's parsed catalog; ""
	// parses on every start.
	indexDir string
}

// Modes of --bundle-images.
const (
	bundleImagesLazy  = "lazy"
	bundleImagesEager = "eager"
	bundleImagesOff   = "off"
)

// bundleImagesMemBytes bounds the objects of bundle images kept in memory.
const bundleImagesMemBytes = 64 << 20

// defaultImageServeFlags are the defaults of the image flags.
func defaultImageServeFlags() imageServeFlags {
	return imageServeFlags{
		cacheDir: ociimage.DefaultCacheDir(), pollInterval: 5 * time.Minute, pullTimeout: 10 * time.Minute,
		bundleImages: bundleImagesLazy, limits: ociimage.DefaultLimits(), indexDir: catalog.DefaultIndexDir(),
	}
}

// applyDefaults fills the fields left zero (serve called without flags).
func (f *imageServeFlags) applyDefaults() {
	d := defaultImageServeFlags()
	if f.cacheDir == "" {
		f.cacheDir = d.cacheDir
	}
	if f.pullTimeout == 0 {
		f.pullTimeout = d.pullTimeout
	}
	if f.bundleImages == "" {
		f.bundleImages = d.bundleImages
	}
	if f.limits == (ociimage.Limits{}) {
		f.limits = d.limits
	}
}

func addImageServeFlags(fl *pflag.FlagSet, f *imageServeFlags) {
	d := defaultImageServeFlags()
	f.limits = d.limits
	fl.StringVar(&f.cacheDir, "image-cache-dir", d.cacheDir, "directory catalog and bundle images are unpacked into, by digest")
	fl.DurationVar(&f.pollInterval, "poll-interval", d.pollInterval, "how often the tags of catalog images are resolved again (±10%; 0: only on SIGHUP)")
	fl.DurationVar(&f.pullTimeout, "image-pull-timeout", d.pullTimeout, "how long one check of the catalog images (resolve, pull, unpack, load), or one bundle image pull, may take")
	f.registry.addFlags(fl, "")
	fl.StringVar(&f.indexDir, "index-cache-dir", d.indexDir, "directory the parsed catalog of each catalog image is indexed in, by digest, to start without parsing it again (\"\": off)")
	fl.StringVar(&f.bundleImages, "bundle-images", d.bundleImages, "bundles listed by image only: pulled on the first request (lazy), while loading (eager), or served without objects (off)")
	f.limits.AddFlags(fl)
}

// needsClient reports whether serve talks to registries at all.
func (f imageServeFlags) needsClient(images int) bool {
	return images > 0 || f.bundleImages != bundleImagesOff
}

func (f imageServeFlags) validate() error {
	switch f.bundleImages {
	case bundleImagesLazy, bundleImagesEager, bundleImagesOff:
	default:
		return fmt.Errorf("--bundle-images: %q: want lazy, eager or off", f.bundleImages)
	}
	if f.pullTimeout <= 0 {
		return fmt.Errorf("--image-pull-timeout: %s: must be positive", f.pullTimeout)
	}
	if f.pollInterval < 0 {
		return fmt.Errorf("--poll-interval: %s: must not be negative", f.pollInterval)
	}
	return nil
}

// registerImageGauge exports how many catalog images are stale: their last
// check failed and an older digest (or, at start, the one last pulled) is
// served. Alert on it being above 0 for long.
func registerImageGauge(m *catalogd.Metrics, images *catalogd.ImageCatalogs) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ferry", Subsystem: "catalogd", Name: "catalog_images_stale",
		Help: "Catalog images whose last check failed: an older digest is served.",
	}, func() float64 { return float64(len(images.Problems())) }))
}

// splitCatalogs separates --catalog values naming images from directories.
func splitCatalogs(all []string) (dirs, images []string, err error) {
	for _, c := range all {
		if !ociimage.IsImageRef(c) {
			dirs = append(dirs, c)
			continue
		}
		if _, err := ociimage.ParseReference(c); err != nil {
			return nil, nil, fmt.Errorf("--catalog: %w", err)
		}
		images = append(images, c)
	}
	return dirs, images, nil
}

// newImageClient builds the registry client of serve.
func newImageClient(f imageServeFlags, m *catalogd.Metrics) (*ociimage.Client, error) {
	opts := append(f.registry.options(), ociimage.WithCacheDir(f.cacheDir), ociimage.WithLimits(f.limits),
		ociimage.WithMetrics(ociimage.NewMetrics(m.Registry)))
	c, err := ociimage.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	if err := c.CleanTemp(); err != nil {
		return nil, err
	}
	return c, nil
}
