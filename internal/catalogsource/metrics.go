package catalogsource

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a GetSnapshot call (the result label of SnapshotFetchesMetric).
const (
	// SnapshotFull is a whole catalog received.
	SnapshotFull = "full"
	// SnapshotNotModified is an answer that the held digest is still served.
	SnapshotNotModified = "not_modified"
	// SnapshotFailed is a call that failed.
	SnapshotFailed = "failed"
)

// Names of the installer's catalog metrics, served on the manager's
// metrics endpoint (docs/deploy.md lists them).
const (
	// SnapshotFetchesMetric counts GetSnapshot calls by result. A catalog
	// is fetched once per digest it serves, however many Subscriptions use
	// it.
	SnapshotFetchesMetric = "ferry_installer_catalog_snapshot_fetches_total"
	// BundleFetchesMetric counts GetBundle calls for a bundle's manifests
	// that the manifest cache did not hold.
	BundleFetchesMetric = "ferry_installer_catalog_bundle_fetches_total"
)

var (
	snapshotFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: SnapshotFetchesMetric,
		Help: "GetSnapshot calls to catalogs, by result: full (a whole catalog received), not_modified, failed.",
	}, []string{"result"})
	bundleFetches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: BundleFetchesMetric,
		Help: "GetBundle calls for manifests the manifest cache did not hold.",
	})
	registerOnce sync.Once
)

// registerMetrics registers the metrics with controller-runtime's registry
// once per process.
func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(snapshotFetches, bundleFetches)
	})
}
