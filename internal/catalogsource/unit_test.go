package catalogsource

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBackoffGrowsToCapWithJitter(t *testing.T) {
	lo := backoff{base: 500 * time.Millisecond, cap: 30 * time.Second, rand: func() float64 { return 0 }}
	hi := backoff{base: 500 * time.Millisecond, cap: 30 * time.Second, rand: func() float64 { return 0.999999 }}
	for i := range 100 {
		d := min(500*time.Millisecond<<min(i, 10), 30*time.Second)
		if got := lo.next(); got != d/2 {
			t.Fatalf("attempt %d: lowest delay %v, want %v", i, got, d/2)
		}
		if got := hi.next(); got > d || got < d-time.Millisecond {
			t.Fatalf("attempt %d: highest delay %v, want about %v", i, got, d)
		}
	}
	lo.reset()
	if got := lo.next(); got != 250*time.Millisecond {
		t.Errorf("after reset: %v", got)
	}
	def := backoff{base: time.Second, cap: 4 * time.Second}
	for range 10 {
		if d := def.next(); d < 500*time.Millisecond || d > 4*time.Second {
			t.Errorf("delay %v out of [base/2, cap]", d)
		}
	}
}

func TestUnreachableErrorMessage(t *testing.T) {
	cause := status.Error(codes.Unavailable, "connection refused")
	err := &unreachableError{address: "127.0.0.1:5", err: cause}
	if got, want := err.Error(), "catalog at 127.0.0.1:5 unreachable: connection refused"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("does not unwrap to its cause")
	}
	if got := (&unreachableError{address: "a:1", err: errStreamEnded}).Error(); got != "catalog at a:1 unreachable: watch stream ended" {
		t.Errorf("%q", got)
	}
}

// TestNotifierNeverBlocks: with a full buffer nothing blocks and every
// name is still delivered, queued ones once each.
func TestNotifierNeverBlocks(t *testing.T) {
	n := newNotifier(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			n.notify(fmt.Sprintf("cs-%d", i%3))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("notify blocked")
	}
	seen := map[string]int{}
	for len(seen) < 3 {
		select {
		case ev := <-n.C():
			seen[ev.Object.GetName()]++
		case <-time.After(time.Minute):
			t.Fatalf("events missing: %v", seen)
		}
	}
	total := 0
	for _, c := range seen {
		total += c
	}
	if total > 4 {
		t.Errorf("%d events for 3 names with a buffer of 1: queued names not merged", total)
	}
}

// TestStoreKeepsCatalogsApart: two CatalogSources with the same digest each
// keep the content they fetched; events only for digest, connection or
// priority.
func TestStoreKeepsCatalogsApart(t *testing.T) {
	s := NewStore(WithEventBuffer(16))
	c1 := demoCatalog(t, 1)
	c1again := demoCatalog(t, 1)
	s.update("a", func(sn *Snapshot) { sn.Catalog, sn.Connected = c1, true })
	s.update("b", func(sn *Snapshot) { sn.Catalog, sn.Connected = c1again, true })
	a, _ := s.Get("a")
	b, _ := s.Get("b")
	if a.Catalog != c1 || b.Catalog != c1again || a.Digest != b.Digest {
		t.Error("a CatalogSource holds content it did not fetch")
	}
	if ch := s.update("a", func(sn *Snapshot) { sn.Err = errors.New("x") }); ch.public || !ch.any {
		t.Errorf("error change: %+v", ch)
	}
	c2 := demoCatalog(t, 2)
	s.update("a", func(sn *Snapshot) { sn.Catalog = c2 })
	s.remove("b")
	if _, ok := s.Get("b"); ok {
		t.Error("removed CatalogSource still held")
	}
	if got := len(s.Events()); got != 4 {
		t.Errorf("%d events, want 4 (a, b, a's new digest, b removed)", got)
	}
}

// TestClientSnapshotNotModified: GetSnapshot with the held digest sends
// nothing but the info.
func TestClientSnapshotNotModified(t *testing.T) {
	c := demoCatalog(t, 2)
	srv := startCatalogd(t, c)
	cl, err := Dial(srv.addr, WithSecurity(PlaintextSecurity()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	got, notModified, err := cl.Snapshot(ctx, "")
	if err != nil || notModified {
		t.Fatalf("%v %v", notModified, err)
	}
	if got.Digest != c.Digest || got.Counts() != c.Counts() || len(got.Problems) != 0 {
		t.Errorf("assembled %s %+v %v, want %s %+v", got.Digest, got.Counts(), got.Problems, c.Digest, c.Counts())
	}
	got, notModified, err = cl.Snapshot(ctx, c.Digest)
	if err != nil || !notModified || got != nil {
		t.Errorf("if-none-match: %v %v %v", got, notModified, err)
	}
}
