// Command cluster starts and stops the local test cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok with one
// fake Node) described in docs/testing.md. hack/cluster-up.sh and
// hack/cluster-down.sh run it.
//
// Usage:
//
//	go run ./hack/cluster [-dir DIR] [-timeout 2m] up|down|status|kubeconfig
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/testcluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: error: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	defaultDir, err := testcluster.DefaultDir()
	if err != nil {
		return err
	}
	dir := flag.String("dir", defaultDir, "cluster folder (kubeconfig, certificates, logs, PID files); $FERRY_CLUSTER_DIR sets the default")
	timeout := flag.Duration("timeout", 2*time.Minute, "how long 'up' waits for the cluster to be ready")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] up|down|status|kubeconfig\n", filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		return fmt.Errorf("expected one command, got %d", flag.NArg())
	}
	opts := []testcluster.Option{testcluster.WithDir(*dir), testcluster.WithTimeout(*timeout)}

	switch cmd := flag.Arg(0); cmd {
	case "up":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		c, err := testcluster.Up(ctx, opts...)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "cluster: use it with: kubectl --kubeconfig %s get nodes\n", c.Kubeconfig)
		fmt.Println(c.Kubeconfig)
	case "down":
		if err := testcluster.Down(opts...); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "cluster: logs kept in %s\n", *dir)
	case "status":
		st, err := testcluster.Status(opts...)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "stopped"
			if s.Running {
				state = fmt.Sprintf("running (pid %d)", s.PID)
			}
			fmt.Printf("%-24s %-22s %s\n", s.Name, state, s.Log)
		}
	case "kubeconfig":
		fmt.Println(filepath.Join(*dir, "kubeconfig"))
	default:
		flag.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}
