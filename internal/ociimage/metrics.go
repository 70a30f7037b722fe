package ociimage

import "github.com/prometheus/client_golang/prometheus"

// Pull results, the result label of ferry_catalogd_image_pulls_total.
const (
	// ResultPulled: the image was downloaded and unpacked.
	ResultPulled = "pulled"
	// ResultCached: the image's digest was already unpacked on disk.
	ResultCached = "cached"
	// ResultFailure: the pull failed.
	ResultFailure = "failure"
)

// Kinds of image, the kind label.
const (
	KindCatalog = "catalog"
	KindBundle  = "bundle"
)

// Metrics count pulls by kind and result, and their duration.
type Metrics struct {
	pulls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// NewMetrics registers the pull metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "image_pulls_total",
			Help: "Catalog and bundle image pulls by kind (catalog, bundle) and result (pulled, cached, failure).",
		}, []string{"kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "image_pull_duration_seconds",
			Help:    "Time to resolve, download, verify and unpack an image, by kind.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"kind"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "image_pull_bytes_total",
			Help: "Compressed layer bytes downloaded, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.pulls, m.duration, m.bytes)
	for _, k := range []string{KindCatalog, KindBundle} {
		for _, r := range []string{ResultPulled, ResultCached, ResultFailure} {
			m.pulls.WithLabelValues(k, r)
		}
	}
	return m
}
