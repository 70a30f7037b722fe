package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/asdeployed"
)

// Where Ferry's manifests deploy it (see asdeployed).
const (
	// Namespace is Ferry's namespace.
	Namespace = asdeployed.Namespace
	// InstallerDeployment is the installer's Deployment.
	InstallerDeployment = asdeployed.InstallerDeployment
	// CatalogdDeployment is catalogd's Deployment.
	CatalogdDeployment = asdeployed.CatalogdDeployment
)

// ManifestsEnv names a file of rendered manifests to deploy instead of
// `kubectl kustomize config/default` (e.g. the output of helm template).
const ManifestsEnv = "FERRY_E2E_MANIFESTS"

// tokenTTL outlives the e2e run (hack/test-e2e.sh gives go test 30 minutes).
const tokenTTL = 2 * time.Hour

// Deployed is Ferry's rendered manifests applied to the cluster, but for
// the Deployments that run as local processes.
type Deployed struct {
	// Manifests are the rendered manifests.
	Manifests *asdeployed.Manifests
	// Source says where they came from.
	Source string

	mu          sync.Mutex
	kubeconfigs map[asdeployed.Subject]string
}

type deployedOnce struct {
	once sync.Once
	d    *Deployed
	err  error
}

// Deployed renders Ferry's manifests and applies them once per run:
// CRDs, ServiceAccounts, RBAC, Services; not the installer's and
// catalogd's Deployments, whose containers StartDeployed runs.
func (f *Framework) Deployed(t testing.TB) *Deployed {
	t.Helper()
	f.deployed.once.Do(func() { f.deployed.d, f.deployed.err = f.deploy() })
	if f.deployed.err != nil {
		t.Fatalf("deploying Ferry's manifests: %v", f.deployed.err)
	}
	return f.deployed.d
}

func (f *Framework) deploy() (*Deployed, error) {
	data, source, err := f.render()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(f.RunDir, "manifests.yaml"), data, 0o644); err != nil {
		return nil, err
	}
	m, err := asdeployed.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = asdeployed.Apply(ctx, f.Config, m.Objects,
		asdeployed.Skip(asdeployed.IsDeployment(Namespace, InstallerDeployment)),
		asdeployed.Skip(asdeployed.IsDeployment(Namespace, CatalogdDeployment)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	logf("applied %d objects of %s (the installer and catalogd run as processes)", len(m.Objects)-2, source)
	return &Deployed{Manifests: m, Source: source, kubeconfigs: map[asdeployed.Subject]string{}}, nil
}

func (f *Framework) render() ([]byte, string, error) {
	if p := os.Getenv(ManifestsEnv); p != "" {
		data, err := os.ReadFile(p)
		return data, p, err
	}
	out, err := f.kustomize("config/default")
	return out, "config/default", err
}

// kustomize renders a folder of the module (slash-separated) with
// kubectl kustomize.
func (f *Framework) kustomize(dir string) ([]byte, error) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return nil, fmt.Errorf("kubectl renders %s: %w", dir, err)
	}
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(f.ModuleRoot, filepath.FromSlash(dir)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w\n%s", dir, err, stderr.String())
	}
	return out, nil
}

// Kustomize renders a folder of the module (e.g. "config/publishing") and
// parses it, without applying anything.
func (f *Framework) Kustomize(t testing.TB, dir string) *asdeployed.Manifests {
	t.Helper()
	out, err := f.kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := asdeployed.Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return m
}

// kubeconfig returns a kubeconfig with a TokenRequest token for the
// ServiceAccount, made once per account and run.
func (f *Framework) kubeconfig(d *Deployed, sa asdeployed.Subject) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.kubeconfigs[sa]; ok {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := asdeployed.ServiceAccountConfig(ctx, f.Config, sa.Namespace, sa.Name, tokenTTL)
	if err != nil {
		return "", err
	}
	p := filepath.Join(f.RunDir, "kubeconfig-"+sa.Namespace+"-"+sa.Name)
	if err := asdeployed.WriteKubeconfig(p, cfg); err != nil {
		return "", err
	}
	return p, nil
}

// DeployedProcess describes a Deployment's container to run as a process.
type DeployedProcess struct {
	// Name names the log file, as in ProcessSpec.
	Name string
	// Binary is the program, e.g. from BuildBinary.
	Binary string
	// Deployment is the Deployment in Namespace whose container runs.
	Deployment string
	// Rewrite changes flags the Deployment passes, e.g. listen addresses
	// to free ports on 127.0.0.1 (asdeployed.WithFlag).
	Rewrite []asdeployed.CommandOption
	// ExtraArgs are appended to the Deployment's arguments, only for what
	// the manifests say to add (e.g. catalogd's --catalog DIR).
	ExtraArgs []string
	// Manifests, when set, hold the Deployment instead of the run's
	// (e.g. config/publishing from Kustomize); the caller applies what
	// they add to the run's, such as a claim.
	Manifests *asdeployed.Manifests
}

// StartDeployed runs a Deployment's container as a process: its
// arguments and environment from the rendered manifests, its volumes as
// folders under RunDir/volumes/TEST/NAME (asdeployed.MountVolumes, the
// paths in its arguments rewritten; a claim's folder outlives a restart
// within the test, not the test), the identity of its ServiceAccount (a
// TokenRequest token; no kubeconfig at all when the pod mounts no token). The test fails if its log reports a request the
// API server refused (Forbidden).
func (f *Framework) StartDeployed(t testing.TB, spec DeployedProcess) *Process {
	t.Helper()
	d := f.Deployed(t)
	m := d.Manifests
	if spec.Manifests != nil {
		m = spec.Manifests
	}
	cmd, err := m.Command(Namespace, spec.Deployment, spec.Rewrite...)
	if err != nil {
		t.Fatal(err)
	}
	// The volumes it mounts, read as the kubelet would, with the admin's
	// credentials: the process itself may have no API access.
	src, err := asdeployed.ClusterSource(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cmd.MountVolumes(ctx, src, filepath.Join(f.RunDir, "volumes", pathElement(t.Name()), pathElement(spec.Name))); err != nil {
		t.Fatal(err)
	}
	bin, err := cmd.Binary(spec.Binary)
	if err != nil {
		t.Fatal(err)
	}
	env := append([]string(nil), cmd.Env...)
	if cmd.APIAccess {
		kc, err := f.kubeconfig(d, asdeployed.Subject{Namespace: Namespace, Name: cmd.ServiceAccount})
		if err != nil {
			t.Fatalf("the identity of Deployment %s/%s: %v", Namespace, spec.Deployment, err)
		}
		env = append(env, "KUBECONFIG="+kc)
	} else {
		// The pod mounts no token: the process gets no credentials.
		env = append(env, "KUBECONFIG="+filepath.Join(f.RunDir, "no-api-access"))
	}
	if len(cmd.Rewritten) > 0 {
		t.Logf("%s: flags of Deployment %s/%s rewritten for a local process: %s", spec.Name, Namespace, spec.Deployment, strings.Join(cmd.Rewritten, ", "))
	}
	var p *Process
	// Registered before the process's own cleanup, so it runs after the
	// process stopped and sees its whole log.
	t.Cleanup(func() {
		if p == nil {
			return
		}
		log, err := os.Open(p.LogPath)
		if err != nil {
			t.Errorf("reading %s: %v", p.LogPath, err)
			return
		}
		defer log.Close()
		lines, err := asdeployed.Forbidden(log)
		if err != nil {
			t.Errorf("reading %s: %v", p.LogPath, err)
		}
		if len(lines) > 0 {
			t.Errorf("%s (as ServiceAccount %s/%s) was refused by the API server; its RBAC lacks a permission the code uses:\n%s",
				spec.Name, Namespace, cmd.ServiceAccount, strings.Join(lines, "\n"))
		}
	})
	p = f.StartProcessSpec(t, ProcessSpec{Name: spec.Name, Path: bin, Args: append(cmd.Args, spec.ExtraArgs...), Env: env})
	return p
}

// pathElement makes a test or process name one path element.
func pathElement(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == ' ' {
			return '_'
		}
		return r
	}, name)
}
