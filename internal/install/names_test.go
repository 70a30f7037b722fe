package install_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/install"
)

// TestRenderObjectNames: a shipped object's name is checked by the rule the
// API server applies to its kind, not one rule for all.
func TestRenderObjectNames(t *testing.T) {
	rbac := func(kind, name string) map[string]any {
		o := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name}}
		if kind == "ClusterRole" {
			o["rules"] = []any{}
		}
		return o
	}
	tests := []struct {
		name string
		obj  map[string]any
		// want is a substring of the refusal; "" when the object renders.
		want string
	}{
		{"a ClusterRole named with colons", rbac("ClusterRole", "system:aggregate-to-lighthouse:view"), ""},
		{"a ClusterRole named with capitals", rbac("ClusterRole", "Lighthouse-Viewer"), ""},
		{"a ClusterRole named with a slash", rbac("ClusterRole", "lighthouse/view"), `ClusterRole name "lighthouse/view" is invalid: may not contain '/'`},
		{"a ClusterRole named ..", rbac("ClusterRole", ".."), `ClusterRole name ".." is invalid: may not be '..'`},
		{"a ConfigMap named with a colon", map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "a:b"}}, `ConfigMap name "a:b" is invalid`},
		{"a Service named with a dot", map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "lighthouse.metrics"}}, `Service name "lighthouse.metrics" is invalid`},
		{"a Service named as a label", map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "lighthouse-metrics"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			in.Manifests = append(in.Manifests, manifest(t, tt.obj))
			r, err := install.Render(in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				md := tt.obj["metadata"].(map[string]any)
				find(t, r, tt.obj["kind"].(string), md["name"].(string))
				return
			}
			var ibe *install.InvalidBundleError
			if !errors.As(err, &ibe) || !strings.Contains(ibe.Reason, tt.want) {
				t.Fatalf("Render = %v; want an invalid bundle saying %q", err, tt.want)
			}
		})
	}
}
