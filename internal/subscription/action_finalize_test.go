package subscription

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/tenancy"
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

// TestActionFinalizeDeleteRefused: the permission preflight passes, then
// the API server refuses a delete with 403 Forbidden (here an admission
// policy; in a cluster, typically the ServiceAccount's RoleBinding going
// with its namespace). In a namespace being deleted the Subscription is
// let go, the refused object left behind; otherwise the refusal is
// returned, to be retried, and the status written says the Subscription is
// being deleted. No condition is ever written without a reason.
func TestActionFinalizeDeleteRefused(t *testing.T) {
	tests := []struct {
		name string
		// terminating: the namespace is being deleted.
		terminating bool
	}{
		{name: "in a namespace being deleted the Subscription is let go", terminating: true},
		{name: "otherwise the refusal is returned and the status says so"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b *actionBed
			refusedDelete := func(r request) bool {
				return r.method == http.MethodDelete && r.path == "/api/v1/namespaces/"+b.ns+"/configmaps/op" && r.as == b.serviceAccount()
			}
			b = newActionBed(t, v1alpha1.SubscriptionSpec{}, allowRefused(refusedDelete))
			b.install("1.0.0", reasonInstall, 0, cm(b.ns, "op", "one"), cm(b.ns, "other", "two"))
			b.refuseDelete("op")
			if tt.terminating {
				// envtest runs no namespace controller: the namespace stays
				// Terminating, its objects and RoleBindings in place.
				if err := b.env.Client.Delete(b.ctx, &corev1.Namespace{ObjectMeta: metaName(b.ns)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.env.Client.Delete(b.ctx, b.get()); err != nil {
				t.Fatal(err)
			}

			before := len(b.requests.all())
			_, err := b.r.Reconcile(b.ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: b.ns, Name: b.sub.Name}})

			refused := 0
			for _, r := range b.requests.all() {
				if refusedDelete(r) && r.status == http.StatusForbidden {
					refused++
				}
				if strings.HasSuffix(r.path, "/subscriptions/"+b.sub.Name+"/status") && r.status >= 300 {
					t.Errorf("a status write was refused: %s", r)
				}
			}
			if refused != 1 {
				t.Fatalf("the delete of ConfigMap op as %s was refused %d times, want once (requests: %v)", b.serviceAccount(), refused, b.requests.writes(""))
			}
			if b.configMap("op") == nil {
				t.Error("ConfigMap op is gone: the policy did not refuse its delete")
			}
			if b.configMap("other") != nil {
				t.Error("ConfigMap other is left: the uninstall stopped at the refusal")
			}
			if tt.terminating {
				if err != nil {
					t.Fatalf("reconcile: %v", err)
				}
				s := &v1alpha1.Subscription{}
				if err := b.env.Client.Get(b.ctx, client.ObjectKeyFromObject(b.sub), s); !apierrors.IsNotFound(err) {
					t.Errorf("the Subscription was not let go: %v, finalizers %v", err, s.Finalizers)
				}
				for _, r := range b.requests.all()[before:] {
					if r.method != http.MethodGet && strings.HasSuffix(r.path, "/subscriptions/"+b.sub.Name+"/status") {
						t.Errorf("status written while letting the Subscription go: %s", r)
					}
				}
				return
			}
			var pm *tenancy.PermissionsMissingError
			if !apierrors.IsForbidden(err) || errors.As(err, &pm) {
				t.Fatalf("reconcile: %v, want the delete's Forbidden", err)
			}
			sub := b.get()
			if !controllerutil.ContainsFinalizer(sub, Finalizer) {
				t.Fatalf("finalizer removed with ConfigMap op left: %v", sub.Finalizers)
			}
			if revs, err := b.r.revisions().ListAll(b.ctx, sub); err != nil || len(revs) != 1 {
				t.Errorf("revisions %d, %v; want the one kept until the objects are gone", len(revs), err)
			}
			for _, c := range sub.Status.Conditions {
				if c.Reason == "" || c.ObservedGeneration != sub.Generation {
					t.Errorf("condition %+v: no reason or not of generation %d", c, sub.Generation)
				}
			}
			prog := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeProgressing)
			if prog == nil || prog.Status != metav1.ConditionTrue || prog.Reason != v1alpha1.ReasonDeleting || !strings.Contains(prog.Message, "forbidden") {
				t.Errorf("Progressing %+v, want True %s saying the delete was forbidden", prog, v1alpha1.ReasonDeleting)
			}
			if ready := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeReady); ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonDeleting {
				t.Errorf("Ready %+v, want False %s", ready, v1alpha1.ReasonDeleting)
			}
		})
	}
}

// refuseDelete makes the API server refuse, with 403 Forbidden, every
// delete of the namespace's ConfigMap name (a ValidatingAdmissionPolicy
// and its binding), and waits until it does.
func (b *actionBed) refuseDelete(name string) {
	b.t.Helper()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metaName("keep-" + name + "-" + b.ns),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("oldObject.metadata.name != %q", name),
				Message:    "ConfigMap " + name + " is kept by an admission policy",
				Reason:     ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metaName(policy.Name),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: b.ns},
			}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := b.env.Client.Create(b.ctx, o); err != nil {
			b.t.Fatal(err)
		}
		b.t.Cleanup(func() { _ = b.env.Client.Delete(context.Background(), o) })
	}
	// The API server loads policies asynchronously: a dry run tells when
	// this one is in force.
	err := wait.PollUntilContextTimeout(b.ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := b.env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: b.ns, Name: name}}, client.DryRunAll)
		if apierrors.IsForbidden(err) {
			return true, nil
		}
		return false, client.IgnoreNotFound(err)
	})
	if err != nil {
		b.t.Fatalf("the policy keeping ConfigMap %s is not in force: %v", name, err)
	}
}
