package catalogsource

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/status"

	"github.com/ferrydev/ferry/internal/catalog"
)

// Reconnection backoff defaults.
const (
	defaultRetryBase = 500 * time.Millisecond
	defaultRetryCap  = 30 * time.Second
)

// backoff is exponential backoff with jitter: the n-th delay is drawn from
// [d/2, d] where d = base·2ⁿ, at most cap.
type backoff struct {
	base, cap time.Duration
	attempt   int
	// rand returns a number in [0, 1); math/rand/v2 when nil.
	rand func() float64
}

// next returns the delay before the next attempt.
func (b *backoff) next() time.Duration {
	d := b.cap
	if b.attempt < 62 && b.base<<b.attempt > 0 && b.base<<b.attempt < b.cap {
		d = b.base << b.attempt
	}
	b.attempt++
	r := rand.Float64
	if b.rand != nil {
		r = b.rand
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

// reset starts again from base after a success.
func (b *backoff) reset() { b.attempt = 0 }

// unreachableError is the error a follower records while its catalog
// cannot be followed.
type unreachableError struct {
	address string
	err     error
}

func (e *unreachableError) Error() string {
	return "catalog at " + e.address + " unreachable: " + grpcMessage(e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// grpcMessage is the message of a gRPC error without its code prefix.
func grpcMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// errStreamEnded is returned when catalogd ends the Watch stream.
var errStreamEnded = errors.New("watch stream ended")

// follower follows one CatalogSource's catalog: it keeps a Watch stream
// open and fetches a snapshot whenever the digest changes.
type follower struct {
	name, address string
	// security secures the connection.
	security *Security
	store    *Store
	log      logr.Logger
	retry    backoff
	// changed is called after every change the status shows.
	changed func(name string)

	cancel context.CancelFunc
	done   chan struct{}
}

// start runs the follower until ctx ends or stop is called.
func (f *follower) start(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go f.run(ctx)
}

// stop stops the follower and waits for it.
func (f *follower) stop() {
	f.cancel()
	<-f.done
}

func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	cl, err := Dial(f.address, WithSecurity(f.security))
	if err != nil {
		f.disconnected(err)
		return
	}
	defer func() { _ = cl.Close() }()
	f.store.setClient(f.name, cl, nil)
	defer f.store.setClient(f.name, nil, cl)
	for {
		progressed, err := f.follow(ctx, cl)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			f.retry.reset()
		}
		f.disconnected(cl.explain(err))
		if !sleep(ctx, f.retry.next()) {
			return
		}
		cl.resetBackoff()
	}
}

// follow reads the Watch stream until it breaks. progressed is true when
// at least one event was handled.
func (f *follower) follow(ctx context.Context, cl *Client) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.Watch(ctx)
	if err != nil {
		return false, err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return progressed, errStreamEnded
		}
		if err != nil {
			return progressed, err
		}
		if err := f.sync(ctx, cl, ev.GetInfo().GetDigest()); err != nil {
			return progressed, err
		}
		progressed = true
	}
}

// sync brings the store to digest with GetSnapshot from this catalog's own
// address. Content another CatalogSource holds for the same digest is never
// taken: a catalog that claims another's digest gets nothing of its content.
func (f *follower) sync(ctx context.Context, cl *Client, digest string) error {
	var held string
	var wasConnected bool
	if s, ok := f.store.State(f.name); ok {
		held, wasConnected = s.Digest, s.Connected
	}
	var next *catalog.Catalog
	if digest != held {
		c, notModified, err := cl.Snapshot(ctx, held)
		switch {
		case err != nil:
			snapshotFetches.WithLabelValues(SnapshotFailed).Inc()
			return err
		case notModified:
			snapshotFetches.WithLabelValues(SnapshotNotModified).Inc()
		default:
			snapshotFetches.WithLabelValues(SnapshotFull).Inc()
			next = c
		}
	}
	now := time.Now()
	ch := f.store.update(f.name, func(s *Snapshot) {
		s.Address, s.Connected, s.Err = f.address, true, nil
		if next != nil && next.Digest != s.Digest {
			s.Catalog, s.Updated = next, now
		}
	})
	if !wasConnected {
		f.log.Info("catalog connected", "address", f.address, "digest", digest)
	}
	if next != nil && next.Digest != held {
		n := next.Counts()
		f.log.Info("catalog updated", "address", f.address, "digest", next.Digest, "packages", n.Packages, "bundles", n.Bundles, "problems", len(next.Problems))
	}
	f.report(ch)
	return nil
}

// disconnected records a connection error, keeping the content.
func (f *follower) disconnected(err error) {
	var uerr error = &unreachableError{address: f.address, err: err}
	if herr := (*TLSHandshakeError)(nil); errors.As(err, &herr) {
		uerr = herr
	}
	ch := f.store.update(f.name, func(s *Snapshot) {
		s.Address, s.Connected, s.Err = f.address, false, uerr
	})
	if ch.any {
		f.log.Info("catalog unreachable", "address", f.address, "error", uerr.Error())
	}
	f.report(ch)
}

func (f *follower) report(ch change) {
	if ch.any && f.changed != nil {
		f.changed(f.name)
	}
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
