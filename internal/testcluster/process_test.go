package testcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func TestRunning(t *testing.T) {
	self := os.Getpid()
	selfName := filepath.Base(os.Args[0])
	tests := []struct {
		name string
		pid  int
		comm string
		want bool
	}{
		{"this process", self, selfName, true},
		{"this process under another name", self, "etcd", false},
		{"no process id", 0, "etcd", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := running(tt.pid, tt.comm); got != tt.want {
				t.Fatalf("running(%d, %q) = %v, want %v", tt.pid, tt.comm, got, tt.want)
			}
		})
	}
}

func TestStopPIDStopsAProcessAndIgnoresOthers(t *testing.T) {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	pid := cmd.Process.Pid
	// Right after the fork the child is not "sleep" yet: wait for the exec.
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return running(pid, "sleep"), nil
	}); err != nil {
		t.Fatalf("sleep never started: %v", err)
	}

	// A PID file naming another component must not stop the process.
	if killed, err := stopPID(pid, "etcd", time.Second); killed || err != nil {
		t.Fatalf("stopPID(other name) = %v, %v; want false, nil", killed, err)
	}
	if !running(pid, "sleep") {
		t.Fatal("sleep was stopped through a PID file of another component")
	}
	if _, err := stopPID(pid, "sleep", 10*time.Second); err != nil {
		t.Fatalf("stopPID: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("sleep still running after stopPID")
	}
}

func TestDownAndStatusWithoutCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	quiet := WithLogf(func(string, ...any) {})
	if err := Down(WithDir(dir), quiet); err != nil {
		t.Fatalf("Down on a missing folder: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale PID file (a process that is gone) is cleaned up.
	if err := os.WriteFile(pidPath(dir, "etcd"), []byte(strconv.Itoa(1<<22)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Status(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Running {
			t.Errorf("%s reported running", s.Name)
		}
	}
	if err := Down(WithDir(dir), quiet); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if _, err := os.Stat(pidPath(dir, "etcd")); !os.IsNotExist(err) {
		t.Fatalf("stale PID file still there: %v", err)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Tail(path, 2); got != "b\nc" {
		t.Fatalf("Tail = %q, want %q", got, "b\nc")
	}
	if got := Tail(filepath.Join(t.TempDir(), "missing"), 2); !strings.Contains(got, "cannot read") {
		t.Fatalf("Tail(missing) = %q", got)
	}
}
