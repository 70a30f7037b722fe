//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/install"
)

// TestWebhooksInstall installs the sample operator with a validating, a
// mutating and a conversion webhook (internal/install/testdata/webhooks)
// through catalogd and the installer as deployed: it must become Installed
// and Ready with both webhook configurations and the CRD's conversion
// webhook registered, all with the CA of the certificate Secret Ferry
// generated and the Deployment mounts; uninstalling removes the
// configurations and the conversion. (That the API server calls the
// webhooks with that CA is proven with a webhook server in
// internal/install's TestWebhooksCalledWithTheGeneratedCA: pods do not run
// on the kwok node.)
func TestWebhooksInstall(t *testing.T) {
	env := startCommunity(t, filepath.Join(f.ModuleRoot, "internal", "install", "testdata", "webhooks"))
	ns := f.CreateNamespace(t)
	ctx := context.Background()
	const (
		pkg    = "tollgate-operator"
		crd    = "tolls.tollgate.ferry.dev"
		dep    = "tollgate-controller-manager"
		secret = dep + "-service-cert"
	)
	env.subscription(t, ns, pkg, v1alpha1.SubscriptionSpec{Package: pkg, InstallMode: v1alpha1.InstallModeAllNamespaces})
	sub := env.waitFor(t, ns, pkg, "Installed and Ready", installedAndReady)

	var cert corev1.Secret
	if err := env.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: secret}, &cert); err != nil {
		t.Fatalf("certificate Secret: %v", err)
	}
	ca := string(cert.Data["ca.crt"])
	if ca == "" || len(cert.Data["tls.crt"]) == 0 || len(cert.Data["tls.key"]) == 0 {
		t.Fatalf("certificate Secret %s holds %d keys", secret, len(cert.Data))
	}
	vwcs := inventoryNames(sub, "ValidatingWebhookConfiguration")
	mwcs := inventoryNames(sub, "MutatingWebhookConfiguration")
	if len(vwcs) != 1 || len(mwcs) != 1 {
		t.Fatalf("inventory has webhook configurations %v and %v, want one of each", vwcs, mwcs)
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.client.Get(ctx, types.NamespacedName{Name: vwcs[0]}, &vwc); err != nil {
		t.Fatal(err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := env.client.Get(ctx, types.NamespacedName{Name: mwcs[0]}, &mwc); err != nil {
		t.Fatal(err)
	}
	if string(vwc.Webhooks[0].ClientConfig.CABundle) != ca || string(mwc.Webhooks[0].ClientConfig.CABundle) != ca {
		t.Error("a webhook configuration's caBundle is not the Secret's ca.crt")
	}
	if s := vwc.Webhooks[0].ClientConfig.Service; s == nil || s.Namespace != ns || s.Name != dep+"-service" {
		t.Errorf("validating webhook calls %+v, want Service %s/%s-service", s, ns, dep)
	}
	var c apiextensionsv1.CustomResourceDefinition
	if err := env.client.Get(ctx, types.NamespacedName{Name: crd}, &c); err != nil {
		t.Fatal(err)
	}
	if c.Spec.Conversion == nil || c.Spec.Conversion.Strategy != apiextensionsv1.WebhookConverter || c.Spec.Conversion.Webhook == nil ||
		string(c.Spec.Conversion.Webhook.ClientConfig.CABundle) != ca {
		t.Errorf("CRD %s conversion = %+v, want the webhook with the Secret's CA", crd, c.Spec.Conversion)
	}
	var d appsv1.Deployment
	if err := env.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: dep}, &d); err != nil {
		t.Fatal(err)
	}
	mounted := map[string]bool{}
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted[m.MountPath] = true
	}
	if !mounted[install.WebhookCertDir] || !mounted[install.APIServiceCertDir] {
		t.Errorf("Deployment mounts %v, want %s and %s", mounted, install.WebhookCertDir, install.APIServiceCertDir)
	}

	env.uninstallAll(t, ns)
	for _, name := range vwcs {
		if err := env.client.Get(ctx, types.NamespacedName{Name: name}, &admissionregistrationv1.ValidatingWebhookConfiguration{}); !apierrors.IsNotFound(err) {
			t.Errorf("ValidatingWebhookConfiguration %s after uninstall: %v", name, err)
		}
	}
	for _, name := range mwcs {
		if err := env.client.Get(ctx, types.NamespacedName{Name: name}, &admissionregistrationv1.MutatingWebhookConfiguration{}); !apierrors.IsNotFound(err) {
			t.Errorf("MutatingWebhookConfiguration %s after uninstall: %v", name, err)
		}
	}
	poll(t, "the kept CRD to lose its conversion webhook", func(ctx context.Context) error {
		if err := env.client.Get(ctx, types.NamespacedName{Name: crd}, &c); err != nil {
			return err
		}
		if c.Spec.Conversion != nil && c.Spec.Conversion.Strategy != apiextensionsv1.NoneConverter {
			return fmt.Errorf("conversion strategy %s", c.Spec.Conversion.Strategy)
		}
		return nil
	})
	if err := env.client.Delete(ctx, &c); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
}
