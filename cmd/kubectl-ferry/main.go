// Command kubectl-ferry is the kubectl plugin for Ferry: kubectl ferry
// list, status, history, diff, approve, rollback, unpin, pause, resume and
// catalog. Put it on the PATH; see internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferrydev/ferry/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx)
	stop()
	os.Exit(code)
}
