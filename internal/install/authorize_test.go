package install_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// A refusal of Authorize stops Apply and Uninstall before any change, and
// Authorize is asked about exactly the writes they would make.
func TestAuthorizeComesFirst(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	r := render(t, input(t, ns, lighthouse, "1.3.0"))
	refused := errors.New("refused")
	var gotApply []string
	var gotRemove []v1alpha1.ObjectReference
	a := applier(t, ns)
	a.Authorize = func(_ context.Context, apply []*unstructured.Unstructured, remove []v1alpha1.ObjectReference) error {
		gotApply = nil
		for _, o := range apply {
			gotApply = append(gotApply, o.GetKind()+"/"+o.GetName())
		}
		gotRemove = remove
		return refused
	}
	gone := v1alpha1.ObjectReference{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "no-longer-shipped"}
	oldCRD := v1alpha1.ObjectReference{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "olds.lighthouse.ferry.dev"}
	previous := append(r.Inventory(), gone, oldCRD)

	res, err := a.Apply(ctx, r, previous)
	if !errors.Is(err, refused) {
		t.Fatalf("Apply = %v, want the refusal", err)
	}
	if !slices.Equal(res.Inventory, previous) {
		t.Errorf("inventory after a refusal: %v, want the previous one", res.Inventory)
	}
	if len(gotApply) != len(r.Objects) {
		t.Errorf("Authorize was asked to apply %v, want all %d objects", gotApply, len(r.Objects))
	}
	if !slices.Equal(gotRemove, []v1alpha1.ObjectReference{gone}) {
		t.Errorf("Authorize was asked to remove %v, want only %v (CRDs are never pruned)", gotRemove, gone)
	}
	var deps appsv1.DeploymentList
	if err := env.Client.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 0 {
		t.Errorf("%d Deployments were applied after a refusal", len(deps.Items))
	}

	un, err := a.Uninstall(ctx, previous, v1alpha1.CRDDeletionKeep)
	if !errors.Is(err, refused) {
		t.Fatalf("Uninstall = %v, want the refusal", err)
	}
	if gotApply != nil || len(gotRemove) != len(previous)-2 {
		t.Errorf("Uninstall asked to apply %v and remove %d objects, want nothing applied and every object but the CRDs, which are kept", gotApply, len(gotRemove))
	}
	if un.Remaining == 0 {
		t.Error("Uninstall reported nothing remaining after a refusal")
	}
}
