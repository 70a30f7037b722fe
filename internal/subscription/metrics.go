package subscription

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// The installer's domain metrics, registered with controller-runtime's
// registry and served with its own on the manager's metrics endpoint.
// docs/deploy.md lists them.
const metricsNamespace = "ferry_installer"

// Results of upgrades and rollbacks (the result label).
const (
	resultSucceeded  = "succeeded"
	resultRolledBack = "rolled_back"
	resultFailed     = "failed"
)

var (
	upgradesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "upgrades_total",
		Help: "Upgrades and downgrades that ended, by package and result: succeeded (passed the health gate), rolled_back, failed (missed the gate with nothing to return to).",
	}, []string{"package", "result"})
	rollbacksTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "rollbacks_total",
		Help: "Automatic rollbacks after a missed health gate, by package and result: succeeded (the restored revision was applied), failed (applying it failed).",
	}, []string{"package", "result"})
	resolutionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "resolution_duration_seconds",
		Help:    "Time one resolution of a Subscription took.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})
	applySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "apply_duration_seconds",
		Help:    "Time applying one revision's objects took (server-side apply, pruning, waiting for CRDs).",
		Buckets: prometheus.ExponentialBuckets(0.005, 3, 10),
	})
	stateDesc = prometheus.NewDesc(metricsNamespace+"_subscriptions", "Subscriptions by status.state (empty: not reconciled yet).", []string{"state"}, nil)

	// states lists the Subscriptions for the state gauge; set by SetupWithManager.
	states       atomic.Pointer[stateCollector]
	registerOnce sync.Once
)

// stateCollector counts Subscriptions by state when scraped, from the
// manager's cache: the gauge is exact after restarts and deletions.
type stateCollector struct{ reader ctrl.Reader }

type stateGauge struct{}

func (stateGauge) Describe(ch chan<- *prometheus.Desc) { ch <- stateDesc }

func (stateGauge) Collect(ch chan<- prometheus.Metric) {
	c := states.Load()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list v1alpha1.SubscriptionList
	if err := c.reader.List(ctx, &list); err != nil {
		ch <- prometheus.NewInvalidMetric(stateDesc, err)
		return
	}
	counts := map[v1alpha1.SubscriptionState]int{}
	for _, s := range v1alpha1.SubscriptionStates {
		counts[s] = 0
	}
	for i := range list.Items {
		counts[list.Items[i].Status.State]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, float64(n), string(s))
	}
}

// registerMetrics registers the metrics once per process and makes reader
// the source of the state gauge.
func registerMetrics(reader ctrl.Reader) {
	states.Store(&stateCollector{reader: reader})
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(upgradesTotal, rollbacksTotal, resolutionSeconds, applySeconds, stateGauge{})
	})
}

// since observes the time since start in h.
func since(h prometheus.Histogram, start time.Time) { h.Observe(time.Since(start).Seconds()) }
