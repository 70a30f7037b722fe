//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/testenv"
)

// TestSingleAndMultiNamespaceOperator installs, through catalogd and the
// installer as deployed, an operator that supports only SingleNamespace
// and MultiNamespace: the sample signal-store, its install modes narrowed
// in this test's copy of the catalog. In MultiNamespace and in
// SingleNamespace its Roles and RoleBindings land in the install namespace
// and in each target, none elsewhere, and its Deployment's pod template
// carries olm.targetNamespaces as OLM sets it. A mode the operator does not
// support installs nothing and says why.
func TestSingleAndMultiNamespaceOperator(t *testing.T) {
	// signal-store is published into the catalog only once narrowed.
	env := startInstaller(t, "signal-store")
	freshCRDs(t, env.client, "signalstores.signals.ferry.dev")
	src := filepath.Join(f.ModuleRoot, "bundles", "signal-store")
	staging := filepath.Join(t.TempDir(), "signal-store")
	copyTree(t, src, staging)
	versions, err := os.ReadDir(staging)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		onlySingleAndMultiNamespace(t, filepath.Join(staging, v.Name(), "manifests", "signal-store.clusterserviceversion.yaml"))
	}
	// Moved into place at once: catalogd never reads half of it.
	if err := os.Rename(staging, filepath.Join(env.catalogDir, "signal-store")); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	// The targets first: namespaces are deleted in the reverse order, so the
	// Subscriptions are uninstalled while their targets and the tenant's
	// rights there still exist.
	t1, t2, t3, elsewhere := f.CreateNamespace(t), f.CreateNamespace(t), f.CreateNamespace(t), f.CreateNamespace(t)
	multi, single, refused := f.CreateNamespace(t), f.CreateNamespace(t), f.CreateNamespace(t)

	cases := []struct {
		ns      string
		mode    v1alpha1.InstallMode
		targets []string
	}{
		{ns: multi, mode: v1alpha1.InstallModeMultiNamespace, targets: []string{t2, t1}},
		{ns: single, mode: v1alpha1.InstallModeSingleNamespace, targets: []string{t3}},
	}
	for _, tc := range cases {
		for _, target := range tc.targets {
			grantTargetNamespace(ctx, t, env.client, tc.ns, target)
		}
		env.subscription(t, tc.ns, "signals", v1alpha1.SubscriptionSpec{
			Package: "signal-store", Channel: "stable", InstallMode: tc.mode, TargetNamespaces: tc.targets,
		})
	}
	env.subscription(t, refused, "signals", v1alpha1.SubscriptionSpec{
		Package: "signal-store", Channel: "stable", InstallMode: v1alpha1.InstallModeOwnNamespace,
	})

	for _, tc := range cases {
		t.Run(string(tc.mode), func(t *testing.T) {
			env.waitFor(t, tc.ns, "signals", "installed at 1.1.0", installedAt("1.1.0"))
			owner := client.MatchingLabelsSelector{Selector: install.OwnerSelector(types.NamespacedName{Namespace: tc.ns, Name: "signals"})}

			var deps appsv1.DeploymentList
			if err := env.client.List(ctx, &deps, client.InNamespace(tc.ns), owner); err != nil || len(deps.Items) == 0 {
				t.Fatalf("Deployments of the Subscription: %v (%d)", err, len(deps.Items))
			}
			sorted := slices.Sorted(slices.Values(tc.targets))
			want := strings.Join(sorted, ",")
			for _, d := range deps.Items {
				if got := d.Spec.Template.Annotations["olm.targetNamespaces"]; got != want {
					t.Errorf("Deployment %s: pod template olm.targetNamespaces = %q, want %q", d.Name, got, want)
				}
			}

			// The operator's Role and its binding to the operator's
			// ServiceAccount, in the install namespace and in each target.
			for _, ns := range append([]string{tc.ns}, sorted...) {
				var roles rbacv1.RoleList
				if err := env.client.List(ctx, &roles, client.InNamespace(ns), owner); err != nil || len(roles.Items) != 1 {
					t.Errorf("namespace %s: %d Roles of the Subscription (%v), want the operator's", ns, len(roles.Items), err)
				}
				var bindings rbacv1.RoleBindingList
				if err := env.client.List(ctx, &bindings, client.InNamespace(ns), owner); err != nil || len(bindings.Items) != 1 {
					t.Errorf("namespace %s: %d RoleBindings of the Subscription (%v), want the operator's", ns, len(bindings.Items), err)
					continue
				}
				b := bindings.Items[0]
				wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Namespace: tc.ns, Name: "signal-store-controller-manager"}
				if len(b.Subjects) != 1 || b.Subjects[0] != wantSubject || b.RoleRef.Kind != "Role" || len(roles.Items) != 1 || b.RoleRef.Name != roles.Items[0].Name {
					t.Errorf("namespace %s: RoleBinding %s binds %v to %v, want the operator's Role to %v", ns, b.Name, b.Subjects, b.RoleRef, wantSubject)
				}
			}
			// Nothing in a namespace the Subscription does not watch.
			for _, ns := range []string{elsewhere, t1, t2, t3} {
				if ns == tc.ns || slices.Contains(tc.targets, ns) {
					continue
				}
				var roles rbacv1.RoleList
				var bindings rbacv1.RoleBindingList
				if err := env.client.List(ctx, &roles, client.InNamespace(ns), owner); err != nil || len(roles.Items) != 0 {
					t.Errorf("namespace %s, not watched: %d Roles of the Subscription (%v)", ns, len(roles.Items), err)
				}
				if err := env.client.List(ctx, &bindings, client.InNamespace(ns), owner); err != nil || len(bindings.Items) != 0 {
					t.Errorf("namespace %s, not watched: %d RoleBindings of the Subscription (%v)", ns, len(bindings.Items), err)
				}
			}
		})
	}

	t.Run("unsupported mode", func(t *testing.T) {
		want := "install mode OwnNamespace is not supported by the operator (supported: SingleNamespace, MultiNamespace)"
		sub := env.waitFor(t, refused, "signals", "refused with UnsupportedInstallMode", func(s *v1alpha1.Subscription) bool {
			c := findCondition(s, v1alpha1.TypeProgressing)
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonUnsupportedMode && c.ObservedGeneration == s.Generation
		})
		if c := findCondition(sub, v1alpha1.TypeProgressing); !strings.Contains(c.Message, want) {
			t.Errorf("Progressing message %q does not say %q", c.Message, want)
		}
		if c := findCondition(sub, v1alpha1.TypeInstalled); c != nil && c.Status == metav1.ConditionTrue {
			t.Errorf("Installed = %+v, want not True", c)
		}
		if sub.Status.InstalledVersion != "" || len(sub.Status.Inventory) > 0 {
			t.Errorf("installed %q, inventory %v; want nothing", sub.Status.InstalledVersion, sub.Status.Inventory)
		}
		var deps appsv1.DeploymentList
		if err := env.client.List(ctx, &deps, client.InNamespace(refused)); err != nil || len(deps.Items) != 0 {
			t.Errorf("namespace %s: %d Deployments (%v), want none", refused, len(deps.Items), err)
		}
	})
}

func findCondition(s *v1alpha1.Subscription, typ string) *metav1.Condition {
	for i := range s.Status.Conditions {
		if s.Status.Conditions[i].Type == typ {
			return &s.Status.Conditions[i]
		}
	}
	return nil
}

// onlySingleAndMultiNamespace rewrites the installModes of a sample CSV so
// that the operator supports SingleNamespace and MultiNamespace only.
func onlySingleAndMultiNamespace(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, m := range []struct {
		mode      v1alpha1.InstallMode
		supported bool
	}{
		{v1alpha1.InstallModeOwnNamespace, false}, {v1alpha1.InstallModeSingleNamespace, true},
		{v1alpha1.InstallModeMultiNamespace, true}, {v1alpha1.InstallModeAllNamespaces, false},
	} {
		entry := fmt.Sprintf("  - type: %s\n    supported: ", m.mode)
		i := strings.Index(text, entry)
		if i < 0 {
			t.Fatalf("%s: no installModes entry for %s", path, m.mode)
		}
		rest := text[i+len(entry):]
		end := strings.IndexByte(rest, '\n')
		text = text[:i+len(entry)] + fmt.Sprint(m.supported) + rest[end:]
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// grantTargetNamespace gives the tenant ServiceAccount of ns, in target,
// what examples/tenancy/namespace-tenant.yaml grants in a namespace: what
// it needs to put an operator's Roles and RoleBindings there.
func grantTargetNamespace(ctx context.Context, t *testing.T, c client.Client, ns, target string) {
	t.Helper()
	role, err := testenv.Tenant(ctx, f.Config, target, testenv.NamespaceTenant)
	if err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: "ferry-tenant-of-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: testenv.TenantServiceAccount}},
	}
	if err := c.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	// The API server's authorizer learns of the binding from its cache.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, pollTimeout, true, func(ctx context.Context) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ns + ":" + testenv.TenantServiceAccount,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: target, Verb: "create", Group: rbacv1.GroupName, Resource: "rolebindings"},
		}}
		if err := c.Create(ctx, sar); err != nil {
			return false, err
		}
		return sar.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("the tenant of %s is not granted %s: %v", ns, target, err)
	}
}
