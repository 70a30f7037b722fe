package catalogd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/catalogd"
)

// demoCatalogDir writes package demo with 1.0.0 and 1.1.0 in stable.
func demoCatalogDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.0.0", channels: []string{"stable"}})
	writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.1.0", channels: []string{"stable"}, replaces: "demo.v1.0.0"})
	return dir
}

func newReloader(t *testing.T, dir string, m *catalogd.Metrics, opts ...catalog.Option) (*catalogd.Holder, *catalogd.Reloader) {
	t.Helper()
	h := catalogd.NewHolder(loadDir(t, dir, opts...))
	return h, catalogd.NewReloader(h, []catalog.Source{catalog.DirSource(dir)}, logr.Discard(), m, opts...)
}

func TestReload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []catalog.Option
		change func(t *testing.T, dir string)
		// fails: Reload returns an error and the previous catalog stays.
		fails   bool
		errIs   error
		changed bool
		head    string
	}{
		{name: "unchanged", change: func(*testing.T, string) {}, head: "demo.v1.1.0"},
		{name: "new version", changed: true, head: "demo.v1.2.0", change: func(t *testing.T, dir string) {
			writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.2.0", channels: []string{"stable"}, replaces: "demo.v1.1.0"})
		}},
		{name: "broken bundle is left out", changed: true, head: "demo.v1.0.0", change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "demo", "1.1.0", "manifests", "demo.clusterserviceversion.yaml"), "kind: [unterminated\n")
		}},
		{name: "broken bundle with strict", opts: []catalog.Option{catalog.WithStrict(true)}, fails: true, change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "demo", "1.1.0", "manifests", "demo.clusterserviceversion.yaml"), "kind: [unterminated\n")
		}},
		{name: "nothing servable", fails: true, errIs: catalogd.ErrEmptyReload, change: func(t *testing.T, dir string) {
			for _, v := range []string{"1.0.0", "1.1.0"} {
				writeFile(t, filepath.Join(dir, "demo", v, "metadata", "annotations.yaml"), "annotations: [\n")
			}
		}},
		{name: "directory gone", fails: true, change: func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := demoCatalogDir(t)
			m := catalogd.NewMetrics()
			h, r := newReloader(t, dir, m, tc.opts...)
			before := h.Catalog()
			tc.change(t, dir)

			err := r.Reload(context.Background())
			after := h.Catalog()
			if tc.fails {
				if err == nil {
					t.Fatalf("Reload succeeded, serving %s", after.Digest)
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("error %v, want %v", err, tc.errIs)
				}
				if after != before || after.Digest != before.Digest {
					t.Errorf("serving %s after a failed reload, want the previous %s", after.Digest, before.Digest)
				}
				checkReloads(t, m, 0, 1, 0)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed := after.Digest != before.Digest; changed != tc.changed {
				t.Errorf("digest changed = %v, want %v", changed, tc.changed)
			}
			if got := after.Package("demo").Channel("stable").Head; got != tc.head {
				t.Errorf("head %s, want %s", got, tc.head)
			}
			if tc.changed {
				checkReloads(t, m, 1, 0, 0)
			} else {
				checkReloads(t, m, 0, 0, 1)
			}
		})
	}
}

func TestReloaderRun(t *testing.T) {
	dir := demoCatalogDir(t)
	h, r := newReloader(t, dir, nil)
	first := h.Catalog().Digest
	trigger := make(chan os.Signal, 1)
	runReloader(t, r, trigger)

	// A directory created while Run runs is watched once Run has handled
	// its event; a file written into it before that is no event. nudge
	// rewrites an unchanged file, which is a change event without a change
	// of content.
	ann := filepath.Join(dir, "demo", "1.0.0", "metadata", "annotations.yaml")
	annData, err := os.ReadFile(ann)
	if err != nil {
		t.Fatal(err)
	}
	nudge := func() { writeFile(t, ann, string(annData)) }

	waitFor := func(what string, ok func(*catalog.Catalog) bool) {
		t.Helper()
		waitForCatalog(t, h, what, ok, nudge)
	}

	// A new bundle directory appears in one step (written aside, then renamed in).
	stage := t.TempDir()
	writeBundle(t, stage, bundleSpec{pkg: "demo", version: "1.2.0", channels: []string{"stable"}, replaces: "demo.v1.1.0"})
	if err := os.Rename(filepath.Join(stage, "demo", "1.2.0"), filepath.Join(dir, "demo", "1.2.0")); err != nil {
		t.Fatal(err)
	}
	waitFor("new bundle directory", func(c *catalog.Catalog) bool { return c.Bundle("demo", "demo.v1.2.0") != nil })
	if h.Catalog().Digest == first {
		t.Error("digest unchanged after the new bundle")
	}

	// A file in the newly watched directory changes.
	writeFile(t, filepath.Join(dir, "demo", "1.2.0", "manifests", "demo.clusterserviceversion.yaml"),
		"apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: demo.v1.2.0\n"+
			"spec:\n  version: 1.2.0\n  replaces: demo.v1.1.0\n  skips:\n  - demo.v1.0.0\n")
	waitFor("file change", func(c *catalog.Catalog) bool {
		b := c.Bundle("demo", "demo.v1.2.0")
		if b == nil {
			return false
		}
		e := c.Package("demo").Channel("stable").Entry("demo.v1.2.0")
		return len(e.Skips) == 1 && e.Skips[0] == "demo.v1.0.0"
	})
}

// TestReloaderWatchBeforeLoad: a change made while the served catalog loads
// (after Watch, before Run) is reloaded for once Run runs.
func TestReloaderWatchBeforeLoad(t *testing.T) {
	dir := demoCatalogDir(t)
	m := catalogd.NewMetrics()
	h := catalogd.NewHolder(nil)
	r := catalogd.NewReloader(h, []catalog.Source{catalog.DirSource(dir)}, logr.Discard(), m)
	w, err := r.Watch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	first := loadDir(t, dir)
	// The change lands after the load read the tree, before it is served.
	writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.2.0", channels: []string{"stable"}, replaces: "demo.v1.1.0"})
	h.Swap(first)

	ctx := runWatch(t, r, w, nil)
	waitForCatalog(t, h, "change made during the load", func(c *catalog.Catalog) bool { return c.Bundle("demo", "demo.v1.2.0") != nil }, nil)
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return reloads(t, m, "success") == 1, nil
	}); err != nil {
		t.Fatalf("reload not counted: %v", err)
	}
	// Events drained more than the debounce apart (a starved goroutine)
	// may add a reload that finds nothing new; never a failed one.
	if n := reloads(t, m, "failure"); n != 0 {
		t.Errorf("%v failed reloads", n)
	}
}

// TestReloaderRunSignal reloads on the trigger alone: a source without a
// directory on disk is not watched.
func TestReloaderRunSignal(t *testing.T) {
	dir := demoCatalogDir(t)
	src := catalog.Source{Name: "demo", FS: os.DirFS(dir)}
	first, err := catalog.Load(context.Background(), []catalog.Source{src})
	if err != nil {
		t.Fatal(err)
	}
	h := catalogd.NewHolder(first)
	r := catalogd.NewReloader(h, []catalog.Source{src}, logr.Discard(), nil)
	trigger := make(chan os.Signal, 1)
	runReloader(t, r, trigger)

	writeBundle(t, dir, bundleSpec{pkg: "demo", version: "1.2.0", channels: []string{"stable"}, replaces: "demo.v1.1.0"})
	trigger <- syscall.SIGHUP
	waitForCatalog(t, h, "after SIGHUP", func(c *catalog.Catalog) bool { return c.Bundle("demo", "demo.v1.2.0") != nil }, nil)
	if h.Catalog().Digest == first.Digest {
		t.Error("digest unchanged")
	}
}

// runReloader watches r's sources and runs r until the test ends.
func runReloader(t *testing.T, r *catalogd.Reloader, trigger <-chan os.Signal) {
	t.Helper()
	w, err := r.Watch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	runWatch(t, r, w, trigger)
}

// runWatch runs r on w until the test ends, and returns the context it runs
// in.
func runWatch(t *testing.T, r *catalogd.Reloader, w *catalogd.Watch, trigger <-chan os.Signal) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, w, trigger) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return ctx
}

// waitForCatalog waits until the holder serves a catalog for which ok holds,
// checking at every swap (no polling). nudge, when set, runs every two
// seconds while waiting: it repeats a file event that a watch set up late
// can miss. The timeout is only a safety net.
func waitForCatalog(t *testing.T, h *catalogd.Holder, what string, ok func(*catalog.Catalog) bool, nudge func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var tick <-chan time.Time
	if nudge != nil {
		ticker := time.NewTicker(2 * time.Second)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		c, changed := h.Current()
		if ok(c) {
			return
		}
		select {
		case <-changed:
		case <-tick:
			nudge()
		case <-ctx.Done():
			t.Fatalf("%s: still serving %s after %v", what, c.Digest, ctx.Err())
		}
	}
}
