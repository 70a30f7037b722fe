package catalogsource

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
)

const getBundleMethod = "/ferry.catalog.v1.CatalogService/GetBundle"

// heldBundles counts the GetBundle calls a catalogd receives and holds the
// first one until released (or its caller gives up).
type heldBundles struct {
	mu      sync.Mutex
	calls   int
	arrived chan struct{}
	release chan struct{}
}

func newHeldBundles() *heldBundles {
	return &heldBundles{arrived: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldBundles) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == getBundleMethod {
		h.mu.Lock()
		h.calls++
		first := h.calls == 1
		h.mu.Unlock()
		if first {
			close(h.arrived)
			select {
			case <-h.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return handler(ctx, req)
}

func (h *heldBundles) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// waiting is how many callers waited for a flight in progress.
func (s *Store) waiting() int {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	n := 0
	for _, fl := range s.flights {
		n += fl.joined
	}
	return n
}

// TestConcurrentMissesFetchOnce: callers that miss the manifest cache for
// one bundle while it is being fetched wait for that answer: one GetBundle
// for all of them. When the caller that asked gives up, the others ask
// again and still get the manifests.
func TestConcurrentMissesFetchOnce(t *testing.T) {
	const joiners = 7
	tests := []struct {
		name string
		// leaderGivesUp: the first caller's context is canceled while its
		// GetBundle is held.
		leaderGivesUp bool
		// calls is how many GetBundle calls the catalog answers.
		calls int
	}{
		{name: "one call for every concurrent caller", calls: 1},
		{name: "the others ask again when the first gives up", leaderGivesUp: true, calls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held := newHeldBundles()
			srv := startCatalogd(t, demoCatalog(t, 1), catalogd.WithGRPCOptions(grpc.ChainUnaryInterceptor(held.intercept)))
			s := NewStore()
			follow(t, s, "demo", srv.addr)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			leaderCtx, giveUp := context.WithCancel(ctx)
			defer giveUp()
			type answer struct {
				ms  []catalog.Manifest
				err error
			}
			leader := make(chan answer, 1)
			go func() {
				ms, err := s.Manifests(leaderCtx, "demo", "demo", "demo.v1.0.0")
				leader <- answer{ms, err}
			}()
			select {
			case <-held.arrived:
			case <-ctx.Done():
				t.Fatal("the first GetBundle never arrived")
			}
			answers := make(chan answer, joiners)
			for range joiners {
				go func() {
					ms, err := s.Manifests(ctx, "demo", "demo", "demo.v1.0.0")
					answers <- answer{ms, err}
				}()
			}
			if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
				return s.waiting() == joiners, nil
			}); err != nil {
				t.Fatalf("%d of %d callers wait for the flight, %d GetBundle calls", s.waiting(), joiners, held.count())
			}
			if tt.leaderGivesUp {
				giveUp()
			} else {
				close(held.release)
			}
			first := <-leader
			switch {
			case tt.leaderGivesUp && first.err == nil:
				t.Errorf("the first caller gave up and got %d manifests, want an error", len(first.ms))
			case !tt.leaderGivesUp && (first.err != nil || len(first.ms) == 0):
				t.Fatalf("first caller: %d manifests, %v", len(first.ms), first.err)
			}
			for range joiners {
				a := <-answers
				if a.err != nil || len(a.ms) == 0 {
					t.Fatalf("a caller that waited: %d manifests, %v", len(a.ms), a.err)
				}
				if got, want := catalog.ManifestsDigest(a.ms), s.mustAnnounced(t, "demo", "demo", "demo.v1.0.0"); got != want {
					t.Errorf("manifests hash to %s, want %s", got, want)
				}
			}
			if got := held.count(); got != tt.calls {
				t.Errorf("%d GetBundle calls, want %d", got, tt.calls)
			}
			// Cached now: no further call.
			if _, err := s.Manifests(ctx, "demo", "demo", "demo.v1.0.0"); err != nil || held.count() != tt.calls {
				t.Errorf("after the flight: %v, %d GetBundle calls, want %d", err, held.count(), tt.calls)
			}
		})
	}
}

// mustAnnounced is the manifests digest the snapshot announces for a bundle.
func (s *Store) mustAnnounced(t *testing.T, name, pkg, bundle string) string {
	t.Helper()
	snap, ok := s.Get(name)
	if !ok {
		t.Fatalf("no snapshot of %s", name)
	}
	b := snap.Catalog.Bundle(pkg, bundle)
	if b == nil || b.ManifestsDigest() == "" {
		t.Fatalf("bundle %s not announced with a manifests digest", bundle)
	}
	return b.ManifestsDigest()
}
