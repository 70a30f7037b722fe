// Command installerbench measures the installer at scale on the local
// cluster (internal/testcluster, kwok fake Nodes): it runs catalogd (the
// embedded sample catalog) and the installer as deployed — their
// Deployments' arguments, environment, volumes and ServiceAccounts, never
// an admin identity — creates N namespaces, each with the tenant
// ServiceAccount of examples/tenancy and one Subscription to a small sample
// operator, and waits until every Subscription is Installed. It then
// measures the floor: the objects the installer wrote for one Subscription
// (its inventory, less the CRD that already exists) applied directly with
// an admin client into N fresh namespaces and waited on until every
// Deployment is Available. It prints a markdown table (docs/scale.md).
//
//	go run ./hack/installerbench -n 100
//	go run ./hack/installerbench -n 1000 -out /tmp/scale.md
//	go run ./hack/installerbench -n 100 -installer-arg=--max-concurrent-reconciles=1
//
// Only 127.0.0.1 is used; every wait is bounded by -phase-timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/internal/testbin"
	"github.com/ferrydev/ferry/internal/testcluster"
)

// Bounds of the flags: the bench holds one entry per Subscription and the
// local cluster at most testcluster.MaxNodes fake Nodes.
const (
	maxSubscriptions = 5000
	maxWorkers       = 256
	// podsPerNode is how many pods the bench puts on one fake Node, below
	// its capacity (testcluster.NodePods) so that pod capacity is never
	// the limit.
	podsPerNode = 100
)

type config struct {
	n             int
	workers       int
	pkg, channel  string
	phaseTimeout  time.Duration
	dir           string
	keep          bool
	out           string
	installerArgs []string
	// bin holds prebuilt catalogd and installer binaries; empty: built
	// from the module.
	bin string
}

// stringsFlag collects a repeated flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func main() { os.Exit(benchMain(os.Args[1:])) }

func benchMain(args []string) int {
	fs := flag.NewFlagSet("installerbench", flag.ContinueOnError)
	var c config
	var extra stringsFlag
	fs.IntVar(&c.n, "n", 1000, fmt.Sprintf("Subscriptions, one namespace each (1 to %d)", maxSubscriptions))
	fs.IntVar(&c.workers, "workers", 16, fmt.Sprintf("concurrent admin requests of the bench itself when it creates Subscriptions and applies the floor (1 to %d)", maxWorkers))
	fs.StringVar(&c.pkg, "package", "signal-store", "package of the sample catalog each Subscription installs")
	fs.StringVar(&c.channel, "channel", "stable", "its channel")
	fs.DurationVar(&c.phaseTimeout, "phase-timeout", 30*time.Minute, "bound of each phase (setup, install, floor)")
	fs.StringVar(&c.dir, "dir", "", "folder of the run: cluster, logs, binaries (default: a new folder under $FERRY_CACHE/installerbench)")
	fs.BoolVar(&c.keep, "keep", false, "leave the cluster running at the end (stop it with go run ./hack/cluster -dir DIR/cluster down)")
	fs.StringVar(&c.out, "out", "", "also write the table to this file")
	fs.StringVar(&c.bin, "bin", "", "folder of prebuilt catalogd and installer binaries (default: go build them from this module)")
	fs.Var(&extra, "installer-arg", "an argument added to the installer's Deployment's (repeatable), e.g. --max-concurrent-reconciles=1 to measure another setting")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.installerArgs = extra
	var errs []error
	if c.n < 1 || c.n > maxSubscriptions {
		errs = append(errs, fmt.Errorf("-n %d: must be 1 to %d", c.n, maxSubscriptions))
	}
	if c.workers < 1 || c.workers > maxWorkers {
		errs = append(errs, fmt.Errorf("-workers %d: must be 1 to %d", c.workers, maxWorkers))
	}
	if c.phaseTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-phase-timeout %v: must be positive", c.phaseTimeout))
	}
	if nodesFor(c.n) > testcluster.MaxNodes {
		errs = append(errs, fmt.Errorf("-n %d needs %d fake Nodes; the local cluster runs at most %d", c.n, nodesFor(c.n), testcluster.MaxNodes))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "installerbench:", err)
		return 2
	}
	if c.dir == "" {
		cache, err := testbin.CacheDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, "installerbench:", err)
			return 1
		}
		c.dir = filepath.Join(cache, "installerbench", "run-"+time.Now().UTC().Format("20060102-150405"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, c)
	if res != nil {
		table := res.table()
		fmt.Print(table)
		if c.out != "" {
			if werr := os.WriteFile(c.out, []byte(table), 0o644); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "installerbench:", err)
		fmt.Fprintln(os.Stderr, "installerbench: logs kept in", c.dir)
		return 1
	}
	return 0
}

// nodesFor is how many fake Nodes hold the pods of n Subscriptions and of
// the floor's n Deployments (one replica each) at podsPerNode a Node.
func nodesFor(n int) int { return (2*n + podsPerNode - 1) / podsPerNode }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "installerbench: "+format+"\n", args...)
}
