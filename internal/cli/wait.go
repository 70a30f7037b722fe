package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrydev/ferry/api/v1alpha1"
)

// spinnerInterval is how often the spinner turns.
const spinnerInterval = 120 * time.Millisecond

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// WaitTimeoutError says that --timeout passed before the outcome was known.
type WaitTimeoutError struct {
	// What was waited for.
	What string
	// Timeout is --timeout.
	Timeout time.Duration
	// Last is the last progress seen.
	Last string
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("timed out after %s waiting for %s; last seen: %s", e.Timeout, e.What, e.Last)
}

// OutcomeError is a change the installer observed and that failed.
type OutcomeError struct {
	// Subscription is namespace/name.
	Subscription string
	// What was waited for.
	What string
	// Reason is the cause, in the status' words.
	Reason string
}

func (e *OutcomeError) Error() string {
	return fmt.Sprintf("%s: %s failed: %s", e.Subscription, e.What, e.Reason)
}

// verdict is what a judge decides from one read of the Subscription.
type verdict struct {
	// done: the outcome is known; err says whether it failed.
	done bool
	err  error
	// progress says what is happening while not done.
	progress string
}

// judge decides the outcome from a Subscription whose status the installer
// wrote for the generation waited for, or a newer one.
type judge func(ctx context.Context, sub *v1alpha1.Subscription) verdict

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

// readTimeout bounds each read of the Subscription while waiting.
const readTimeout = 10 * time.Second

// waitFor reads the Subscription until the installer has observed
// generation and j knows the outcome, or until the timeout. A read that
// fails for a while (the API server restarting, a slow network) does not
// end the wait; a deleted Subscription or a refused read does.
func (a *app) waitFor(ctx context.Context, c client.Client, key client.ObjectKey, generation int64, timeout time.Duration, what string, j judge) error {
	deadline := time.Now().Add(timeout)
	p := newProgress(a.errOut, what)
	defer p.stop()
	last := "nothing read yet"
	tick := time.NewTicker(a.poll)
	defer tick.Stop()
	for {
		sub := &v1alpha1.Subscription{}
		rctx, cancel := context.WithTimeout(ctx, min(readTimeout, max(time.Until(deadline), a.poll)))
		err := c.Get(rctx, key, sub)
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			p.finish(false)
			return &OutcomeError{Subscription: key.String(), What: what, Reason: "the Subscription was deleted"}
		case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
			p.finish(false)
			return fmt.Errorf("reading Subscription %s: %w", key, err)
		case err != nil:
			if ctx.Err() == nil {
				last = fmt.Sprintf("reading the Subscription failed, retrying: %v", err)
			}
		default:
			if seen := observedGeneration(sub); seen < generation {
				last = fmt.Sprintf("the installer has not observed generation %d yet (status is for generation %d)", generation, seen)
			} else {
				v := j(ctx, sub)
				if v.done {
					p.finish(v.err == nil)
					return v.err
				}
				last = v.progress
			}
		}
		p.set(last)
		if !time.Now().Before(deadline) {
			p.finish(false)
			return &WaitTimeoutError{What: what, Timeout: timeout, Last: last}
		}
		select {
		case <-ctx.Done():
			p.finish(false)
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// progress shows what a wait is at: a spinner on a terminal, otherwise a
// line each time the message changes.
type progress struct {
	w    io.Writer
	tty  bool
	what string

	mu    sync.Mutex
	msg   string
	frame int
	done  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(w io.Writer, what string) *progress {
	f, ok := w.(*os.File)
	return startProgress(w, what, ok && term.IsTerminal(int(f.Fd())))
}

// startProgress shows progress on w, with a spinner when tty.
func startProgress(w io.Writer, what string, tty bool) *progress {
	p := &progress{w: w, what: what, tty: tty, done: make(chan struct{})}
	if tty {
		p.wg.Add(1)
		go p.spin()
	} else {
		fmt.Fprintf(w, "Waiting for %s ...\n", what)
	}
	return p
}

func (p *progress) spin() {
	defer p.wg.Done()
	t := time.NewTicker(spinnerInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.mu.Lock()
			p.frame++
			p.draw()
			p.mu.Unlock()
		}
	}
}

// draw rewrites the spinner line; p.mu is held.
func (p *progress) draw() {
	fmt.Fprintf(p.w, "\r\033[K%s %s: %s", spinnerFrames[p.frame%len(spinnerFrames)], p.what, p.msg)
}

func (p *progress) set(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if msg == p.msg {
		return
	}
	p.msg = msg
	if p.tty {
		p.draw()
		return
	}
	fmt.Fprintf(p.w, "  %s\n", msg)
}

// finish ends the wait with a last line.
func (p *progress) finish(ok bool) {
	p.stop()
	mark := "done"
	if !ok {
		mark = "failed"
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.what, mark)
}

// stop ends the spinner; calling it again does nothing.
func (p *progress) stop() {
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return
	default:
		close(p.done)
	}
	p.mu.Unlock()
	p.wg.Wait()
	if p.tty {
		p.mu.Lock()
		fmt.Fprintf(p.w, "\r\033[K")
		p.mu.Unlock()
	}
}
