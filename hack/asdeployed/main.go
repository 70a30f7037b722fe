// Command asdeployed brings Ferry up on a cluster as its manifests deploy
// it, with the installer and catalogd as processes on this machine: the
// local cluster's kwok node runs no containers. hack/deploy.sh (make deploy,
// make undeploy) runs it; docs/deploy.md describes it.
//
// Usage:
//
//	go run ./hack/asdeployed -manifests FILE [-dir DIR] [-bin-dir bin] up
//	go run ./hack/asdeployed [-dir DIR] down|status
//
// up applies the rendered manifests (all but the installer's and catalogd's
// Deployments), mints a token for the installer's ServiceAccount with the
// TokenRequest API, writes a kubeconfig for it and starts both binaries
// with the arguments and environment of their Deployments. The volumes
// the containers mount (Secrets, ConfigMaps, emptyDirs, claims) become
// folders under DIR/volumes/DEPLOYMENT, and the arguments naming them are
// rewritten to those; the listen addresses are rewritten to 127.0.0.1
// (-catalogd-listen and so on); every rewrite is printed. The admin
// credentials come from KUBECONFIG and are used only to apply, to read the
// volumes' Secrets and ConfigMaps and to request the token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/testbin"
	"github.com/ferrydev/ferry/internal/testcluster"
)

// Where Ferry's manifests deploy it, and the binaries' names.
const (
	namespace           = asdeployed.Namespace
	installerDeployment = asdeployed.InstallerDeployment
	catalogdDeployment  = asdeployed.CatalogdDeployment
	installerName       = "installer"
	catalogdName        = "catalogd"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "asdeployed: error: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	dir, manifests, binDir            string
	catalogdListen, catalogdMetrics   string
	installerMetrics, installerProbes string
	tokenTTL, timeout                 time.Duration
}

func run() error {
	cache, err := testbin.CacheDir()
	if err != nil {
		return err
	}
	var c config
	flag.StringVar(&c.dir, "dir", filepath.Join(cache, "deploy"), "folder for the processes' logs, PID files, volumes and the installer's kubeconfig")
	flag.StringVar(&c.manifests, "manifests", "", "rendered manifests (kubectl kustomize config/default, helm template); up only")
	flag.StringVar(&c.binDir, "bin-dir", "bin", "folder holding the installer and catalogd binaries")
	flag.StringVar(&c.catalogdListen, "catalogd-listen", "127.0.0.1:50051", "catalogd's --listen, rewritten")
	flag.StringVar(&c.catalogdMetrics, "catalogd-metrics-listen", "127.0.0.1:9090", "catalogd's --metrics-listen, rewritten")
	flag.StringVar(&c.installerMetrics, "installer-metrics-bind-address", "127.0.0.1:8080", "the installer's --metrics-bind-address, rewritten")
	flag.StringVar(&c.installerProbes, "installer-health-probe-bind-address", "127.0.0.1:8081", "the installer's --health-probe-bind-address, rewritten")
	flag.DurationVar(&c.tokenTTL, "token-ttl", 24*time.Hour, "lifetime of the installer's token; run up again to renew it")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Minute, "how long up waits for the processes to be ready")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] up|down|status\n", filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		return fmt.Errorf("expected one command, got %d", flag.NArg())
	}
	switch cmd := flag.Arg(0); cmd {
	case "up":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return up(ctx, c)
	case "down":
		return down(c)
	case "status":
		return status(c)
	default:
		flag.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func up(ctx context.Context, c config) error {
	if c.manifests == "" {
		return errors.New("up needs -manifests")
	}
	f, err := os.Open(c.manifests)
	if err != nil {
		return err
	}
	m, err := asdeployed.Parse(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", c.manifests, err)
	}
	admin, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	installer, err := m.Command(namespace, installerDeployment,
		asdeployed.WithFlag("--metrics-bind-address", c.installerMetrics),
		asdeployed.WithFlag("--health-probe-bind-address", c.installerProbes))
	if err != nil {
		return err
	}
	catalogd, err := m.Command(namespace, catalogdDeployment,
		asdeployed.WithFlag("--listen", c.catalogdListen),
		asdeployed.WithFlag("--metrics-listen", c.catalogdMetrics))
	if err != nil {
		return err
	}
	if !installer.APIAccess {
		return fmt.Errorf("the Deployment %s/%s mounts no service account token; the installer needs one", namespace, installerDeployment)
	}

	// Stop what an earlier up started: its flags or token may be stale.
	if err := down(c); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	fmt.Printf("asdeployed: applying %s (all but Deployments %s/%s and %s/%s, which run here as processes)\n",
		c.manifests, namespace, installerDeployment, namespace, catalogdDeployment)
	if err := asdeployed.Apply(ctx, admin, m.Objects, asdeployed.WithFieldManager("ferry-deploy"),
		asdeployed.Skip(asdeployed.IsDeployment(namespace, installerDeployment)),
		asdeployed.Skip(asdeployed.IsDeployment(namespace, catalogdDeployment))); err != nil {
		return err
	}
	// The volumes catalogd's Deployment mounts (config/publishing: the
	// claim catalogd-data, the Secrets catalogd-tls and
	// catalogd-publish-tokens), read with the admin's credentials, as the
	// kubelet reads them with its own: catalogd has no API access.
	src, err := asdeployed.ClusterSource(admin)
	if err != nil {
		return err
	}
	volumes := filepath.Join(c.dir, "volumes")
	for _, cmd := range []*asdeployed.Command{installer, catalogd} {
		if err := cmd.MountVolumes(ctx, src, filepath.Join(volumes, cmd.Deployment)); err != nil {
			return err
		}
		for _, mnt := range cmd.Mounts {
			fmt.Printf("asdeployed: %s: volume %s (%s %s) at %s is %s\n", cmd.Deployment, mnt.Volume, mnt.Kind, mnt.Object, mnt.MountPath, mnt.Local)
		}
	}
	saCfg, err := asdeployed.ServiceAccountConfig(ctx, admin, namespace, installer.ServiceAccount, c.tokenTTL)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(c.dir, "installer.kubeconfig")
	if err := asdeployed.WriteKubeconfig(kubeconfig, saCfg); err != nil {
		return err
	}
	fmt.Printf("asdeployed: the installer runs as %s (token valid %v, kubeconfig %s)\n",
		asdeployed.Username(namespace, installer.ServiceAccount), c.tokenTTL, kubeconfig)

	cat, err := start(c, catalogdName, catalogd, "KUBECONFIG="+filepath.Join(c.dir, "no-api-access"))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, cat, "catalogd to listen on "+c.catalogdListen, func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.catalogdListen)
		if err == nil {
			_ = conn.Close()
		}
		return err
	}); err != nil {
		return err
	}
	inst, err := start(c, installerName, installer, "KUBECONFIG="+kubeconfig)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, inst, "the installer's /readyz on "+c.installerProbes, func(ctx context.Context) error {
		return httpOK(ctx, "http://"+c.installerProbes+"/readyz")
	}); err != nil {
		return err
	}
	fmt.Printf("asdeployed: Ferry is up: catalogd (pid %d) on %s, the installer (pid %d); logs in %s\n", cat.Pid(), c.catalogdListen, inst.Pid(), c.dir)
	return nil
}

func start(c config, name string, cmd *asdeployed.Command, extraEnv ...string) (*testcluster.Detached, error) {
	bin, err := filepath.Abs(filepath.Join(c.binDir, name))
	if err != nil {
		return nil, err
	}
	if bin, err = cmd.Binary(bin); err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (make build writes it)", err)
	}
	for _, r := range cmd.Rewritten {
		fmt.Printf("asdeployed: %s: rewritten for a local process: %s\n", name, r)
	}
	fmt.Printf("asdeployed: starting %s %s\n", bin, strings.Join(cmd.Args, " "))
	return testcluster.StartDetached(c.dir, name, bin, append(append([]string(nil), cmd.Env...), extraEnv...), cmd.Args...)
}

func waitFor(ctx context.Context, p *testcluster.Detached, what string, check func(context.Context) error) error {
	var last error
	for {
		if gone, why := p.Exited(); gone {
			return fmt.Errorf("%s: the process %w; last lines of %s:\n%s", what, why, p.LogPath(), testcluster.Tail(p.LogPath(), 30))
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s (%w); last lines of %s:\n%s", what, last, p.LogPath(), testcluster.Tail(p.LogPath(), 30))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// down stops the installer first (it may still be finishing work), then
// catalogd.
func down(c config) error {
	var errs []error
	for _, name := range []string{installerName, catalogdName} {
		stopped, err := testcluster.StopDetached(c.dir, name, 30*time.Second)
		if err != nil {
			errs = append(errs, err)
		} else if stopped {
			fmt.Printf("asdeployed: stopped %s\n", name)
		}
	}
	return errors.Join(errs...)
}

func status(c config) error {
	for _, name := range []string{catalogdName, installerName} {
		pid, err := testcluster.RunningPID(c.dir, name)
		if err != nil {
			return err
		}
		state := "not running"
		if pid != 0 {
			state = fmt.Sprintf("running (pid %d)", pid)
		}
		fmt.Printf("%s %s, log %s\n", name, state, filepath.Join(c.dir, name+".log"))
	}
	return nil
}
