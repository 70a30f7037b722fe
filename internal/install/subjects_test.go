package install_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
)

func binding(t *testing.T, kind, name string, subjects ...map[string]any) catalog.Manifest {
	t.Helper()
	list := make([]any, len(subjects))
	for i, s := range subjects {
		list[i] = s
	}
	roleKind := "ClusterRole"
	return manifest(t, map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": roleKind, "name": "cluster-admin"},
		"subjects": list,
	})
}

func TestRenderRefusesSubjectsOtherThanTheBundlesServiceAccounts(t *testing.T) {
	tests := []struct {
		name string
		add  func(t *testing.T) []catalog.Manifest
		want string // substring of the reason; "" when the bundle renders
	}{
		{
			name: "every authenticated user",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "ClusterRoleBinding", "everyone-admin",
					map[string]any{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"})}
			},
			want: "ClusterRoleBinding everyone-admin: subjects[0] (Group system:authenticated) is not a ServiceAccount of the bundle in namespace ops",
		},
		{
			name: "a user",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "RoleBinding", "alice-admin",
					map[string]any{"kind": "ServiceAccount", "name": sa},
					map[string]any{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"})}
			},
			want: "RoleBinding ops/alice-admin: subjects[1] (User alice) is not a ServiceAccount of the bundle",
		},
		{
			name: "a ServiceAccount of another namespace",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "ClusterRoleBinding", "kube-system-admin",
					map[string]any{"kind": "ServiceAccount", "namespace": "kube-system", "name": sa})}
			},
			want: "subjects[0] (ServiceAccount kube-system/" + sa + ")",
		},
		{
			name: "a ServiceAccount of the namespace the bundle does not create",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "RoleBinding", "default-admin",
					map[string]any{"kind": "ServiceAccount", "name": "default"})}
			},
			want: "RoleBinding ops/default-admin: subjects[0] (ServiceAccount ops/default) is not a ServiceAccount of the bundle in namespace ops; a bundle may bind only its own ServiceAccounts (" + sa + ")",
		},
		{
			name: "the CSV's ServiceAccount, namespace defaulted",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "RoleBinding", "manager-extra",
					map[string]any{"kind": "ServiceAccount", "name": sa})}
			},
		},
		{
			name: "a ServiceAccount the bundle ships",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{
					manifest(t, map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "metrics-reader"}}),
					binding(t, "ClusterRoleBinding", "metrics-reader",
						map[string]any{"kind": "ServiceAccount", "namespace": "ops", "name": "metrics-reader"}),
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			in.Manifests = append(in.Manifests, tt.add(t)...)
			r, err := install.Render(in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				if len(r.Objects) == 0 {
					t.Fatal("Render returned no objects")
				}
				return
			}
			var ibe *install.InvalidBundleError
			if !errors.As(err, &ibe) {
				t.Fatalf("Render = %v; want *InvalidBundleError", err)
			}
			if !strings.Contains(ibe.Reason, tt.want) {
				t.Errorf("reason %q does not say %q", ibe.Reason, tt.want)
			}
			if ibe.Bundle != "lighthouse-operator.v1.3.0" {
				t.Errorf("error names bundle %q", ibe.Bundle)
			}
		})
	}
}
