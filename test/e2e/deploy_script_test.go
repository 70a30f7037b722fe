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

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/testbin"
	"github.com/ferrydev/ferry/internal/testcluster"
	"github.com/ferrydev/ferry/internal/testpki"
)

// deployScriptTimeout bounds one hack/deploy.sh command (deploy builds
// both binaries and hack/asdeployed).
const deployScriptTimeout = 5 * time.Minute

// TestDeployScript runs make deploy's recipe as a user does on the local
// cluster: hack/deploy.sh deploy (the installer and catalogd as local
// processes), deploy-samples, the sample Subscription Installed, then
// undeploy, which uninstalls it and stops both processes. Once from
// config/default, once from the chart (DEPLOY_WITH=helm; the pinned helm is
// $HELM, which make test-e2e exports), once from config/publishing with
// TLS and the sample CatalogSource trusting the CA of catalogd-tls.
//
// Each case has a cluster of its own: undeploy deletes Ferry's CRDs and
// namespace, which the other tests of the run share.
func TestDeployScript(t *testing.T) {
	helm := os.Getenv("HELM")
	tests := []struct {
		name string
		env  []string
		tls  bool
	}{
		{name: "kustomize", env: []string{"DEPLOY_WITH=kustomize"}},
		{name: "helm", env: []string{"DEPLOY_WITH=helm", "HELM=" + helm}},
		{name: "kustomize publishing", env: []string{"DEPLOY_WITH=kustomize", "DEPLOY_OVERLAY=publishing", "CATALOG_CA_SECRET=catalogd-tls"}, tls: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "helm" && helm == "" {
				t.Fatal("HELM is not set: run the end-to-end tests with make test-e2e, which exports the pinned helm's path")
			}
			testDeployScript(t, tt.env, tt.tls)
		})
	}
}

func testDeployScript(t *testing.T, caseEnv []string, tls bool) {
	dir := t.TempDir()
	cluster := ownCluster(t, filepath.Join(dir, "cluster"))
	c := clusterClient(t, cluster)
	ctx := context.Background()
	deployDir := filepath.Join(dir, "deploy")
	catalogd := freePort(t)
	env := append(os.Environ(), caseEnv...)
	env = append(env,
		"KUBECONFIG="+cluster.Kubeconfig, "DEPLOY_TARGET=local", "FERRY_DEPLOY_DIR="+deployDir,
		"CATALOG_ADDRESS="+catalogd, "DEPLOY_TIMEOUT=120s",
		"DEPLOY_LOCAL_FLAGS="+strings.Join([]string{
			"-catalogd-listen", catalogd, "-catalogd-metrics-listen", freePort(t),
			"-installer-metrics-bind-address", freePort(t), "-installer-health-probe-bind-address", freePort(t),
		}, " "))
	// Whatever happens, the processes deploy started stop with the test.
	t.Cleanup(func() {
		for _, name := range []string{"installer", "catalogd"} {
			if _, err := testcluster.StopDetached(deployDir, name, 30*time.Second); err != nil {
				t.Errorf("stopping %s: %v", name, err)
			}
			if t.Failed() {
				t.Logf("last lines of %s.log:\n%s", name, testcluster.Tail(filepath.Join(deployDir, name+".log"), 40))
			}
		}
	})
	if tls {
		ca := testpki.NewCA(t, "ferry deploy CA")
		cert := ca.Issue(t, "catalogd", testpki.WithHosts("catalogd.ferry-system.svc", "127.0.0.1"))
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-system"}}
		tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: "catalogd-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: cert.CertPEM, corev1.TLSPrivateKeyKey: cert.KeyPEM, "ca.crt": ca.CertPEM}}
		tokens := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: "catalogd-publish-tokens"},
			Data: map[string][]byte{"tokens": []byte("e2e-deploy-token-0123456789abcdef lighthouse-operator\n")}}
		for _, o := range []client.Object{ns, tlsSecret, tokens} {
			if err := c.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}

	out := deployScript(t, env, "deploy")
	if !strings.Contains(out, "Ferry is up") {
		t.Errorf("deploy output does not say that Ferry is up:\n%s", out)
	}
	if tls && !strings.Contains(out, "--tls-cert-file: /etc/catalogd/tls/tls.crt -> "+filepath.Join(deployDir, "volumes")) {
		t.Errorf("deploy output does not report catalogd's certificate mounted locally:\n%s", out)
	}
	deployScript(t, env, "deploy-samples")
	sub := &v1alpha1.Subscription{}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, pollTimeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "lighthouse", Name: "lighthouse-operator"}, sub); err != nil {
			last = err.Error()
			return false, client.IgnoreNotFound(err)
		}
		last = "installed version " + sub.Status.InstalledVersion
		return sub.Status.InstalledVersion != "" && meta.IsStatusConditionTrue(sub.Status.Conditions, v1alpha1.TypeInstalled), nil
	})
	if err != nil {
		t.Fatalf("the sample Subscription lighthouse/lighthouse-operator is not Installed: %v; last: %s; status %+v", err, last, sub.Status)
	}

	deployScript(t, env, "undeploy")
	for _, name := range []string{"installer", "catalogd"} {
		if pid, err := testcluster.RunningPID(deployDir, name); err != nil || pid != 0 {
			t.Errorf("%s after undeploy: pid %d, %v; want it stopped", name, pid, err)
		}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(ctx, client.ObjectKey{Name: "subscriptions.operators.ferry.dev"}, crd); !apierrors.IsNotFound(err) && crd.DeletionTimestamp == nil {
		t.Errorf("the Subscription CRD after undeploy: %v, want it deleted", err)
	}
}

// deployScript runs hack/deploy.sh COMMAND and returns its output; a
// failure fails the test with the output.
func deployScript(t *testing.T, env []string, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deployScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(f.ModuleRoot, "hack", "deploy.sh"), command)
	cmd.Dir = f.ModuleRoot
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/deploy.sh %s: %v\n%s", command, err, out)
	}
	return string(out)
}

// ownCluster starts a control plane of the test's own in dir, stopped when
// the test ends.
func ownCluster(t *testing.T, dir string) *testcluster.Cluster {
	t.Helper()
	bin, err := testbin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	opts := []testcluster.Option{testcluster.WithDir(dir), testcluster.WithBinDir(bin), testcluster.WithLogf(t.Logf)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testcluster.Up(ctx, opts...)
	t.Cleanup(func() {
		if err := testcluster.Down(opts...); err != nil {
			t.Errorf("stopping the cluster in %s: %v", dir, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func clusterClient(t *testing.T, c *testcluster.Cluster) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := client.New(c.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
