package asdeployed

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func parseFile(t *testing.T, path string) *Manifests {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParse(t *testing.T) {
	m := parseFile(t, "testdata/manifests.yaml")
	var got []string
	for _, o := range m.Objects {
		got = append(got, describe(o))
	}
	want := []string{"Namespace ferry-system", "ServiceAccount ferry-system/ferry-installer", "Deployment ferry-system/ferry-installer", "Deployment ferry-system/catalogd"}
	if !slices.Equal(got, want) {
		t.Errorf("objects = %q, want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "# nothing\n---\n", "manifests hold no object"},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", "document 1: kind is missing"},
		{"no apiVersion", "kind: ConfigMap\nmetadata: {name: a}\n", "document 1: apiVersion is missing"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\n---\n", "document 1: ConfigMap: metadata.name is missing"},
		{"second document bad", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [\n", "document 2: "},
		{"list item", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n", "document 1: item 0: ConfigMap: metadata.name is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	big := strings.Repeat("#", MaxManifestBytes+1)
	if _, err := Parse(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Fatalf("Parse of %d bytes: %v", len(big), err)
	}
}

func TestCommand(t *testing.T) {
	m := parseFile(t, "testdata/manifests.yaml")
	cmd, err := m.Command("ferry-system", "ferry-installer",
		WithFlag("--metrics-bind-address", "127.0.0.1:18080"),
		WithFlag("--health-probe-bind-address", "127.0.0.1:18081"))
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{
		"--leader-elect",
		"--leader-election-namespace=ferry-system",
		"--metrics-bind-address=127.0.0.1:18080",
		"--health-probe-bind-address", "127.0.0.1:18081",
		"--greeting=hello-ferry-system",
		"--literal=$(POD_NAMESPACE)",
		"--undefined=$(NOT_SET)",
	}
	if !slices.Equal(cmd.Args, wantArgs) {
		t.Errorf("args = %q\nwant   %q", cmd.Args, wantArgs)
	}
	if want := []string{"POD_NAMESPACE=ferry-system", "GREETING=hello-ferry-system"}; !slices.Equal(cmd.Env, want) {
		t.Errorf("env = %q, want %q", cmd.Env, want)
	}
	if want := []string{"--metrics-bind-address: :8080 -> 127.0.0.1:18080", "--health-probe-bind-address: :8081 -> 127.0.0.1:18081"}; !slices.Equal(cmd.Rewritten, want) {
		t.Errorf("rewritten = %q, want %q", cmd.Rewritten, want)
	}
	if cmd.ServiceAccount != "ferry-installer" || !cmd.APIAccess || cmd.Entrypoint != "" {
		t.Errorf("service account %q, API access %v, entrypoint %q", cmd.ServiceAccount, cmd.APIAccess, cmd.Entrypoint)
	}
	if bin, err := cmd.Binary("/tmp/bin/installer"); err != nil || bin != "/tmp/bin/installer" {
		t.Errorf("Binary = %q, %v", bin, err)
	}
}

func TestCommandErrors(t *testing.T) {
	m := parseFile(t, "testdata/manifests.yaml")
	tests := []struct {
		name, deployment string
		opts             []CommandOption
		want             string
	}{
		{"no such deployment", "nope", nil, "the manifests have no Deployment.apps ferry-system/nope"},
		{"flag not passed", "ferry-installer", []CommandOption{WithFlag("--kubeconfig", "x")}, "flag --kubeconfig is not passed, so it cannot be rewritten"},
		{"bool flag", "ferry-installer", []CommandOption{WithFlag("--leader-elect", "false")}, "flag --leader-elect has no value to rewrite"},
		{"not a flag", "ferry-installer", []CommandOption{WithFlag("leader-elect", "false")}, `flag "leader-elect" does not start with '-'`},
		{"no such container", "ferry-installer", []CommandOption{WithContainer("sidecar")}, `no container "sidecar"`},
		{"secret env", "catalogd", nil, "Deployment ferry-system/catalogd container catalogd: env[0] SECRET: only value and fieldRef are supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Command("ferry-system", tt.deployment, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Command error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	var nf *NotFoundError
	if _, err := m.Command("other", "catalogd"); !errors.As(err, &nf) {
		t.Errorf("error %v is not a *NotFoundError", err)
	}
}

func TestBinaryChecksTheEntrypoint(t *testing.T) {
	c := &Command{Namespace: "ns", Deployment: "d", Container: "c", Entrypoint: "/catalogd"}
	if _, err := c.Binary("/x/catalogd"); err != nil {
		t.Errorf("same program: %v", err)
	}
	if _, err := c.Binary("/x/installer"); err == nil || !strings.Contains(err.Error(), "runs /catalogd, not /x/installer") {
		t.Errorf("other program: %v", err)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$$(A)", "$(A)"},
		{"$(C)", "$(C)"},
		{"$(A", "$(A"},
		{"cost $5", "cost $5"},
		{"end$", "end$"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, vars); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestForbidden(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"info","msg":"starting installer"}`,
		`{"level":"error","msg":"Reconciler error","error":"subscriptions.operators.ferry.dev \"a\" is forbidden: User \"system:serviceaccount:ferry-system:ferry-installer\" cannot patch resource"}`,
		`E1126 failed to list *v1.Pod: pods is Forbidden`,
		`{"level":"error","msg":"Reconciler error","error":"apply: serviceaccounts \"op\" is forbidden: unable to create new content in namespace e2e-x because it is being terminated"}`,
		`{"error":"a is forbidden: unable to create new content in namespace e2e-x because it is being terminated; b is forbidden: User \"u\" cannot get resource"}`,
		`{"level":"info","msg":"installed"}`,
	}, "\n")
	got, err := Forbidden(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !strings.Contains(got[2], `User \"u\" cannot get`) {
		t.Errorf("Forbidden = %q, want the 3 lines with a refusal other than a terminating namespace's", got)
	}
}
