package charts

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ferrydev/ferry/internal/testenv"
)

// TestInstallUpgradeUninstall runs helm install, upgrade and uninstall
// against a real API server (envtest): every object the chart renders is
// accepted and created, an upgrade turns publishing and TLS on, and an
// uninstall removes Ferry but keeps the CRDs (and so every custom resource)
// and the claim of published bundles.
func TestInstallUpgradeUninstall(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutProjectCRDs())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	user, err := env.Environment.AddUser(envtest.User{Name: "chart-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	helm := func(args ...string) string {
		t.Helper()
		args = append(args, "--kubeconfig", kubeconfigPath, "--namespace", namespace)
		out, err := runHelm(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// notes checks that the notes helm printed hold every line of want.
	notes := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("the notes lack %q:\n%s", w, out)
			}
		}
	}
	get := func(o object) (*unstructured.Unstructured, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.FromAPIVersionAndKind(o.APIVersion, o.Kind))
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}, u)
		return u, err
	}

	// Install with the default values: everything rendered is created.
	notes(helm("install", release, chartDir, "--create-namespace"),
		"catalogd serves at catalogd.ferry-system.svc:50051 in plaintext",
		"    address: catalogd.ferry-system.svc:50051\n    tls:\n      insecurePlaintext: true")
	installed := render(t, nil)
	for _, o := range installed {
		if _, err := get(o); err != nil {
			t.Errorf("%s was not installed: %v", o, err)
		}
	}
	var role rbacv1.ClusterRole
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "ferry-installer"}, &role); err != nil {
		t.Fatal(err)
	}
	var rendered rbacv1.ClusterRole
	decodeStrict(t, find(t, installed, "ClusterRole", "ferry-installer"), &rendered)
	diffPermissions(t, "installed ClusterRole ferry-installer", role.Rules, rendered.Rules)

	// A custom resource, to survive the uninstall with its CRD.
	catalog := &unstructured.Unstructured{}
	catalog.SetGroupVersionKind(schema.GroupVersionKind{Group: "operators.ferry.dev", Version: "v1alpha1", Kind: "CatalogSource"})
	catalog.SetName("ferry")
	if err := unstructured.SetNestedField(catalog.Object, "catalogd.ferry-system.svc:50051", "spec", "address"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, catalog); err != nil {
		t.Fatalf("creating a CatalogSource with the installed CRD: %v", err)
	}

	// Upgrade: publishing, TLS, a claim for the store.
	notes(helm("upgrade", release, chartDir, "-f", filepath.Join("testdata", allOn), "--set", "metrics.serviceMonitor.enabled=false"),
		"over TLS, client certificates required",
		"secretRef: {name: catalogd-tls, key: ca.crt}",
		"clientCertificate:",
		"Publishing is on",
		"--ca-file CA_FILE --cert-file CERT --key-file KEY")
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "catalogd"}, &d); err != nil {
		t.Fatal(err)
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--data-dir=/var/lib/catalogd") || !slices.Contains(args, "--tls-cert-file=/etc/catalogd/tls/tls.crt") {
		t.Errorf("catalogd args after the upgrade: %q", args)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("catalogd strategy after the upgrade: %q, want Recreate", d.Spec.Strategy.Type)
	}
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "catalogd-publish-tokens"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "catalogd-data"}},
	} {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Errorf("after the upgrade: %v", err)
		}
	}

	// Uninstall: Ferry goes; the CRDs, the CatalogSource and the claim stay.
	helm("uninstall", release, "--wait", "--timeout", "2m")
	for _, o := range installed {
		u, err := get(o)
		switch {
		case o.Kind == "CustomResourceDefinition":
			if err != nil {
				t.Errorf("%s was deleted by helm uninstall; crds.keep must keep it: %v", o, err)
			}
		case err == nil && u.GetDeletionTimestamp() == nil:
			t.Errorf("%s is still there after helm uninstall", o)
		case err != nil && !apierrors.IsNotFound(err):
			t.Errorf("%s: %v", o, err)
		}
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "catalogsources.operators.ferry.dev"}, &crd); err != nil || crd.DeletionTimestamp != nil {
		t.Errorf("CRD catalogsources.operators.ferry.dev after uninstall: %v, deleting: %v", err, crd.DeletionTimestamp)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(catalog), catalog); err != nil {
		t.Errorf("CatalogSource ferry after uninstall: %v", err)
	}
	var pvc corev1.PersistentVolumeClaim
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "catalogd-data"}, &pvc); err != nil || pvc.DeletionTimestamp != nil {
		t.Errorf("claim catalogd-data after uninstall (it holds the published bundles): %v, deleting: %v", err, pvc.DeletionTimestamp)
	}
}
