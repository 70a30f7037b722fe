package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ferrydev/ferry/internal/testbin"
	"github.com/ferrydev/ferry/internal/testcluster"
)

// Framework is the state shared by the tests of one run.
type Framework struct {
	// RunDir is this run's folder; see the package documentation.
	RunDir string
	// LogDir holds the output of processes started with StartProcess.
	LogDir string
	// Cluster is the running cluster.
	Cluster *testcluster.Cluster
	// Config is an admin rest config for the cluster.
	Config *rest.Config
	// Clientset is a client-go clientset for the cluster.
	Clientset kubernetes.Interface
	// Client is a controller-runtime client with the client-go scheme.
	Client client.Client
	// ModuleRoot is the root folder of this module.
	ModuleRoot string

	builds   sync.Map // package path -> *build
	logNames sync.Map // log file base name -> struct{}
	deployed deployedOnce

	metaOnce sync.Once
	meta     metadata.Interface
	metaErr  error
}

type options struct {
	clusterOpts []testcluster.Option
	upTimeout   time.Duration
	scheme      *runtime.Scheme
}

// Option configures Main.
type Option func(*options)

// WithClusterOptions passes options to testcluster.Up.
func WithClusterOptions(opts ...testcluster.Option) Option {
	return func(o *options) { o.clusterOpts = append(o.clusterOpts, opts...) }
}

// WithScheme sets the scheme of Framework.Client (default: client-go's types).
func WithScheme(s *runtime.Scheme) Option { return func(o *options) { o.scheme = s } }

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...) }

// Main brings the cluster up, stores the framework in *f, runs the tests,
// brings the cluster down and exits with the tests' status. Clusters left
// running by an earlier run that was killed are stopped first.
func Main(m *testing.M, f **Framework, opts ...Option) {
	os.Exit(runMain(m, f, opts...))
}

func runMain(m *testing.M, fp **Framework, opts ...Option) int {
	// controller-runtime's clients log through its global logger, and
	// print a stack dump instead when none was set: the tests' clients
	// (also of clusters a test brings up itself) log like the framework.
	ctrllog.SetLogger(funcr.New(func(prefix, args string) { logf("%s %s", prefix, args) }, funcr.Options{}))
	o := options{upTimeout: 3 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	root, err := testbin.ModuleRoot()
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	binDir, err := testbin.Dir()
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	if err := testbin.Check(binDir); err != nil {
		logf("error: %v", err)
		return 1
	}
	base, err := baseDir()
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	stopLeftovers(base)
	if err := os.MkdirAll(base, 0o755); err != nil {
		logf("error: %v", err)
		return 1
	}
	runDir, err := os.MkdirTemp(base, "run-"+time.Now().Format("20060102-150405")+"-")
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	// Held until this process exits: runs going on at the same time (make
	// test runs test-e2e and test-e2e-helm at once) leave this run's cluster
	// alone; only a run whose process is gone leaves its lock free.
	owner, err := lockOwner(runDir)
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	defer owner.Close()
	clusterDir := filepath.Join(runDir, "cluster")
	clusterOpts := append([]testcluster.Option{
		testcluster.WithDir(clusterDir),
		testcluster.WithBinDir(binDir),
		testcluster.WithTimeout(o.upTimeout),
		testcluster.WithLogf(logf),
	}, o.clusterOpts...)
	down := func() {
		if err := testcluster.Down(clusterOpts...); err != nil {
			logf("error stopping the cluster: %v", err)
		}
	}

	// Stop the cluster on Ctrl-C or SIGTERM too.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		logf("%v: stopping the cluster; logs kept in %s", sig, runDir)
		down()
		os.Exit(130)
	}()

	logf("starting the cluster in %s", clusterDir)
	c, err := testcluster.Up(context.Background(), clusterOpts...)
	if err != nil {
		logf("error: %v", err)
		down()
		logf("logs kept in %s", runDir)
		return 1
	}
	f, err := newFramework(root, runDir, c, o)
	if err != nil {
		logf("error: %v", err)
		down()
		return 1
	}
	*fp = f

	code := m.Run()

	down()
	if code != 0 || os.Getenv("FERRY_E2E_KEEP") == "1" {
		logf("logs kept in %s", runDir)
	} else if err := os.RemoveAll(runDir); err != nil {
		logf("error removing %s: %v", runDir, err)
	}
	return code
}

func newFramework(root, runDir string, c *testcluster.Cluster, o options) (*Framework, error) {
	logDir := filepath.Join(runDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	scheme := o.scheme
	if scheme == nil {
		scheme = clientgoscheme.Scheme
	}
	cl, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &Framework{
		RunDir: runDir, LogDir: logDir, Cluster: c, Config: c.Config,
		Clientset: cs, Client: cl, ModuleRoot: root,
	}, nil
}

func baseDir() (string, error) {
	if dir := os.Getenv("FERRY_E2E_DIR"); dir != "" {
		return dir, nil
	}
	cache, err := testbin.CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "e2e"), nil
}

// ownerLock is the file in a run folder that the run's process holds an
// exclusive lock on while it runs (flock: the kernel lets go of it when the
// process exits, however it ends).
const ownerLock = "owner.lock"

// lockOwner takes the lock of the run folder dir for this process; closing
// the returned file releases it.
func lockOwner(dir string) (*os.File, error) {
	lf, err := os.OpenFile(filepath.Join(dir, ownerLock), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("locking run folder %s: %w", dir, err)
	}
	return lf, nil
}

// stopLeftovers stops clusters of earlier runs that were killed before they
// could stop their cluster (their PID files are still there). A run whose
// process still holds its folder's lock is running at the same time, and
// its cluster is left alone.
func stopLeftovers(base string) {
	pidFiles, _ := filepath.Glob(filepath.Join(base, "run-*", "cluster", "*.pid"))
	seen := map[string]bool{}
	for _, p := range pidFiles {
		dir := filepath.Dir(p)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		runDir := filepath.Dir(dir)
		lf, err := lockOwner(runDir)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			logf("leaving the cluster in %s alone: its run is still going on", dir)
			continue
		}
		if err != nil {
			logf("error: %v", err)
			continue
		}
		logf("stopping a cluster left by an earlier run in %s", dir)
		if err := testcluster.Down(testcluster.WithDir(dir), testcluster.WithLogf(logf)); err != nil {
			logf("error: %v", err)
		}
		lf.Close()
	}
}

// Kubeconfig is the path of the cluster's admin kubeconfig.
func (f *Framework) Kubeconfig() string { return f.Cluster.Kubeconfig }

// Kubectl runs kubectl against the cluster and returns its combined output.
func (f *Framework) Kubectl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl not found in PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", f.Kubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

// CreateNamespace creates a namespace with a generated name and deletes it
// when the test ends; see deleteNamespace.
func (f *Framework) CreateNamespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
	ns, err := f.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { f.deleteNamespace(t, ns.Name) })
	return ns.Name
}

// namespaceCleanupTimeout bounds the wait of deleteNamespace.
const namespaceCleanupTimeout = 2 * time.Minute

// deleteNamespace deletes the namespace and waits until nothing in it
// holds a finalizer any more, while the processes the test started (and
// registered for cleanup before the namespace) still run: objects with
// finalizers in it, such as Subscriptions, must be finalized by them, in
// a namespace being deleted, not by the next test's processes. What is
// left (pods, Deployments, Revisions, events) holds nothing up; the
// namespace controller removes it in the background. Waiting for the
// namespace itself to be gone cost 5-16 s a test: the controller starts 5 s
// after the deletion and, while content remains, looks again only after
// half the longest grace period of its pods or 8 s for finalizers.
func (f *Framework) deleteNamespace(t testing.TB, ns string) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	if err := f.Clientset.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Errorf("deleting namespace %s: %v", ns, err)
		return
	}
	resources, err := f.namespacedResources()
	if err != nil {
		// Without the list of kinds, wait for the namespace itself.
		t.Logf("namespace %s: %v; waiting until it is gone", ns, err)
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, namespaceCleanupTimeout, true, func(ctx context.Context) (bool, error) {
			_, err := f.Clientset.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if err == nil {
				return false, nil
			}
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
		if err != nil {
			t.Logf("namespace %s still terminating after %s: %v", ns, namespaceCleanupTimeout, err)
		}
		return
	}
	var holding []string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, namespaceCleanupTimeout, true, func(ctx context.Context) (bool, error) {
		// A namespace being deleted takes no new objects, so only kinds
		// that held finalizers at the last look can still hold any.
		left, objects, listErr := f.holdingFinalizers(ctx, ns, resources)
		if listErr != nil {
			holding = []string{listErr.Error()}
			return false, nil //nolint:nilerr // a failed list is retried until the timeout, whose message names it
		}
		resources, holding = left, objects
		return len(resources) == 0, nil
	})
	if err != nil {
		t.Logf("namespace %s: still held by finalizers after %s: %s", ns, namespaceCleanupTimeout, strings.Join(holding, ", "))
		return
	}
	t.Logf("namespace %s deleted; nothing in it holds a finalizer after %s", ns, time.Since(start).Round(10*time.Millisecond))
}

// namespacedResources lists the namespaced resources the API server
// serves that can be listed, in their preferred versions.
func (f *Framework) namespacedResources() ([]schema.GroupVersionResource, error) {
	lists, err := f.Clientset.Discovery().ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discovering the namespaced resources: %w", err)
	}
	// A group that failed discovery (an aggregated API that is down) has
	// nothing in a test's namespace.
	return listable(lists)
}

// listable returns the resources of lists that can be listed, without
// subresources.
func listable(lists []*metav1.APIResourceList) ([]schema.GroupVersionResource, error) {
	var out []schema.GroupVersionResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, fmt.Errorf("discovery: group version %q: %w", l.GroupVersion, err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			out = append(out, gv.WithResource(r.Name))
		}
	}
	return out, nil
}

// holdingFinalizers returns the resources of which some object in ns still
// holds a finalizer, and those objects, as resource/name [finalizers].
func (f *Framework) holdingFinalizers(ctx context.Context, ns string, resources []schema.GroupVersionResource) ([]schema.GroupVersionResource, []string, error) {
	mc, err := f.metadataClient()
	if err != nil {
		return resources, nil, err
	}
	var left []schema.GroupVersionResource
	var objects []string
	for _, r := range resources {
		list, err := mc.Resource(r).Namespace(ns).List(ctx, metav1.ListOptions{})
		switch {
		case apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err):
			// The kind is gone (its CRD was deleted): so are its objects.
			continue
		case err != nil:
			return resources, nil, fmt.Errorf("listing %s in %s: %w", r.GroupResource(), ns, err)
		}
		held := false
		for _, o := range list.Items {
			if len(o.Finalizers) > 0 {
				held = true
				objects = append(objects, fmt.Sprintf("%s/%s %v", r.GroupResource(), o.Name, o.Finalizers))
			}
		}
		if held {
			left = append(left, r)
		}
	}
	return left, objects, nil
}

// The metadata client's rate limit: a namespace cleanup lists every
// namespaced kind (~50) once, which the default of 5 requests a second
// (burst 10) stretched to 8 s.
const (
	cleanupQPS   = 100
	cleanupBurst = 100
)

func (f *Framework) metadataClient() (metadata.Interface, error) {
	f.metaOnce.Do(func() {
		cfg := rest.CopyConfig(f.Config)
		cfg.QPS, cfg.Burst = cleanupQPS, cleanupBurst
		f.meta, f.metaErr = metadata.NewForConfig(cfg)
	})
	return f.meta, f.metaErr
}

type build struct {
	once sync.Once
	path string
	err  error
}

// BinDirEnv names a folder that BuildBinary builds into instead of the
// run's bin/, shared by end-to-end runs going on at the same time (make test
// runs three): each binary is built under a lock of its own, and go build
// finds a binary that a run built before up to date and does not link it
// again. Every run of one checkout builds the same binaries; set it only
// for runs of one checkout that nothing edits while they run.
const BinDirEnv = "FERRY_E2E_BIN_DIR"

// BuildBinary builds a main package of this module (e.g. "./cmd/catalogd")
// once per run and returns the binary's path. Later calls with the same
// package return the same binary.
func (f *Framework) BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := f.builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir := filepath.Join(f.RunDir, "bin")
		if shared := os.Getenv(BinDirEnv); shared != "" {
			dir = shared
		}
		b.path, b.err = goBuild(f.ModuleRoot, dir, pkg)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// goBuild builds pkg into dir/<base name of pkg>, holding dir/.<name>.lock
// while it does.
func goBuild(root, dir, pkg string) (string, error) {
	name := filepath.Base(pkg)
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lf, err := os.OpenFile(filepath.Join(dir, "."+name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking the build of %s in %s: %w", pkg, dir, err)
	}
	cmd := exec.Command("go", "build", "-o", path, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s %s: %w\n%s", path, pkg, err, out)
	}
	return path, nil
}

// Process is a process started with StartProcess.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	stop    sync.Once
	stopErr error
}

// ProcessSpec describes a process for StartProcessSpec.
type ProcessSpec struct {
	// Name names the log file (<LogDir>/<Name>.log) and messages.
	Name string
	// Path is the program; Args its arguments.
	Path string
	Args []string
	// Env is added to the test's environment, which already has KUBECONFIG
	// set to the cluster's admin kubeconfig.
	Env []string
	// Dir is the working folder (default: the module root).
	Dir string
}

// StartProcess starts argv[0] with the arguments argv[1:]; see StartProcessSpec.
func (f *Framework) StartProcess(t testing.TB, name string, argv ...string) *Process {
	t.Helper()
	if len(argv) == 0 {
		t.Fatalf("StartProcess %s: no program given", name)
	}
	return f.StartProcessSpec(t, ProcessSpec{Name: name, Path: argv[0], Args: argv[1:]})
}

// StartProcessSpec starts a process whose stdout and stderr go to a log file
// in LogDir. When the test ends it is stopped with SIGTERM and, after 10 s,
// SIGKILL; when the test failed, the tail of its log is printed.
func (f *Framework) StartProcessSpec(t testing.TB, spec ProcessSpec) *Process {
	t.Helper()
	logPath := f.logPath(spec.Name)
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("StartProcess %s: %v", spec.Name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "# %s %s\n", spec.Path, strings.Join(spec.Args, " "))

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = f.ModuleRoot
	}
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+f.Kubeconfig()), spec.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("StartProcess %s: %v", spec.Name, err)
	}
	p := &Process{Name: spec.Name, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Logf("started %s (pid %d), log %s", spec.Name, cmd.Process.Pid, logPath)
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping %s: %v", spec.Name, err)
		}
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", logPath, p.Tail(50))
		}
	})
	return p
}

func (f *Framework) logPath(name string) string {
	base := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == os.PathSeparator {
			return '_'
		}
		return r
	}, name)
	for i := 1; ; i++ {
		candidate := base
		if i > 1 {
			candidate = fmt.Sprintf("%s-%d", base, i)
		}
		if _, loaded := f.logNames.LoadOrStore(candidate, struct{}{}); !loaded {
			return filepath.Join(f.LogDir, candidate+".log")
		}
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited and, if so, its wait error
// (nil for exit status 0).
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.exited:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string { return testcluster.Tail(p.LogPath, n) }

// Stop sends SIGTERM to the process group, waits up to 10 s, then sends
// SIGKILL. It returns nil when the process is gone, whatever its exit status.
func (p *Process) Stop() error {
	p.stop.Do(func() {
		if exited, _ := p.Exited(); exited {
			return
		}
		pgid := -p.cmd.Process.Pid
		if err := syscall.Kill(pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = err
			return
		}
		select {
		case <-p.exited:
			return
		case <-time.After(10 * time.Second):
		}
		if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = err
			return
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.stopErr = fmt.Errorf("%s (pid %d) still running after SIGKILL", p.Name, p.Pid())
		}
	})
	return p.stopErr
}
