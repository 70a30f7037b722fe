package subscription_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// driftManifests are shipped, besides its CSV and CRD, by the
// lighthouse-operator 1.0.0 the drift tests install.
var driftManifests = map[string]string{
	"settings_v1_configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: lighthouse-settings
data:
  region: eu-west-1
`,
	"lighthouse-operator-metrics_v1_service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: lighthouse-operator-metrics
spec:
  ports:
  - name: metrics
    port: 8443
  selector:
    control-plane: controller-manager
`,
	"lighthouse-token_v1_secret.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: lighthouse-token
stringData:
  token: not-a-secret
`,
}

// serviceMonitorManifest is shipped too when the test stands in for the
// Prometheus operator.
const serviceMonitorManifest = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: lighthouse-operator-metrics
spec:
  endpoints:
  - port: metrics
    interval: 30s
  selector:
    matchLabels:
      control-plane: controller-manager
`

const serviceMonitorCRD = "servicemonitors.monitoring.coreos.com"

// driftCatalog is the sample catalog with extra manifests in
// lighthouse-operator 1.0.0, which has no dependencies.
func driftCatalog(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := sampleDir(t)
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, "lighthouse-operator", "1.0.0", "manifests", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// installDriftSubject installs lighthouse-operator 1.0.0 and returns its
// Subscription, installed.
func installDriftSubject(t *testing.T, c client.Client, ns, cat string) *v1alpha1.Subscription {
	t.Helper()
	create(t, c, ns, "lighthouse", cat, v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", VersionRange: "1.0.0"})
	return waitSub(t, c, ns, "lighthouse", "installed at 1.0.0", installed("1.0.0"))
}

// inventoryRef finds the installed object of kind in the Subscription's inventory.
func inventoryRef(t *testing.T, sub *v1alpha1.Subscription, group, kind string) v1alpha1.ObjectReference {
	t.Helper()
	for _, ref := range sub.Status.Inventory {
		if ref.Group == group && ref.Kind == kind {
			return ref
		}
	}
	t.Fatalf("no %s.%s in the inventory %+v", kind, group, sub.Status.Inventory)
	return v1alpha1.ObjectReference{}
}

// settle returns once the controller has nothing left to do for the
// Subscription: it changes the spec (the history limit, which changes
// nothing installed) and waits until the controller has seen that
// generation, so that the reconciles earlier changes queued are done and a
// restore that follows is the watch's doing.
func settle(t *testing.T, c client.Client, ns string) {
	t.Helper()
	sub := &v1alpha1.Subscription{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "lighthouse"}, sub); err != nil {
		t.Fatal(err)
	}
	limit := int32(10)
	if sub.Spec.RevisionHistoryLimit != nil {
		limit = *sub.Spec.RevisionHistoryLimit + 1
	}
	patchSpec(t, c, sub, func(s *v1alpha1.SubscriptionSpec) { s.RevisionHistoryLimit = &limit })
	waitSub(t, c, ns, "lighthouse", "settled at 1.0.0", observed(installed("1.0.0")))
}

// waitRestored waits until ok holds for the live object, as the controller
// restores it.
func waitRestored(t *testing.T, what string, obj client.Object, ok func() bool) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, key, obj); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return ok(), nil
	})
	if err != nil {
		t.Fatalf("%s was never restored", what)
	}
}

func deleteObject(t *testing.T, obj client.Object) types.UID {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	uid := obj.GetUID()
	if err := env.Client.Delete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	return uid
}

// TestDriftIsCorrected: a change to, or the deletion of, an installed object
// of any kind is undone at once: its watch reconciles the Subscription that
// owns it. Each change is made once the controller has settled, and the
// resync period (ten minutes here) is far beyond the test's timeout: only
// the watch can restore the object in time.
func TestDriftIsCorrected(t *testing.T) {
	_, c, ns, cat := setup(t, driftCatalog(t, driftManifests), nil)
	sub := installDriftSubject(t, c, ns, cat)

	t.Run("ConfigMap changed", func(t *testing.T) {
		settle(t, c, ns)
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "lighthouse-settings"}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["region"] = "hand-edited"
		if err := env.Client.Update(context.Background(), cm); err != nil {
			t.Fatal(err)
		}
		waitRestored(t, "ConfigMap lighthouse-settings", cm, func() bool { return cm.Data["region"] == "eu-west-1" })
	})
	t.Run("Service deleted", func(t *testing.T) {
		settle(t, c, ns)
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lighthouse-operator-metrics"}}
		uid := deleteObject(t, svc)
		waitRestored(t, "Service lighthouse-operator-metrics", svc, func() bool { return svc.UID != uid })
	})
	t.Run("Secret deleted", func(t *testing.T) {
		settle(t, c, ns)
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lighthouse-token"}}
		uid := deleteObject(t, s)
		waitRestored(t, "Secret lighthouse-token", s, func() bool { return s.UID != uid && string(s.Data["token"]) == "not-a-secret" })
	})
	ref := inventoryRef(t, sub, rbacv1.GroupName, "ClusterRole")
	t.Run("ClusterRole changed", func(t *testing.T) {
		settle(t, c, ns)
		cr := &rbacv1.ClusterRole{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: ref.Name}, cr); err != nil {
			t.Fatal(err)
		}
		want := len(cr.Rules)
		cr.Rules = cr.Rules[:0]
		if err := env.Client.Update(context.Background(), cr); err != nil {
			t.Fatal(err)
		}
		waitRestored(t, "ClusterRole "+ref.Name, cr, func() bool { return len(cr.Rules) == want })
	})
	t.Run("ClusterRole deleted", func(t *testing.T) {
		settle(t, c, ns)
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ref.Name}}
		uid := deleteObject(t, cr)
		waitRestored(t, "ClusterRole "+ref.Name, cr, func() bool { return cr.UID != uid })
	})
}

// TestDriftOfAKindServedLater: a kind whose API is not served when the
// installer starts (ServiceMonitor, whose CRD comes with the Prometheus
// operator) is watched once an inventory holds it, and its drift is
// corrected like any other's.
func TestDriftOfAKindServedLater(t *testing.T) {
	freshCRDs(t, serviceMonitorCRD)
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: serviceMonitorCRD}})
	})
	extra := map[string]string{"lighthouse-operator-metrics_monitoring.coreos.com_v1_servicemonitor.yaml": serviceMonitorManifest}
	for k, v := range driftManifests {
		extra[k] = v
	}
	_, c, ns, cat := setup(t, driftCatalog(t, extra), nil)
	// The manager runs; now the Prometheus operator's CRD arrives.
	createServiceMonitorCRD(t)
	installDriftSubject(t, c, ns, cat)

	sm := &unstructured.Unstructured{}
	sm.SetAPIVersion("monitoring.coreos.com/v1")
	sm.SetKind("ServiceMonitor")
	sm.SetNamespace(ns)
	sm.SetName("lighthouse-operator-metrics")
	interval := func() string {
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if len(eps) != 1 {
			return ""
		}
		ep, _ := eps[0].(map[string]any)
		s, _ := ep["interval"].(string)
		return s
	}
	t.Run("ServiceMonitor changed", func(t *testing.T) {
		settle(t, c, ns)
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(sm), sm); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedSlice(sm.Object, []any{map[string]any{"port": "metrics", "interval": "1h"}}, "spec", "endpoints"); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Update(context.Background(), sm); err != nil {
			t.Fatal(err)
		}
		waitRestored(t, "ServiceMonitor lighthouse-operator-metrics", sm, func() bool { return interval() == "30s" })
	})
	t.Run("ServiceMonitor deleted", func(t *testing.T) {
		settle(t, c, ns)
		uid := deleteObject(t, sm)
		waitRestored(t, "ServiceMonitor lighthouse-operator-metrics", sm, func() bool { return sm.GetUID() != uid && interval() == "30s" })
	})
}

// createServiceMonitorCRD stands in for the Prometheus operator's CRD: the
// same group, kind and version, any content.
func createServiceMonitorCRD(t *testing.T) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: serviceMonitorCRD},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "monitoring.coreos.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "servicemonitors", Singular: "servicemonitor", Kind: "ServiceMonitor", ListKind: "ServiceMonitorList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", XPreserveUnknownFields: ptr.To(true)},
					},
				}},
			}},
		},
	}
	if err := env.Client.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return false, err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s never established: %v", serviceMonitorCRD, err)
	}
}
