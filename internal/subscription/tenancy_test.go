package subscription_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/testenv"
)

// ownNamespaceOnly makes signal-store 1.0.0 an operator that asks for no
// cluster-wide permissions, and adds, when extra is set, one manifest to it.
func ownNamespaceOnly(t *testing.T, dir, extra string) {
	t.Helper()
	csv := filepath.Join(dir, "signal-store", "1.0.0", "manifests", "signal-store.clusterserviceversion.yaml")
	data, err := os.ReadFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start, end := strings.Index(s, "      clusterPermissions:\n"), strings.Index(s, "      deployments:\n")
	if start < 0 || end < start {
		t.Fatal("signal-store 1.0.0 no longer has clusterPermissions before its deployments")
	}
	if err := os.WriteFile(csv, []byte(s[:start]+s[end:]), 0o644); err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		if err := os.WriteFile(filepath.Join(dir, "signal-store", "1.0.0", "manifests", "extra.yaml"), []byte(extra), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// namespaceTenantOnly takes from the namespace's tenant ServiceAccount what
// cluster-tenant.yaml granted: it keeps namespace-tenant.yaml's rights.
func namespaceTenantOnly(t *testing.T, ns string) {
	t.Helper()
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ferry-tenant-cluster-" + ns}}
	if err := env.Client.Delete(context.Background(), crb); err != nil {
		t.Fatal(err)
	}
}

// refusedFor waits until the controller has seen the Subscription's
// generation and says reason on Progressing.
func refusedFor(reason string) func(*v1alpha1.Subscription) bool {
	return func(s *v1alpha1.Subscription) bool {
		c := condition(s, v1alpha1.TypeProgressing)
		return c != nil && c.ObservedGeneration == s.Generation && c.Reason == reason
	}
}

// nothingApplied checks that no Deployment, Revision or ClusterRole of the
// package exists.
func nothingApplied(t *testing.T, c client.Client, ns, sub string) {
	t.Helper()
	ctx := context.Background()
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil || len(deps.Items) != 0 {
		t.Errorf("something was applied: %d Deployments (%v)", len(deps.Items), err)
	}
	if revs := revisionsOf(t, c, ns, sub); len(revs) != 0 {
		t.Errorf("%d Revisions recorded, want none", len(revs))
	}
}

func TestNamespaceTenantInstallsAnOwnNamespaceOperator(t *testing.T) {
	dir := sampleDir(t)
	ownNamespaceOnly(t, dir, "")
	_, c, ns, cat := setup(t, dir, nil)
	namespaceTenantOnly(t, ns)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", VersionRange: "<1.1.0", InstallMode: v1alpha1.InstallModeOwnNamespace})
	sub := waitSub(t, c, ns, "signals", "installed as the namespace's tenant", installed("1.0.0"))
	var roles rbacv1.RoleList
	if err := c.List(context.Background(), &roles, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range roles.Items {
		found = found || r.Annotations["operators.ferry.dev/bundle"] == sub.Status.InstalledBundle
	}
	if !found {
		t.Errorf("the operator's Role was not installed in %s", ns)
	}
}

func TestNamespaceTenantIsRefusedWhatItMayNotGrant(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		mode  v1alpha1.InstallMode
		want  []string
	}{
		{
			name: "AllNamespaces", mode: v1alpha1.InstallModeAllNamespaces,
			want: []string{
				`verb=create group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) name=signal-store.v1.0.0-signal-store-controller-manager-`,
				`verb=create group="rbac.authorization.k8s.io" resource=clusterrolebindings (cluster-wide) name=signal-store.v1.0.0-signal-store-controller-manager-`,
				`verb=get group="" resource=configmaps (cluster-wide) (to apply ClusterRole signal-store.v1.0.0-signal-store-controller-manager-`,
				"more",
			},
		},
		{
			name: "a binding of cluster-admin", mode: v1alpha1.InstallModeOwnNamespace,
			extra: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: signal-store-admin\n" +
				"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n" +
				"subjects:\n- {kind: ServiceAccount, name: signal-store-controller-manager}\n",
			want: []string{
				`verb=create group="rbac.authorization.k8s.io" resource=clusterrolebindings (cluster-wide) name=signal-store-admin (to apply ClusterRoleBinding signal-store-admin)`,
				`verb=* group="*" resource=* (cluster-wide) (to apply ClusterRoleBinding signal-store-admin (the API server's escalation check), or verb=bind group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) name=cluster-admin)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := sampleDir(t)
			ownNamespaceOnly(t, dir, tt.extra)
			_, c, ns, cat := setup(t, dir, nil)
			namespaceTenantOnly(t, ns)
			create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", VersionRange: "<1.1.0", InstallMode: tt.mode})
			sub := waitSub(t, c, ns, "signals", "refused for missing permissions", refusedFor(v1alpha1.ReasonPermissionsMissing))
			msg := condition(sub, v1alpha1.TypeProgressing).Message
			wantStart := "signal-store 1.0.0 cannot be installed, nothing was changed: ServiceAccount " + ns + "/" + testenv.TenantServiceAccount + " lacks "
			if !strings.HasPrefix(msg, wantStart) {
				t.Errorf("Progressing message\n%s\nwant it to start with\n%s", msg, wantStart)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Progressing message\n%s\nwant it to list\n%s", msg, w)
				}
			}
			if c := condition(sub, v1alpha1.TypeInstalled); c == nil || c.Reason != v1alpha1.ReasonPermissionsMissing {
				t.Errorf("Installed condition %+v, want reason %s", c, v1alpha1.ReasonPermissionsMissing)
			}
			nothingApplied(t, c, ns, "signals")
			if err := c.Get(context.Background(), client.ObjectKey{Name: "signal-store-admin"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
				t.Errorf("ClusterRoleBinding signal-store-admin: %v, want NotFound", err)
			}
		})
	}
}

func TestWithoutServiceAccountNothingIsInstalled(t *testing.T) {
	tests := []struct {
		name string
		sa   string
		want string
	}{
		{name: "none named, no default", want: "names no ServiceAccount (spec.serviceAccountName) and the installer has no default (--default-service-account)"},
		{name: "one that does not exist", sa: "absent", want: "does not exist; the Subscription is installed with its rights"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, ns, cat := setup(t, sampleDir(t), nil)
			sub := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signals"},
				Spec: v1alpha1.SubscriptionSpec{Catalog: cat, Package: "signal-store", ServiceAccountName: tt.sa}}
			if err := c.Create(context.Background(), sub); err != nil {
				t.Fatal(err)
			}
			got := waitSub(t, c, ns, "signals", "refused for want of a ServiceAccount", refusedFor(v1alpha1.ReasonNoServiceAccount))
			if msg := condition(got, v1alpha1.TypeProgressing).Message; !strings.Contains(msg, tt.want) {
				t.Errorf("Progressing message %q, want it to say %q", msg, tt.want)
			}
			if got.Status.State != v1alpha1.StateFailed {
				t.Errorf("state %s, want Failed", got.Status.State)
			}
			nothingApplied(t, c, ns, "signals")
			// Nothing was installed: the Subscription goes when deleted.
			if err := c.Delete(context.Background(), got); err != nil {
				t.Fatal(err)
			}
			if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
				return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(got), &v1alpha1.Subscription{})), nil
			}); err != nil {
				t.Fatalf("the refused Subscription was not let go when deleted: %v", err)
			}
		})
	}
}

// A Manual Subscription's pending upgrade says, before it is approved, that
// its ServiceAccount could not apply it, and is refused once approved.
func TestPendingUpgradeSaysItWouldBeRefused(t *testing.T) {
	dir := sampleDir(t)
	ownNamespaceOnly(t, dir, "")
	_, c, ns, cat := setup(t, dir, nil)
	namespaceTenantOnly(t, ns)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", StartingVersion: "1.0.0", VersionRange: "<2.0.0",
		InstallMode: v1alpha1.InstallModeOwnNamespace, Approval: v1alpha1.ApprovalManual})
	waitSub(t, c, ns, "signals", "installed", installed("1.0.0"))
	// signal-store 1.1.0 asks for clusterPermissions: a ClusterRole and
	// its binding the namespace's tenant may not create.
	want := `verb=create group="rbac.authorization.k8s.io" resource=clusterroles (cluster-wide) name=signal-store.v1.1.0-signal-store-controller-manager-`
	sub := waitSub(t, c, ns, "signals", "an upgrade pending that would be refused", func(s *v1alpha1.Subscription) bool {
		u := s.Status.AvailableUpgrade
		return u != nil && u.Version == "1.1.0" && u.Refusal != ""
	})
	refusal := sub.Status.AvailableUpgrade.Refusal
	if !strings.HasPrefix(refusal, "if approved now, the upgrade would be refused, nothing changed: ServiceAccount "+ns+"/"+testenv.TenantServiceAccount+" lacks ") || !strings.Contains(refusal, want) {
		t.Errorf("availableUpgrade.refusal\n%s\nwant it to list\n%s", refusal, want)
	}
	// The dry run the live diff needs is refused too: the changes compare
	// the bundles, and say so.
	if ch := sub.Status.AvailableUpgrade.Changes; len(ch) < 2 || !strings.HasPrefix(ch[0], "compared with the installed bundle, not the live objects: the Subscription's ServiceAccount lacks rights the upgrade needs") {
		t.Errorf("availableUpgrade.changes %q do not say the live diff was refused", ch)
	}
	for _, l := range sub.Status.AvailableUpgrade.Changes {
		if strings.Contains(strings.ToLower(l), "forbidden") {
			t.Errorf("availableUpgrade.changes quote the API server: %s", l)
		}
	}
	if c := condition(sub, v1alpha1.TypeUpgradeAvailable); c == nil || !strings.Contains(c.Message, "status.availableUpgrade.refusal") {
		t.Errorf("UpgradeAvailable condition %+v does not point at the refusal", c)
	}

	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.ApprovedVersion = "1.1.0" })
	got := waitSub(t, c, ns, "signals", "refused once approved", refusedFor(v1alpha1.ReasonPermissionsMissing))
	if msg := condition(got, v1alpha1.TypeProgressing).Message; !strings.Contains(msg, want) {
		t.Errorf("Progressing message\n%s\nwant it to list\n%s", msg, want)
	}
	if got.Status.InstalledVersion != "1.0.0" {
		t.Errorf("installed %s, want 1.0.0 kept", got.Status.InstalledVersion)
	}
	if revs := revisionsOf(t, c, ns, "signals"); len(revs) != 1 {
		t.Errorf("%d Revisions, want the first one only", len(revs))
	}
}

// A namespace being deleted takes the ServiceAccount's rights with it: the
// Subscription is let go, the namespace's objects go with the namespace, and
// what lies outside it is left in place.
func TestNamespaceDeletedWithTheServiceAccountsRights(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", VersionRange: "<1.1.0"})
	sub := waitSub(t, c, ns, "signals", "installed", installed("1.0.0"))
	var clusterRole string
	for _, ref := range sub.Status.Inventory {
		if ref.Kind == "ClusterRole" {
			clusterRole = ref.Name
		}
	}
	if clusterRole == "" {
		t.Fatalf("no ClusterRole in the inventory %v", sub.Status.Inventory)
	}
	// The install's event is recorded before the namespace stops taking
	// new objects.
	waitEvent(t, c, ns, "signals", corev1.EventTypeNormal, v1alpha1.EventReasonInstalled, "signal-store installed 1.0.0")
	ctx := context.Background()
	// The namespace goes (envtest runs no namespace controller: it stays
	// Terminating); once the controller has seen it, nothing more is
	// installed there, and the tenant's bindings go too.
	if err := env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) {
		s.Config = &v1alpha1.SubscriptionConfig{NodeSelector: map[string]string{"seen": "yes"}}
	})
	waitSub(t, c, ns, "signals", "seen the namespace go", refusedFor(v1alpha1.ReasonDeleting))
	for _, o := range []client.Object{
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: testenv.TenantServiceAccount}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ferry-tenant-cluster-" + ns}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ferry-tenant-crds-" + ns}},
	} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(sub), &v1alpha1.Subscription{})), nil
	}); err != nil {
		t.Fatalf("the Subscription was not let go: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: clusterRole}, &rbacv1.ClusterRole{}); err != nil {
		t.Errorf("ClusterRole %s outside the namespace: %v, want it left in place", clusterRole, err)
	}
}

// A target namespace that does not exist, or is being deleted, takes the
// ServiceAccount's rights there with it: nothing is applied, and the
// Subscription says which namespace stops it.
func TestTargetNamespaceGoneInstallsNothing(t *testing.T) {
	_, c, ns, cat := setup(t, sampleDir(t), nil)
	create(t, c, ns, "signals", cat, v1alpha1.SubscriptionSpec{Package: "signal-store", InstallMode: v1alpha1.InstallModeMultiNamespace,
		TargetNamespaces: []string{ns, "absent-" + ns}})
	got := waitSub(t, c, ns, "signals", "refused for its missing target namespace", refusedFor(v1alpha1.ReasonCannotAct))
	if msg, want := condition(got, v1alpha1.TypeProgressing).Message, "target namespace absent-"+ns+" (spec.targetNamespaces) does not exist or is being deleted"; !strings.Contains(msg, want) {
		t.Errorf("Progressing message %q, want it to say %q", msg, want)
	}
	nothingApplied(t, c, ns, "signals")
}
