package catalog

import (
	"context"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// forEach runs fn(i) for i in [0, n) on GOMAXPROCS goroutines and returns
// when all are done, or ctx's error once it is cancelled (the calls already
// started finish first).
func forEach(ctx context.Context, n int, fn func(i int)) error {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			fn(i)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
