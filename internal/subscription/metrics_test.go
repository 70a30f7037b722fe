package subscription_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// sample is the value of the installer metric name with labels, from
// controller-runtime's registry: a counter's or gauge's value, a
// histogram's sample count; 0 when absent.
func sample(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// TestInstallerMetrics: an install and an upgrade show in the domain
// metrics the installer serves.
func TestInstallerMetrics(t *testing.T) {
	upgrades := map[string]string{"package": "signal-store", "result": "succeeded"}
	before := map[string]float64{
		"upgrades":   sample(t, "ferry_installer_upgrades_total", upgrades),
		"resolution": sample(t, "ferry_installer_resolution_duration_seconds", nil),
		"apply":      sample(t, "ferry_installer_apply_duration_seconds", nil),
	}
	_, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.0.0"})
	waitSub(t, c, ns, "signals", "upgraded to 1.1.0", installed("1.1.0"))
	if got := sample(t, "ferry_installer_upgrades_total", upgrades) - before["upgrades"]; got != 1 {
		t.Errorf("ferry_installer_upgrades_total%v grew by %v, want 1", upgrades, got)
	}
	for _, h := range []string{"resolution", "apply"} {
		if sample(t, "ferry_installer_"+h+"_duration_seconds", nil) <= before[h] {
			t.Errorf("ferry_installer_%s_duration_seconds observed nothing", h)
		}
	}
	// The gauge counts this manager's Subscriptions (its cache sees one
	// namespace) when scraped.
	if got := sample(t, "ferry_installer_subscriptions", map[string]string{"state": string(v1alpha1.StateInstalled)}); got != 1 {
		t.Errorf(`ferry_installer_subscriptions{state="Installed"} = %v, want 1`, got)
	}
	if got := sample(t, "ferry_installer_subscriptions", map[string]string{"state": string(v1alpha1.StateFailed)}); got != 0 {
		t.Errorf(`ferry_installer_subscriptions{state="Failed"} = %v, want 0`, got)
	}
}
