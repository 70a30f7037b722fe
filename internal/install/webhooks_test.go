package install_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/install"
)

const (
	tollgate     = "tollgate-operator"
	tollgateCRD  = "tolls.tollgate.ferry.dev"
	tollgateDep  = "tollgate-controller-manager"
	tollgateSvc  = tollgateDep + "-service"
	tollgateCert = tollgateSvc + "-cert"
)

var (
	webhookCatOnce sync.Once
	webhookCat     *catalog.Catalog
	webhookCatErr  error
)

// webhookInput is the Input for the sample bundle with webhooks
// (testdata/webhooks), installed by Subscription ns/sub.
func webhookInput(t *testing.T, ns string, mode v1alpha1.InstallMode) install.Input {
	t.Helper()
	webhookCatOnce.Do(func() {
		webhookCat, webhookCatErr = catalog.Load(context.Background(), []catalog.Source{{Name: "webhooks", FS: os.DirFS("testdata/webhooks")}})
	})
	if webhookCatErr != nil {
		t.Fatalf("loading testdata/webhooks: %v", webhookCatErr)
	}
	b := webhookCat.Bundle(tollgate, tollgate+".v1.0.0")
	if b == nil {
		t.Fatal("testdata/webhooks has no tollgate-operator.v1.0.0")
	}
	ms, err := b.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]catalog.Manifest, len(ms))
	for i, m := range ms {
		out[i] = m
		out[i].JSON = append(json.RawMessage(nil), m.JSON...)
	}
	return install.Input{
		Owner: types.NamespacedName{Namespace: ns, Name: "sub"}, Namespace: ns, Package: tollgate, Version: "1.0.0",
		Bundle: tollgate + ".v1.0.0", Manifests: out, InstallMode: mode,
	}
}

// editWebhooks rewrites the CSV's webhookdefinitions.
func editWebhooks(t *testing.T, in install.Input, edit func(hooks []any) []any) install.Input {
	t.Helper()
	in.Manifests = editCSV(t, in.Manifests, func(csv map[string]any) {
		spec := csv["spec"].(map[string]any)
		spec["webhookdefinitions"] = edit(spec["webhookdefinitions"].([]any))
	})
	return in
}

func hook(hooks []any, i int) map[string]any { return hooks[i].(map[string]any) }

func TestRenderWebhooks(t *testing.T) {
	r := render(t, webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces))
	matchSet(t, objectSet(r), []string{
		"CustomResourceDefinition " + tollgateCRD,
		"ServiceAccount tolls/" + tollgateDep,
		"ClusterRole tollgate-operator.v1.0.0-" + tollgateDep + "-<hash>",
		"ClusterRole tollgate-operator.v1.0.0-" + tollgateDep + "-<hash>",
		"ClusterRoleBinding tollgate-operator.v1.0.0-" + tollgateDep + "-<hash>",
		"ClusterRoleBinding tollgate-operator.v1.0.0-" + tollgateDep + "-<hash>",
		"Secret tolls/" + tollgateCert,
		"Service tolls/" + tollgateSvc,
		"Deployment tolls/" + tollgateDep,
		"MutatingWebhookConfiguration mtoll.tollgate.ferry.dev-<hash>",
		"ValidatingWebhookConfiguration vtoll.tollgate.ferry.dev-<hash>",
	})

	var svc corev1.Service
	fromU(t, find(t, r, "Service", tollgateSvc), &svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "443" || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.IntValue() != 9443 {
		t.Errorf("Service ports = %+v, want one port 443 named \"443\" to 9443", svc.Spec.Ports)
	}
	if svc.Spec.Selector["control-plane"] != tollgateDep || len(svc.Spec.Selector) != 1 {
		t.Errorf("Service selector = %v, want the Deployment's matchLabels", svc.Spec.Selector)
	}

	secret := find(t, r, "Secret", tollgateCert)
	if _, ok := secret.Object["data"]; ok {
		t.Errorf("rendered Secret has data: a rendered revision must never hold a key: %v", secret.Object)
	}
	if secret.GetAnnotations()[install.AnnotationServingCertFor] != tollgateSvc {
		t.Errorf("Secret annotations = %v", secret.GetAnnotations())
	}

	var dep appsv1.Deployment
	fromU(t, find(t, r, "Deployment", tollgateDep), &dep)
	mounts := map[string]string{}
	for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if mounts[install.WebhookCertDir] != "webhook-cert" || mounts[install.APIServiceCertDir] != "apiservice-cert" {
		t.Errorf("mounts = %v, want webhook-cert at %s and apiservice-cert at %s", mounts, install.WebhookCertDir, install.APIServiceCertDir)
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret == nil || v.Secret.SecretName != tollgateCert {
			t.Errorf("volume %s = %+v, want Secret %s", v.Name, v.VolumeSource, tollgateCert)
		}
	}

	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	fromU(t, findAll(r, "ValidatingWebhookConfiguration")[0], &vwc)
	if len(vwc.Webhooks) != 1 {
		t.Fatalf("webhooks = %+v", vwc.Webhooks)
	}
	w := vwc.Webhooks[0]
	if w.Name != "vtoll.tollgate.ferry.dev" || w.ClientConfig.Service == nil || w.ClientConfig.URL != nil {
		t.Fatalf("webhook = %+v", w)
	}
	s := w.ClientConfig.Service
	if s.Namespace != "tolls" || s.Name != tollgateSvc || *s.Port != 443 || *s.Path != "/validate-tollgate-ferry-dev-v1-toll" {
		t.Errorf("service = %+v", *s)
	}
	if len(w.ClientConfig.CABundle) != 0 {
		t.Error("rendered caBundle is set; it is injected when applied")
	}
	if sel := w.NamespaceSelector; sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Operator != "NotIn" || sel.MatchExpressions[0].Values[0] != "kube-system" {
		t.Errorf("AllNamespaces namespaceSelector = %+v, want every namespace but kube-system", sel)
	}
	if a := vwc.Annotations; a[install.AnnotationCAFrom] != "tolls/"+tollgateCert || a[install.AnnotationWebhookDeployment] != "tolls/"+tollgateDep {
		t.Errorf("annotations = %v", a)
	}
	if vwc.Labels[install.LabelOwnerName] != "sub" {
		t.Errorf("labels = %v, want the owner labels", vwc.Labels)
	}

	crd := find(t, r, "CustomResourceDefinition", tollgateCRD)
	conv, _, _ := unstructured.NestedMap(crd.Object, "spec", "conversion")
	js, _ := json.Marshal(conv)
	want := `{"strategy":"Webhook","webhook":{"clientConfig":{"service":{"name":"` + tollgateSvc + `","namespace":"tolls","path":"/convert","port":443}},"conversionReviewVersions":["v1"]}}`
	if string(js) != want {
		t.Errorf("CRD spec.conversion = %s\nwant %s", js, want)
	}
}

// TestRenderWebhooksOwnNamespace: without the conversion webhook (refused
// outside AllNamespaces), the admission webhooks match the install
// namespace only.
func TestRenderWebhooksOwnNamespace(t *testing.T) {
	in := webhookInput(t, "tolls", v1alpha1.InstallModeOwnNamespace)
	if _, err := install.Render(in); err == nil || !strings.Contains(err.Error(), "spec.webhookdefinitions[2] (ctoll.tollgate.ferry.dev): type: a conversion webhook changes CRDs for the whole cluster; it is installed in install mode AllNamespaces only, not OwnNamespace") {
		t.Fatalf("Render = %v, want the conversion webhook refused", err)
	}
	in = editWebhooks(t, in, func(h []any) []any { return h[:2] })
	r := render(t, in)
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	fromU(t, findAll(r, "MutatingWebhookConfiguration")[0], &mwc)
	sel := mwc.Webhooks[0].NamespaceSelector
	if sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != "kubernetes.io/metadata.name" || sel.MatchExpressions[0].Operator != "In" || strings.Join(sel.MatchExpressions[0].Values, ",") != "tolls" {
		t.Errorf("OwnNamespace namespaceSelector = %+v, want the install namespace", sel)
	}
	if _, ok, _ := unstructured.NestedMap(find(t, r, "CustomResourceDefinition", tollgateCRD).Object, "spec", "conversion"); ok {
		t.Error("the CRD got a conversion without a conversion webhook")
	}
}

// TestRenderWebhooksDeterministic: two renders are identical (the content
// digest does not change), and the names of the webhook configurations
// depend on the Subscription.
func TestRenderWebhooksDeterministic(t *testing.T) {
	a, _ := json.Marshal(render(t, webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces)).Objects)
	b, _ := json.Marshal(render(t, webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces)).Objects)
	if string(a) != string(b) {
		t.Error("two renders of the same input differ")
	}
	other := webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces)
	other.Owner.Name = "other"
	n1 := findAll(render(t, webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces)), "ValidatingWebhookConfiguration")[0].GetName()
	n2 := findAll(render(t, other), "ValidatingWebhookConfiguration")[0].GetName()
	if n1 == n2 {
		t.Errorf("two Subscriptions get the same webhook configuration %s", n1)
	}
}

func TestRenderWebhooksInvalid(t *testing.T) {
	const prefix = "ClusterServiceVersion tollgate-operator.v1.0.0: spec.webhookdefinitions"
	set := func(i int, k string, v any) func([]any) []any {
		return func(h []any) []any {
			if v == nil {
				delete(hook(h, i), k)
			} else {
				hook(h, i)[k] = v
			}
			return h
		}
	}
	rules := func(groups, resources []any) []any {
		return []any{map[string]any{"apiGroups": groups, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": resources}}
	}
	tests := []struct {
		name string
		edit func([]any) []any
		want string
	}{
		{"no generateName", set(0, "generateName", nil), prefix + "[0]: generateName: is empty"},
		{"generateName not fully qualified", set(0, "generateName", "vtoll"), prefix + `[0] (vtoll): generateName: "vtoll" is not a fully qualified name`},
		{"generateName twice", set(1, "generateName", "vtoll.tollgate.ferry.dev"), prefix + `[1] (vtoll.tollgate.ferry.dev): generateName: "vtoll.tollgate.ferry.dev" is also the generateName of spec.webhookdefinitions[0]`},
		{"unknown type", set(0, "type", "AuditWebhook"), prefix + `[0] (vtoll.tollgate.ferry.dev): type: "AuditWebhook" is not one of`},
		{"unknown deployment", set(0, "deploymentName", "ghost"), prefix + `[0] (vtoll.tollgate.ferry.dev): deploymentName: "ghost" is not a deployment of spec.install.spec.deployments`},
		{"port out of range", set(0, "containerPort", 70000), prefix + "[0] (vtoll.tollgate.ferry.dev): containerPort: 70000 is not a port"},
		{"conflicting target ports", set(1, "targetPort", 8443), prefix + "[1] (mtoll.tollgate.ferry.dev): targetPort: port 443 of deployment \"tollgate-controller-manager\" is given target ports 9443 and 8443"},
		{"no admissionReviewVersions", set(0, "admissionReviewVersions", nil), prefix + "[0] (vtoll.tollgate.ferry.dev): admissionReviewVersions: is empty"},
		{"no sideEffects", set(0, "sideEffects", nil), prefix + "[0] (vtoll.tollgate.ferry.dev): sideEffects: is missing"},
		{"sideEffects Some", set(0, "sideEffects", "Some"), prefix + `[0] (vtoll.tollgate.ferry.dev): sideEffects: "Some" is not None or NoneOnDryRun`},
		{"relative path", set(0, "webhookPath", "validate"), prefix + `[0] (vtoll.tollgate.ferry.dev): webhookPath: "validate" does not start with /`},
		{"timeout too long", set(0, "timeoutSeconds", 31), prefix + "[0] (vtoll.tollgate.ferry.dev): timeoutSeconds: 31 is not between 1 and 30"},
		{"no rules", set(0, "rules", nil), prefix + "[0] (vtoll.tollgate.ferry.dev): rules: is empty"},
		{"rules on every group", set(0, "rules", rules([]any{"*"}, []any{"pods"})), prefix + `[0] (vtoll.tollgate.ferry.dev): rules[0].apiGroups: names "*"`},
		{"rules on Ferry's API", set(0, "rules", rules([]any{"operators.ferry.dev"}, []any{"subscriptions"})), prefix + `[0] (vtoll.tollgate.ferry.dev): rules[0].apiGroups: names "operators.ferry.dev"`},
		{"rules on OLM's API", set(1, "rules", rules([]any{"operators.coreos.com"}, []any{"*"})), prefix + `[1] (mtoll.tollgate.ferry.dev): rules[0].apiGroups: names "operators.coreos.com"`},
		{"rules on webhook configurations", set(0, "rules", rules([]any{"admissionregistration.k8s.io"}, []any{"validatingwebhookconfigurations"})), prefix + `[0] (vtoll.tollgate.ferry.dev): rules[0].apiGroups: names "admissionregistration.k8s.io"`},
		{"reinvocation on a validating webhook", set(0, "reinvocationPolicy", "IfNeeded"), prefix + "[0] (vtoll.tollgate.ferry.dev): reinvocationPolicy: is set on a ValidatingAdmissionWebhook"},
		{"conversion of nothing", set(2, "conversionCRDs", nil), prefix + "[2] (ctoll.tollgate.ferry.dev): conversionCRDs: is empty"},
		{"conversion of a CRD not owned", set(2, "conversionCRDs", []any{"beacons.lighthouse.ferry.dev"}), prefix + "[2] (ctoll.tollgate.ferry.dev): conversionCRDs[0]: CRD beacons.lighthouse.ferry.dev is not an owned CRD of the bundle"},
		{"conversion twice", func(h []any) []any {
			c := map[string]any{}
			for k, v := range hook(h, 2) {
				c[k] = v
			}
			c["generateName"] = "c2toll.tollgate.ferry.dev"
			return append(h, c)
		}, prefix + "[3] (c2toll.tollgate.ferry.dev): conversionCRDs[0]: CRD tolls.tollgate.ferry.dev is also converted by spec.webhookdefinitions[2]"},
		{"conversionCRDs on an admission webhook", set(0, "conversionCRDs", []any{tollgateCRD}), prefix + "[0] (vtoll.tollgate.ferry.dev): conversionCRDs: is set on a ValidatingAdmissionWebhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := editWebhooks(t, webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces), tt.edit)
			_, err := install.Render(in)
			var bad *install.InvalidBundleError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Render = %v\nwant an InvalidBundleError containing %q", err, tt.want)
			}
		})
	}
}

// TestRenderRefusesGeneratedObjects: a bundle may not ship the Secret Ferry
// generates for webhooks, nor mark a manifest as generated.
func TestRenderRefusesGeneratedObjects(t *testing.T) {
	in := webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces)
	shipped := in
	shipped.Manifests = append(append([]catalog.Manifest{}, in.Manifests...), manifest(t, map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": tollgateCert}}))
	if _, err := install.Render(shipped); err == nil || !strings.Contains(err.Error(), "the bundle ships Secret tolls/"+tollgateCert+", which Ferry generates for the webhooks of the CSV") {
		t.Errorf("Render with a shipped certificate Secret = %v", err)
	}
	marked := in
	marked.Manifests = append(append([]catalog.Manifest{}, in.Manifests...), manifest(t, map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "steal", "annotations": map[string]any{install.AnnotationServingCertFor: "x"}},
	}))
	if _, err := install.Render(marked); err == nil || !strings.Contains(err.Error(), "shipped Secret tolls/steal carries annotation "+install.AnnotationServingCertFor+", which only Ferry sets") {
		t.Errorf("Render with a marked Secret = %v", err)
	}
	byURL := in
	byURL.Manifests = editManifest(t, in.Manifests, "CustomResourceDefinition", func(crd map[string]any) {
		crd["spec"].(map[string]any)["conversion"] = map[string]any{"strategy": "Webhook", "webhook": map[string]any{
			"clientConfig": map[string]any{"url": "https://collector.example.com/convert"}, "conversionReviewVersions": []any{"v1"},
		}}
	})
	byURL = editWebhooks(t, byURL, func(h []any) []any { return h[:2] })
	if _, err := install.Render(byURL); err == nil || !strings.Contains(err.Error(), `shipped CRD tolls.tollgate.ferry.dev: spec.conversion.webhook.clientConfig.url is "https://collector.example.com/convert": a CRD's conversion webhook must be a Service`) {
		t.Errorf("Render of a CRD converted by URL = %v", err)
	}
	noWebhooks := input(t, "ops", lighthouse, "1.3.0")
	noWebhooks.Manifests = append(noWebhooks.Manifests, manifest(t, map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "m", "annotations": map[string]any{install.AnnotationCAFrom: "ops/x"}},
	}))
	if _, err := install.Render(noWebhooks); err == nil || !strings.Contains(err.Error(), "carries annotation "+install.AnnotationCAFrom) {
		t.Errorf("Render of a bundle without webhooks with a marked ConfigMap = %v", err)
	}
}

// TestCheckRestoredWebhooks: webhook configurations read back from a
// stored revision are trusted no more than a render.
func TestCheckRestoredWebhooks(t *testing.T) {
	good := func(t *testing.T) *unstructured.Unstructured {
		r := render(t, webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces))
		return findAll(r, "ValidatingWebhookConfiguration")[0].DeepCopy()
	}
	tests := []struct {
		name string
		edit func(u *unstructured.Unstructured)
		want string
	}{
		{"as rendered", func(*unstructured.Unstructured) {}, ""},
		{"URL", func(u *unstructured.Unstructured) {
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			hooks[0].(map[string]any)["clientConfig"] = map[string]any{"url": "https://attacker.example.com/"}
			_ = unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
		}, "webhooks[0]: clientConfig does not name a Service of namespace tolls"},
		{"Service of another namespace", func(u *unstructured.Unstructured) {
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			_ = unstructured.SetNestedField(hooks[0].(map[string]any), "kube-system", "clientConfig", "service", "namespace")
			_ = unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
		}, "webhooks[0]: clientConfig does not name a Service of namespace tolls"},
		{"forbidden group", func(u *unstructured.Unstructured) {
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			hooks[0].(map[string]any)["rules"] = []any{map[string]any{"apiGroups": []any{"operators.ferry.dev"}, "resources": []any{"subscriptions"}}}
			_ = unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
		}, `webhooks[0].rules[0]: intercepts group "operators.ferry.dev"`},
		{"CA of another namespace", func(u *unstructured.Unstructured) {
			a := u.GetAnnotations()
			a[install.AnnotationCAFrom] = "other/secret"
			u.SetAnnotations(a)
		}, `annotation operators.ferry.dev/ca-from is "other/secret", not an object of namespace tolls`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := good(t)
			tt.edit(u)
			err := install.CheckRestored([]*unstructured.Unstructured{u}, "tolls")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CheckRestored = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("CheckRestored = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRenderWebhookServiceReplacesShipped: a shipped Service of the
// webhook Service's name is replaced by the generated one, as OLM does; a
// targetPort of 0 means the container port.
func TestRenderWebhookServiceReplacesShipped(t *testing.T) {
	in := editWebhooks(t, webhookInput(t, "tolls", v1alpha1.InstallModeAllNamespaces), func(h []any) []any {
		for i := range h {
			hook(h, i)["targetPort"] = 0
		}
		return h
	})
	in.Manifests = append(in.Manifests, manifest(t, map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": tollgateSvc},
		"spec": map[string]any{"ports": []any{map[string]any{"port": 8443}}}}))
	r := render(t, in)
	svcs := findAll(r, "Service")
	if len(svcs) != 1 {
		t.Fatalf("%d Services rendered, want the generated one", len(svcs))
	}
	var svc corev1.Service
	fromU(t, svcs[0], &svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.IntValue() != 443 {
		t.Errorf("Service ports = %+v, want 443 to 443", svc.Spec.Ports)
	}
}

// editManifest rewrites the first manifest of kind.
func editManifest(t *testing.T, ms []catalog.Manifest, kind string, edit func(obj map[string]any)) []catalog.Manifest {
	t.Helper()
	out := append([]catalog.Manifest{}, ms...)
	for i, m := range out {
		if m.Kind != kind {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(m.JSON, &obj); err != nil {
			t.Fatal(err)
		}
		edit(obj)
		js, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out[i].JSON = js
		return out
	}
	t.Fatalf("no %s among the manifests", kind)
	return nil
}

func fromU(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}
