package subscription

import (
	"context"
	"fmt"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// TestActionFinalize: a deleted Subscription's objects are removed, its
// CRDs only under crdDeletionPolicy Delete, then its revisions and its
// finalizer.
func TestActionFinalize(t *testing.T) {
	tests := []struct {
		name    string
		policy  v1alpha1.CRDDeletionPolicy
		install bool
		// crdKept: the CRD is still there after.
		crdKept bool
	}{
		{name: "removes what was installed and keeps CRDs by default", install: true, crdKept: true},
		{name: "keeps CRDs under policy Keep", policy: v1alpha1.CRDDeletionKeep, install: true, crdKept: true},
		{name: "removes CRDs under policy Delete", policy: v1alpha1.CRDDeletionDelete, install: true},
		{name: "with nothing installed only lets the Subscription go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newActionBed(t, v1alpha1.SubscriptionSpec{CRDDeletionPolicy: tt.policy})
			crdName := "widgets." + b.ns + ".act.ferry.dev"
			t.Cleanup(func() {
				_ = b.env.Client.Delete(b.ctx, &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metaName(crdName)})
			})
			if tt.install {
				b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"), crd(b.ns))
				if b.configMap("op") == nil || b.crd(crdName) == nil {
					t.Fatal("nothing installed")
				}
			}
			// Finalize until it is done, as the requeues would.
			err := wait.PollUntilContextTimeout(b.ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
				res := b.r.finalize(b.ctx, b.exec())
				if res.err != nil {
					return false, fmt.Errorf("finalize: %w", res.err)
				}
				if res.progressing != nil {
					return false, fmt.Errorf("finalize: progressing %+v", res.progressing)
				}
				return res.requeue == 0, nil
			})
			if err != nil {
				t.Fatalf("finalize did not finish: %v", err)
			}
			if cm := b.configMap("op"); cm != nil {
				t.Errorf("ConfigMap op left: %v", cm.Data)
			}
			if got := b.crd(crdName) != nil; tt.install && got != tt.crdKept {
				t.Errorf("CRD present %v, want %v", got, tt.crdKept)
			}
			sub := b.get()
			if controllerutil.ContainsFinalizer(sub, Finalizer) {
				t.Errorf("finalizer kept: %v", sub.Finalizers)
			}
			if revs, err := b.r.revisions().ListAll(b.ctx, sub); err != nil || len(revs) != 0 {
				t.Errorf("revisions left: %d, %v", len(revs), err)
			}
		})
	}
}

// crd reads a CRD; nil when absent or being deleted.
func (b *actionBed) crd(name string) *apiextensionsv1.CustomResourceDefinition {
	b.t.Helper()
	c := &apiextensionsv1.CustomResourceDefinition{}
	err := b.env.Client.Get(b.ctx, types.NamespacedName{Name: name}, c)
	if apierrors.IsNotFound(err) || err == nil && !c.DeletionTimestamp.IsZero() {
		return nil
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// crd is a CRD of the operator's content, named for the namespace.
func crd(ns string) *unstructured.Unstructured {
	group := ns + ".act.ferry.dev"
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	return u
}
