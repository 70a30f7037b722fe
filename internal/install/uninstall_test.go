package install_test

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

func TestUninstall(t *testing.T) {
	tests := []struct {
		name        string
		policy      v1alpha1.CRDDeletionPolicy
		wantCRDGone bool
	}{
		{name: "default keeps CRDs", policy: ""},
		{name: "Keep keeps CRDs", policy: v1alpha1.CRDDeletionKeep},
		{name: "Delete deletes CRDs", policy: v1alpha1.CRDDeletionDelete, wantCRDGone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			in := input(t, ns, lighthouse, "1.3.0")
			res := mustApply(ctx, t, render(t, in), nil)

			// Also in the inventory: the namespace and an object Ferry does not own.
			foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hand-made", Namespace: ns}}
			if err := env.Client.Create(ctx, foreign); err != nil {
				t.Fatal(err)
			}
			nsRef := v1alpha1.ObjectReference{Version: "v1", Kind: "Namespace", Name: ns}
			cmRef := v1alpha1.ObjectReference{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "hand-made"}
			inv := append(slices.Clone(res.Inventory), nsRef, cmRef)

			uninstallUntilDone(ctx, t, inv, tt.policy, install.ForOwner(in.Owner))
			for _, ref := range res.Inventory {
				isCRD := ref.Kind == "CustomResourceDefinition"
				want := isCRD && !tt.wantCRDGone
				if got := exists(ctx, t, ref); got != want {
					t.Errorf("%s exists = %v, want %v", refString(ref), got, want)
				}
			}
			if !exists(ctx, t, nsRef) || !exists(ctx, t, cmRef) {
				t.Error("Uninstall deleted the namespace or an object Ferry does not own")
			}
		})
	}
}

func TestUninstallWithoutOwnerDeletesOnlyFerrysObjects(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	res := mustApply(ctx, t, render(t, input(t, ns, lighthouse, "1.3.0")), nil)
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hand-made", Namespace: ns}}
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	cmRef := v1alpha1.ObjectReference{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "hand-made"}
	uninstallUntilDone(ctx, t, append(slices.Clone(res.Inventory), cmRef), v1alpha1.CRDDeletionKeep)
	if !exists(ctx, t, cmRef) {
		t.Error("Uninstall deleted a ConfigMap Ferry does not manage")
	}
	for _, ref := range res.Inventory {
		if ref.Kind != "CustomResourceDefinition" && exists(ctx, t, ref) {
			t.Errorf("%s still exists", refString(ref))
		}
	}
}

// uninstallUntilDone calls Uninstall as the controller would, until nothing remains.
func uninstallUntilDone(ctx context.Context, t *testing.T, inv []v1alpha1.ObjectReference, policy v1alpha1.CRDDeletionPolicy, opts ...install.UninstallOption) {
	t.Helper()
	ns := ""
	for _, ref := range inv {
		if ref.Namespace != "" {
			ns = ref.Namespace
			break
		}
	}
	eventually(ctx, t, "uninstall to finish", func() (bool, error) {
		res, err := applier(t, ns).Uninstall(ctx, inv, policy, opts...)
		if err != nil {
			return false, err
		}
		return res.Remaining == 0, nil
	})
}
