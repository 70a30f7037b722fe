package cli

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func role(kind, ns, name, generatedFrom string, rules ...any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"rules": rules}}
	u.SetAPIVersion("rbac.authorization.k8s.io/v1")
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	if generatedFrom != "" {
		u.SetAnnotations(map[string]string{"operators.ferry.dev/generated-from": generatedFrom})
	}
	return u
}

func rule(groups, resources, verbs []any, names ...any) map[string]any {
	r := map[string]any{"apiGroups": groups, "resources": resources, "verbs": verbs}
	if len(names) > 0 {
		r["resourceNames"] = names
	}
	return r
}

func TestRBACDelta(t *testing.T) {
	live := []*unstructured.Unstructured{
		role("ClusterRole", "", "op.v1-a", "clusterPermissions/op/0",
			rule([]any{"lighthouse.ferry.dev"}, []any{"beacons"}, []any{"get", "list"})),
		role("Role", "ns", "op.v1-b", "permissions/op/0",
			rule([]any{""}, []any{"configmaps"}, []any{"get"}, "op-config")),
	}
	cases := []struct {
		name             string
		target           []*unstructured.Unstructured
		added, removed   []string
		wantNoDifference bool
	}{
		{
			name: "renamed, same rules",
			target: []*unstructured.Unstructured{
				role("ClusterRole", "", "op.v2-a", "clusterPermissions/op/0",
					rule([]any{"lighthouse.ferry.dev"}, []any{"beacons"}, []any{"list", "get"})),
				role("Role", "ns", "op.v2-b", "permissions/op/0",
					rule([]any{""}, []any{"configmaps"}, []any{"get"}, "op-config")),
			},
			wantNoDifference: true,
		},
		{
			name: "a verb, a resource and a scope change",
			target: []*unstructured.Unstructured{
				role("ClusterRole", "", "op.v2-a", "clusterPermissions/op/0",
					rule([]any{"lighthouse.ferry.dev"}, []any{"beacons", "beacons/status"}, []any{"get", "list", "update"})),
				role("ClusterRole", "", "op.v2-b", "permissions/op/0",
					rule([]any{""}, []any{"configmaps"}, []any{"get"}, "op-config")),
			},
			added: []string{
				"serviceaccount op cluster-wide: get beacons/status.lighthouse.ferry.dev",
				"serviceaccount op cluster-wide: get configmaps op-config",
				"serviceaccount op cluster-wide: list beacons/status.lighthouse.ferry.dev",
				"serviceaccount op cluster-wide: update beacons.lighthouse.ferry.dev",
				"serviceaccount op cluster-wide: update beacons/status.lighthouse.ferry.dev",
			},
			removed: []string{"serviceaccount op in ns: get configmaps op-config"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := rbacDelta(live, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNoDifference {
				if len(d.Added)+len(d.Removed) > 0 {
					t.Errorf("delta %+v, want none", d)
				}
				return
			}
			if !slices.Equal(d.Added, tc.added) || !slices.Equal(d.Removed, tc.removed) {
				t.Errorf("added %q\nremoved %q\nwant added %q\nremoved %q", d.Added, d.Removed, tc.added, tc.removed)
			}
		})
	}
}
