package testcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ferrydev/ferry/internal/freeport"
	"github.com/ferrydev/ferry/internal/testbin"
)

// Component names, in start order. They are also the binary names and the
// base names of the log and PID files.
var components = []string{
	testbin.Etcd,
	testbin.KubeAPIServer,
	testbin.KubeControllerManager,
	testbin.KubeScheduler,
	testbin.Kwok,
}

const (
	// DefaultNodeName is the name of the fake Node.
	DefaultNodeName = "fake-node"
	// FakeNodeAnnotation marks the Nodes that kwok manages.
	FakeNodeAnnotation = "kwok.x-k8s.io/node"

	serviceCIDR = "10.0.0.0/24"
	serviceIP   = "10.0.0.1"
)

// The fake Node's heartbeat and kube-controller-manager's patience must
// agree. kwok renews the Node's Lease every nodeLeaseDurationSeconds/4
// (10 s) and rewrites its status every 20–45 s (its default node-heartbeat
// stage). kube-controller-manager marks a Node NotReady when it heard
// neither for --node-monitor-grace-period (default 50 s); on a busy
// 2-core machine a late heartbeat then took the only Node down about once a
// minute ("Controller detected that all Nodes are not-Ready. Entering master
// disruption mode") and every running Pod with it, and kwok never made them
// Ready again. The grace period is therefore many heartbeats long: a Node
// that really stops (kwok killed) is noticed after it, which no test needs
// sooner.
const (
	nodeLeaseDurationSeconds = 40
	nodeMonitorGracePeriod   = 5 * time.Minute
)

// DisruptionMessage is what kube-controller-manager logs when it finds every
// Node not ready; the test bed is healthy only if its log never says it.
const DisruptionMessage = "Entering master disruption mode"

// Cluster is a running local control plane.
type Cluster struct {
	// Dir holds the kubeconfig, certificates, logs and PID files.
	Dir string
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// Config is the admin rest config.
	Config *rest.Config
	// NodeName is the name of the first fake Node.
	NodeName string
	// NodeNames are the names of every fake Node, NodeName first.
	NodeNames []string
	// Reused is true when Up found the cluster already running.
	Reused bool
}

// LogPath returns the path of a component's log file.
func (c *Cluster) LogPath(component string) string {
	return filepath.Join(c.Dir, component+".log")
}

type options struct {
	dir      string
	binDir   string
	timeout  time.Duration
	nodeName string
	nodes    int
	logf     func(format string, args ...any)
}

// Option configures Up, Down and Status.
type Option func(*options)

// WithDir sets the cluster folder (default DefaultDir()).
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithBinDir sets the folder holding the binaries (default testbin.Dir()).
func WithBinDir(dir string) Option { return func(o *options) { o.binDir = dir } }

// WithTimeout bounds how long Up waits for the cluster to be ready (default 2 minutes).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithNodeName sets the name of the fake Node (default DefaultNodeName).
func WithNodeName(name string) Option { return func(o *options) { o.nodeName = name } }

// MaxNodes bounds WithNodes.
const MaxNodes = 100

// NodePods is how many pods one fake Node holds (its pods capacity, the
// kubelet's default).
const NodePods = 110

// WithNodes sets how many fake Nodes Up creates (default 1, at most
// MaxNodes): the first is named by WithNodeName, the others NAME-2, NAME-3
// and so on. Each holds NodePods pods. A reused cluster keeps its Nodes.
func WithNodes(n int) Option { return func(o *options) { o.nodes = n } }

// NodeNames returns the names of n fake Nodes whose first is first.
func NodeNames(first string, n int) []string {
	names := []string{first}
	for i := 2; i <= n; i++ {
		names = append(names, first+"-"+strconv.Itoa(i))
	}
	return names
}

// WithLogf sets where progress messages go (default stderr).
func WithLogf(logf func(format string, args ...any)) Option {
	return func(o *options) { o.logf = logf }
}

// DefaultDir is $FERRY_CLUSTER_DIR, else ${FERRY_CACHE:-$HOME/.cache/ferry}/cluster.
func DefaultDir() (string, error) {
	if dir := os.Getenv("FERRY_CLUSTER_DIR"); dir != "" {
		return dir, nil
	}
	cache, err := testbin.CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "cluster"), nil
}

func resolve(opts []Option) (options, error) {
	o := options{
		timeout:  2 * time.Minute,
		nodeName: DefaultNodeName,
		nodes:    1,
		logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "cluster: "+format+"\n", args...)
		},
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.nodes < 1 || o.nodes > MaxNodes {
		return o, fmt.Errorf("testcluster: %d fake Nodes asked for; 1 to %d are supported", o.nodes, MaxNodes)
	}
	var err error
	if o.dir == "" {
		if o.dir, err = DefaultDir(); err != nil {
			return o, err
		}
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return o, err
	}
	return o, nil
}

// lock takes an exclusive lock on the cluster folder so that two Up or Down
// calls on one folder do not interleave. The returned func releases it.
func lock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// Up starts the cluster in the folder and waits until the API server is
// ready, every fake Node is Ready and the default service account exists. When
// the cluster is already running and healthy, Up returns it with Reused set.
// When part of an earlier cluster is still running, Up stops it first.
// On failure Up stops what it started and returns an error that includes the
// tail of the failing component's log.
func Up(ctx context.Context, opts ...Option) (*Cluster, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	if o.binDir == "" {
		if o.binDir, err = testbin.Dir(); err != nil {
			return nil, err
		}
	}
	if err := testbin.Check(o.binDir); err != nil {
		return nil, err
	}
	unlock, err := lock(o.dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	c := &Cluster{Dir: o.dir, Kubeconfig: filepath.Join(o.dir, "kubeconfig"), NodeName: o.nodeName, NodeNames: NodeNames(o.nodeName, o.nodes)}

	live := liveComponents(o.dir)
	if len(live) == len(components) {
		if cfg, err := healthy(ctx, c.Kubeconfig); err == nil {
			c.Config, c.Reused = cfg, true
			o.logf("already running in %s", o.dir)
			return c, nil
		}
	}
	if len(live) > 0 {
		o.logf("found a partly running or unhealthy cluster in %s (%v running); stopping it", o.dir, live)
		if err := stopAll(o); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := start(ctx, o, c); err != nil {
		if stopErr := stopAll(o); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return c, nil
}

func start(ctx context.Context, o options, c *Cluster) error {
	startedAt := time.Now()
	for _, sub := range []string{"etcd-data", "pki"} {
		if err := os.RemoveAll(filepath.Join(o.dir, sub)); err != nil {
			return err
		}
	}
	_ = os.Remove(c.Kubeconfig)

	ports, err := freeport.Ports(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)

	o.logf("generating certificates in %s", filepath.Join(o.dir, "pki"))
	p, err := makePKI(filepath.Join(o.dir, "pki"))
	if err != nil {
		return err
	}
	if err := writeKubeconfig(c.Kubeconfig, server, p); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	c.Config = cfg
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	bin := func(name string) string { return filepath.Join(o.binDir, name) }
	args := map[string][]string{
		testbin.Etcd: {
			"--name=default",
			"--data-dir=" + filepath.Join(o.dir, "etcd-data"),
			"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=default=" + peerURL,
			"--unsafe-no-fsync=true",
		},
		testbin.KubeAPIServer: {
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(apiPort),
			"--tls-cert-file=" + p.servingCert, "--tls-private-key-file=" + p.servingKey,
			"--client-ca-file=" + p.caCert,
			"--service-account-issuer=" + server,
			"--service-account-key-file=" + p.saPub,
			"--service-account-signing-key-file=" + p.saKey,
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=RBAC",
			"--allow-privileged=true",
			"--endpoint-reconciler-type=none",
		},
		testbin.KubeControllerManager: {
			"--kubeconfig=" + c.Kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port=0",
			"--leader-elect=false",
			"--service-account-private-key-file=" + p.saKey,
			"--root-ca-file=" + p.caCert,
			"--controllers=*",
			"--node-monitor-grace-period=" + nodeMonitorGracePeriod.String(),
		},
		testbin.KubeScheduler: {
			"--kubeconfig=" + c.Kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port=0",
			"--leader-elect=false",
		},
		testbin.Kwok: {
			"--kubeconfig=" + c.Kubeconfig,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + FakeNodeAnnotation + "=fake",
			"--manage-nodes-with-label-selector=",
			"--node-ip=127.0.0.1",
			"--cidr=10.244.0.1/24",
			"--node-lease-duration-seconds=" + strconv.Itoa(nodeLeaseDurationSeconds),
		},
	}

	procs := map[string]*process{}
	launch := func(name string) error {
		o.logf("starting %s (log %s)", name, c.LogPath(name))
		pr, err := startProcess(o.dir, name, bin(name), args[name]...)
		if err != nil {
			return err
		}
		procs[name] = pr
		return nil
	}
	// wait polls check until it succeeds; it fails at once when a started
	// process exits, and at the deadline with the tail of blame's log.
	wait := func(what, blame string, check func(context.Context) error) error {
		var last error
		for {
			for _, name := range components {
				if pr := procs[name]; pr != nil {
					if gone, why := pr.hasExited(); gone {
						return fmt.Errorf("%s %w while waiting for %s; last lines of %s:\n%s",
							name, why, what, pr.logPath, Tail(pr.logPath, 30))
					}
				}
			}
			if last = check(ctx); last == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("timed out after %v waiting for %s (last error: %w); last lines of %s:\n%s",
					o.timeout, what, last, c.LogPath(blame), Tail(c.LogPath(blame), 30))
			case <-time.After(250 * time.Millisecond):
			}
		}
	}

	if err := launch(testbin.Etcd); err != nil {
		return err
	}
	if err := wait("etcd health", testbin.Etcd, func(ctx context.Context) error {
		return etcdHealthy(ctx, etcdURL)
	}); err != nil {
		return err
	}
	if err := launch(testbin.KubeAPIServer); err != nil {
		return err
	}
	if err := wait("kube-apiserver /readyz", testbin.KubeAPIServer, func(ctx context.Context) error {
		return readyz(ctx, cs)
	}); err != nil {
		return err
	}
	// kwok and Ready Nodes before kube-controller-manager: its node
	// lifecycle controller, started while no Node is Ready yet, finds every
	// Node not ready on its first pass and logs DisruptionMessage.
	if err := launch(testbin.Kwok); err != nil {
		return err
	}
	for _, name := range c.NodeNames {
		if err := createNode(ctx, cs, name); err != nil {
			return err
		}
	}
	for _, name := range c.NodeNames {
		if err := wait("Node "+name+" to be Ready", testbin.Kwok, func(ctx context.Context) error {
			return nodeReady(ctx, cs, name)
		}); err != nil {
			return err
		}
	}
	for _, name := range components[2:] {
		if name == testbin.Kwok {
			continue
		}
		if err := launch(name); err != nil {
			return err
		}
	}
	if err := wait("service account default/default", testbin.KubeControllerManager, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	o.logf("ready in %.1f s; kubeconfig: %s", time.Since(startedAt).Seconds(), c.Kubeconfig)
	return nil
}

// Down stops the cluster in the folder: each component by the process id in
// its PID file, in reverse start order, with SIGTERM and, after a grace
// period, SIGKILL. It removes the PID files, etcd's data and the kubeconfig
// and keeps the logs. Down on a stopped cluster does nothing.
func Down(opts ...Option) error {
	o, err := resolve(opts)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.dir); errors.Is(err, os.ErrNotExist) {
		o.logf("nothing to stop: %s does not exist", o.dir)
		return nil
	}
	unlock, err := lock(o.dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := stopAll(o); err != nil {
		return err
	}
	for _, p := range []string{"etcd-data", "kubeconfig"} {
		if err := os.RemoveAll(filepath.Join(o.dir, p)); err != nil {
			return err
		}
	}
	o.logf("stopped every component in %s", o.dir)
	return nil
}

// stopAll stops every component with a PID file, last started first.
func stopAll(o options) error {
	var errs []error
	for i := len(components) - 1; i >= 0; i-- {
		name := components[i]
		pid, err := readPID(o.dir, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if pid == 0 {
			continue
		}
		if running(pid, name) {
			killed, err := stopPID(pid, name, 15*time.Second)
			switch {
			case err != nil:
				errs = append(errs, err)
				continue
			case killed:
				o.logf("stopped %s (pid %d) with SIGKILL after SIGTERM was ignored", name, pid)
			default:
				o.logf("stopped %s (pid %d)", name, pid)
			}
		}
		if err := os.Remove(pidPath(o.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ComponentStatus describes one component of a cluster folder.
type ComponentStatus struct {
	Name    string
	PID     int // 0 when there is no PID file
	Running bool
	Log     string
}

// Status reports each component's PID file and whether that process runs.
func Status(opts ...Option) ([]ComponentStatus, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	var out []ComponentStatus
	for _, name := range components {
		pid, err := readPID(o.dir, name)
		if err != nil {
			return nil, err
		}
		out = append(out, ComponentStatus{Name: name, PID: pid, Running: running(pid, name), Log: filepath.Join(o.dir, name+".log")})
	}
	return out, nil
}

// liveComponents lists the components whose PID file names a running process.
func liveComponents(dir string) []string {
	var live []string
	for _, name := range components {
		if pid, err := readPID(dir, name); err == nil && running(pid, name) {
			live = append(live, name)
		}
	}
	return live
}

// healthy checks a running cluster through its kubeconfig.
func healthy(ctx context.Context, kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := readyz(ctx, cs); err != nil {
		return nil, err
	}
	cfg.Timeout = 0
	return cfg, nil
}

func writeKubeconfig(path, server string, p *pki) error {
	read := func(path string) []byte {
		b, _ := os.ReadFile(path)
		return b
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["ferry"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: read(p.caCert)}
	cfg.AuthInfos["ferry-admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: read(p.adminCert),
		ClientKeyData:         read(p.adminKey),
	}
	cfg.Contexts["ferry"] = &clientcmdapi.Context{Cluster: "ferry", AuthInfo: "ferry-admin", Namespace: metav1.NamespaceDefault}
	cfg.CurrentContext = "ferry"
	return clientcmd.WriteToFile(*cfg, path)
}

func etcdHealthy(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd /health: %s", resp.Status)
	}
	return nil
}

func readyz(ctx context.Context, cs kubernetes.Interface) error {
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %w: %s", err, body)
	}
	return nil
}

func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(NodePods, resource.DecimalSI),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{FakeNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: resources, Allocatable: resources},
	}
	_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Node %s: %w", name, err)
	}
	return nil
}

func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s Ready=%s: %s", name, c.Status, c.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", name)
}
