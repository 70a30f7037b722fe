package install_test

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferrydev/ferry/internal/install"
)

// stored builds an object as read back from a revision; empty arguments
// leave the field out.
func stored(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	meta := map[string]any{}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	if name != "" {
		meta["name"] = name
	}
	obj := map[string]any{"metadata": meta}
	if apiVersion != "" {
		obj["apiVersion"] = apiVersion
	}
	if kind != "" {
		obj["kind"] = kind
	}
	return &unstructured.Unstructured{Object: obj}
}

// invalidDNSName is what a name that is no DNS subdomain is refused with.
const invalidDNSName = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

// TestCheckRestored: objects read back from a stored revision are held to
// the rules of a bundle's manifests, and are put in the Subscription's
// namespace (namespaced kinds) or in none (cluster-scoped kinds) whatever
// the stored content says.
func TestCheckRestored(t *testing.T) {
	const ns = "team-a"
	const prefix = "invalid bundle: stored revision: "
	long := strings.Repeat("a", 254)
	tests := []struct {
		name string
		// noNamespace calls CheckRestored without an install namespace.
		noNamespace bool
		objs        []*unstructured.Unstructured
		// wantErr is the whole error text; empty when the objects pass.
		wantErr string
		// wantNamespaces is the namespace of each object after the check.
		wantNamespaces []string
	}{
		{
			name:        "no install namespace",
			noNamespace: true,
			objs:        []*unstructured.Unstructured{stored("v1", "ConfigMap", ns, "settings")},
			wantErr:     prefix + "no install namespace given",
		},
		{
			name:    "nil object",
			objs:    []*unstructured.Unstructured{stored("v1", "ConfigMap", "", "settings"), nil},
			wantErr: prefix + "object #1 is empty",
		},
		{
			name:    "object without content",
			objs:    []*unstructured.Unstructured{{}},
			wantErr: prefix + "object #0 is empty",
		},
		{
			name:    "missing kind",
			objs:    []*unstructured.Unstructured{stored("v1", "", "", "settings")},
			wantErr: prefix + "object #0 has no kind",
		},
		{
			name:    "missing apiVersion",
			objs:    []*unstructured.Unstructured{stored("", "ConfigMap", "", "settings")},
			wantErr: prefix + "object #0 (kind ConfigMap) has no apiVersion",
		},
		{
			name:    "Pod",
			objs:    []*unstructured.Unstructured{stored("v1", "Pod", ns, "shell")},
			wantErr: prefix + "object #0: kind Pod (apiVersion v1) is not a kind Ferry installs",
		},
		{
			name:    "Node",
			objs:    []*unstructured.Unstructured{stored("v1", "Node", "", "worker-1")},
			wantErr: prefix + "object #0: kind Node (apiVersion v1) is not a kind Ferry installs",
		},
		{
			name:    "MutatingWebhookConfiguration Render did not make",
			objs:    []*unstructured.Unstructured{stored("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", "inject")},
			wantErr: prefix + `object #0: MutatingWebhookConfiguration inject: annotation operators.ferry.dev/ca-from is "", not an object of namespace ` + ns,
		},
		{
			name:    "allowed kind in another group",
			objs:    []*unstructured.Unstructured{stored("v1", "ClusterRoleBinding", "", "admin")},
			wantErr: prefix + "object #0: kind ClusterRoleBinding (apiVersion v1) is not a kind Ferry installs",
		},
		{
			name:    "apiVersion without a version",
			objs:    []*unstructured.Unstructured{stored("apps/", "Deployment", ns, "manager")},
			wantErr: prefix + "object #0: kind Deployment (apiVersion apps/) is not a kind Ferry installs",
		},
		{
			name:    "malformed apiVersion",
			objs:    []*unstructured.Unstructured{stored("apps/v1/extra", "Deployment", ns, "manager")},
			wantErr: prefix + "object #0: kind Deployment (apiVersion apps/v1/extra) is not a kind Ferry installs",
		},
		{
			name:    "CRD not v1",
			objs:    []*unstructured.Unstructured{stored("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "", "widgets.example.com")},
			wantErr: prefix + "object #0: CustomResourceDefinition widgets.example.com uses apiextensions.k8s.io/v1beta1; only apiextensions.k8s.io/v1 is served",
		},
		{
			name:    "missing name",
			objs:    []*unstructured.Unstructured{stored("v1", "ConfigMap", ns, "")},
			wantErr: prefix + "object #0 (ConfigMap) has no metadata.name",
		},
		{
			name:    "invalid name",
			objs:    []*unstructured.Unstructured{stored("v1", "ServiceAccount", "", "manager"), stored("v1", "ConfigMap", "", "Bad_Name")},
			wantErr: prefix + `object #1: ConfigMap name "Bad_Name" is invalid: ` + invalidDNSName,
		},
		{
			name:    "name too long",
			objs:    []*unstructured.Unstructured{stored("rbac.authorization.k8s.io/v1", "ClusterRole", "", long)},
			wantErr: prefix + `object #0: ClusterRole name "` + long + `" is invalid: must be no more than 253 characters`,
		},
		{
			name:    "duplicate",
			objs:    []*unstructured.Unstructured{stored("v1", "ConfigMap", ns, "settings"), stored("v1", "ConfigMap", ns, "settings")},
			wantErr: prefix + "object #1: ConfigMap " + ns + "/settings appears twice",
		},
		{
			name:    "duplicate once forced into the namespace",
			objs:    []*unstructured.Unstructured{stored("v1", "Secret", "kube-system", "token"), stored("v1", "Secret", "default", "token")},
			wantErr: prefix + "object #1: Secret " + ns + "/token appears twice",
		},
		{
			name: "duplicate once the namespace is cleared",
			objs: []*unstructured.Unstructured{
				stored("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader"),
				stored("rbac.authorization.k8s.io/v1", "ClusterRole", "kube-system", "reader"),
			},
			wantErr: prefix + "object #1: ClusterRole reader appears twice",
		},
		{
			name: "duplicate under two apiVersions",
			objs: []*unstructured.Unstructured{
				stored("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "reader"),
				stored("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding", "", "reader"),
			},
			wantErr: prefix + "object #1: ClusterRoleBinding reader appears twice",
		},
		{
			name:    "first failure is reported",
			objs:    []*unstructured.Unstructured{stored("v1", "ConfigMap", "", "settings"), stored("v1", "Pod", "", "shell"), stored("v1", "Node", "", "worker-1")},
			wantErr: prefix + "object #1: kind Pod (apiVersion v1) is not a kind Ferry installs",
		},
		{
			name: "namespaced objects are forced into the Subscription's namespace",
			objs: []*unstructured.Unstructured{
				stored("v1", "ConfigMap", "kube-system", "settings"),
				stored("apps/v1", "Deployment", "other", "manager"),
				stored("v1", "ServiceAccount", "", "manager"),
				stored("rbac.authorization.k8s.io/v1", "RoleBinding", "default", "manager"),
				stored("networking.k8s.io/v1", "NetworkPolicy", ns, "manager"),
			},
			wantNamespaces: []string{ns, ns, ns, ns, ns},
		},
		{
			name: "cluster-scoped objects are put in no namespace",
			objs: []*unstructured.Unstructured{
				stored("apiextensions.k8s.io/v1", "CustomResourceDefinition", "kube-system", "widgets.example.com"),
				stored("rbac.authorization.k8s.io/v1", "ClusterRole", ns, "reader"),
				stored("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "default", "reader"),
				stored("scheduling.k8s.io/v1", "PriorityClass", "", "critical"),
			},
			wantNamespaces: []string{"", "", "", ""},
		},
		{
			name: "one name in several kinds",
			objs: []*unstructured.Unstructured{
				stored("v1", "ConfigMap", "", "manager"),
				stored("v1", "Secret", "", "manager"),
				stored("rbac.authorization.k8s.io/v1", "Role", "", "manager"),
				stored("rbac.authorization.k8s.io/v1", "ClusterRole", "", "manager"),
			},
			wantNamespaces: []string{ns, ns, ns, ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			namespace := ns
			if tt.noNamespace {
				namespace = ""
			}
			err := install.CheckRestored(tt.objs, namespace)
			if tt.wantErr != "" {
				var invalid *install.InvalidBundleError
				if !errors.As(err, &invalid) {
					t.Fatalf("CheckRestored = %v, want *InvalidBundleError", err)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("CheckRestored error:\n got %q\nwant %q", err.Error(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckRestored: %v", err)
			}
			for i, o := range tt.objs {
				if got := o.GetNamespace(); got != tt.wantNamespaces[i] {
					t.Errorf("object #%d (%s %s): namespace %q, want %q", i, o.GetKind(), o.GetName(), got, tt.wantNamespaces[i])
				}
			}
		})
	}
}
