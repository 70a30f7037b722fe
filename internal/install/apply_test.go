package install_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
	"github.com/ferrydev/ferry/internal/tenancy"
	"github.com/ferrydev/ferry/internal/testenv"
)

const beaconCRD = "beacons.lighthouse.ferry.dev"

var nsCounter atomic.Int32

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("install-%d", nsCounter.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// applier applies as the installer does in a cluster: it reads as its
// ServiceAccount, with the generated RBAC, and writes as the tenant
// ServiceAccount of examples/tenancy in ns, which it impersonates (a
// request either refuses fails the test). With ns empty it only reads.
// Setup and assertions use env.Client (admin).
func applier(t *testing.T, ns string) *install.Applier {
	t.Helper()
	installer := env.InstallerConfig(t)
	c, err := client.New(installer, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	a := &install.Applier{Client: c, FieldManager: install.FieldManager}
	if ns == "" {
		return a
	}
	// The sample operators ask for cluster-wide permissions.
	sa, err := testenv.Tenant(context.Background(), env.Config, ns, testenv.ClusterTenant)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := tenancy.NewClients(installer, client.Options{Scheme: env.Scheme, Mapper: env.Client.RESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	if a.Writer, err = cs.For(tenancy.Identity{Namespace: ns, Name: sa}); err != nil {
		t.Fatal(err)
	}
	return a
}

func mustApply(ctx context.Context, t *testing.T, r *install.Rendered, previous []v1alpha1.ObjectReference) install.ApplyResult {
	t.Helper()
	res, err := applier(t, r.Namespace).Apply(ctx, r, previous)
	if err != nil {
		t.Fatalf("Apply(%s): %v", r.Bundle, err)
	}
	return res
}

// exists reports whether the object exists in the cluster.
func exists(ctx context.Context, t *testing.T, ref v1alpha1.ObjectReference) bool {
	t.Helper()
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(ref2gvk(ref))
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, m)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("reading %v: %v", ref, err)
	}
	return m.DeletionTimestamp == nil
}

func ref2gvk(ref v1alpha1.ObjectReference) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind}
}

func refString(ref v1alpha1.ObjectReference) string {
	if ref.Namespace == "" {
		return ref.Kind + " " + ref.Name
	}
	return ref.Kind + " " + ref.Namespace + "/" + ref.Name
}

func refStrings(refs []v1alpha1.ObjectReference) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = refString(r)
	}
	slices.Sort(out)
	return out
}

func eventually(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestApplyInstallsEveryObject(t *testing.T) {
	tests := []struct {
		name    string
		mode    v1alpha1.InstallMode
		targets int // namespaces watched besides the install namespace
	}{
		{"OwnNamespace", v1alpha1.InstallModeOwnNamespace, 0},
		{"AllNamespaces", v1alpha1.InstallModeAllNamespaces, 0},
		{"SingleNamespace", v1alpha1.InstallModeSingleNamespace, 1},
		{"MultiNamespace", v1alpha1.InstallModeMultiNamespace, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			in := input(t, ns, lighthouse, "1.3.0")
			in.Manifests = editCSV(t, in.Manifests, supportAllModes)
			in.InstallMode = tt.mode
			for range tt.targets {
				target := newNamespace(t)
				grantNamespaceTenant(ctx, t, ns, target)
				in.TargetNamespaces = append(in.TargetNamespaces, target)
			}
			in.Config = &v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}}}
			r := render(t, in)
			res := mustApply(ctx, t, r, nil)
			if !slices.Equal(refStrings(res.Inventory), refStrings(r.Inventory())) || len(res.Pruned) != 0 {
				t.Fatalf("Apply = %+v, want the rendered inventory and nothing pruned", res)
			}
			for _, ref := range res.Inventory {
				if !exists(ctx, t, ref) {
					t.Errorf("%s was not created", refString(ref))
				}
			}
			var d appsv1.Deployment
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: sa}, &d); err != nil {
				t.Fatal(err)
			}
			if got := envValue(&d, "REGION"); got != "eu-west-1" {
				t.Errorf("REGION in the cluster = %q, want eu-west-1", got)
			}
			if got := d.Spec.Template.Annotations[install.AnnotationTargetNamespaces]; got != r.TargetNamespaces {
				t.Errorf("olm.targetNamespaces in the cluster = %q, want %q", got, r.TargetNamespaces)
			}
			for _, target := range in.TargetNamespaces {
				var roles rbacv1.RoleList
				if err := env.Client.List(ctx, &roles, client.InNamespace(target), client.MatchingLabelsSelector{Selector: install.OwnerSelector(in.Owner)}); err != nil {
					t.Fatal(err)
				}
				if len(roles.Items) != 1 {
					t.Errorf("namespace %s has %d Roles of the Subscription, want the operator's", target, len(roles.Items))
				}
			}
			if !install.OwnerSelector(in.Owner).Matches(labelSet(d.Labels)) {
				t.Errorf("Deployment labels %v lack the owner's", d.Labels)
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := env.Client.Get(ctx, types.NamespacedName{Name: beaconCRD}, &crd); err != nil {
				t.Fatal(err)
			}
			established := false
			for _, c := range crd.Status.Conditions {
				established = established || c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue
			}
			if !established {
				t.Error("Apply returned before the CRD was Established")
			}
			// A second apply of the same version changes nothing.
			again := mustApply(ctx, t, r, res.Inventory)
			if len(again.Pruned) != 0 || len(again.Inventory) != len(res.Inventory) {
				t.Errorf("re-Apply = %+v, want the same inventory and nothing pruned", again)
			}
		})
	}
}

// grantNamespaceTenant gives the tenant ServiceAccount of ns, in target,
// what examples/tenancy/namespace-tenant.yaml grants in its own namespace:
// what an operator watching target needs there.
func grantNamespaceTenant(ctx context.Context, t *testing.T, ns, target string) {
	t.Helper()
	sa, err := testenv.Tenant(ctx, env.Config, target, testenv.NamespaceTenant)
	if err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: "ferry-tenant-of-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: sa}},
	}
	if err := env.Client.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	// The API server's authorizer learns of the binding from its cache.
	eventually(ctx, t, "the tenant's grant in "+target, func() (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ns + ":" + sa,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: target, Verb: "create", Group: rbacv1.GroupName, Resource: "rolebindings"},
		}}
		if err := env.Client.Create(ctx, sar); err != nil {
			return false, err
		}
		return sar.Status.Allowed, nil
	})
}

func TestUnsupportedInstallModeAppliesNothing(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	in := input(t, ns, lighthouse, "1.3.0")
	in.InstallMode = "MultiNamespace"
	r, err := install.Render(in)
	var ume *install.UnsupportedInstallModeError
	if !errors.As(err, &ume) {
		t.Fatalf("Render = %v, want *UnsupportedInstallModeError", err)
	}
	// The caller has nothing to apply; a nil Rendered is refused.
	if _, err := applier(t, ns).Apply(ctx, r, nil); err == nil {
		t.Fatal("Apply(nil) succeeded")
	}
	for _, list := range []client.ObjectList{&appsv1.DeploymentList{}, &corev1.ServiceAccountList{}, &corev1.ConfigMapList{}} {
		if err := env.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: install.OwnerSelector(in.Owner)}); err != nil {
			t.Fatal(err)
		}
		if n := len(itemsOf(list)); n != 0 {
			t.Errorf("%d objects of %T were applied", n, list)
		}
	}
}

func itemsOf(list client.ObjectList) []any {
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		return anySlice(l.Items)
	case *corev1.ServiceAccountList:
		return anySlice(l.Items)
	case *corev1.ConfigMapList:
		return anySlice(l.Items)
	}
	return nil
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i := range s {
		out[i] = s[i]
	}
	return out
}

func TestUpgradePrunesWhatIsNoLongerShipped(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	in := input(t, ns, lighthouse, "1.2.0")
	in.InstallMode = v1alpha1.InstallModeOwnNamespace
	// 1.2.0 as installed here also ships an extra CRD that 1.3.0 drops.
	in.Manifests = append(in.Manifests, manifest(t, extraCRD()))
	r12 := render(t, in)
	res12 := mustApply(ctx, t, r12, nil)

	in13 := input(t, ns, lighthouse, "1.3.0")
	in13.InstallMode = v1alpha1.InstallModeOwnNamespace
	r13 := render(t, in13)
	res13 := mustApply(ctx, t, r13, res12.Inventory)

	// RBAC is named after the CSV, so 1.2.0's roles and bindings go.
	var wantPruned []string
	for _, ref := range res12.Inventory {
		if strings.HasPrefix(ref.Name, "lighthouse-operator.v1.2.0-") {
			wantPruned = append(wantPruned, refString(ref))
		}
	}
	slices.Sort(wantPruned)
	if len(wantPruned) != 4 || !slices.Equal(refStrings(res13.Pruned), wantPruned) {
		t.Fatalf("pruned %v, want %v", refStrings(res13.Pruned), wantPruned)
	}
	for _, ref := range res13.Pruned {
		if exists(ctx, t, ref) {
			t.Errorf("%s still exists", refString(ref))
		}
	}
	extra := v1alpha1.ObjectReference{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "lanterns.lighthouse.ferry.dev"}
	if !exists(ctx, t, extra) {
		t.Error("the CRD 1.3.0 no longer ships was deleted")
	}
	if !slices.Contains(res13.Inventory, extra) {
		t.Error("the kept CRD left the inventory, so no uninstall would ever delete it")
	}
	for _, ref := range r13.Inventory() {
		if !exists(ctx, t, ref) {
			t.Errorf("%s of 1.3.0 does not exist", refString(ref))
		}
	}

	// Rolling back to 1.1.0 would drop the Beacon v1 version, which is a
	// stored version now: the API server refuses, and nothing is pruned.
	in11 := input(t, ns, lighthouse, "1.1.0")
	in11.InstallMode = v1alpha1.InstallModeOwnNamespace
	res11, err := applier(t, ns).Apply(ctx, render(t, in11), res13.Inventory)
	if err == nil || !strings.Contains(err.Error(), "storedVersions") {
		t.Fatalf("Apply(1.1.0) over 1.3.0 = %v, want the API server's refusal to drop a stored CRD version", err)
	}
	if len(res11.Pruned) != 0 {
		t.Errorf("a failed Apply pruned %v", refStrings(res11.Pruned))
	}
	for _, ref := range res13.Inventory {
		if !slices.Contains(res11.Inventory, ref) {
			t.Errorf("a failed Apply dropped %s from the inventory", refString(ref))
		}
		if !exists(ctx, t, ref) {
			t.Errorf("%s is gone after a failed Apply", refString(ref))
		}
	}

	// A version that no longer ships the Service and ConfigMap prunes them.
	slim := input(t, ns, lighthouse, "1.3.0")
	slim.InstallMode = v1alpha1.InstallModeOwnNamespace
	slim.Manifests = without(without(slim.Manifests, "ConfigMap"), "Service")
	resSlim := mustApply(ctx, t, render(t, slim), res13.Inventory)
	wantPruned = []string{"ConfigMap " + ns + "/lighthouse-operator-config", "Service " + ns + "/lighthouse-operator-metrics"}
	if !slices.Equal(refStrings(resSlim.Pruned), wantPruned) {
		t.Errorf("pruned %v, want %v", refStrings(resSlim.Pruned), wantPruned)
	}
	for _, ref := range resSlim.Pruned {
		if exists(ctx, t, ref) {
			t.Errorf("%s still exists", refString(ref))
		}
	}
}

func extraCRD() map[string]any {
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "lanterns.lighthouse.ferry.dev"},
		"spec": map[string]any{
			"group": "lighthouse.ferry.dev", "scope": "Namespaced",
			"names": map[string]any{"plural": "lanterns", "singular": "lantern", "kind": "Lantern", "listKind": "LanternList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}
}

func TestPruneSparesObjectsFerryDoesNotOwn(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	in := input(t, ns, lighthouse, "1.3.0")
	r := render(t, in)
	res := mustApply(ctx, t, r, nil)
	// Someone else's ConfigMap, and a Namespace, found their way into the inventory.
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hand-made", Namespace: ns}}
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	cmRef := v1alpha1.ObjectReference{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "hand-made"}
	nsRef := v1alpha1.ObjectReference{Version: "v1", Kind: "Namespace", Name: ns}
	gone := v1alpha1.ObjectReference{Version: "v1", Kind: "Secret", Namespace: ns, Name: "never-existed"}
	prev := append(slices.Clone(res.Inventory), cmRef, nsRef, gone)
	again := mustApply(ctx, t, r, prev)
	if len(again.Pruned) != 0 {
		t.Errorf("pruned %v, want nothing", refStrings(again.Pruned))
	}
	if !exists(ctx, t, cmRef) || !exists(ctx, t, nsRef) {
		t.Error("Apply deleted an object Ferry does not own")
	}
}

func TestApplyRefusesAnotherOwnersObjects(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	mustApply(ctx, t, render(t, input(t, ns, lighthouse, "1.3.0")), nil)
	in := input(t, ns, lighthouse, "1.3.0")
	in.Owner.Name = "other"
	_, err := applier(t, ns).Apply(ctx, render(t, in), nil)
	var oce *install.OwnershipConflictError
	if !errors.As(err, &oce) || oce.OwnerName != "sub" {
		t.Fatalf("Apply = %v, want *OwnershipConflictError naming sub", err)
	}
}

func TestReapplyCorrectsDrift(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	in := input(t, ns, lighthouse, "1.3.0")
	in.Config = &v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}}}
	r := render(t, in)
	res := mustApply(ctx, t, r, nil)

	tests := []struct {
		name  string
		drift func(t *testing.T)
		check func(t *testing.T)
	}{
		{
			name: "edited Deployment env is restored",
			drift: func(t *testing.T) {
				var d appsv1.Deployment
				if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: sa}, &d); err != nil {
					t.Fatal(err)
				}
				d.Spec.Template.Spec.Containers[0].Env[0].Value = "tampered"
				if err := env.Client.Update(ctx, &d); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T) {
				var d appsv1.Deployment
				if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: sa}, &d); err != nil {
					t.Fatal(err)
				}
				if got := envValue(&d, "REGION"); got != "eu-west-1" {
					t.Errorf("REGION = %q after re-Apply, want eu-west-1", got)
				}
			},
		},
		{
			name: "deleted ConfigMap is recreated",
			drift: func(t *testing.T) {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lighthouse-operator-config"}}
				if err := env.Client.Delete(ctx, cm); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T) {
				var cm corev1.ConfigMap
				if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lighthouse-operator-config"}, &cm); err != nil {
					t.Fatalf("ConfigMap after re-Apply: %v", err)
				}
				if cm.Data["log-level"] != "info" {
					t.Errorf("ConfigMap data = %v", cm.Data)
				}
			},
		},
		{
			name: "edited ConfigMap data is restored",
			drift: func(t *testing.T) {
				var cm corev1.ConfigMap
				if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lighthouse-operator-config"}, &cm); err != nil {
					t.Fatal(err)
				}
				cm.Data["log-level"] = "trace"
				if err := env.Client.Update(ctx, &cm); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T) {
				var cm corev1.ConfigMap
				if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lighthouse-operator-config"}, &cm); err != nil {
					t.Fatal(err)
				}
				if cm.Data["log-level"] != "info" {
					t.Errorf("log-level = %q after re-Apply, want info", cm.Data["log-level"])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.drift(t)
			res = mustApply(ctx, t, r, res.Inventory)
			tt.check(t)
		})
	}
}

func TestApplyReplacesADeploymentWhoseSelectorChanged(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	res := mustApply(ctx, t, render(t, input(t, ns, lighthouse, "1.3.0")), nil)
	var before appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: sa}, &before); err != nil {
		t.Fatal(err)
	}
	in := input(t, ns, lighthouse, "1.3.0")
	in.Manifests = editCSV(t, in.Manifests, func(csv map[string]any) {
		deps := csv["spec"].(map[string]any)["install"].(map[string]any)["spec"].(map[string]any)["deployments"].([]any)
		spec := deps[0].(map[string]any)["spec"].(map[string]any)
		spec["selector"] = map[string]any{"matchLabels": map[string]any{"app": "lighthouse-v2"}}
		spec["template"].(map[string]any)["metadata"].(map[string]any)["labels"] = map[string]any{"app": "lighthouse-v2"}
	})
	mustApply(ctx, t, render(t, in), res.Inventory)
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: sa}, &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Selector.MatchLabels["app"]; got != "lighthouse-v2" || d.UID == before.UID {
		t.Errorf("selector = %v (uid %s, was %s), want the new one on a new Deployment", d.Spec.Selector, d.UID, before.UID)
	}
}
