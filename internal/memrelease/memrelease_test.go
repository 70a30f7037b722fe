package memrelease

import (
	"context"
	"strings"
	"testing"
	"time"
)

// step is one event in a scenario: "req" (a request begins), "alloc"
// (32 MiB allocated), "tick" (a quiet period ends).
type step string

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		min   uint64
		steps string
		want  int
	}{
		{name: "a burst then a quiet period releases once", steps: "req alloc tick tick tick tick", want: 1},
		{name: "no request never releases", steps: "alloc tick alloc tick tick", want: 0},
		{name: "requests in every period: none", steps: "req alloc tick req alloc tick req tick", want: 0},
		{name: "released when requests stop", steps: "req alloc tick req alloc tick tick", want: 1},
		{name: "too little allocated: none", min: 64 << 20, steps: "req alloc tick tick", want: 0},
		{name: "allocation counts across bursts", min: 64 << 20, steps: "req alloc tick tick req alloc tick tick", want: 1},
		{name: "each burst releases again", steps: "req alloc tick tick req alloc tick tick", want: 2},
		{name: "the allocation before a release does not count again", steps: "req alloc tick tick req tick tick", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var allocated uint64
			var log []string
			opts := []Option{
				withRuntime(func() uint64 { return allocated }, func() { log = append(log, "release") }),
				WithBeforeRelease(func() { log = append(log, "trim") }),
				WithOnRelease(func() { log = append(log, "counted") }),
			}
			if tt.min != 0 {
				opts = append(opts, WithMinAllocated(tt.min))
			}
			r := New(opts...)
			ticks := make(chan time.Time)
			handled := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.run(ctx, ticks, handled)
			}()
			for _, s := range strings.Fields(tt.steps) {
				switch step(s) {
				case "req":
					r.Begin()
				case "alloc":
					allocated += 32 << 20
				case "tick":
					ticks <- time.Time{}
					<-handled
				default:
					t.Fatalf("unknown step %q", s)
				}
			}
			cancel()
			<-done
			var want []string
			for range tt.want {
				want = append(want, "trim", "release", "counted")
			}
			if strings.Join(log, " ") != strings.Join(want, " ") {
				t.Fatalf("calls = %q, want %q", log, want)
			}
		})
	}
}

func TestRunOffWithoutQuietPeriod(t *testing.T) {
	released := false
	r := New(WithQuiet(0), withRuntime(func() uint64 { return 0 }, func() { released = true }))
	r.Begin()
	r.Run(context.Background()) // returns at once
	if released {
		t.Fatal("released with a quiet period of 0")
	}
}

func TestHeapAllocatedGrows(t *testing.T) {
	before := heapAllocated()
	sink = make([]byte, 1<<20)
	if after := heapAllocated(); after < before+1<<20 {
		t.Fatalf("allocated %d then %d bytes after a 1 MiB allocation", before, after)
	}
}

var sink []byte
