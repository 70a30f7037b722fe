package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/ferrydev/ferry/internal/asdeployed"
	"github.com/ferrydev/ferry/internal/testbin"
)

// InstallerRBACDir is the folder, relative to the module root, of the
// installer's ServiceAccount and RBAC as config/ deploys them; its
// role.yaml is generated from the code's +kubebuilder:rbac markers.
const InstallerRBACDir = "config/rbac"

// InstallerClusterRole is the generated ClusterRole whose binding names the
// installer's ServiceAccount.
const InstallerClusterRole = "ferry-installer"

// installerTokenTTL outlives any test binary (go test's default timeout is
// 10 minutes; the envtest packages run for a few).
const installerTokenTTL = 2 * time.Hour

// installer is the installer's identity in one environment, made once.
type installer struct {
	once    sync.Once
	account asdeployed.Subject
	cfg     *rest.Config
	err     error
}

// InstallerConfig returns a rest config for the installer's ServiceAccount
// (system:serviceaccount:ferry-system:ferry-installer) with the
// ServiceAccounts, ClusterRole, Role and bindings of config/rbac applied: a
// token from the TokenRequest API, none of the admin's rights. Reconcilers
// under test run with it, so that a permission missing from the generated
// role fails the test as it would fail in a cluster; setup and assertions
// keep using Config.
//
// Every request the API server refuses with 403 Forbidden is recorded, and
// the test fails when it ends if there was any.
func (e *Env) InstallerConfig(t testing.TB) *rest.Config {
	t.Helper()
	e.installer.once.Do(func() {
		e.installer.account, e.installer.cfg, e.installer.err = installerIdentity(e.Config)
	})
	if e.installer.err != nil {
		t.Fatalf("testenv: the installer's identity: %v", e.installer.err)
	}
	cfg := rest.CopyConfig(e.installer.cfg)
	rec := &forbiddenRecorder{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	who := asdeployed.Username(e.installer.account.Namespace, e.installer.account.Name)
	t.Cleanup(func() {
		if refused := rec.list(); len(refused) > 0 {
			t.Errorf("the API server refused %d requests of %s (Forbidden); the generated ClusterRole lacks a permission the code uses (add a +kubebuilder:rbac marker and run make generate):\n  %s",
				len(refused), who, strings.Join(refused, "\n  "))
		}
	})
	return cfg
}

// InstallerRBAC reads the objects that config/rbac's kustomization lists.
func InstallerRBAC() (*asdeployed.Manifests, error) {
	root, err := testbin.ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, InstallerRBACDir)
	kpath := filepath.Join(dir, "kustomization.yaml")
	data, err := os.ReadFile(kpath)
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", kpath, err)
	}
	var all bytes.Buffer
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if filepath.Dir(filepath.Clean(p)) != dir {
			return nil, fmt.Errorf("%s: resource %q: only files of %s are read", kpath, r, InstallerRBACDir)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: resource %q: %w", kpath, r, err)
		}
		all.WriteString("\n---\n")
		all.Write(b)
	}
	m, err := asdeployed.Parse(&all)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

func installerIdentity(admin *rest.Config) (asdeployed.Subject, *rest.Config, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := InstallerRBAC()
	if err != nil {
		return asdeployed.Subject{}, nil, err
	}
	accounts, err := m.BoundServiceAccounts(InstallerClusterRole)
	if err != nil {
		return asdeployed.Subject{}, nil, err
	}
	if len(accounts) != 1 {
		return asdeployed.Subject{}, nil, fmt.Errorf("ClusterRole %s is bound to %d ServiceAccounts, want 1: %v", InstallerClusterRole, len(accounts), accounts)
	}
	sa := accounts[0]
	if err := ensureNamespace(ctx, admin, sa.Namespace); err != nil {
		return sa, nil, err
	}
	if err := asdeployed.Apply(ctx, admin, m.Objects); err != nil {
		return sa, nil, err
	}
	cfg, err := asdeployed.ServiceAccountConfig(ctx, admin, sa.Namespace, sa.Name, installerTokenTTL)
	return sa, cfg, err
}

func ensureNamespace(ctx context.Context, admin *rest.Config, name string) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// forbiddenRecorder remembers every request answered 403.
type forbiddenRecorder struct {
	next    http.RoundTripper
	mu      sync.Mutex
	refused []string
}

// maxRecorded bounds what one test remembers.
const maxRecorded = 50

func (f *forbiddenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusForbidden {
		f.mu.Lock()
		if len(f.refused) < maxRecorded {
			f.refused = append(f.refused, req.Method+" "+req.URL.Path)
		}
		f.mu.Unlock()
	}
	return resp, err
}

func (f *forbiddenRecorder) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}
