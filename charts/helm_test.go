// Package charts holds Ferry's Helm chart, charts/ferry; these tests guard it.
//
// They run the pinned helm (HELM, or bin/helm from `make helm`): `helm lint`
// with the default values and with every feature on, `helm template` for each
// toggle (the arguments of both Deployments, every file a flag names mounted
// from the right Secret, ConfigMap or claim, the objects each toggle adds),
// values the chart must refuse, that the chart and config/ (rendered with
// `kubectl kustomize`) grant the same RBAC rules and install the same CRDs,
// helm install/upgrade/uninstall on a real API server (envtest), and that
// every value of values.yaml is documented. See charts/ferry/README.md and
// docs/deploy.md.
package charts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/manifesttest"
)

const (
	chartDir  = "ferry"
	release   = "ferry"
	namespace = "ferry-system"
	// maxRender bounds what a render may print; the chart renders ~100 KiB.
	maxRender = 16 << 20
)

// object is one rendered manifest.
type object = manifesttest.Object

// helmBinary is the helm the tests run: HELM (make sets it to the pinned
// build), else bin/helm (make helm links it there).
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "bin", "helm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("helm not found: HELM is not set and %s does not exist; run `make helm` (builds the pinned helm once into ~/.cache/ferry/tools and links it as bin/helm), or set HELM to a helm v3 binary", p)
	}
	return p
}

// limitedBuffer keeps at most limit bytes and remembers that it dropped some.
type limitedBuffer struct {
	bytes.Buffer
	limit     int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); len(p) > room {
		b.truncated = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// runHelm runs helm with args in this folder and returns its stdout, or an
// error carrying its stderr.
func runHelm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	stdout := &limitedBuffer{limit: maxRender}
	stderr := &limitedBuffer{limit: 64 << 10}
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// No repository or plugin configuration of the machine's user.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	if stdout.truncated {
		t.Fatalf("helm %s printed more than %d bytes", strings.Join(args, " "), maxRender)
	}
	return stdout.Bytes(), nil
}

// valueArgs turns a case's values into helm flags: files (-f), relative
// ones under testdata/, and key=value pairs (--set).
func valueArgs(files []string, sets []string) []string {
	var args []string
	for _, f := range files {
		if !filepath.IsAbs(f) {
			f = filepath.Join("testdata", f)
		}
		args = append(args, "-f", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

func templateArgs(files, sets []string) []string {
	return append([]string{"template", release, chartDir, "--namespace", namespace}, valueArgs(files, sets)...)
}

// render runs helm template with the values and returns the objects.
func render(t *testing.T, files []string, sets ...string) []object {
	t.Helper()
	out, err := runHelm(t, templateArgs(files, sets)...)
	if err != nil {
		t.Fatal(err)
	}
	return split(t, "helm template", out)
}

// kustomize renders a folder of config/ with kubectl's built-in Kustomize.
func kustomize(t *testing.T, dir string) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl not found in PATH: it renders config/ (kubectl kustomize) to compare it with the chart")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", filepath.Join("..", "config", dir))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize config/%s: %v\n%s", dir, err, stderr.String())
	}
	return split(t, "config/"+dir, stdout.Bytes())
}

func split(t *testing.T, what string, data []byte) []object {
	t.Helper()
	return manifesttest.Split(t, what, data)
}

func decodeStrict(t *testing.T, o object, out any) {
	t.Helper()
	manifesttest.DecodeStrict(t, o, out)
}

func lookup(objs []object, kind, name string) (object, bool) {
	return manifesttest.Lookup(objs, kind, name)
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	return manifesttest.Find(t, objs, kind, name)
}

// firstDifference describes where the JSON forms of what the chart and
// config/ render first differ, with a few lines of context, for failures on
// large objects such as CRDs.
func firstDifference(chart, config any) string {
	ja, errA := json.MarshalIndent(chart, "", " ")
	jb, errB := json.MarshalIndent(config, "", " ")
	if err := errors.Join(errA, errB); err != nil {
		return err.Error()
	}
	la, lb := strings.Split(string(ja), "\n"), strings.Split(string(jb), "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			from := max(0, i-3)
			return fmt.Sprintf("line %d: chart %q, config %q; before it:\n%s", i+1, strings.TrimSpace(x), strings.TrimSpace(y), strings.Join(la[from:i], "\n"))
		}
	}
	return "no difference in JSON"
}
