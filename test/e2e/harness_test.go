//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/testbin"
)

// TestHarnessBuildsAndRunsProcesses checks the helpers that later tests use to
// run this module's commands: BuildBinary and StartProcess.
func TestHarnessBuildsAndRunsProcesses(t *testing.T) {
	bin := f.BuildBinary(t, "./hack/cluster")
	if again := f.BuildBinary(t, "./hack/cluster"); again != bin {
		t.Errorf("second BuildBinary = %s, want the first build %s", again, bin)
	}

	p := f.StartProcess(t, "cluster-status", bin, "-dir", f.Cluster.Dir, "status")
	poll(t, "cluster status to exit", func(context.Context) error {
		if exited, err := p.Exited(); !exited {
			return fmt.Errorf("still running")
		} else if err != nil {
			return fmt.Errorf("exited with %w; log:\n%s", err, p.Tail(20))
		}
		return nil
	})
	log, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, line := range strings.Split(string(log), "\n") {
		if name, rest, ok := strings.Cut(line, " "); ok {
			state[name] = strings.TrimSpace(rest)
		}
	}
	for _, name := range testbin.All {
		if !strings.HasPrefix(state[name], "running (pid") {
			t.Errorf("status of %s = %q, want running; output:\n%s", name, state[name], log)
		}
	}

	// A long-running process is stopped by Stop (and at cleanup).
	sleeper := f.StartProcess(t, "sleeper", "/bin/sh", "-c", "echo started; exec sleep 600")
	poll(t, "the sleeper to write its log", func(context.Context) error {
		if !strings.Contains(sleeper.Tail(5), "started") {
			return fmt.Errorf("log so far: %q", sleeper.Tail(5))
		}
		return nil
	})
	if err := sleeper.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if exited, _ := sleeper.Exited(); !exited {
		t.Fatal("process still running after Stop")
	}
}
