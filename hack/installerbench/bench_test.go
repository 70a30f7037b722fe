package main

import (
	"maps"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestParseText(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		metric  string
		match   map[string]string
		want    float64
		wantErr string
	}{
		{
			name:   "sum over labels",
			in:     "# HELP x\n# TYPE x counter\nrest_client_requests_total{code=\"200\",host=\"a\",method=\"GET\"} 12\nrest_client_requests_total{code=\"201\",host=\"a\",method=\"POST\"} 3\n",
			metric: "rest_client_requests_total", want: 15,
		},
		{
			name:   "label match",
			in:     "controller_runtime_reconcile_total{controller=\"subscription\",result=\"success\"} 40\ncontroller_runtime_reconcile_total{controller=\"catalogsource\",result=\"success\"} 7\ncontroller_runtime_reconcile_total{controller=\"subscription\",result=\"requeue\"} 2\n",
			metric: "controller_runtime_reconcile_total", match: map[string]string{"controller": "subscription"}, want: 42,
		},
		{
			name:   "no labels, exponent, timestamp",
			in:     "ferry_installer_catalog_bundle_fetches_total 1e+00 1700000000000\n",
			metric: "ferry_installer_catalog_bundle_fetches_total", want: 1,
		},
		{
			name:   "escaped quote and comma in a label value",
			in:     "m{a=\"x\\\"y,z\",b=\"1\"} 5\n",
			metric: "m", match: map[string]string{"a": "x\"y,z", "b": "1"}, want: 5,
		},
		{name: "absent metric sums to zero", in: "a 1\n", metric: "b", want: 0},
		{name: "no value", in: "m{a=\"1\"}\n", wantErr: "line 1"},
		{name: "bad value", in: "m 1x\n", wantErr: "value"},
		{name: "unterminated label", in: "m{a=\"1} 2\n", wantErr: "unterminated"},
		{name: "malformed labels", in: "m{a} 2\n", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseText(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseText error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.sum(tt.metric, tt.match); got != tt.want {
				t.Errorf("sum(%s, %v) = %v, want %v", tt.metric, tt.match, got, tt.want)
			}
		})
	}
}

func TestParseTextBounded(t *testing.T) {
	line := "m 1\n"
	big := strings.Repeat(line, maxMetricsBytes/len(line)+2)
	if _, err := parseText(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "bytes of metrics") {
		t.Fatalf("parseText of %d bytes: error = %v, want the size bound", len(big), err)
	}
}

func TestTemplateAndReplace(t *testing.T) {
	live := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "ClusterRoleBinding",
		"metadata": map[string]any{
			"name": "signal-store-ib-00001", "uid": "u", "resourceVersion": "7",
			"managedFields": []any{map[string]any{"manager": "ferry"}},
			"labels":        map[string]any{"operators.ferry.dev/owner-name": "bench", "app": "x"},
			"annotations":   map[string]any{"operators.ferry.dev/owner": "ib-00001/bench"},
		},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "sa", "namespace": "ib-00001"}},
		"status":   map[string]any{"x": "y"},
	}}
	got := template(live)
	got.Object = replaceStrings(got.Object, "ib-00001", "ibf-00002").(map[string]any)
	if got.GetName() != "signal-store-ibf-00002" {
		t.Errorf("name = %q", got.GetName())
	}
	if got.GetUID() != "" || got.GetResourceVersion() != "" || len(got.GetManagedFields()) != 0 {
		t.Errorf("server-set metadata kept: %v", got.Object["metadata"])
	}
	if !maps.Equal(got.GetLabels(), map[string]string{"app": "x"}) || got.GetAnnotations() != nil {
		t.Errorf("labels %v, annotations %v: Ferry's must be left out", got.GetLabels(), got.GetAnnotations())
	}
	if _, ok := got.Object["status"]; ok {
		t.Error("status kept")
	}
	subjects, _, _ := unstructured.NestedSlice(got.Object, "subjects")
	if ns := subjects[0].(map[string]any)["namespace"]; ns != "ibf-00002" {
		t.Errorf("subject namespace = %v", ns)
	}
	// The live object is not changed.
	if live.GetName() != "signal-store-ib-00001" || live.GetUID() != "u" {
		t.Errorf("template changed the live object: %v", live.Object["metadata"])
	}
}

func TestNamespacesAreNotPartsOfEachOther(t *testing.T) {
	for _, format := range []string{installNamespaceFormat, floorNamespaceFormat} {
		nss := namespaces(format, 1000)
		seen := map[string]bool{}
		for _, a := range nss {
			if seen[a] {
				t.Fatalf("%s repeated", a)
			}
			seen[a] = true
		}
		for _, a := range []string{nss[0], nss[9], nss[99]} {
			for _, b := range nss {
				if a != b && strings.Contains(b, a) {
					t.Errorf("%s is part of %s: copying the floor by replacement would be wrong", a, b)
				}
			}
		}
	}
}

func TestNodesFor(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want int
	}{
		{name: "one", n: 1, want: 1},
		{name: "fifty", n: 50, want: 1},
		{name: "fifty-one", n: 51, want: 2},
		{name: "thousand", n: 1000, want: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodesFor(tt.n); got != tt.want {
				t.Errorf("nodesFor(%d) = %d, want %d", tt.n, got, tt.want)
			}
		})
	}
}

func TestFlagsRefused(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "no Subscriptions", args: []string{"-n", "0"}},
		{name: "too many", args: []string{"-n", "100000"}},
		{name: "no workers", args: []string{"-workers", "0"}},
		{name: "no time", args: []string{"-phase-timeout", "0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := benchMain(tt.args); code != 2 {
				t.Errorf("benchMain(%v) = %d, want 2 (usage)", tt.args, code)
			}
		})
	}
}

func TestTableSaysHowFarATimedOutRunGot(t *testing.T) {
	r := &result{n: 100, nodes: 2, installed: 480 * time.Second, timedOut: true, installedOf: 1,
		peakRSS: 60 << 20, requests: 9500, reconciles: 98}
	table := r.table()
	for _, want := range []string{"> 480.0 s (1 of 100 Installed)", "| 95.0 |", "60 MiB", "| 1.0 |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	done := &result{n: 10, nodes: 1, installed: 20 * time.Second, floor: 10 * time.Second, peakRSS: 50 << 20, requests: 300, reconciles: 30, snapshotFetches: 1, bundleFetches: 1}
	table = done.table()
	for _, want := range []string{"| 10 | 20.0 s | 10.0 s | 2.00× | 50 MiB | 30.0 | 1 | 1 | 3.0 |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestTableBreaksRequestsDown(t *testing.T) {
	r := &result{n: 10, nodes: 1, installed: 20 * time.Second, floor: 10 * time.Second,
		requestsByMethod: []float64{300, 200, 100, 50, 0}, reconcileSeconds: 0.25}
	want := "API requests / Subscription by method: GET 30.0, POST 20.0, PATCH 10.0, PUT 5.0, DELETE 0.0; mean reconcile 0.25 s"
	if table := r.table(); !strings.Contains(table, want) {
		t.Errorf("table lacks %q:\n%s", want, table)
	}
	if table := (&result{n: 10}).table(); strings.Contains(table, "by method") {
		t.Errorf("a run without metrics breaks requests down:\n%s", table)
	}
}
