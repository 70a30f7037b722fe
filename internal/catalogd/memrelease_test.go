package catalogd_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/catalogd"
	"github.com/ferrydev/ferry/proto/api"
)

// garbage is written so that the allocation below is not optimised away.
var garbage []byte

// TestMemoryReleasedWhenRequestsStop: after requests that allocated enough,
// once no request begins for the quiet period, the server gives memory
// back and counts it.
func TestMemoryReleasedWhenRequestsStop(t *testing.T) {
	m := catalogd.NewMetrics()
	conn := startServer(t, catalogd.NewHolder(sampleCatalog(t)), catalogd.WithMetrics(m), catalogd.WithMemoryRelease(20*time.Millisecond))
	cl := api.NewRegistryClient(conn)
	ctx := context.Background()
	// What a burst of answers would have allocated, before the request:
	// the quiet period after it then finds enough allocated, however late
	// this goroutine runs.
	for range 40 {
		garbage = make([]byte, 1<<20)
	}
	stream, err := cl.ListPackages(ctx, &api.ListPackageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll(stream); err != nil {
		t.Fatal(err)
	}
	releases := func() float64 {
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "ferry_catalogd_memory_releases_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return releases() >= 1, nil
	})
	if err != nil {
		t.Fatalf("no memory release after the requests stopped: ferry_catalogd_memory_releases_total = %v", releases())
	}
}
