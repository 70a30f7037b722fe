package tenancy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/testbin"
	"github.com/ferrydev/ferry/internal/testenv"
)

// admissionPolicies applies config/admission as shipped; with
// defaultServiceAccount set as an installer started with
// --default-service-account=defaultServiceAccount needs it (what the Helm
// chart renders).
func admissionPolicies(t *testing.T, defaultServiceAccount string) {
	t.Helper()
	root, err := testbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "config", "admission")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if defaultServiceAccount != "" {
			const unset = "- name: defaultServiceAccount\n    expression: \"''\""
			if strings.Contains(string(b), "name: defaultServiceAccount") && !strings.Contains(string(b), unset) {
				t.Fatalf("%s: the variable defaultServiceAccount is not %q", f, unset)
			}
			b = []byte(strings.Replace(string(b), unset, "- name: defaultServiceAccount\n    expression: \"'"+defaultServiceAccount+"'\"", 1))
		}
		all.WriteString("\n---\n")
		all.Write(b)
	}
	m, err := asdeployed.Parse(strings.NewReader(all.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 4 {
		t.Fatalf("config/admission has %d objects, want 2 policies and their bindings", len(m.Objects))
	}
	if err := asdeployed.Apply(ctxFor(t), env.Config, m.Objects); err != nil {
		t.Fatal(err)
	}
}

// as is a client acting as user (with groups) through impersonation by the
// admin: a real user of the API server, with only what RBAC grants it.
func as(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func grant(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := ctxFor(t)
	subject := []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: user}}
	if ns == "" {
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-test-"}, Rules: rules}
		if err := env.Client.Create(ctx, cr); err != nil {
			t.Fatal(err)
		}
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cr.Name}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}}
		if err := env.Client.Create(ctx, crb); err != nil {
			t.Fatal(err)
		}
		return
	}
	r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	if err := env.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user}}
	if err := env.Client.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
}

func TestAdmissionPolicies(t *testing.T) {
	id := tenant(t, testenv.NamespaceTenant)
	ns := id.Namespace
	admissionPolicies(t, "")

	subscriptions := rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"subscriptions"}, Verbs: []string{"get", "create", "update", "patch"}}
	ferryWrites := rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"catalogsources", "revisions"}, Verbs: []string{"get", "create", "update", "patch"}}
	// alice may use the tenant ServiceAccount; bob may write Subscriptions,
	// CatalogSources and Revisions but use no ServiceAccount; carol is a
	// cluster admin by the cluster-admin ClusterRole.
	grant(t, ns, "alice", subscriptions, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, ResourceNames: []string{id.Name}, Verbs: []string{"impersonate"}})
	grant(t, ns, "bob", subscriptions)
	grant(t, "", "bob", ferryWrites)
	carol := "carol-" + ns
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: carol}, Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: carol}},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}
	if err := env.Client.Create(ctxFor(t), crb); err != nil {
		t.Fatal(err)
	}
	alice, bob, admin := as(t, "alice"), as(t, "bob"), as(t, carol)
	tenantSA := as(t, id.Username(), id.Groups()[:2]...)
	installer, err := client.New(env.InstallerConfig(t), client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}

	sub := func(name, sa string) *v1alpha1.Subscription {
		return &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", ServiceAccountName: sa}}
	}
	catalog := func(name string) *v1alpha1.CatalogSource {
		return &v1alpha1.CatalogSource{ObjectMeta: metav1.ObjectMeta{Name: name + "-" + ns}, Spec: v1alpha1.CatalogSourceSpec{Address: "catalogd.ferry-system.svc:50051"}}
	}
	revision := func(name string) *v1alpha1.Revision {
		return &v1alpha1.Revision{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.RevisionSpec{
			Subscription: "lighthouse", Revision: 1, Package: "lighthouse-operator", Version: "1.0.0", Bundle: "lighthouse-operator.v1.0.0",
			ContentDigest: "sha256:" + strings.Repeat("0", 64), Objects: v1alpha1.RevisionObjects{Count: 1, Blobs: []string{"b"}, Size: 1},
		}}
	}

	// The policies take effect shortly after they are created: wait until
	// bob's CatalogSource is refused.
	probe := catalog("probe")
	var last error
	if err := wait.PollUntilContextTimeout(ctxFor(t), 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		last = bob.Create(ctx, probe.DeepCopy())
		if last == nil {
			return false, env.Client.Delete(ctx, probe.DeepCopy())
		}
		return apierrors.IsForbidden(last) && strings.Contains(last.Error(), "ferry-catalog-and-revision-writers"), nil
	}); err != nil {
		t.Fatalf("the admission policies never took effect: %v (last answer: %v)", err, last)
	}

	ofAlice := sub("of-alice", id.Name)
	tests := []struct {
		name string
		do   func(ctx context.Context) error
		want string // substring of the refusal; "" when allowed
	}{
		{"a user who may impersonate the ServiceAccount names it", func(ctx context.Context) error { return alice.Create(ctx, ofAlice) }, ""},
		{"a user who may not impersonate it cannot name it", func(ctx context.Context) error { return bob.Create(ctx, sub("of-bob", id.Name)) },
			"spec.serviceAccountName: bob may not use ServiceAccount " + ns + "/" + id.Name},
		{"naming none is left to the installer's policy", func(ctx context.Context) error { return bob.Create(ctx, sub("of-bob-default", "")) }, ""},
		{"changing only labels of another's Subscription", func(ctx context.Context) error {
			cur := &v1alpha1.Subscription{}
			if err := bob.Get(ctx, client.ObjectKeyFromObject(ofAlice), cur); err != nil {
				return err
			}
			patch := client.MergeFrom(cur.DeepCopy())
			cur.Labels = map[string]string{"team": "b"}
			return bob.Patch(ctx, cur, patch)
		}, ""},
		{"the installer adds its finalizer", func(ctx context.Context) error {
			cur := &v1alpha1.Subscription{}
			if err := installer.Get(ctx, client.ObjectKeyFromObject(ofAlice), cur); err != nil {
				return err
			}
			cur.Finalizers = append(cur.Finalizers, "operators.ferry.dev/uninstall")
			return installer.Update(ctx, cur)
		}, ""},
		{"changing the spec of a Subscription naming a ServiceAccount one may not use", func(ctx context.Context) error {
			cur := &v1alpha1.Subscription{}
			if err := bob.Get(ctx, client.ObjectKeyFromObject(ofAlice), cur); err != nil {
				return err
			}
			cur.Spec.Channel = "fast"
			return bob.Update(ctx, cur)
		}, "bob may not use ServiceAccount"},
		{"the ServiceAccount names itself (dependencies)", func(ctx context.Context) error { return tenantSA.Create(ctx, sub("dependency", id.Name)) }, ""},
		{"a user with RBAC on CatalogSources is no cluster admin", func(ctx context.Context) error { return bob.Create(ctx, catalog("of-bob")) },
			"bob may not write catalogsources: only the installer (system:serviceaccount:ferry-system:ferry-installer) and cluster admins do"},
		{"a cluster admin writes CatalogSources", func(ctx context.Context) error { return admin.Create(ctx, catalog("of-carol")) }, ""},
		{"a user with RBAC on Revisions cannot write one", func(ctx context.Context) error { return bob.Create(ctx, revision("forged")) }, "bob may not write revisions"},
		{"the installer writes Revisions", func(ctx context.Context) error { return installer.Create(ctx, revision("recorded")) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(ctxFor(t))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want Forbidden saying %q", err, tt.want)
			}
		})
	}

	// With a default ServiceAccount, naming none is naming it: bob, who may
	// not impersonate it, can no longer get its rights by leaving the field
	// empty; alice, who may, can.
	admissionPolicies(t, id.Name)
	if err := wait.PollUntilContextTimeout(ctxFor(t), 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		last = bob.Create(ctx, sub("probe-default", ""))
		if last == nil {
			return false, env.Client.Delete(ctx, sub("probe-default", ""))
		}
		return apierrors.IsForbidden(last), nil
	}); err != nil {
		t.Fatalf("the policy with a default ServiceAccount never took effect: %v (last answer: %v)", err, last)
	}
	if want := "spec.serviceAccountName: bob may not use ServiceAccount " + ns + "/" + id.Name; !strings.Contains(last.Error(), want) {
		t.Errorf("naming none without the right to the default: %v, want %q", last, want)
	}
	if err := alice.Create(ctxFor(t), sub("of-alice-default", "")); err != nil {
		t.Errorf("naming none with the right to the default: %v", err)
	}
}
