package catalogd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/ferrydev/ferry/internal/catalog"
)

// Reloader loads the catalog sources again when they change and swaps the
// result in. A reload that fails keeps the last good catalog.
type Reloader struct {
	// mu serialises loads and swaps: reloads and publishes.
	mu       sync.Mutex
	extra    func() []catalog.Source
	dynamic  func() []catalog.Source
	holder   *Holder
	sources  []catalog.Source
	opts     []catalog.Option
	log      logr.Logger
	metrics  *Metrics
	debounce time.Duration
}

// NewReloader returns a reloader for the holder's sources.
func NewReloader(h *Holder, sources []catalog.Source, log logr.Logger, m *Metrics, opts ...catalog.Option) *Reloader {
	return &Reloader{holder: h, sources: sources, opts: opts, log: log, metrics: m, debounce: 300 * time.Millisecond}
}

// ErrEmptyReload refuses a reload that would serve nothing where something was served.
var ErrEmptyReload = errors.New("the reloaded catalog has no servable package; keeping the last good catalog")

// Reload loads the sources and, if that works, serves the result.
func (r *Reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	c, err := catalog.Load(ctx, r.allSources(r.extraSources()), r.opts...)
	if err == nil && len(c.Packages) == 0 && len(r.holder.Catalog().Packages) > 0 {
		err = ErrEmptyReload
	}
	if err != nil {
		r.count(reloadFailure)
		r.log.Error(err, "catalog reload failed; still serving the last good catalog", "digest", r.holder.Catalog().Digest)
		return err
	}
	r.serve(c, start)
	return nil
}

// serve swaps c in, with metrics and logs; r.mu is held.
func (r *Reloader) serve(c *catalog.Catalog, start time.Time) {
	changed := r.holder.Swap(c)
	if r.metrics != nil {
		r.metrics.ObserveCatalog(c)
	}
	if !changed {
		r.count(reloadUnchanged)
		return
	}
	r.count(reloadSuccess)
	n := c.Counts()
	r.log.Info("catalog reloaded", "digest", c.Digest, "packages", n.Packages, "bundles", n.Bundles,
		"problems", len(c.Problems), "duration", time.Since(start).Round(time.Millisecond))
	for _, p := range c.Problems.Errors() {
		r.log.Info("catalog problem", "severity", p.Severity, "path", p.Path, "field", p.Field, "reason", p.Reason)
	}
}

func (r *Reloader) count(result string) {
	if r.metrics != nil {
		r.metrics.reloads.WithLabelValues(result).Inc()
	}
}

// Watch is a watch on the sources' directories, set up before the load it
// guards: a change made while that load runs is an event Run reloads for.
type Watch struct {
	w *fsnotify.Watcher
}

// Close stops the watch.
func (w *Watch) Close() error { return w.w.Close() }

// Watch watches the sources' directories. Call it before the first load
// and hand the result to Run once that load is served: the kernel queues
// the changes made in between, so no second load is needed to catch them.
// The caller closes it.
func (r *Reloader) Watch() (*Watch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching catalog directories: %w", err)
	}
	for _, s := range r.sources {
		if s.Dir == "" {
			continue
		}
		if err := addTree(w, s.Dir); err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("watching catalog directory %s: %w", s.Dir, err)
		}
	}
	return &Watch{w: w}, nil
}

// Run reloads after the changes watch sees settle, or whenever trigger
// fires (SIGHUP). It returns when ctx ends or the watch is closed.
func (r *Reloader) Run(ctx context.Context, watch *Watch, trigger <-chan os.Signal) error {
	w := watch.w
	var timer *time.Timer
	var fire <-chan time.Time
	// schedule reloads once no change has come for the debounce period.
	schedule := func() {
		if timer == nil {
			timer = time.NewTimer(r.debounce)
		} else {
			timer.Reset(r.debounce)
		}
		fire = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
			r.log.Info("reload requested by signal")
			_ = r.Reload(ctx)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					_ = addTree(w, ev.Name)
				}
			}
			schedule()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Error(err, "watching catalog directories")
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Changes were lost from the kernel's queue: load again.
				schedule()
			}
		case <-fire:
			fire = nil
			_ = r.Reload(ctx)
		}
	}
}

func addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(p)
		}
		return nil
	})
}
