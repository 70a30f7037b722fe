//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/freeport"
	"github.com/ferrydev/ferry/internal/testenv"
	"github.com/ferrydev/ferry/test/e2e/framework"
)

// installerEnv is a catalogd serving a copy of bundles/ and an installer,
// both real processes, against the local cluster.
type installerEnv struct {
	client     client.Client
	catalogDir string
	catalog    string
	// installer is the running installer process.
	installer *framework.Process
	binary    string
	// catalogd is the catalogd binary, serving at address.
	catalogd, address string
}

// startInstallerProcess starts (or restarts) the installer as deployed:
// the arguments and environment of its Deployment, leader election in
// ferry-system, the ferry-installer ServiceAccount's token and RBAC. Only
// its listen addresses move to free ports on 127.0.0.1. A Forbidden in its
// log fails the test.
func (e *installerEnv) startInstallerProcess(t *testing.T) {
	t.Helper()
	e.installer = f.StartDeployed(t, framework.DeployedProcess{
		Name: "installer", Binary: e.binary, Deployment: framework.InstallerDeployment,
		Rewrite: []asdeployed.CommandOption{
			asdeployed.WithFlag("--metrics-bind-address", freePort(t)),
			asdeployed.WithFlag("--health-probe-bind-address", freePort(t)),
		},
	})
}

func ferryClient(t *testing.T) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(f.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// freePort is a loopback address for a process to listen on, never one
// handed out before in this run.
func freePort(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// copyTree copies src to dst, leaving out the paths (relative to src) in skip.
func copyTree(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startInstaller applies the CRDs and starts catalogd (serving bundles/
// without the lighthouse-operator versions in held) and the installer.
func startInstaller(t *testing.T, held ...string) *installerEnv {
	t.Helper()
	return startInstallerWith(t, nil, held...)
}

// startInstallerWith also passes catalogdArgs to catalogd serve.
func startInstallerWith(t *testing.T, catalogdArgs []string, held ...string) *installerEnv {
	t.Helper()
	return startInstallerFrom(t, nil, catalogdArgs, held...)
}

// startInstallerFrom runs catalogd as the Deployment of catalogdManifests
// runs it (nil: the run's manifests), volumes and all.
func startInstallerFrom(t *testing.T, catalogdManifests *asdeployed.Manifests, catalogdArgs []string, held ...string) *installerEnv {
	t.Helper()
	f.Deployed(t) // CRDs, RBAC and the rest of config/default, once per run
	dir := t.TempDir()
	copyTree(t, filepath.Join(f.ModuleRoot, "bundles"), dir, held...)
	addr := freePort(t)
	catalogd := f.BuildBinary(t, "./cmd/catalogd")
	installer := f.BuildBinary(t, "./cmd/installer")
	// catalogd as its Deployment runs it, serving the test's catalog (the
	// Deployment's comment: add --catalog=DIR) on a free port.
	f.StartDeployed(t, framework.DeployedProcess{
		Name: "catalogd", Binary: catalogd, Deployment: framework.CatalogdDeployment,
		Rewrite: []asdeployed.CommandOption{
			asdeployed.WithFlag("--listen", addr),
			asdeployed.WithFlag("--metrics-listen", freePort(t)),
		},
		ExtraArgs: append([]string{"--catalog=" + dir}, catalogdArgs...),
		Manifests: catalogdManifests,
	})
	env := &installerEnv{catalogDir: dir, binary: installer, catalogd: catalogd, address: addr}
	env.startInstallerProcess(t)
	c := ferryClient(t)
	// A name of its own from the API server: the CatalogSource of an
	// earlier test may still be being deleted.
	cs := &v1alpha1.CatalogSource{ObjectMeta: metav1.ObjectMeta{GenerateName: "sample-"}, Spec: v1alpha1.CatalogSourceSpec{Address: addr, TLS: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true}}}
	if err := c.Create(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), cs) })
	env.client, env.catalog = c, cs.Name
	return env
}

// subscription creates a Subscription that installs with the ServiceAccount
// of examples/tenancy (cluster-tenant.yaml included: the sample operators
// ask for cluster-wide permissions), made in ns first.
func (e *installerEnv) subscription(t *testing.T, ns, name string, spec v1alpha1.SubscriptionSpec) {
	t.Helper()
	spec.Catalog = e.catalog
	if spec.ServiceAccountName == "" {
		sa, err := testenv.Tenant(context.Background(), f.Config, ns, testenv.ClusterTenant)
		if err != nil {
			t.Fatal(err)
		}
		spec.ServiceAccountName = sa
	}
	sub := &v1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	if err := e.client.Create(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls the Subscription until ok says it is done.
func (e *installerEnv) waitFor(t *testing.T, ns, name, what string, ok func(*v1alpha1.Subscription) bool) *v1alpha1.Subscription {
	t.Helper()
	sub := &v1alpha1.Subscription{}
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, pollTimeout, true, func(ctx context.Context) (bool, error) {
		if err := e.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sub); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return ok(sub), nil
	})
	if err != nil {
		t.Fatalf("Subscription %s/%s: %s: %v; status: %+v", ns, name, what, err, sub.Status)
	}
	return sub
}

func installedAt(version string) func(*v1alpha1.Subscription) bool {
	return func(s *v1alpha1.Subscription) bool {
		return s.Status.InstalledVersion == version && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeInstalled)
	}
}

func TestInstallUpgradeUninstall(t *testing.T) {
	env := startInstaller(t, filepath.Join("lighthouse-operator", "1.3.0"), filepath.Join("lighthouse-operator", "1.4.0"))
	ns := f.CreateNamespace(t)
	ctx := context.Background()

	env.subscription(t, ns, "lighthouse", v1alpha1.SubscriptionSpec{
		Package: "lighthouse-operator", Channel: "stable",
		Config: &v1alpha1.SubscriptionConfig{Env: []corev1.EnvVar{{Name: "REGION", Value: "eu-west-1"}}},
	})
	// kubectl wait works on the Installed condition.
	if out, err := f.Kubectl(t, "wait", "-n", ns, "--for=condition=Installed", "subscription/lighthouse", "--timeout=180s"); err != nil {
		t.Fatalf("kubectl wait: %v\n%s", err, out)
	}
	sub := env.waitFor(t, ns, "lighthouse", "installed at 1.2.0", installedAt("1.2.0"))

	// The dependency came first, through a child Subscription labelled with its parent.
	child := &v1alpha1.Subscription{}
	if err := env.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "signal-store"}, child); err != nil {
		t.Fatalf("dependency Subscription: %v", err)
	}
	if child.Labels["operators.ferry.dev/parent"] != "lighthouse" || !meta.IsStatusConditionTrue(child.Status.Conditions, v1alpha1.TypeInstalled) {
		t.Errorf("child Subscription: labels %v, status %+v", child.Labels, child.Status)
	}

	// The operator runs, with REGION overridden, on the fake node.
	var deps appsv1.DeploymentList
	if err := env.client.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{"operators.ferry.dev/owner-name": "lighthouse"}); err != nil || len(deps.Items) == 0 {
		t.Fatalf("lighthouse Deployments: %v (%d)", err, len(deps.Items))
	}
	d := deps.Items[0]
	region := ""
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "REGION" {
			region = e.Value
		}
	}
	if region != "eu-west-1" {
		t.Errorf("REGION = %q, want eu-west-1", region)
	}
	if out, err := f.Kubectl(t, "rollout", "status", "-n", ns, "deployment/"+d.Name, "--timeout=120s"); err != nil {
		t.Fatalf("rollout status: %v\n%s", err, out)
	}
	if len(sub.Status.Inventory) == 0 {
		t.Error("status.inventory is empty")
	}
	out, err := f.Kubectl(t, "get", "subscriptions", "-n", ns)
	if err != nil || !strings.Contains(out, "lighthouse-operator") || !strings.Contains(out, "signal-store") {
		t.Errorf("kubectl get subscriptions:\n%s", out)
	}

	// A new version published into the catalog directory is picked up and installed.
	copyTree(t, filepath.Join(f.ModuleRoot, "bundles", "lighthouse-operator", "1.3.0"), filepath.Join(env.catalogDir, "lighthouse-operator", "1.3.0"))
	env.waitFor(t, ns, "lighthouse", "upgraded to 1.3.0", installedAt("1.3.0"))

	// Uninstall removes the operator but keeps the CRD.
	if err := env.client.Delete(ctx, sub); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, pollTimeout, true, func(ctx context.Context) (bool, error) {
		err := env.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lighthouse"}, &v1alpha1.Subscription{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("Subscription not deleted: %v", err)
	}
	if err := env.client.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{"operators.ferry.dev/owner-name": "lighthouse"}); err != nil || len(deps.Items) != 0 {
		t.Errorf("Deployments left after uninstall: %d (%v)", len(deps.Items), err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.client.Get(ctx, types.NamespacedName{Name: "beacons.lighthouse.ferry.dev"}, crd); err != nil {
		t.Errorf("CRD removed on uninstall: %v", err)
	}
}

// freshCRDs deletes operator CRDs earlier tests left: CRDs are cluster-wide,
// and installing an older version over a newer CRD is (rightly) blocked.
func freshCRDs(t *testing.T, c client.Client, names ...string) {
	t.Helper()
	for _, n := range names {
		crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if err := c.Delete(context.Background(), crd); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, pollTimeout, true, func(ctx context.Context) (bool, error) {
			return apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Name: n}, crd)), nil
		}); err != nil {
			t.Fatalf("CRD %s not deleted: %v", n, err)
		}
	}
}

func TestManualApproval(t *testing.T) {
	env := startInstaller(t)
	freshCRDs(t, env.client, "signalstores.signals.ferry.dev")
	ns := f.CreateNamespace(t)
	ctx := context.Background()
	env.subscription(t, ns, "signals", v1alpha1.SubscriptionSpec{
		Package: "signal-store", Channel: "stable", StartingVersion: "1.0.0", Approval: v1alpha1.ApprovalManual,
	})
	sub := env.waitFor(t, ns, "signals", "waiting for approval of 1.1.0", func(s *v1alpha1.Subscription) bool {
		return s.Status.InstalledVersion == "1.0.0" && s.Status.AvailableUpgrade != nil &&
			meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.TypeUpgradeAvailable)
	})
	if sub.Status.AvailableUpgrade.Version != "1.1.0" || sub.Status.State != v1alpha1.StateUpgradePending {
		t.Fatalf("available upgrade %+v, state %s", sub.Status.AvailableUpgrade, sub.Status.State)
	}
	// Not approving is not upgrading: the controller observed this
	// generation and decided to wait; nothing else would make it upgrade.
	if c := meta.FindStatusCondition(sub.Status.Conditions, v1alpha1.TypeUpgradeAvailable); c.ObservedGeneration != sub.Generation || sub.Status.InstalledVersion != "1.0.0" {
		t.Fatalf("generation %d: UpgradeAvailable %+v, installed %s", sub.Generation, c, sub.Status.InstalledVersion)
	}
	patch := client.MergeFrom(sub.DeepCopy())
	sub.Spec.ApprovedVersion = "1.1.0"
	if err := env.client.Patch(ctx, sub, patch); err != nil {
		t.Fatal(err)
	}
	env.waitFor(t, ns, "signals", "upgraded to 1.1.0 after approval", installedAt("1.1.0"))
}

func TestPublishTriggersUpgrade(t *testing.T) {
	secrets := t.TempDir()
	token := "e2e-token-0123456789abcdef"
	tokens := filepath.Join(secrets, "tokens")
	clientToken := filepath.Join(secrets, "token")
	for p, content := range map[string]string{tokens: token + " lighthouse-operator\n", clientToken: token + "\n"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := startInstallerWith(t, []string{"--data-dir", filepath.Join(secrets, "data"), "--token-file", tokens},
		filepath.Join("lighthouse-operator", "1.3.0"), filepath.Join("lighthouse-operator", "1.4.0"))
	ns := f.CreateNamespace(t)
	env.subscription(t, ns, "lighthouse", v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "stable"})
	env.waitFor(t, ns, "lighthouse", "installed at 1.2.0", installedAt("1.2.0"))

	// CI publishes 1.3.0; the installer hears of it through Watch and upgrades.
	out, err := exec.Command(env.catalogd, "publish", "--server", env.address, "--plaintext", "--token-file", clientToken,
		filepath.Join(f.ModuleRoot, "bundles", "lighthouse-operator", "1.3.0")).CombinedOutput()
	if err != nil {
		t.Fatalf("catalogd publish: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "published package=lighthouse-operator version=1.3.0") {
		t.Errorf("publish output:\n%s", out)
	}
	env.waitFor(t, ns, "lighthouse", "upgraded to the published 1.3.0", installedAt("1.3.0"))
}
