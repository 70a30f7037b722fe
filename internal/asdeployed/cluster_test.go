package asdeployed_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/testenv"
)

const manifests = `
apiVersion: v1
kind: Namespace
metadata: {name: demo-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: demo, namespace: demo-system}
---
apiVersion: example.ferry.dev/v1
kind: Widget
metadata: {name: first, namespace: demo-system}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.ferry.dev}
spec:
  group: example.ferry.dev
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo, namespace: demo-system}
spec:
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      serviceAccountName: demo
      containers: [{name: demo, image: example.invalid/demo:1}]
`

// TestApplyAndIdentity: Apply puts CRDs before the custom resources that
// need them and leaves out skipped objects; a token for a ServiceAccount,
// written as a kubeconfig, authenticates as that account.
func TestApplyAndIdentity(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutProjectCRDs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := asdeployed.Parse(strings.NewReader(manifests))
	if err != nil {
		t.Fatal(err)
	}
	if err := asdeployed.Apply(ctx, env.Config, m.Objects, asdeployed.Skip(asdeployed.IsDeployment("demo-system", "demo"))); err != nil {
		t.Fatal(err)
	}
	widget := &unstructured.Unstructured{}
	widget.SetGroupVersionKind(schema.GroupVersionKind{Group: "example.ferry.dev", Version: "v1", Kind: "Widget"})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "demo-system", Name: "first"}, widget); err != nil {
		t.Errorf("the custom resource listed before its CRD was not applied: %v", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "demo-system", Name: "demo"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("the skipped Deployment: %v, want NotFound", err)
	}
	// Applying again changes nothing and fails on nothing.
	if err := asdeployed.Apply(ctx, env.Config, m.Objects); err != nil {
		t.Fatalf("second Apply: %v", err)
	}

	cfg, err := asdeployed.ServiceAccountConfig(ctx, env.Config, "demo-system", "demo", asdeployed.MinTokenExpiration)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CertData != nil || cfg.KeyData != nil || cfg.CertFile != "" {
		t.Error("the ServiceAccount config carries the admin's client certificate")
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := asdeployed.WriteKubeconfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	loaded, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(loaded)
	if err != nil {
		t.Fatal(err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := review.Status.UserInfo.Username, asdeployed.Username("demo-system", "demo"); got != want {
		t.Errorf("the kubeconfig authenticates as %q, want %q", got, want)
	}
}

func TestApplyErrors(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutProjectCRDs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tests := []struct{ name, doc, want string }{
		{"namespaced without namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loose}\n", "applying ConfigMap loose: a ConfigMap is namespaced and the manifest names no namespace"},
		{"unknown kind", "apiVersion: example.ferry.dev/v9\nkind: Gadget\nmetadata: {name: g}\n", "applying Gadget g: "},
		{"invalid object", "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: default}\nspec: {ports: [{port: 0}]}\n", "applying Service default/bad: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := asdeployed.Parse(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			err = asdeployed.Apply(ctx, env.Config, m.Objects)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := asdeployed.ServiceAccountConfig(ctx, env.Config, "default", "nobody", time.Hour); err == nil || !strings.Contains(err.Error(), "ServiceAccount default/nobody") {
		t.Errorf("token for a missing ServiceAccount: %v", err)
	}
	if _, err := asdeployed.ServiceAccountConfig(ctx, env.Config, "default", "default", time.Minute); err == nil {
		t.Error("a token shorter than the minimum was requested")
	}
}

// TestMountVolumesFromTheCluster: the publishing manifests' Secret volumes
// are read from the API server with the admin's credentials and written
// with their modes; the claim must exist; the args name the local files.
func TestMountVolumesFromTheCluster(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutProjectCRDs())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const deployment = `
apiVersion: v1
kind: Namespace
metadata: {name: mount-system}
---
apiVersion: v1
kind: Secret
metadata: {name: tls, namespace: mount-system}
type: kubernetes.io/tls
stringData: {tls.crt: CERT, tls.key: KEY, ca.crt: CA}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: mount-system}
data: {a.yaml: "a: 1"}
binaryData: {b.bin: AAEC}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: catalogd, namespace: mount-system}
spec:
  selector: {matchLabels: {app: catalogd}}
  template:
    metadata: {labels: {app: catalogd}}
    spec:
      automountServiceAccountToken: false
      containers:
      - name: catalogd
        image: example.invalid/catalogd:1
        args: [serve, --data-dir=/var/lib/catalogd, --tls-cert-file=/etc/tls/tls.crt, --config=/etc/settings/b.bin]
        volumeMounts:
        - {name: data, mountPath: /var/lib/catalogd}
        - {name: tls, mountPath: /etc/tls, readOnly: true}
        - {name: settings, mountPath: /etc/settings}
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: data}}
      - {name: tls, secret: {secretName: tls, defaultMode: 0440, items: [{key: tls.crt, path: tls.crt}, {key: tls.key, path: tls.key}]}}
      - {name: settings, configMap: {name: settings}}
`
	const claim = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: mount-system}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`
	m, err := asdeployed.Parse(strings.NewReader(deployment))
	if err != nil {
		t.Fatal(err)
	}
	if err := asdeployed.Apply(ctx, env.Config, m.Objects, asdeployed.Skip(asdeployed.IsDeployment("mount-system", "catalogd"))); err != nil {
		t.Fatal(err)
	}
	src, err := asdeployed.ClusterSource(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd, err := m.Command("mount-system", "catalogd")
	if err != nil {
		t.Fatal(err)
	}
	// Until the claim exists, the pod could not start either.
	if err := cmd.MountVolumes(ctx, src, dir); err == nil || !strings.Contains(err.Error(), "the PersistentVolumeClaim mount-system/data does not exist") {
		t.Fatalf("MountVolumes without the claim: %v", err)
	}
	c, err := asdeployed.Parse(strings.NewReader(claim))
	if err != nil {
		t.Fatal(err)
	}
	if err := asdeployed.Apply(ctx, env.Config, c.Objects); err != nil {
		t.Fatal(err)
	}
	if cmd, err = m.Command("mount-system", "catalogd"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.MountVolumes(ctx, src, dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"serve", "--data-dir=" + filepath.Join(dir, "pvc", "data"), "--tls-cert-file=" + filepath.Join(dir, "secret", "tls", "tls.crt"),
		"--config=" + filepath.Join(dir, "configmap", "settings", "b.bin")}
	if !slices.Equal(cmd.Args, want) {
		t.Errorf("args = %q\nwant   %q", cmd.Args, want)
	}
	for p, content := range map[string]string{"secret/tls/tls.crt": "CERT", "secret/tls/tls.key": "KEY", "configmap/settings/a.yaml": "a: 1", "configmap/settings/b.bin": "\x00\x01\x02"} {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(data) != content {
			t.Errorf("%s = %q, %v; want %q", p, data, err, content)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "secret", "tls", "tls.key")); err != nil || fi.Mode().Perm() != 0o440 {
		t.Errorf("tls.key: %v, %v; want mode 0440", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secret", "tls", "ca.crt")); err == nil {
		t.Error("ca.crt was written; the volume's items leave it out")
	}
}
