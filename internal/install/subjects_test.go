package install_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
)

// binding is a binding of ClusterRole cluster-admin.
func binding(t *testing.T, kind, name string, subjects ...map[string]any) catalog.Manifest {
	t.Helper()
	return bindingOf(t, kind, name, "ClusterRole", "cluster-admin", subjects...)
}

func bindingOf(t *testing.T, kind, name, roleKind, roleName string, subjects ...map[string]any) catalog.Manifest {
	t.Helper()
	list := make([]any, len(subjects))
	for i, s := range subjects {
		list[i] = s
	}
	return manifest(t, map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": roleKind, "name": roleName},
		"subjects": list,
	})
}

// metricsRole is the Role a bundle ships for Prometheus to scrape its metrics.
func metricsRole(t *testing.T) catalog.Manifest {
	t.Helper()
	return manifest(t, map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": map[string]any{"name": "prometheus-k8s"},
		"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"services", "endpoints", "pods"}, "verbs": []any{"get", "list", "watch"}}},
	})
}

// prometheus is the ServiceAccount OpenShift's cluster monitoring scrapes as.
var prometheus = map[string]any{"kind": "ServiceAccount", "namespace": "openshift-monitoring", "name": "prometheus-k8s"}

func TestRenderRefusesSubjectsOtherThanTheBundlesServiceAccounts(t *testing.T) {
	tests := []struct {
		name string
		add  func(t *testing.T) []catalog.Manifest
		want string // substring of the reason; "" when the bundle renders
		// wantBound is a ServiceAccount namespace/name a rendered binding binds.
		wantBound string
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
					map[string]any{"kind": "ServiceAccount", "namespace": "kube-system", "name": "builder"})}
			},
			want: "ClusterRoleBinding kube-system-admin: subjects[0] (ServiceAccount kube-system/builder) is not a ServiceAccount of the bundle in namespace ops",
		},
		{
			name: "a ServiceAccount of the namespace the bundle does not create",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "RoleBinding", "builder-admin",
					map[string]any{"kind": "ServiceAccount", "name": "builder"})}
			},
			want: "RoleBinding ops/builder-admin: subjects[0] (ServiceAccount ops/builder) is not a ServiceAccount of the bundle in namespace ops; a bundle may bind only its own ServiceAccounts (" + sa + "), and another ServiceAccount only with a RoleBinding to a Role the bundle installs, not to ClusterRole cluster-admin",
		},
		{
			name: "another namespace's ServiceAccount, with a RoleBinding to a Role the bundle ships",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{metricsRole(t), bindingOf(t, "RoleBinding", "prometheus-k8s", "Role", "prometheus-k8s", prometheus)}
			},
			wantBound: "openshift-monitoring/prometheus-k8s",
		},
		{
			name: "a ServiceAccount of the install namespace the bundle does not create, with a RoleBinding to a Role the bundle ships",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{metricsRole(t), bindingOf(t, "RoleBinding", "runner", "Role", "prometheus-k8s",
					map[string]any{"kind": "ServiceAccount", "name": "runner"})}
			},
			wantBound: "ops/runner",
		},
		{
			name: "another namespace's ServiceAccount, with a ClusterRoleBinding",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{metricsRole(t), binding(t, "ClusterRoleBinding", "prometheus-admin", prometheus)}
			},
			want: "ClusterRoleBinding prometheus-admin: subjects[0] (ServiceAccount openshift-monitoring/prometheus-k8s) is not a ServiceAccount of the bundle in namespace ops; a bundle may bind only its own ServiceAccounts (" + sa + "), and another ServiceAccount only with a RoleBinding to a Role the bundle installs, never with a ClusterRoleBinding",
		},
		{
			name: "another namespace's ServiceAccount, with a RoleBinding to a Role the bundle does not ship",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{bindingOf(t, "RoleBinding", "prometheus-k8s", "Role", "secrets-reader", prometheus)}
			},
			want: "RoleBinding ops/prometheus-k8s: subjects[0] (ServiceAccount openshift-monitoring/prometheus-k8s) is not a ServiceAccount of the bundle in namespace ops; a bundle may bind only its own ServiceAccounts (" + sa + "), and another ServiceAccount only with a RoleBinding to a Role the bundle installs, and it installs no Role secrets-reader in namespace ops",
		},
		{
			name: "another namespace's ServiceAccount, with a RoleBinding to cluster-admin",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{metricsRole(t), binding(t, "RoleBinding", "prometheus-k8s", prometheus)}
			},
			want: "not to ClusterRole cluster-admin",
		},
		{
			name: "a group, with a RoleBinding to a Role the bundle ships",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{metricsRole(t), bindingOf(t, "RoleBinding", "all-accounts", "Role", "prometheus-k8s",
					map[string]any{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:serviceaccounts"})}
			},
			want: "RoleBinding ops/all-accounts: subjects[0] (Group system:serviceaccounts) is not a ServiceAccount of the bundle in namespace ops; a bundle may bind only its own ServiceAccounts (" + sa + "), never a user or a group",
		},
		{
			name: "another namespace's default ServiceAccount, with a RoleBinding to a Role the bundle ships",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{metricsRole(t), bindingOf(t, "RoleBinding", "monitoring-default", "Role", "prometheus-k8s",
					map[string]any{"kind": "ServiceAccount", "namespace": "openshift-monitoring", "name": "default"})}
			},
			want: "RoleBinding ops/monitoring-default: subjects[0] is the default ServiceAccount of namespace openshift-monitoring",
		},
		{
			name: "the bundle's own ServiceAccount in a namespace the bundle hard-codes",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "ClusterRoleBinding", "manager-rolebinding",
					map[string]any{"kind": "ServiceAccount", "namespace": "lighthouse-system", "name": sa})}
			},
			wantBound: "ops/" + sa,
		},
		{
			name: "the bundle's own ServiceAccount in a hard-coded namespace, with a RoleBinding to a Role the bundle ships",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{metricsRole(t), bindingOf(t, "RoleBinding", "manager-metrics", "Role", "prometheus-k8s",
					map[string]any{"kind": "ServiceAccount", "namespace": "lighthouse-system", "name": sa})}
			},
			wantBound: "ops/" + sa,
		},
		{
			name: "the namespace's default ServiceAccount",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{binding(t, "RoleBinding", "default-admin",
					map[string]any{"kind": "ServiceAccount", "name": "default"})}
			},
			want: "RoleBinding ops/default-admin: subjects[0] is the default ServiceAccount of namespace ops, which every pod there without a serviceAccountName runs as; a bundle may bind only its own ServiceAccounts (" + sa + ")",
		},
		{
			name: "the default ServiceAccount, even when the bundle ships one",
			add: func(t *testing.T) []catalog.Manifest {
				return []catalog.Manifest{
					manifest(t, map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"}}),
					binding(t, "ClusterRoleBinding", "default-admin",
						map[string]any{"kind": "ServiceAccount", "namespace": "ops", "name": "default"}),
				}
			},
			want: "ClusterRoleBinding default-admin: subjects[0] is the default ServiceAccount of namespace ops",
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
				if tt.wantBound != "" && !bindsSubject(r, tt.wantBound) {
					t.Errorf("no RoleBinding binds %s", tt.wantBound)
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

func TestRenderGivesTheOperatorItsOwnServiceAccountInsteadOfDefault(t *testing.T) {
	// grantTo sets the serviceAccountName of the CSV's permissions and
	// clusterPermissions, and the Deployment's serviceAccountName (absent
	// when runAs is "").
	grantTo := func(perms, cluster, runAs string) func(map[string]any) {
		return func(csv map[string]any) {
			st := csv["spec"].(map[string]any)["install"].(map[string]any)["spec"].(map[string]any)
			for _, f := range []struct{ key, sa string }{{"permissions", perms}, {"clusterPermissions", cluster}} {
				for _, p := range st[f.key].([]any) {
					p.(map[string]any)["serviceAccountName"] = f.sa
				}
			}
			ps := deploymentPodSpec(csv)
			delete(ps, "serviceAccountName")
			if runAs != "" {
				ps["serviceAccountName"] = runAs
			}
		}
	}
	tests := []struct {
		name  string
		edit  func(map[string]any)
		noPkg bool
		// wantRunAs is the Deployment's serviceAccountName; wantBound the
		// ServiceAccounts the rendered bindings name; wantSAs the
		// ServiceAccounts rendered.
		wantRunAs string
		wantBound []string
		wantSAs   []string
	}{
		{
			name: "permissions and clusterPermissions for default, Deployment without serviceAccountName",
			edit: grantTo("default", "default", ""), wantRunAs: lighthouse,
			wantBound: []string{lighthouse}, wantSAs: []string{lighthouse},
		},
		{
			name: "Deployment running as default by name",
			edit: grantTo("default", "default", "default"), wantRunAs: lighthouse,
			wantBound: []string{lighthouse}, wantSAs: []string{lighthouse},
		},
		{
			name: "only clusterPermissions for default; a Deployment with its own ServiceAccount keeps it",
			edit: grantTo(sa, "default", sa), wantRunAs: sa,
			wantBound: []string{lighthouse, sa}, wantSAs: []string{lighthouse, sa},
		},
		{
			name: "without a package name the CSV name is used",
			edit: grantTo("default", "default", ""), noPkg: true, wantRunAs: "lighthouse-operator.v1.3.0",
			wantBound: []string{"lighthouse-operator.v1.3.0"}, wantSAs: []string{"lighthouse-operator.v1.3.0"},
		},
		{
			name: "nothing granted to default: a Deployment without serviceAccountName is left as it is",
			edit: grantTo(sa, sa, ""), wantRunAs: "",
			wantBound: []string{sa}, wantSAs: []string{sa},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "ops", lighthouse, "1.3.0")
			in.Manifests = editCSV(t, in.Manifests, tt.edit)
			if tt.noPkg {
				in.Package = ""
			}
			r := render(t, in)
			if got := deployment(t, r).Spec.Template.Spec.ServiceAccountName; got != tt.wantRunAs {
				t.Errorf("Deployment runs as %q, want %q", got, tt.wantRunAs)
			}
			bound := map[string]bool{}
			for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
				for _, b := range findAll(r, kind) {
					subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
					for _, s := range subjects {
						m := s.(map[string]any)
						if m["namespace"] != "ops" {
							t.Errorf("%s %s binds %v outside the install namespace", kind, b.GetName(), m)
						}
						bound[m["name"].(string)] = true
					}
				}
			}
			if got := slices.Sorted(maps.Keys(bound)); !slices.Equal(got, tt.wantBound) {
				t.Errorf("bindings name %v, want %v", got, tt.wantBound)
			}
			var sas []string
			for _, o := range findAll(r, "ServiceAccount") {
				sas = append(sas, o.GetName())
			}
			slices.Sort(sas)
			if !slices.Equal(sas, tt.wantSAs) {
				t.Errorf("ServiceAccounts %v, want %v", sas, tt.wantSAs)
			}
		})
	}
}

// bindsSubject reports whether a rendered ClusterRoleBinding, or
// RoleBinding in the install namespace, binds the ServiceAccount
// namespace/name.
func bindsSubject(r *install.Rendered, nsName string) bool {
	for _, o := range r.Objects {
		if o.GetKind() != "ClusterRoleBinding" && (o.GetKind() != "RoleBinding" || o.GetNamespace() != "ops") {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, s := range subjects {
			m := s.(map[string]any)
			if m["kind"] == "ServiceAccount" && m["namespace"].(string)+"/"+m["name"].(string) == nsName {
				return true
			}
		}
	}
	return false
}
