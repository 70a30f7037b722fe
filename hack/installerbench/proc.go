package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/testcluster"
)

// tokenTTL outlives the longest run: three phases at their bound.
const tokenTTL = 4 * time.Hour

// process is catalogd or the installer, run as its Deployment runs it.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// deployedSpec says which Deployment of the manifests to run and how.
type deployedSpec struct {
	name       string
	binary     string
	deployment string
	rewrite    []asdeployed.CommandOption
	extraArgs  []string
}

// startDeployed runs a Deployment's container as a local process: its
// arguments and environment, its volumes as folders under dir/volumes,
// and the identity of its ServiceAccount (a TokenRequest token; no
// credentials at all when the pod mounts no token).
func startDeployed(ctx context.Context, admin *rest.Config, m *asdeployed.Manifests, dir string, spec deployedSpec) (*process, error) {
	cmd, err := m.Command(asdeployed.Namespace, spec.deployment, spec.rewrite...)
	if err != nil {
		return nil, err
	}
	src, err := asdeployed.ClusterSource(admin)
	if err != nil {
		return nil, err
	}
	if err := cmd.MountVolumes(ctx, src, filepath.Join(dir, "volumes", spec.name)); err != nil {
		return nil, err
	}
	bin, err := cmd.Binary(spec.binary)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "no-api-access")
	if cmd.APIAccess {
		cfg, err := asdeployed.ServiceAccountConfig(ctx, admin, asdeployed.Namespace, cmd.ServiceAccount, tokenTTL)
		if err != nil {
			return nil, fmt.Errorf("the identity of Deployment %s/%s: %w", asdeployed.Namespace, spec.deployment, err)
		}
		kubeconfig = filepath.Join(dir, "kubeconfig-"+cmd.ServiceAccount)
		if err := asdeployed.WriteKubeconfig(kubeconfig, cfg); err != nil {
			return nil, err
		}
	}
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") {
			env = append(env, e)
		}
	}
	env = append(append(env, cmd.Env...), "KUBECONFIG="+kubeconfig)
	return startProcess(dir, spec.name, bin, append(cmd.Args, spec.extraArgs...), env)
}

func startProcess(dir, name, bin string, args, env []string) (*process, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "# %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	logf("started %s (pid %d), log %s", name, cmd.Process.Pid, logPath)
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// alive fails when the process has exited, with the tail of its log.
func (p *process) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%w); last lines of %s:\n%s", p.name, p.waitErr, p.logPath, testcluster.Tail(p.logPath, 20))
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group and SIGKILL after 10 s.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := syscall.Kill(-p.pid(), syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	if err := syscall.Kill(-p.pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	<-p.exited
	return nil
}

// peakRSS is the process's VmHWM (peak resident set) in bytes.
func (p *process) peakRSS() (int64, error) {
	path := "/proc/" + strconv.Itoa(p.pid()) + "/status"
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		if !ok {
			return 0, fmt.Errorf("%s: VmHWM %q is not in kB", path, rest)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(kb), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: VmHWM %q: %w", path, rest, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("%s has no VmHWM line", path)
}

// forbidden returns the lines of the process's log in which the API
// server refused a request: a process run as deployed must have none.
func (p *process) forbidden() ([]string, error) {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return asdeployed.Forbidden(f)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, the process dies or ctx ends.
func waitHTTP(ctx context.Context, p *process, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if err := p.alive(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w", p.name, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
