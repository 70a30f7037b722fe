package install_test

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

// preexisting creates, without any Ferry label, objects with the names the
// lighthouse bundle installs: its ServiceAccount, its ConfigMap and the
// ClusterRoleBinding rendered for its clusterPermissions.
func preexisting(t *testing.T, ns string, r *install.Rendered) []client.Object {
	t.Helper()
	crb := find(t, r, "ClusterRoleBinding", "")
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lighthouse-operator-config"}, Data: map[string]string{"owner": "platform-team"}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: crb.GetName()},
			// The rendered roleRef: a binding's roleRef cannot change, even by adoption.
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crb.GetName()},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "auditor"}},
		},
	}
	for _, o := range objs {
		if err := env.Client.Create(testContext(t), o, client.FieldOwner("platform-team")); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(testContext(t), objs[2]) })
	return objs
}

// unchanged checks that each object still exists as it was created.
func unchanged(t *testing.T, objs []client.Object) {
	t.Helper()
	for _, want := range objs {
		got := want.DeepCopyObject().(client.Object)
		if err := env.Client.Get(testContext(t), client.ObjectKeyFromObject(want), got); err != nil {
			t.Errorf("%T %s: %v", want, want.GetName(), err)
			continue
		}
		if got.GetResourceVersion() != want.GetResourceVersion() || len(got.GetLabels()) != 0 {
			t.Errorf("%T %s was changed: resourceVersion %s (was %s), labels %v", want, want.GetName(), got.GetResourceVersion(), want.GetResourceVersion(), got.GetLabels())
		}
	}
}

// TestExistingObjectsAreNotTakenOver: objects Ferry did not create stop
// the install before anything is applied, are named in the error with who
// manages them, and survive an uninstall.
func TestExistingObjectsAreNotTakenOver(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	r := render(t, input(t, ns, lighthouse, "1.3.0"))
	objs := preexisting(t, ns, r)
	crb := objs[2].GetName()

	_, err := applier(t, ns).Apply(ctx, r, nil)
	var conflict *install.OwnershipConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("Apply = %v, want *OwnershipConflictError", err)
	}
	for _, want := range []string{
		"ServiceAccount " + ns + "/" + sa + " already exists and was not created by Ferry (",
		"ConfigMap " + ns + "/lighthouse-operator-config already exists and was not created by Ferry (field managers platform-team)",
		"ClusterRoleBinding " + crb + " already exists and was not created by Ferry (field managers platform-team)",
		"set spec.adoption.policy to AdoptUnmanaged",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, o := range r.Objects {
		ref := install.Ref(o)
		if o.GetKind() == "Deployment" || o.GetKind() == "Role" || o.GetKind() == "Service" {
			if exists(ctx, t, ref) {
				t.Errorf("%s was applied despite the conflict", refString(ref))
			}
		}
	}
	unchanged(t, objs)

	// Uninstalling what this owner would have had deletes none of them.
	res, err := applier(t, ns).Uninstall(ctx, r.Inventory(), v1alpha1.CRDDeletionKeep, install.ForOwner(types.NamespacedName{Namespace: ns, Name: "sub"}))
	if err != nil || res.Remaining != 0 {
		t.Fatalf("Uninstall = %+v, %v", res, err)
	}
	unchanged(t, objs)
}

// TestAdoptionIsOptIn: AdoptUnmanaged takes over objects no Subscription
// owns; they are then the owner's, and go with it.
func TestAdoptionIsOptIn(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	r := render(t, input(t, ns, lighthouse, "1.3.0"))
	objs := preexisting(t, ns, r)
	res, err := applier(t, ns).Apply(ctx, r, nil, install.WithAdoption(v1alpha1.AdoptionAdoptUnmanaged))
	if err != nil {
		t.Fatalf("Apply with AdoptUnmanaged: %v", err)
	}
	owner := types.NamespacedName{Namespace: ns, Name: "sub"}
	for _, o := range objs {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(mustGVK(t, o))
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), m); err != nil {
			t.Fatal(err)
		}
		if !install.IsOwner(m, owner) || m.Annotations[install.AnnotationOwner] != ns+"/sub" {
			t.Errorf("%s %s not adopted: labels %v annotations %v", m.Kind, m.Name, m.Labels, m.Annotations)
		}
	}
	// Another Subscription cannot adopt what is now sub's.
	in := input(t, ns, lighthouse, "1.3.0")
	in.Owner.Name = "other"
	_, err = applier(t, ns).Apply(ctx, render(t, in), nil, install.WithAdoption(v1alpha1.AdoptionAdoptUnmanaged))
	var conflict *install.OwnershipConflictError
	if !errors.As(err, &conflict) || conflict.OwnerName != "sub" {
		t.Fatalf("Apply for another owner = %v, want a conflict naming sub", err)
	}
	if _, err := applier(t, ns).Uninstall(ctx, res.Inventory, v1alpha1.CRDDeletionKeep, install.ForOwner(owner)); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "adopted objects deleted with their owner", func() (bool, error) {
		for _, o := range objs {
			if exists(ctx, t, v1alpha1.ObjectReference{Group: mustGVK(t, o).Group, Version: "v1", Kind: mustGVK(t, o).Kind, Namespace: o.GetNamespace(), Name: o.GetName()}) {
				return false, nil
			}
		}
		return true, nil
	})
}

// TestCRDsAreSharedOnlyWithinAPackage: a CRD another Subscription of the
// same package installed is shared; one of another package is a conflict,
// adoption or not.
func TestCRDsAreSharedOnlyWithinAPackage(t *testing.T) {
	ctx := testContext(t)
	first := newNamespace(t)
	mustApply(ctx, t, render(t, input(t, first, lighthouse, "1.3.0")), nil)

	same := newNamespace(t)
	mustApply(ctx, t, render(t, input(t, same, lighthouse, "1.3.0")), nil)

	other := newNamespace(t)
	in := input(t, other, lighthouse, "1.3.0")
	in.Package = "beacon-clone"
	_, err := applier(t, other).Apply(ctx, render(t, in), nil, install.WithAdoption(v1alpha1.AdoptionAdoptUnmanaged))
	var conflict *install.OwnershipConflictError
	if !errors.As(err, &conflict) || !conflict.CRDOfOtherPackage {
		t.Fatalf("Apply of another package = %v, want a CRD conflict", err)
	}
	want := "CRD " + beaconCRD + " already exists and belongs to package lighthouse-operator (Subscription " + same + "/sub); a CRD is shared only between Subscriptions of the same package"
	if conflict.Error() != want {
		t.Errorf("conflict = %q\nwant      %q", conflict.Error(), want)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: beaconCRD}, crd); err != nil {
		t.Fatal(err)
	}
	if got := crd.Labels[install.LabelPackage]; got != lighthouse {
		t.Errorf("CRD package label = %q after the refused apply", got)
	}
}

func mustGVK(t *testing.T, o client.Object) schema.GroupVersionKind {
	t.Helper()
	switch o.(type) {
	case *corev1.ServiceAccount:
		return schema.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}
	case *corev1.ConfigMap:
		return schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	case *rbacv1.ClusterRoleBinding:
		return schema.GroupVersionKind{Group: rbacv1.GroupName, Version: "v1", Kind: "ClusterRoleBinding"}
	}
	t.Fatalf("no kind for %T", o)
	return schema.GroupVersionKind{}
}
