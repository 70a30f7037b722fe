package livediff

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestFieldChanges(t *testing.T) {
	deployment := func(image string, replicas int64) map[string]any {
		return map[string]any{
			"apiVersion": "apps/v1",
			"kind":       "Deployment",
			"metadata":   map[string]any{"name": "op", "resourceVersion": image, "generation": replicas},
			"spec": map[string]any{
				"replicas": replicas,
				"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "manager", "image": image}}}},
			},
			"status": map[string]any{"observedGeneration": replicas},
		}
	}
	cases := []struct {
		name       string
		live, next map[string]any
		want       []string
	}{
		{
			name: "same object, server-written fields differ",
			live: deployment("a", 1), next: func() map[string]any {
				d := deployment("a", 1)
				d["metadata"].(map[string]any)["resourceVersion"] = "99"
				d["status"] = map[string]any{"replicas": int64(3)}
				return d
			}(),
			want: nil,
		},
		{
			name: "image and replicas",
			live: deployment("op:v1", 1), next: deployment("op:v2", 2),
			want: []string{
				`spec.replicas: 1 -> 2`,
				`spec.template.spec.containers[0].image: "op:v1" -> "op:v2"`,
			},
		},
		{
			name: "a label added, a list grown",
			live: map[string]any{"metadata": map[string]any{}, "rules": []any{"a"}},
			next: map[string]any{"metadata": map[string]any{"labels": map[string]any{"x": "y"}}, "rules": []any{"a", "b"}},
			want: []string{
				`metadata.labels: (none) -> {1 fields}`,
				`rules: [1 items] -> [2 items]`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := FieldChanges(tc.live, tc.next); !slices.Equal(got, tc.want) {
				t.Errorf("FieldChanges = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFieldChangesBounded(t *testing.T) {
	live, next := map[string]any{}, map[string]any{}
	for i := range 500 {
		live[fmt.Sprintf("f%03d", i)] = strings.Repeat("a", 1000)
		next[fmt.Sprintf("f%03d", i)] = "b"
	}
	got := FieldChanges(live, next)
	if len(got) != maxFieldsPerObject {
		t.Fatalf("%d fields, want %d", len(got), maxFieldsPerObject)
	}
	if last := got[len(got)-1]; last != "and 301 more fields" {
		t.Errorf("last line %q", last)
	}
	for _, l := range got {
		if len(l) > 2*maxValue+32 {
			t.Errorf("line of %d bytes: values are not bounded", len(l))
		}
	}
}

func TestBound(t *testing.T) {
	lines := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("line %d", i))
		}
		return out
	}
	cases := []struct {
		name               string
		in                 []string
		maxLines, maxBytes int
		want               []string
	}{
		{name: "empty", in: nil, maxLines: 3, maxBytes: 100, want: []string{}},
		{name: "fits exactly", in: lines(3), maxLines: 3, maxBytes: 100, want: lines(3)},
		{name: "too many lines", in: lines(5), maxLines: 3, maxBytes: 100, want: []string{"line 0", "line 1", "and 3 more"}},
		{name: "too many bytes", in: lines(5), maxLines: 10, maxBytes: 20, want: []string{"line 0", "and 4 more"}},
		{name: "one line too long", in: []string{strings.Repeat("x", 50)}, maxLines: 10, maxBytes: 20, want: []string{"and 1 more"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Bound(tc.in, tc.maxLines, tc.maxBytes)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Bound = %q, want %q", got, tc.want)
			}
			if len(got) > tc.maxLines {
				t.Errorf("%d lines, more than %d", len(got), tc.maxLines)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	r := &Result{
		Objects: []ObjectDiff{
			{Object: "CRD beacons.example.com", Action: ActionUnchanged},
			{Object: "Deployment ns/op", Action: ActionChange, Fields: []string{`spec.replicas: 1 -> 2`}},
			{Object: "Deployment ns/status-only", Action: ActionChange},
			{Object: "Service ns/op", Action: ActionCreate},
			{Object: "ConfigMap ns/old", Action: ActionDelete, Message: "no longer shipped"},
		},
		RBAC: RBACDelta{Added: []string{"serviceaccount op cluster-wide: list pods"}},
	}
	want := []string{
		"Deployment ns/op: spec.replicas: 1 -> 2",
		"Service ns/op: create",
		"ConfigMap ns/old: delete: no longer shipped",
		"RBAC added: serviceaccount op cluster-wide: list pods",
	}
	if got := Summary(r, DefaultMaxLines, DefaultMaxBytes); !slices.Equal(got, want) {
		t.Errorf("Summary =\n%q\nwant\n%q", got, want)
	}
}
