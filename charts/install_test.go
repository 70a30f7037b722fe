package charts

import (
	"bytes"
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

	"github.com/ferrydev/ferry/internal/asdeployed"
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
	helm := helmAgainst(t, env)
	// notes checks that the notes helm printed hold every line of want.
	notes := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("the notes lack %q:\n%s", w, out)
			}
		}
	}
	get := func(o object) (*unstructured.Unstructured, error) { return getObject(ctx, env, o) }

	// Install with the default values: everything rendered is created.
	notes(helm("install", release, chartDir, "--create-namespace"),
		"catalogd serves at catalogd.ferry-system.svc:50051 in plaintext",
		"    address: catalogd.ferry-system.svc:50051\n    tls:\n      insecurePlaintext: true",
		"spec.serviceAccountName; one naming none is refused.")
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

// helmAgainst returns a function that runs helm against env's API server as
// a cluster administrator, in the release namespace, and returns what it
// printed; an error fails the test.
func helmAgainst(t *testing.T, env *testenv.Env) func(args ...string) string {
	t.Helper()
	try := tryHelmAgainst(t, env)
	return func(args ...string) string {
		t.Helper()
		out, err := try(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// tryHelmAgainst is helmAgainst returning helm's error.
func tryHelmAgainst(t *testing.T, env *testenv.Env) func(args ...string) (string, error) {
	t.Helper()
	user, err := env.Environment.AddUser(envtest.User{Name: "chart-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, error) {
		t.Helper()
		out, err := runHelm(t, append(args, "--kubeconfig", path, "--namespace", namespace)...)
		return string(out), err
	}
}

// getObject reads the rendered object o from the API server.
func getObject(ctx context.Context, env *testenv.Env, o object) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.FromAPIVersionAndKind(o.APIVersion, o.Kind))
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}, u)
	return u, err
}

// TestTakeOverFromKustomize: a Ferry applied from config/default becomes a
// Helm release with helm install --take-ownership (and only with it): the
// names and the Deployments' selectors are the same, so every object is
// adopted in place.
func TestTakeOverFromKustomize(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutProjectCRDs())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var rendered bytes.Buffer
	for _, o := range kustomize(t, "default") {
		rendered.WriteString("---\n")
		rendered.Write(o.Raw)
	}
	m, err := asdeployed.Parse(&rendered)
	if err != nil {
		t.Fatal(err)
	}
	if err := asdeployed.Apply(ctx, env.Config, m.Objects); err != nil {
		t.Fatalf("applying config/default: %v", err)
	}

	// Helm refuses objects it did not create, unless told to take them.
	if _, err := tryHelmAgainst(t, env)("install", release, chartDir); err == nil || !strings.Contains(err.Error(), "invalid ownership metadata") {
		t.Fatalf("helm install over config/default without --take-ownership: %v, want invalid ownership metadata", err)
	}
	helm := helmAgainst(t, env)
	helm("install", release, chartDir, "--take-ownership")
	for _, o := range render(t, nil) {
		u, err := getObject(ctx, env, o)
		if err != nil {
			t.Errorf("%s: %v", o, err)
			continue
		}
		if u.GetAnnotations()["meta.helm.sh/release-name"] != release || u.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("%s was not taken over by the release: annotations %v, labels %v", o, u.GetAnnotations(), u.GetLabels())
		}
	}
	helm("uninstall", release, "--wait", "--timeout", "2m")
	var d appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "ferry-installer"}, &d); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment ferry-installer after helm uninstall: %v, want NotFound", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "subscriptions.operators.ferry.dev"}, &crd); err != nil || crd.DeletionTimestamp != nil {
		t.Errorf("CRD subscriptions.operators.ferry.dev after helm uninstall: %v, deleting: %v", err, crd.DeletionTimestamp)
	}
}
