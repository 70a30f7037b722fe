package catalogd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
	catalogv1 "github.com/ferrydev/ferry/proto/ferry/catalog/v1"
)

// checkReloads compares ferry_catalogd_catalog_reloads_total by result.
func checkReloads(t *testing.T, m *catalogd.Metrics, success, failure, unchanged int) {
	t.Helper()
	want := fmt.Sprintf(`# HELP ferry_catalogd_catalog_reloads_total Catalog reloads by result (success, failure, unchanged).
# TYPE ferry_catalogd_catalog_reloads_total counter
ferry_catalogd_catalog_reloads_total{result="failure"} %d
ferry_catalogd_catalog_reloads_total{result="success"} %d
ferry_catalogd_catalog_reloads_total{result="unchanged"} %d
`, failure, success, unchanged)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "ferry_catalogd_catalog_reloads_total"); err != nil {
		t.Error(err)
	}
}

// handled returns grpc_server_handled_total for one method and code.
func handled(t *testing.T, m *catalogd.Metrics, service, method string, code codes.Code) float64 {
	t.Helper()
	return counter(t, m, "grpc_server_handled_total", map[string]string{
		"grpc_service": service, "grpc_method": method, "grpc_code": code.String()})
}

// reloads returns ferry_catalogd_catalog_reloads_total for one result.
func reloads(t *testing.T, m *catalogd.Metrics, result string) float64 {
	t.Helper()
	return counter(t, m, "ferry_catalogd_catalog_reloads_total", map[string]string{"result": result})
}

// counter returns the value of the counter name with the labels given.
func counter(t *testing.T, m *catalogd.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, mt := range mf.GetMetric() {
			for k, v := range labels {
				if label(mt, k) != v {
					continue metrics
				}
			}
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestMetrics(t *testing.T) {
	c := sampleCatalog(t)
	m := catalogd.NewMetrics()
	m.ObserveCatalog(c)
	conn := startServer(t, catalogd.NewHolder(c), catalogd.WithMetrics(m))
	reg := api.NewRegistryClient(conn)
	native := catalogv1.NewCatalogServiceClient(conn)
	ctx := context.Background()

	for range 2 {
		if _, err := reg.GetPackage(ctx, &api.GetPackageRequest{Name: lighthouse}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := reg.GetPackage(ctx, &api.GetPackageRequest{Name: "nope"})
	checkCode(t, err, codes.NotFound)
	stream, err := reg.ListBundles(ctx, &api.ListBundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll[api.Bundle](stream); err != nil {
		t.Fatal(err)
	}
	_, err = native.GetBundle(ctx, &catalogv1.GetBundleRequest{Package: lighthouse, Version: "9.9.9"})
	checkCode(t, err, codes.NotFound)

	for _, tc := range []struct {
		service, method string
		code            codes.Code
		want            float64
	}{
		{"api.Registry", "GetPackage", codes.OK, 2},
		{"api.Registry", "GetPackage", codes.NotFound, 1},
		{"api.Registry", "ListBundles", codes.OK, 1},
		{"api.Registry", "GetBundle", codes.OK, 0},
		{"ferry.catalog.v1.CatalogService", "GetBundle", codes.NotFound, 1},
	} {
		if got := handled(t, m, tc.service, tc.method, tc.code); got != tc.want {
			t.Errorf("grpc_server_handled_total{%s/%s %s} = %v, want %v", tc.service, tc.method, tc.code, got, tc.want)
		}
	}

	const gauges = `# HELP ferry_catalogd_catalog_bundles Bundles in the served catalog.
# TYPE ferry_catalogd_catalog_bundles gauge
ferry_catalogd_catalog_bundles 11
# HELP ferry_catalogd_catalog_channels Channels in the served catalog.
# TYPE ferry_catalogd_catalog_channels gauge
ferry_catalogd_catalog_channels 5
# HELP ferry_catalogd_catalog_packages Packages in the served catalog.
# TYPE ferry_catalogd_catalog_packages gauge
ferry_catalogd_catalog_packages 3
# HELP ferry_catalogd_catalog_problems Problems found while loading the served catalog.
# TYPE ferry_catalogd_catalog_problems gauge
ferry_catalogd_catalog_problems 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(gauges),
		"ferry_catalogd_catalog_bundles", "ferry_catalogd_catalog_channels", "ferry_catalogd_catalog_packages", "ferry_catalogd_catalog_problems"); err != nil {
		t.Error(err)
	}
	if got := gaugeValue(t, m, "ferry_catalogd_catalog_last_reload_timestamp_seconds"); got != float64(c.LoadedAt.Unix()) {
		t.Errorf("last reload %v, want %v", got, c.LoadedAt.Unix())
	}
	checkReloads(t, m, 0, 0, 0)
}

// TestMetricsAfterReload checks that a reload updates the catalog gauges.
func TestMetricsAfterReload(t *testing.T) {
	dir := demoCatalogDir(t)
	m := catalogd.NewMetrics()
	h, r := newReloader(t, dir, m)
	m.ObserveCatalog(h.Catalog())
	writeBundle(t, dir, bundleSpec{pkg: "other", version: "0.1.0", channels: []string{"alpha", "beta"}})
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	const want = `# HELP ferry_catalogd_catalog_bundles Bundles in the served catalog.
# TYPE ferry_catalogd_catalog_bundles gauge
ferry_catalogd_catalog_bundles 3
# HELP ferry_catalogd_catalog_channels Channels in the served catalog.
# TYPE ferry_catalogd_catalog_channels gauge
ferry_catalogd_catalog_channels 3
# HELP ferry_catalogd_catalog_packages Packages in the served catalog.
# TYPE ferry_catalogd_catalog_packages gauge
ferry_catalogd_catalog_packages 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"ferry_catalogd_catalog_bundles", "ferry_catalogd_catalog_channels", "ferry_catalogd_catalog_packages"); err != nil {
		t.Error(err)
	}
	checkReloads(t, m, 1, 0, 0)
}

// gaugeValue reads one gathered gauge.
func gaugeValue(t *testing.T, m *catalogd.Metrics, name string) float64 {
	t.Helper()
	return onlySample(t, m, name).GetGauge().GetValue()
}

// onlySample is the one sample of the gathered metric name (no labels).
func onlySample(t *testing.T, m *catalogd.Metrics, name string) *dto.Metric {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}
