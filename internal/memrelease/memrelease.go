package memrelease

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// DefaultQuiet is how long a server has no new request before its memory
// is released.
const DefaultQuiet = time.Second

// DefaultMinAllocated is how many bytes must have been allocated since the
// last release for the next one to run: a server answering a request now
// and then does not pay for a collection each time.
const DefaultMinAllocated = 32 << 20

// Releaser releases memory when requests stop. Begin is safe for
// concurrent use; Run runs once.
type Releaser struct {
	quiet        time.Duration
	minAllocated uint64
	allocated    func() uint64
	release      func()
	before       []func()
	onRelease    func()

	requests atomic.Uint64
	// mark is the bytes allocated at the last release, or at New.
	mark uint64
}

// Option configures New.
type Option func(*Releaser)

// WithQuiet sets how long no request may begin before a release (default
// DefaultQuiet).
func WithQuiet(d time.Duration) Option { return func(r *Releaser) { r.quiet = d } }

// WithMinAllocated sets the bytes allocated since the last release that a
// release needs (default DefaultMinAllocated).
func WithMinAllocated(n uint64) Option { return func(r *Releaser) { r.minAllocated = n } }

// WithBeforeRelease adds fn, called before each release: a cache of
// buffers that can be made again drops them here so that the collection
// frees them too.
func WithBeforeRelease(fn func()) Option {
	return func(r *Releaser) { r.before = append(r.before, fn) }
}

// WithOnRelease sets fn, called after each release (a metric).
func WithOnRelease(fn func()) Option { return func(r *Releaser) { r.onRelease = fn } }

// withRuntime replaces the runtime's allocation counter and release, for
// tests.
func withRuntime(allocated func() uint64, release func()) Option {
	return func(r *Releaser) { r.allocated, r.release = allocated, release }
}

// New returns a Releaser.
func New(opts ...Option) *Releaser {
	r := &Releaser{quiet: DefaultQuiet, minAllocated: DefaultMinAllocated, allocated: heapAllocated, release: release}
	for _, o := range opts {
		o(r)
	}
	r.mark = r.allocated()
	return r
}

// Begin records that a request began.
func (r *Releaser) Begin() { r.requests.Add(1) }

// Run checks every quiet period until ctx is done and releases memory once
// a whole period passed with no request begun after one with requests, if
// enough was allocated since the last release. A quiet period of zero or
// less releases nothing.
func (r *Releaser) Run(ctx context.Context) {
	if r.quiet <= 0 {
		return
	}
	t := time.NewTicker(r.quiet)
	defer t.Stop()
	r.run(ctx, t.C, nil)
}

// run is Run with the ticks given; after each tick is handled, it sends on
// handled when that is not nil. Requests begun since New count.
func (r *Releaser) run(ctx context.Context, ticks <-chan time.Time, handled chan<- struct{}) {
	var seen uint64
	busy := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		busy, seen = r.tick(busy, seen)
		if handled != nil {
			handled <- struct{}{}
		}
	}
}

// tick handles the end of one quiet period: it releases when requests had
// begun before it and none since, and enough was allocated. It returns
// whether requests began in this period and the count seen.
func (r *Releaser) tick(busy bool, seen uint64) (bool, uint64) {
	if n := r.requests.Load(); n != seen {
		return true, n
	}
	if !busy || r.allocated()-r.mark < r.minAllocated {
		return false, seen
	}
	for _, fn := range r.before {
		fn()
	}
	r.release()
	r.mark = r.allocated()
	if r.onRelease != nil {
		r.onRelease()
	}
	return false, seen
}

// release collects twice and returns the free pages to the kernel: the
// first collection only moves what sync.Pools hold (gRPC's buffers among
// them) to their victim caches, the second frees it.
func release() {
	runtime.GC()
	debug.FreeOSMemory()
}

// heapAllocated is the bytes the program has allocated on the heap since
// it started.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
