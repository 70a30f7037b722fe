package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/tenancy"
	"github.com/ferrydev/ferry/internal/testenv"
)

const rbacGroup = "rbac.authorization.k8s.io"

// operator is what an OwnNamespace operator installs in ns: its
// ServiceAccount, a Role with rules the tenant does not hold itself (leases,
// its custom resources), the RoleBinding, a ConfigMap, a Deployment and a CRD.
func operator(t *testing.T, ns string) []*unstructured.Unstructured {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "op"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
		{APIGroups: []string{"tenancy.ferry.dev"}, Resources: []string{"widgets", "widgets/status"}, Verbs: []string{"get", "update"}},
	}}
	labels := map[string]string{"app": "op"}
	return []*unstructured.Unstructured{
		obj(t, &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "widgets.tenancy.ferry.dev"}}),
		obj(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "op"}}),
		obj(t, role),
		obj(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "op"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "Role", Name: "op"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "op"}}}),
		obj(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "op-config"}}),
		obj(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "op"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{ServiceAccountName: "op", Containers: []corev1.Container{{Name: "manager", Image: "op:1"}}}},
		}}),
	}
}

// clusterRBAC is what AllNamespaces mode adds: a ClusterRole reading the
// operator's custom resources everywhere, and its binding.
func clusterRBAC(t *testing.T, ns string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{
		obj(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "op-" + ns}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"tenancy.ferry.dev"}, Resources: []string{"widgets"}, Verbs: []string{"get"}},
		}}),
		obj(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "op-" + ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "ClusterRole", Name: "op-" + ns},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "op"}}}),
	}
}

// targetRBAC is what SingleNamespace and MultiNamespace add for a watched
// namespace target: the operator's Role there, bound to its ServiceAccount
// of the install namespace ns.
func targetRBAC(t *testing.T, ns, target string) []*unstructured.Unstructured {
	role := operator(t, ns)[2]
	role.SetNamespace(target)
	return []*unstructured.Unstructured{
		role,
		obj(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: "op"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "Role", Name: "op"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "op"}}}),
	}
}

// grantRoles lets the tenant of ns write Roles and RoleBindings in target,
// with escalate and bind: what a tenant needs in each namespace a
// SingleNamespace or MultiNamespace operator watches.
func grantRoles(t *testing.T, ns, target string) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: "ferry-tenant-" + ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{rbacGroup}, Resources: []string{"roles", "rolebindings"}, Verbs: []string{"create", "patch", "escalate", "bind"}},
	}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: "ferry-tenant-" + ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: testenv.TenantServiceAccount}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctxFor(t), o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// The API server's authorizer learns of the binding from its cache:
	// wait until it allows what the binding grants.
	user := "system:serviceaccount:" + ns + ":" + testenv.TenantServiceAccount
	err := wait.PollUntilContextTimeout(ctxFor(t), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: target, Verb: "bind", Group: rbacGroup, Resource: "roles"}}}
		if err := env.Client.Create(ctx, sar); err != nil {
			return false, err
		}
		return sar.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("the grant in %s never took effect: %v", target, err)
	}
}

func clusterAdminBinding(t *testing.T, kind, ns string) *unstructured.Unstructured {
	if kind == "ClusterRoleBinding" {
		return obj(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "op-admin-" + ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "op"}}})
	}
	return obj(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "op-admin"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacGroup, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "op"}}})
}

func TestCheckerListsExactlyWhatIsMissing(t *testing.T) {
	nsTenant := tenant(t, testenv.NamespaceTenant)
	clusterTenant := tenant(t, testenv.ClusterTenant)
	other := namespace(t)
	watched := namespace(t)
	checker := installerChecker(t)
	tests := []struct {
		name string
		id   tenancy.Identity
		plan func(ns string) tenancy.Plan
		want func(ns string) []string // Missing.String() of each; none: allowed
	}{
		{
			name: "a namespace tenant installs an OwnNamespace operator",
			id:   nsTenant,
			plan: func(ns string) tenancy.Plan { return tenancy.Plan{Apply: operator(t, ns)} },
		},
		{
			name: "a namespace tenant may not add cluster-wide RBAC (AllNamespaces)",
			id:   nsTenant,
			plan: func(ns string) tenancy.Plan {
				return tenancy.Plan{Apply: append(operator(t, ns), clusterRBAC(t, ns)...)}
			},
			want: func(ns string) []string {
				cr := "name=op-" + ns
				return []string{
					`verb=create group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) ` + cr + ` (to apply ClusterRole op-` + ns + `)`,
					`verb=patch group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) ` + cr + ` (to apply ClusterRole op-` + ns + `)`,
					`verb=create group="rbac.authorization.k8s.io" resource=clusterrolebindings (cluster-wide) ` + cr + ` (to apply ClusterRoleBinding op-` + ns + `)`,
					`verb=patch group="rbac.authorization.k8s.io" resource=clusterrolebindings (cluster-wide) ` + cr + ` (to apply ClusterRoleBinding op-` + ns + `)`,
					`verb=get group="tenancy.ferry.dev" resource=widgets (cluster-wide) (to apply ClusterRole op-` + ns + ` (the API server's escalation check), or verb=escalate group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) ` + cr + `)`,
					`verb=get group="tenancy.ferry.dev" resource=widgets (cluster-wide) (to apply ClusterRoleBinding op-` + ns + ` (the API server's escalation check), or verb=bind group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) ` + cr + `)`,
				}
			},
		},
		{
			name: "a cluster tenant may add cluster-wide RBAC",
			id:   clusterTenant,
			plan: func(ns string) tenancy.Plan {
				return tenancy.Plan{Apply: append(operator(t, ns), clusterRBAC(t, ns)...)}
			},
		},
		{
			name: "binding cluster-admin in the namespace",
			id:   nsTenant,
			plan: func(ns string) tenancy.Plan {
				return tenancy.Plan{Apply: []*unstructured.Unstructured{clusterAdminBinding(t, "RoleBinding", ns)}}
			},
			want: func(ns string) []string {
				return []string{
					`verb=* group="*" resource=* namespace=` + ns + ` (to apply RoleBinding ` + ns + `/op-admin (the API server's escalation check), or verb=bind group="rbac.authorization.k8s.io" resource=clusterroles namespace=` + ns + ` name=cluster-admin)`,
				}
			},
		},
		{
			name: "binding cluster-admin cluster-wide",
			id:   nsTenant,
			plan: func(ns string) tenancy.Plan {
				return tenancy.Plan{Apply: []*unstructured.Unstructured{clusterAdminBinding(t, "ClusterRoleBinding", ns)}}
			},
			want: func(ns string) []string {
				what := `(to apply ClusterRoleBinding op-admin-` + ns
				alt := `, or verb=bind group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) name=cluster-admin)`
				return []string{
					`verb=create group="rbac.authorization.k8s.io" resource=clusterrolebindings (cluster-wide) name=op-admin-` + ns + ` ` + what + `)`,
					`verb=patch group="rbac.authorization.k8s.io" resource=clusterrolebindings (cluster-wide) name=op-admin-` + ns + ` ` + what + `)`,
					`verb=* group="*" resource=* (cluster-wide) ` + what + ` (the API server's escalation check)` + alt,
					`verb=* nonResourceURL=* ` + what + ` (the API server's escalation check)` + alt,
				}
			},
		},
		{
			name: "an aggregated ClusterRole needs escalate",
			id:   nsTenant,
			plan: func(ns string) tenancy.Plan {
				return tenancy.Plan{Apply: []*unstructured.Unstructured{obj(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "agg-" + ns},
					AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"aggregate-to": ns}}}}})}}
			},
			want: func(ns string) []string {
				cr := `(cluster-wide) name=agg-` + ns
				return []string{
					`verb=create group="rbac.authorization.k8s.io" resource=clusterroles ` + cr + ` (to apply ClusterRole agg-` + ns + `)`,
					`verb=patch group="rbac.authorization.k8s.io" resource=clusterroles ` + cr + ` (to apply ClusterRole agg-` + ns + `)`,
					`verb=escalate group="rbac.authorization.k8s.io" resource=clusterroles ` + cr + ` (to apply ClusterRole agg-` + ns + ` (the API server's escalation check))`,
				}
			},
		},
		{
			name: "a namespace tenant may not give the operator a Role in another namespace it watches (SingleNamespace, MultiNamespace)",
			id:   nsTenant,
			plan: func(ns string) tenancy.Plan {
				return tenancy.Plan{Apply: append(operator(t, ns), targetRBAC(t, ns, other)...)}
			},
			want: func(ns string) []string {
				in := func(kind string) string {
					return "namespace=" + other + " name=op (to apply " + kind + " " + other + "/op)"
				}
				want := []string{
					`verb=create group="rbac.authorization.k8s.io" resource=roles ` + in("Role"),
					`verb=patch group="rbac.authorization.k8s.io" resource=roles ` + in("Role"),
					`verb=create group="rbac.authorization.k8s.io" resource=rolebindings ` + in("RoleBinding"),
					`verb=patch group="rbac.authorization.k8s.io" resource=rolebindings ` + in("RoleBinding"),
				}
				// Every rule of the Role, for the Role (or escalate) and
				// for its binding (or bind).
				rules := operator(t, ns)[2].Object["rules"].([]any)
				for _, check := range []struct{ kind, alt string }{{"Role", "escalate"}, {"RoleBinding", "bind"}} {
					for _, r := range rules {
						rule := r.(map[string]any)
						for _, verb := range rule["verbs"].([]any) {
							for _, res := range rule["resources"].([]any) {
								want = append(want, fmt.Sprintf(`verb=%s group=%q resource=%s namespace=%s (to apply %s %s/op (the API server's escalation check), or verb=%s group="rbac.authorization.k8s.io" resource=roles namespace=%s name=op)`,
									verb, rule["apiGroups"].([]any)[0], res, other, check.kind, other, check.alt, other))
							}
						}
					}
				}
				return want
			},
		},
		{
			name: "a tenant granted Roles in the namespace it watches may give the operator one there",
			id:   nsTenant,
			plan: func(ns string) tenancy.Plan {
				grantRoles(t, ns, watched)
				return tenancy.Plan{Apply: append(operator(t, ns), targetRBAC(t, ns, watched)...)}
			},
		},
		{
			name: "objects of another namespace, written and pruned",
			id:   nsTenant,
			plan: func(string) tenancy.Plan {
				return tenancy.Plan{
					Apply:  []*unstructured.Unstructured{obj(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "theirs"}})},
					Delete: []v1alpha1.ObjectReference{{Version: "v1", Kind: "Secret", Namespace: other, Name: "old"}},
				}
			},
			want: func(string) []string {
				return []string{
					`verb=create group="" resource=configmaps namespace=` + other + ` name=theirs (to apply ConfigMap ` + other + `/theirs)`,
					`verb=patch group="" resource=configmaps namespace=` + other + ` name=theirs (to apply ConfigMap ` + other + `/theirs)`,
					`verb=delete group="" resource=secrets namespace=` + other + ` name=old (to delete Secret ` + other + `/old)`,
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checker.Check(ctxFor(t), tt.id, tt.plan(tt.id.Namespace))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var pm *tenancy.PermissionsMissingError
			if !errors.As(err, &pm) {
				t.Fatalf("Check = %v, want *PermissionsMissingError", err)
			}
			if pm.Identity != tt.id {
				t.Errorf("error names %v, want %v", pm.Identity, tt.id)
			}
			got := make([]string, len(pm.Missing))
			for i, m := range pm.Missing {
				got[i] = m.String()
			}
			want := tt.want(tt.id.Namespace)
			if !slices.Equal(got, want) {
				t.Errorf("missing:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("%s lacks %d permission(s): ", tt.id, len(want))) {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestCheckerBounds(t *testing.T) {
	id := tenant(t, testenv.NamespaceTenant)
	// A Role of 300 rules on resources nobody holds.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: "wide"}}
	for i := range 300 {
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{"tenancy.ferry.dev"}, Resources: []string{fmt.Sprintf("kind%03d", i)}, Verbs: []string{"get"}})
	}
	// escalate is held by the namespace tenant: grant the same Role in
	// another namespace, where it is not.
	other := namespace(t)
	role.Namespace = other
	plan := tenancy.Plan{Apply: []*unstructured.Unstructured{obj(t, role)}}

	t.Run("the message is bounded, the error complete", func(t *testing.T) {
		err := installerChecker(t).Check(ctxFor(t), id, plan)
		var pm *tenancy.PermissionsMissingError
		if !errors.As(err, &pm) {
			t.Fatalf("Check = %v", err)
		}
		if len(pm.Missing) != 302 {
			t.Errorf("%d missing, want 302 (create, patch and 300 rules)", len(pm.Missing))
		}
		msg := err.Error()
		if len(msg) > tenancy.MaxMessage+200 || !strings.Contains(msg, " more") {
			t.Errorf("message of %d bytes: %q", len(msg), msg)
		}
	})
	t.Run("too many checks", func(t *testing.T) {
		err := installerChecker(t, tenancy.WithMaxChecks(100)).Check(ctxFor(t), id, plan)
		var pm *tenancy.PermissionsMissingError
		if err == nil || errors.As(err, &pm) || !strings.Contains(err.Error(), "303 access reviews, more than the 100 allowed") {
			t.Fatalf("Check = %v", err)
		}
	})
}
