package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/freeport"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startServe runs `catalogd serve` in-process and waits until it answers health checks.
func startServe(t *testing.T, f serveFlags) string {
	t.Helper()
	f.listen = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, logr.Discard(), f) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(f.listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return f.listen
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalogd did not become healthy: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReadmeExamples runs every grpcurl example of the README against a real
// catalogd serving the embedded sample catalog.
func TestReadmeExamples(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	grpcurl := filepath.Join(root, "bin", "grpcurl")
	if _, err := os.Stat(grpcurl); err != nil {
		t.Fatalf("%s is missing: run `make grpcurl` (make test does)", grpcurl)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "bin/grpcurl ") {
			examples = append(examples, line)
		}
	}
	if len(examples) < 10 {
		t.Fatalf("found %d grpcurl examples in README.md, want at least 10", len(examples))
	}
	addr := startServe(t, serveFlags{watch: false, shutdownTimeout: time.Second})
	for _, ex := range examples {
		t.Run(ex, func(t *testing.T) {
			line := strings.Replace(ex, "127.0.0.1:50051", addr, 1)
			cmd := exec.Command("bash", "-c", line)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if strings.Contains(ex, "no-such-package") {
				if err == nil || !strings.Contains(string(out), "Code: NotFound") {
					t.Fatalf("want NotFound, got err=%v\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if len(bytes.TrimSpace(out)) == 0 {
				t.Fatalf("no output")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	broken := t.TempDir()
	writeFile(t, filepath.Join(broken, "foo", "1.0.0", "metadata", "annotations.yaml"), "annotations:\n  operators.operatorframework.io.bundle.package.v1: bar\n  operators.operatorframework.io.bundle.channels.v1: stable\n")
	writeFile(t, filepath.Join(broken, "foo", "1.0.0", "manifests", "csv.yaml"), "apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: foo.v1.0.0\nspec:\n  version: 1.0.0\n")
	tests := []struct {
		name     string
		dir      string
		wantCode int
		wantOut  []string
	}{
		{"sample catalog", filepath.Join("..", "..", "bundles"), 0, []string{"3 packages, 5 channels, 11 bundles served; 0 errors, 0 warnings"}},
		{"broken bundle", broken, 1, []string{
			"error: " + filepath.ToSlash(broken) + `/foo/1.0.0/metadata/annotations.yaml: operators.operatorframework.io.bundle.package.v1: package "bar" differs from directory "foo"`,
			"0 packages, 0 channels, 0 bundles served; 1 errors, 1 warnings",
		}},
		{"missing directory", filepath.Join(broken, "nope"), 1, []string{"no such file or directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"validate", tc.dir}, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, &stdout, &stderr)
			}
			all := stdout.String() + stderr.String()
			for _, w := range tc.wantOut {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestRender checks that a bundle tree rendered as FBC loads back to the same catalog.
func TestRender(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"render", filepath.Join("..", "..", "bundles")}, &stdout, &stderr); code != 0 {
		t.Fatalf("render exit code %d: %s", code, &stderr)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "catalog.json"), stdout.String())
	fbc, err := catalog.Load(context.Background(), []catalog.Source{catalog.DirSource(dir)})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := catalog.Load(context.Background(), sources(nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(fbc.Problems) != 0 {
		t.Fatalf("rendered catalog has problems: %v", fbc.Problems)
	}
	if fbc.Counts() != tree.Counts() {
		t.Fatalf("counts %+v, want %+v", fbc.Counts(), tree.Counts())
	}
	for _, p := range tree.Packages {
		rp := fbc.Package(p.Name)
		if rp == nil || rp.DefaultChannel != p.DefaultChannel {
			t.Fatalf("package %s not rendered faithfully", p.Name)
		}
		for _, ch := range p.Channels {
			rch := rp.Channel(ch.Name)
			if rch == nil || rch.Head != ch.Head || len(rch.Entries) != len(ch.Entries) {
				t.Fatalf("channel %s/%s not rendered faithfully", p.Name, ch.Name)
			}
			for i, e := range ch.Entries {
				re := rch.Entries[i]
				if re.Name != e.Name || re.Replaces != e.Replaces || re.SkipRange != e.SkipRange || strings.Join(re.Skips, ",") != strings.Join(e.Skips, ",") {
					t.Errorf("entry %s: got %+v want %+v", e.Name, re, e)
				}
			}
		}
		for _, b := range p.Bundles {
			want, _ := b.Manifests()
			got, err := rp.Bundle(b.Name).Manifests()
			if err != nil || len(got) != len(want) {
				t.Errorf("bundle %s: %d manifests, want %d (%v)", b.Name, len(got), len(want), err)
			}
		}
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGoMemoryLimit: the memory limit follows the flag, else the model
// plus the manifests cache, the answers kept in memory and the slack, and
// GOMEMLIMIT wins over both.
func TestGoMemoryLimit(t *testing.T) {
	const model = 64 << 20
	base := int64(model + catalog.DefaultManifestCacheBytes + memorySlack)
	tests := []struct {
		name          string
		flag, answers int64
		env           string
		want          int64
		wantSet       bool
	}{
		{name: "flag given", flag: 300 << 20, answers: 192 << 20, want: 300 << 20, wantSet: true},
		{name: "answers kept in memory", answers: 32 << 20, want: base + 32<<20, wantSet: true},
		{name: "answers in the answer file", want: base, wantSet: true},
		{name: "GOMEMLIMIT wins", flag: 300 << 20, answers: 192 << 20, env: "256MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, set := goMemoryLimit(tt.flag, model, tt.answers, tt.env)
			if got != tt.want || set != tt.wantSet {
				t.Errorf("goMemoryLimit(%d, %d, %d, %q) = %d, %v; want %d, %v", tt.flag, model, tt.answers, tt.env, got, set, tt.want, tt.wantSet)
			}
		})
	}
}

// TestLoadMemoryLimit: while loading, the limit is the flag, else 90% of
// the container's, else none.
func TestLoadMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	limited := filepath.Join(dir, "limited")
	unlimited := filepath.Join(dir, "unlimited")
	writeFile(t, limited, "268435456\n")
	writeFile(t, unlimited, "max\n")
	tests := []struct {
		name string
		flag int64
		file string
		want int64
	}{
		{name: "flag given", flag: 100 << 20, file: limited, want: 100 << 20},
		{name: "container limit", file: limited, want: 268435456 / 10 * 9},
		{name: "container without a limit", file: unlimited, want: 0},
		{name: "no cgroup file", file: filepath.Join(dir, "absent"), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loadMemoryLimit(tt.flag, tt.file); got != tt.want {
				t.Errorf("loadMemoryLimit(%d, %s) = %d, want %d", tt.flag, tt.file, got, tt.want)
			}
		})
	}
}

// TestWithinCgroup: the derived memory limit stays under 90% of the
// container's memory limit, and is kept without one.
func TestWithinCgroup(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string // "" leaves the file missing
		limit   int64
		want    int64
	}{
		{name: "no cgroup file", limit: 320 << 20, want: 320 << 20},
		{name: "no limit", content: "max\n", limit: 320 << 20, want: 320 << 20},
		{name: "container limit below", content: "268435456\n", limit: 320 << 20, want: 268435456 / 10 * 9},
		{name: "container limit above", content: "1073741824\n", limit: 320 << 20, want: 320 << 20},
		{name: "unreadable content", content: "lots\n", limit: 320 << 20, want: 320 << 20},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, "memory.max."+strconv.Itoa(i))
			if tt.content != "" {
				if err := os.WriteFile(file, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := withinCgroup(tt.limit, file); got != tt.want {
				t.Errorf("withinCgroup(%d) = %d, want %d", tt.limit, got, tt.want)
			}
		})
	}
}
