package cli_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/bundles"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/cli"
	"github.com/ferrydev/ferry/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.WithScheme(v1alpha1.AddToScheme)) }

var (
	kubeconfigOnce sync.Once
	kubeconfigPath string
	kubeconfigErr  error
)

// kubeconfig writes a kubeconfig for the test API server, once.
func kubeconfig(t *testing.T) string {
	t.Helper()
	kubeconfigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kubectl-ferry-test-")
		if err != nil {
			kubeconfigErr = err
			return
		}
		c := env.Config
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
		cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
		cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: "default"}
		cfg.CurrentContext = "envtest"
		kubeconfigPath = filepath.Join(dir, "kubeconfig")
		kubeconfigErr = clientcmd.WriteToFile(*cfg, kubeconfigPath)
	})
	if kubeconfigErr != nil {
		t.Fatalf("writing the kubeconfig: %v", kubeconfigErr)
	}
	return kubeconfigPath
}

// result is what one run of kubectl ferry printed and returned.
type result struct {
	out, errOut string
	err         error
}

// run runs kubectl ferry with args against the test API server.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runContext(context.Background(), t, args...)
}

func runContext(ctx context.Context, t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.New(cli.WithStreams(&out, &errOut), cli.WithPollInterval(20*time.Millisecond),
		cli.WithRESTConfigHook(func(c *rest.Config) { c.QPS, c.Burst = 200, 400 }))
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig(t)}, args...))
	err := cmd.ExecuteContext(ctx)
	return result{out: out.String(), errOut: errOut.String(), err: err}
}

// mustRun runs kubectl ferry and fails the test when it fails.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := run(t, args...)
	if r.err != nil {
		t.Fatalf("kubectl ferry %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r
}

// wantError runs kubectl ferry and checks that it fails with every fragment in its message.
func wantError(t *testing.T, args []string, fragments ...string) error {
	t.Helper()
	r := run(t, args...)
	if r.err == nil {
		t.Fatalf("kubectl ferry %s succeeded, want an error\nstdout:\n%s", strings.Join(args, " "), r.out)
	}
	for _, f := range fragments {
		if !strings.Contains(r.err.Error(), f) {
			t.Errorf("kubectl ferry %s: error %q does not say %q", strings.Join(args, " "), r.err, f)
		}
	}
	return r.err
}

// golden compares got with testdata/<name>.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (run with -update to accept):\n--- want\n%s\n--- got\n%s", p, want, got)
	}
}

// namespace creates a namespace; envtest runs no namespace controller, so
// the objects the test made are deleted by the test itself (see create).
func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

// create creates obj, writes the status it carries (Ferry's kinds), and
// deletes it when the test ends.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	ctx := context.Background()
	var st any
	switch o := obj.(type) {
	case *v1alpha1.Subscription:
		st = o.Status.DeepCopy()
	case *v1alpha1.Revision:
		st = o.Status.DeepCopy()
	case *v1alpha1.CatalogSource:
		st = o.Status.DeepCopy()
	}
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s: %v", obj.GetName(), err)
		}
	})
	if st == nil {
		return
	}
	switch o := obj.(type) {
	case *v1alpha1.Subscription:
		o.Status = *(st.(*v1alpha1.SubscriptionStatus))
	case *v1alpha1.Revision:
		o.Status = *(st.(*v1alpha1.RevisionStatus))
	case *v1alpha1.CatalogSource:
		o.Status = *(st.(*v1alpha1.CatalogSourceStatus))
	}
	if err := env.Client.Status().Update(ctx, obj); err != nil {
		t.Fatalf("writing the status of %s: %v", obj.GetName(), err)
	}
}

// controller plays the installer for one Subscription while a command
// waits: once the Subscription's generation passes from, write sets the
// status for it (write may create other objects, e.g. Revisions, which
// are not deleted when the test ends). It returns a function that waits for
// the writer to end.
func controller(t *testing.T, key client.ObjectKey, from int64, write func(ctx context.Context, sub *v1alpha1.Subscription) error) func() {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sub := &v1alpha1.Subscription{}
		err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			if err := env.Client.Get(ctx, key, sub); err != nil {
				return false, err
			}
			return sub.Generation > from, nil
		})
		if err != nil {
			done <- err
			return
		}
		if err := write(ctx, sub); err != nil {
			done <- err
			return
		}
		done <- env.Client.Status().Update(ctx, sub)
	}()
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Errorf("writing status as the installer would: %v", err)
		}
	}
}

// observed sets every condition's observedGeneration to the Subscription's generation.
func observed(sub *v1alpha1.Subscription) {
	for i := range sub.Status.Conditions {
		sub.Status.Conditions[i].ObservedGeneration = sub.Generation
	}
}

// at is a fixed time, so that golden files do not change.
func at(hour, minute int) metav1.Time {
	return metav1.NewTime(time.Date(2026, 11, 2, hour, minute, 0, 0, time.UTC))
}

func cond(typ string, st metav1.ConditionStatus, reason, msg string, gen int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: at(9, 0)}
}

// sampleCatalogd serves the embedded sample catalog in-process, plaintext,
// on a free loopback port, until the test ends, and returns its address.
func sampleCatalogd(t *testing.T, opts ...catalogd.ServerOption) string {
	t.Helper()
	c, err := catalog.Load(context.Background(), []catalog.Source{{Name: "bundles", FS: bundles.FS}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := catalogd.NewServer(catalogd.NewHolder(c), opts...)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.GRPC().Stop()
			if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				t.Errorf("catalogd: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	servers.Store(lis.Addr().String(), stop)
	return lis.Addr().String()
}

// servers holds the stop function of each catalogd by address.
var servers sync.Map

// stopCatalogd stops the catalogd serving at addr.
func stopCatalogd(t *testing.T, addr string) {
	t.Helper()
	stop, ok := servers.Load(addr)
	if !ok {
		t.Fatalf("no catalogd at %s", addr)
	}
	stop.(func())()
}

// catalogSource creates a plaintext CatalogSource for addr.
func catalogSource(t *testing.T, name, addr string, priority int32) {
	t.Helper()
	create(t, &v1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.CatalogSourceSpec{Address: addr, Priority: priority, TLS: &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true}},
	})
}

// createWithStatus creates a Revision and writes its status, from any goroutine.
func createWithStatus(ctx context.Context, r *v1alpha1.Revision) error {
	st := r.Status
	if err := env.Client.Create(ctx, r); err != nil {
		return err
	}
	r.Status = st
	return env.Client.Status().Update(ctx, r)
}

// setCond sets a condition as the installer does: one per type.
func setCond(sub *v1alpha1.Subscription, c metav1.Condition) {
	meta.SetStatusCondition(&sub.Status.Conditions, c)
}
