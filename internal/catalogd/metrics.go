package catalogd

import (
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/publish"
)

// Metrics are catalogd's Prometheus metrics: gRPC requests and latency by
// method and code, catalog size, and reloads.
type Metrics struct {
	Registry *prometheus.Registry
	GRPC     *grpcprom.ServerMetrics

	packages, channels, bundles, problems prometheus.Gauge
	reloads                               *prometheus.CounterVec
	lastReload                            prometheus.Gauge
	publishes, deprecations               *prometheus.CounterVec
	uploads, uploadBytes                  prometheus.Gauge
	tokenFileErrors                       *prometheus.CounterVec
	tokensLoaded, tokenFileInsecure       prometheus.Gauge
	connections                           prometheus.Gauge
	connLimitReached                      prometheus.Counter
	memoryReleases                        prometheus.Counter
}

// NewMetrics registers catalogd's metrics on a fresh registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		GRPC: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}),
		)),
		packages:   gauge("catalog_packages", "Packages in the served catalog."),
		channels:   gauge("catalog_channels", "Channels in the served catalog."),
		bundles:    gauge("catalog_bundles", "Bundles in the served catalog."),
		problems:   gauge("catalog_problems", "Problems found while loading the served catalog."),
		lastReload: gauge("catalog_last_reload_timestamp_seconds", "When the served catalog was loaded."),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "catalog_reloads_total",
			Help: "Catalog reloads by result (success, failure, unchanged).",
		}, []string{"result"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "publishes_total",
			Help: "Publish calls by result (published, unchanged, invalid, conflict, denied, error).",
		}, []string{"result"}),
		deprecations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "deprecations_total",
			Help: "Deprecate calls by result (deprecated, invalid, denied, error).",
		}, []string{"result"}),
		uploads:     gauge("publish_uploads_in_progress", "Publish calls holding a turn: receiving, checking or storing a bundle."),
		uploadBytes: gauge("publish_upload_bytes", "Bytes of archives received by Publish calls in progress."),
		tokenFileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "token_file_errors_total",
			Help: "Reads of the tokens file that failed and revoked every token, by reason (missing, unreadable, invalid).",
		}, []string{"reason"}),
		tokensLoaded:      gauge("tokens_loaded", "Tokens in force: 0 while the tokens file is missing or invalid."),
		tokenFileInsecure: gauge("token_file_insecure", "1 when the tokens file is readable or writable by group or others."),
		connections:       gauge("grpc_connections", "gRPC connections open."),
		connLimitReached: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "grpc_connection_limit_reached_total",
			Help: "Times catalogd stopped accepting gRPC connections because --max-connections were open.",
		}),
		memoryReleases: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "memory_releases_total",
			Help: "Times catalogd collected its garbage and gave free memory back to the kernel after requests stopped (--release-memory-after).",
		}),
	}
	reg.MustRegister(m.GRPC, m.packages, m.channels, m.bundles, m.problems, m.lastReload, m.reloads, m.publishes, m.deprecations,
		m.uploads, m.uploadBytes, m.tokenFileErrors, m.tokensLoaded, m.tokenFileInsecure, m.connections, m.connLimitReached, m.memoryReleases,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{reloadSuccess, reloadFailure, reloadUnchanged} {
		m.reloads.WithLabelValues(r)
	}
	for _, r := range publish.TokenFileErrorReasons {
		m.tokenFileErrors.WithLabelValues(r)
	}
	return m
}

const (
	reloadSuccess   = "success"
	reloadFailure   = "failure"
	reloadUnchanged = "unchanged"
)

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ferry", Subsystem: "catalogd", Name: name, Help: help})
}

// observeAnswers exports the size of the registry server's answer cache.
func (m *Metrics) observeAnswers(rs *RegistryServer) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "answer_cache_bytes",
			Help: "Bytes of single-bundle answers kept encoded, overhead included.",
		}, func() float64 { b, _ := rs.AnswerCache(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "answer_cache_answers",
			Help: "Single-bundle answers kept encoded.",
		}, func() float64 { _, n := rs.AnswerCache(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "ferry", Subsystem: "catalogd", Name: "answers_warm",
			Help: "1 once the answers for the channel heads of the catalog served are kept (as many as the budget allows), 0 while they are being built.",
		}, func() float64 {
			if rs.AnswersWarm() {
				return 1
			}
			return 0
		}),
	)
}

// ObserveCatalog sets the size gauges from the served catalog.
func (m *Metrics) ObserveCatalog(c *catalog.Catalog) {
	n := c.Counts()
	m.packages.Set(float64(n.Packages))
	m.channels.Set(float64(n.Channels))
	m.bundles.Set(float64(n.Bundles))
	m.problems.Set(float64(len(c.Problems)))
	m.lastReload.Set(float64(c.LoadedAt.Unix()))
}

// ObserveTokens records a tokens file read: how many tokens are in force, the
// reason when the read failed (publish.TokenFileErrorReasons), and whether
// the file is open to group or others.
func (m *Metrics) ObserveTokens(ev publish.TokenFileEvent) {
	m.tokensLoaded.Set(float64(ev.Tokens))
	if ev.Reason != "" {
		m.tokenFileErrors.WithLabelValues(ev.Reason).Inc()
	}
	insecure := 0.0
	if ev.Insecure {
		insecure = 1
	}
	m.tokenFileInsecure.Set(insecure)
}
