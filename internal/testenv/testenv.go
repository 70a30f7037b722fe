package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ferrydev/ferry/internal/testbin"
)

// DefaultCRDDir is the folder, relative to the module root, whose CRDs are
// installed when it exists.
const DefaultCRDDir = "config/crd/bases"

// Env is a running envtest control plane.
type Env struct {
	// Config is an admin (system:masters) rest config for the API server.
	Config *rest.Config
	// Client is a controller-runtime client using Scheme.
	Client client.Client
	// Scheme holds the client-go types, apiextensions/v1 and any scheme
	// additions given with WithScheme.
	Scheme *runtime.Scheme
	// Environment is the underlying envtest environment.
	Environment *envtest.Environment
	// Stop stops the control plane. It is safe to call more than once; Start
	// registers it with t.Cleanup.
	Stop func() error

	installer installer // see InstallerConfig
}

type options struct {
	crdDirs        []string
	crds           []*apiextensionsv1.CustomResourceDefinition
	schemeBuilders []func(*runtime.Scheme) error
	skipDefaultCRD bool
	startTimeout   time.Duration
	attachOutput   bool
	apiServerFlags [][]string
}

// Option configures Start and Main.
type Option func(*options)

// WithCRDDirs installs the CRDs found in dirs in addition to the project's
// own. Relative paths are taken from the module root. A missing directory is
// an error.
func WithCRDDirs(dirs ...string) Option {
	return func(o *options) { o.crdDirs = append(o.crdDirs, dirs...) }
}

// WithCRDs installs the given CRD objects.
func WithCRDs(crds ...*apiextensionsv1.CustomResourceDefinition) Option {
	return func(o *options) { o.crds = append(o.crds, crds...) }
}

// WithScheme adds types to the client's scheme, e.g. a generated AddToScheme.
func WithScheme(addToScheme ...func(*runtime.Scheme) error) Option {
	return func(o *options) { o.schemeBuilders = append(o.schemeBuilders, addToScheme...) }
}

// WithoutProjectCRDs does not install the CRDs in DefaultCRDDir.
func WithoutProjectCRDs() Option {
	return func(o *options) { o.skipDefaultCRD = true }
}

// WithAPIServerFlag sets a kube-apiserver flag, e.g.
// WithAPIServerFlag("enable-aggregator-routing", "true"), which makes the
// API server reach webhook Services through their endpoints instead of
// their cluster IP.
func WithAPIServerFlag(name string, values ...string) Option {
	return func(o *options) { o.apiServerFlags = append(o.apiServerFlags, append([]string{name}, values...)) }
}

// WithStartTimeout bounds the start of etcd and kube-apiserver (default 60 s).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// WithControlPlaneOutput copies etcd and kube-apiserver output to the test
// binary's stdout and stderr (also enabled by KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT=true).
func WithControlPlaneOutput() Option {
	return func(o *options) { o.attachOutput = true }
}

// Start starts etcd and kube-apiserver, installs the CRDs and returns the
// environment. It stops the environment when the test ends. It fails the
// test (never skips it) when the binaries are missing or the start fails.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	env, err := start(opts...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("testenv: stopping envtest: %v", err)
		}
	})
	return env
}

// Main starts one environment for all tests of a package, stores it in *env,
// runs the tests, stops the environment and exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
//
// When the environment cannot start, Main prints why (and the command that
// builds missing binaries) and exits with status 1.
func Main(m *testing.M, env **Env, opts ...Option) {
	os.Exit(runMain(m, env, opts...))
}

func runMain(m *testing.M, env **Env, opts ...Option) int {
	e, err := start(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stopping envtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// AssetsDir returns the folder envtest takes its binaries from:
// KUBEBUILDER_ASSETS when set, else the test bed folder of `make testbin`.
func AssetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	return testbin.Dir()
}

// binaryPath returns the path of name, honouring envtest's TEST_ASSET_*
// override, and checks that it is there.
func binaryPath(dir, name, overrideEnv string) (string, error) {
	if p := os.Getenv(overrideEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", overrideEnv, p, err)
		}
		return p, nil
	}
	if err := testbin.Check(dir, name); err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

func start(opts ...Option) (*Env, error) {
	o := options{startTimeout: 60 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}

	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	etcdPath, err := binaryPath(assets, testbin.Etcd, "TEST_ASSET_ETCD")
	if err != nil {
		return nil, err
	}
	apiServerPath, err := binaryPath(assets, testbin.KubeAPIServer, "TEST_ASSET_KUBE_APISERVER")
	if err != nil {
		return nil, err
	}

	root, err := testbin.ModuleRoot()
	if err != nil {
		return nil, err
	}
	var crdDirs []string
	if !o.skipDefaultCRD {
		if fi, err := os.Stat(filepath.Join(root, DefaultCRDDir)); err == nil && fi.IsDir() {
			crdDirs = append(crdDirs, filepath.Join(root, DefaultCRDDir))
		}
	}
	for _, dir := range o.crdDirs {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		crdDirs = append(crdDirs, dir)
	}

	scheme := runtime.NewScheme()
	builders := append([]func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme}, o.schemeBuilders...)
	for _, add := range builders {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}

	useExisting := false
	te := &envtest.Environment{
		Scheme:                   scheme,
		CRDDirectoryPaths:        crdDirs,
		CRDs:                     o.crds,
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		UseExistingCluster:       &useExisting,
		ControlPlaneStartTimeout: o.startTimeout,
		ControlPlaneStopTimeout:  30 * time.Second,
		AttachControlPlaneOutput: o.attachOutput,
	}
	te.ControlPlane.GetAPIServer().Path = apiServerPath
	for _, f := range o.apiServerFlags {
		te.ControlPlane.GetAPIServer().Configure().Set(f[0], f[1:]...)
	}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath}

	cfg, err := te.Start()
	if err != nil {
		// Start may have started etcd before failing.
		stopErr := te.Stop()
		return nil, errors.Join(fmt.Errorf("starting envtest (etcd %s, kube-apiserver %s): %w", etcdPath, apiServerPath, err), stopErr)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating the client: %w", err), te.Stop())
	}

	var once sync.Once
	var stopErr error
	return &Env{
		Config:      cfg,
		Client:      c,
		Scheme:      scheme,
		Environment: te,
		Stop: func() error {
			once.Do(func() { stopErr = te.Stop() })
			return stopErr
		},
	}, nil
}
