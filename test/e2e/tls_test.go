//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/catalogsource"
	"github.com/ferrydev/ferry/internal/testpki"
	"github.com/ferrydev/ferry/test/e2e/framework"
)

// TestTLSPublishTriggersUpgrade: catalogd runs as config/publishing — or
// the chart with TLS and publishing on — deploys it: TLS from the Secret
// catalogd-tls, the token file from the Secret catalogd-publish-tokens,
// the published bundles on the claim catalogd-data, only its listen
// addresses moved. The installer trusts the test CA through a ConfigMap in
// its namespace and checks the server name; a Subscription installs; CI
// publishes a new version over TLS (catalogd publish --ca-file) and the
// installer upgrades. Before the ConfigMap exists, the CatalogSource says
// which one is missing.
func TestTLSPublishTriggersUpgrade(t *testing.T) {
	tests := []struct {
		name   string
		render func(t *testing.T) *asdeployed.Manifests
	}{
		{"config/publishing", func(t *testing.T) *asdeployed.Manifests { return f.Kustomize(t, "config/publishing") }},
		{"chart with TLS and publishing", renderChartPublishing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testTLSPublish(t, tt.render(t)) })
	}
}

func testTLSPublish(t *testing.T, manifests *asdeployed.Manifests) {
	const serverName = "catalogd.e2e.test"
	ca := testpki.NewCA(t, "ferry e2e CA")
	cert := ca.Issue(t, "catalogd", testpki.WithHosts(serverName, "127.0.0.1"))
	token := "e2e-tls-token-0123456789abcdef"
	secrets := t.TempDir()
	caFile := filepath.Join(secrets, "ca.pem")
	clientToken := filepath.Join(secrets, "token")
	for p, content := range map[string][]byte{clientToken: []byte(token + "\n"), caFile: ca.CertPEM} {
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	publishing := deployPublishing(t, manifests, map[string]*corev1.Secret{
		"catalogd-tls": {Type: corev1.SecretTypeTLS, Data: map[string][]byte{
			corev1.TLSCertKey: cert.CertPEM, corev1.TLSPrivateKeyKey: cert.KeyPEM, "ca.crt": ca.CertPEM,
		}},
		"catalogd-publish-tokens": {Data: map[string][]byte{"tokens": []byte(token + " lighthouse-operator\n")}},
	})
	env := startInstallerFrom(t, publishing, nil, filepath.Join("lighthouse-operator", "1.3.0"), filepath.Join("lighthouse-operator", "1.4.0"))
	ctx := context.Background()

	// The CatalogSource trusts the CA of a ConfigMap in the installer's
	// namespace, which does not exist yet.
	suffix := time.Now().UnixNano() % 100000
	cmName := fmt.Sprintf("e2e-catalog-ca-%d", suffix)
	cs := &v1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tls-%d", suffix)},
		Spec: v1alpha1.CatalogSourceSpec{Address: env.address, TLS: &v1alpha1.CatalogSourceTLS{
			CABundle:   &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeyReference{Name: cmName, Key: "ca.crt"}},
			ServerName: serverName,
		}},
	}
	if err := env.client.Create(ctx, cs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.client.Delete(context.Background(), cs) })
	env.catalog = cs.Name
	waitConnected(t, env.client, cs.Name, metav1.ConditionFalse, v1alpha1.ReasonTLSConfigInvalid,
		fmt.Sprintf("spec.tls.caBundle.configMapRef: ConfigMap %s/%s: not found", catalogsource.DefaultTLSNamespace, cmName))

	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: catalogsource.DefaultTLSNamespace, Name: cmName},
		Data:       map[string]string{"ca.crt": string(ca.CertPEM)},
	}
	if err := env.client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.client.Delete(context.Background(), cm) })
	waitConnected(t, env.client, cs.Name, metav1.ConditionTrue, v1alpha1.ReasonConnected, "following the catalog at "+env.address)

	ns := f.CreateNamespace(t)
	env.subscription(t, ns, "lighthouse", v1alpha1.SubscriptionSpec{Package: "lighthouse-operator", Channel: "stable"})
	env.waitFor(t, ns, "lighthouse", "installed at 1.2.0 over TLS", installedAt("1.2.0"))

	// Publishing over TLS, verified against the same CA.
	out, err := exec.Command(env.catalogd, "publish", "--server", env.address, "--ca-file", caFile, "--token-file", clientToken,
		filepath.Join(f.ModuleRoot, "bundles", "lighthouse-operator", "1.3.0")).CombinedOutput()
	if err != nil {
		t.Fatalf("catalogd publish over TLS: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "published package=lighthouse-operator version=1.3.0") {
		t.Errorf("publish output:\n%s", out)
	}
	env.waitFor(t, ns, "lighthouse", "upgraded to 1.3.0 published over TLS", installedAt("1.3.0"))

	// The CatalogSource the helper made speaks plaintext to a TLS server:
	// it never connects.
	plain := &v1alpha1.CatalogSource{}
	if err := env.client.Get(ctx, client.ObjectKey{Name: env.plaintextCatalog(t)}, plain); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(plain.Status.Conditions, v1alpha1.TypeConnected); c != nil && c.Status == metav1.ConditionTrue {
		t.Errorf("a plaintext CatalogSource connected to a TLS catalogd: %+v", c)
	}
}

// renderChartPublishing renders the chart as make deploy DEPLOY_WITH=helm
// does (hack/deploy.sh render), with the values of docs/deploy.md for TLS
// and publishing. The pinned helm is $HELM, which the Makefile exports.
func renderChartPublishing(t *testing.T) *asdeployed.Manifests {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run the end-to-end tests with make test-e2e, which exports the pinned helm's path")
	}
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(`catalogd:
  tls: {enabled: true, secretName: catalogd-tls}
  publishing: {enabled: true, tokens: {existingSecret: catalogd-publish-tokens}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(f.ModuleRoot, "hack", "deploy.sh"), "render")
	cmd.Env = append(os.Environ(), "DEPLOY_WITH=helm", "HELM="+helm, "HELM_VALUES="+values, "KUBECONFIG="+f.Kubeconfig())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/deploy.sh render (DEPLOY_WITH=helm): %v\n%s", err, stderr.String())
	}
	m, err := asdeployed.Parse(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("the chart rendered with TLS and publishing: %v", err)
	}
	return m
}

// deployPublishing applies what manifests add to the run's (the claim
// catalogd-data) and creates the Secrets their catalogd mounts, as
// docs/deploy.md says to; all of them are removed, and waited for, when the
// test ends. It returns the manifests, for catalogd's Deployment.
func deployPublishing(t *testing.T, m *asdeployed.Manifests, secrets map[string]*corev1.Secret) *asdeployed.Manifests {
	t.Helper()
	run := f.Deployed(t).Manifests
	var added []*unstructured.Unstructured
	for _, o := range m.Objects {
		gvk := o.GroupVersionKind()
		if _, err := run.Find(gvk.Group, gvk.Kind, o.GetNamespace(), o.GetName()); err == nil || gvk.Kind == "Deployment" {
			continue
		}
		added = append(added, o)
	}
	ctx := context.Background()
	c := ferryClient(t)
	for name, s := range secrets {
		s = s.DeepCopy()
		s.Namespace, s.Name = framework.Namespace, name
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), s) })
	}
	if err := asdeployed.Apply(ctx, f.Config, added); err != nil {
		t.Fatalf("config/publishing: %v", err)
	}
	for _, o := range added {
		t.Cleanup(func() {
			// Gone before the next test applies the same claim again.
			ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
			defer cancel()
			obj := o.DeepCopy()
			if err := c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting %s %s: %v", o.GetKind(), o.GetName(), err)
				return
			}
			err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
				return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
			})
			if err != nil {
				t.Errorf("%s %s is still there: %v", o.GetKind(), o.GetName(), err)
			}
		})
	}
	if !slices.ContainsFunc(added, func(o *unstructured.Unstructured) bool {
		return o.GetKind() == "PersistentVolumeClaim" && o.GetName() == "catalogd-data"
	}) {
		t.Fatal("the manifests do not add the claim catalogd-data to the run's")
	}
	return m
}

// plaintextCatalog is the name of the CatalogSource startInstallerWith
// created: the one at the catalogd's address that is not TLS.
func (e *installerEnv) plaintextCatalog(t *testing.T) string {
	t.Helper()
	var list v1alpha1.CatalogSourceList
	if err := e.client.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	for _, cs := range list.Items {
		if cs.Spec.Address == e.address && cs.Spec.TLS != nil && cs.Spec.TLS.InsecurePlaintext {
			return cs.Name
		}
	}
	t.Fatalf("no plaintext CatalogSource at %s", e.address)
	return ""
}

// waitConnected waits until the CatalogSource's Connected condition, for
// its current generation, has the status and reason and a message that
// contains message.
func waitConnected(t *testing.T, c client.Client, name string, status metav1.ConditionStatus, reason, message string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, pollTimeout, true, func(ctx context.Context) (bool, error) {
		cs := &v1alpha1.CatalogSource{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, cs); err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(cs.Status.Conditions, v1alpha1.TypeConnected)
		if cond == nil || cond.ObservedGeneration != cs.Generation {
			last = fmt.Sprintf("condition %+v at generation %d", cond, cs.Generation)
			return false, nil
		}
		last = fmt.Sprintf("%s %s %q", cond.Status, cond.Reason, cond.Message)
		return cond.Status == status && cond.Reason == reason && strings.Contains(cond.Message, message), nil
	})
	if err != nil {
		t.Fatalf("CatalogSource %s: want Connected %s %s with %q: %v; last: %s", name, status, reason, message, err, last)
	}
}
