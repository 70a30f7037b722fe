package catalogsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ferrydev/ferry/api/v1alpha1"
	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.WithScheme(v1alpha1.AddToScheme)) }

// bundle describes a registry+v1 bundle directory written by writeBundle.
type bundle struct {
	pkg, version, replaces string
	// extra manifests, file name → YAML content.
	extra map[string]string
}

// writeBundle writes <root>/<pkg>/<version>/{manifests,metadata}.
func writeBundle(t testing.TB, root string, b bundle) {
	t.Helper()
	dir := filepath.Join(root, b.pkg, b.version)
	writeFile(t, filepath.Join(dir, "metadata", "annotations.yaml"), fmt.Sprintf(`annotations:
  operators.operatorframework.io.bundle.mediatype.v1: registry+v1
  operators.operatorframework.io.bundle.manifests.v1: manifests/
  operators.operatorframework.io.bundle.metadata.v1: metadata/
  operators.operatorframework.io.bundle.package.v1: %s
  operators.operatorframework.io.bundle.channels.v1: stable
  operators.operatorframework.io.bundle.channel.default.v1: stable
`, b.pkg))
	var csv strings.Builder
	fmt.Fprintf(&csv, "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: %s.v%s\nspec:\n  version: %s\n  displayName: %s\n", b.pkg, b.version, b.version, b.pkg)
	if b.replaces != "" {
		fmt.Fprintf(&csv, "  replaces: %s\n", b.replaces)
	}
	csv.WriteString("  installModes:\n  - type: AllNamespaces\n    supported: true\n")
	writeFile(t, filepath.Join(dir, "manifests", b.pkg+".clusterserviceversion.yaml"), csv.String())
	for name, content := range b.extra {
		writeFile(t, filepath.Join(dir, "manifests", name), content)
	}
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildCatalog writes the bundles into a fresh directory and loads it.
func buildCatalog(t testing.TB, bundles ...bundle) *catalog.Catalog {
	t.Helper()
	dir := t.TempDir()
	for _, b := range bundles {
		writeBundle(t, dir, b)
	}
	c, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(dir)})
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	if len(c.Packages) == 0 {
		t.Fatalf("fixture not loaded: %v", c.Problems)
	}
	return c
}

// demoCatalog is package demo with versions 1.0.0 up to the given count.
func demoCatalog(t testing.TB, versions int) *catalog.Catalog {
	var bs []bundle
	for i := range versions {
		b := bundle{pkg: "demo", version: fmt.Sprintf("1.%d.0", i)}
		if i > 0 {
			b.replaces = fmt.Sprintf("demo.v1.%d.0", i-1)
		}
		bs = append(bs, b)
	}
	return buildCatalog(t, bs...)
}

// catalogServer is a real catalogd serving a holder on a 127.0.0.1 port.
type catalogServer struct {
	t       testing.TB
	holder  *catalogd.Holder
	addr    string
	opts    []catalogd.ServerOption
	mu      sync.Mutex
	srv     *catalogd.Server
	metrics *catalogd.Metrics
	done    chan error
}

// startCatalogd serves c on a free port until the test ends.
func startCatalogd(t testing.TB, c *catalog.Catalog, opts ...catalogd.ServerOption) *catalogServer {
	t.Helper()
	s := &catalogServer{t: t, holder: catalogd.NewHolder(c), addr: "127.0.0.1:0", opts: opts}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start serves again on the same address.
func (s *catalogServer) start() {
	s.t.Helper()
	var lis net.Listener
	var err error
	// The port may linger briefly after stop.
	if perr := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		lis, err = net.Listen("tcp", s.addr)
		return err == nil, nil
	}); perr != nil {
		s.t.Fatalf("listening on %s: %v (%v)", s.addr, err, perr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addr = lis.Addr().String()
	s.metrics = catalogd.NewMetrics()
	s.srv = catalogd.NewServer(s.holder, append([]catalogd.ServerOption{catalogd.WithMetrics(s.metrics)}, s.opts...)...)
	s.done = make(chan error, 1)
	go func(srv *catalogd.Server, done chan<- error) { done <- srv.Serve(lis) }(s.srv, s.done)
}

// stop stops serving; calling it again does nothing.
func (s *catalogServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.GRPC().Stop()
	if err := <-s.done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		s.t.Errorf("serve: %v", err)
	}
	s.srv = nil
}

// calls counts the calls of a CatalogService method since the last start.
func (s *catalogServer) calls(method string) float64 {
	s.mu.Lock()
	m := s.metrics
	s.mu.Unlock()
	mfs, err := m.Registry.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var svc, meth string
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "grpc_service":
					svc = l.GetValue()
				case "grpc_method":
					meth = l.GetValue()
				}
			}
			if svc == "ferry.catalog.v1.CatalogService" && meth == method {
				n += mt.GetCounter().GetValue()
			}
		}
	}
	return n
}

// startController runs a manager with the CatalogSource reconciler until
// the test ends, and collects the Store's events.
func startController(t *testing.T) (*Reconciler, *events) {
	t.Helper()
	return startControllerIn(t, "")
}

// startControllerIn is startController reading TLS Secrets and ConfigMaps
// from tlsNamespace ("": the default).
func startControllerIn(t *testing.T, tlsNamespace string) (*Reconciler, *events) {
	t.Helper()
	out := io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	// The reconciler runs as the installer does in a cluster: as its
	// ServiceAccount, with the generated RBAC.
	mgr, err := ctrl.NewManager(env.InstallerConfig(t), ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    server.Options{BindAddress: "0"},
		Logger:     zap.New(zap.UseDevMode(true), zap.WriteTo(out)),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Store: NewStore(), TLSNamespace: tlsNamespace}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	ev := collectEvents(r.Store)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
		if n := r.followerCount(); n != 0 {
			t.Errorf("%d followers still running after the manager stopped", n)
		}
	})
	return r, ev
}

func (r *Reconciler) followerCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.followers)
}

// events counts the Store's events by CatalogSource name.
type events struct {
	mu sync.Mutex
	n  map[string]int
}

func collectEvents(s *Store) *events {
	e := &events{n: map[string]int{}}
	go func() {
		for ev := range s.Events() {
			e.mu.Lock()
			e.n[ev.Object.GetName()]++
			e.mu.Unlock()
		}
	}()
	return e
}

func (e *events) count(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[name]
}

// createCatalogSource creates a plaintext CatalogSource deleted when the
// test ends.
func createCatalogSource(t *testing.T, name, address string) *v1alpha1.CatalogSource {
	t.Helper()
	return createCatalogSourceTLS(t, name, address, &v1alpha1.CatalogSourceTLS{InsecurePlaintext: true})
}

// createCatalogSourceTLS creates a CatalogSource with the given TLS
// settings, deleted when the test ends.
func createCatalogSourceTLS(t *testing.T, name, address string, tls *v1alpha1.CatalogSourceTLS) *v1alpha1.CatalogSource {
	t.Helper()
	cs := &v1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.CatalogSourceSpec{Address: address, Priority: 5, TLS: tls},
	}
	if err := env.Client.Create(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), cs) })
	return cs
}

// getCatalogSource reads a CatalogSource.
func getCatalogSource(t *testing.T, name string) *v1alpha1.CatalogSource {
	t.Helper()
	cs := &v1alpha1.CatalogSource{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// eventually polls cond until it returns "" (success) or the generous
// timeout passes, then fails with the last answer.
func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	var msg string
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		msg = cond()
		return msg == "", nil
	}); err != nil {
		t.Fatalf("%s: %s (%v)", what, msg, err)
	}
}
