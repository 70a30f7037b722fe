package catalogd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/ferrydev/ferry/internal/catalog"
	"github.com/ferrydev/ferry/internal/ociimage"
)

// ImageCatalogs follows catalog images: each reference is pulled into the
// image cache and served as a file-based catalog directory. A tag is
// resolved again on every Check; a new digest is pulled and swapped in
// through the reloader, and a pull or load that fails keeps the catalog
// served so far and is reported by Problems until a check succeeds.
type ImageCatalogs struct {
	client   *ociimage.Client
	reloader *Reloader
	log      logr.Logger
	images   []*imageCatalog
	// onServed is called with the digests served after every change, to
	// let the cache drop the others.
	onServed func(digests []string)
}

type imageCatalog struct {
	mu  sync.Mutex
	ref string
	// served is in the catalog being served; pending is being tried.
	served, pending *ociimage.Content
	// previous was served before served, kept on disk for calls still
	// reading it.
	previous string
	// problem is why the last check failed, "" when it worked.
	problem string
}

// NewImageCatalogs follows refs (oci://REGISTRY/REPO:TAG or @sha256:...)
// with client, reloading r when one changes. Call SetSources on r with
// Sources before loading.
func NewImageCatalogs(client *ociimage.Client, refs []string, r *Reloader, log logr.Logger) *ImageCatalogs {
	s := &ImageCatalogs{client: client, reloader: r, log: log}
	for _, ref := range refs {
		s.images = append(s.images, &imageCatalog{ref: ref})
	}
	s.onServed = func(digests []string) {
		if err := client.PruneCatalogs(digests...); err != nil {
			log.Error(err, "removing catalog images no longer served from the cache")
		}
	}
	return s
}

// Start pulls every image once. An image that cannot be pulled is served
// from the digest this cache last pulled for its reference, when there is
// one, and reported; otherwise Start fails, naming every image that failed.
func (s *ImageCatalogs) Start(ctx context.Context) error {
	var errs []error
	for _, im := range s.images {
		content, err := s.client.PullCatalog(ctx, im.ref)
		if err == nil {
			im.served = content
			s.remember(im.ref, content)
			s.log.Info("catalog image pulled", "image", im.ref, "digest", content.Digest, "cached", content.Cached)
			continue
		}
		last, ok := s.client.LastKnown(ociimage.KindCatalog, im.ref)
		if !ok {
			errs = append(errs, err)
			continue
		}
		im.served = last
		im.problem = fmt.Sprintf("%v; serving %s, the digest last pulled", err, last.Digest)
		s.log.Error(err, "catalog image pull failed at start; serving the digest last pulled", "image", im.ref, "digest", last.Digest)
	}
	return errors.Join(errs...)
}

func (s *ImageCatalogs) remember(ref string, c *ociimage.Content) {
	if err := s.client.Remember(ociimage.KindCatalog, ref, c.Digest); err != nil {
		s.log.Error(err, "recording the digest of a catalog image", "image", ref)
	}
}

// Sources are the unpacked catalogs, in the order given: the one being
// tried in place of the one served, if any.
func (s *ImageCatalogs) Sources() []catalog.Source {
	out := make([]catalog.Source, 0, len(s.images))
	for _, im := range s.images {
		im.mu.Lock()
		c := im.pending
		if c == nil {
			c = im.served
		}
		im.mu.Unlock()
		if c == nil {
			continue
		}
		out = append(out, catalog.Source{Name: ociimage.SourceName(im.ref, c.Digest), Dir: c.Dir, Format: catalog.FormatFBC, Fingerprint: c.Digest})
	}
	return out
}

// Problems reports every image whose last check failed, as errors: the
// catalog served is older than the image.
func (s *ImageCatalogs) Problems() []catalog.Problem {
	return s.ProblemsOf(nil)
}

// ProblemsOf is Problems as they stand for c, the catalog a caller reports
// beside them: an image whose new digest c was loaded from is served, so
// the problem its last check left ("still serving" the old digest) is
// over, though the check that swapped c in has not cleared it yet. A nil c
// reports every problem.
func (s *ImageCatalogs) ProblemsOf(c *catalog.Catalog) []catalog.Problem {
	var loaded map[string]bool
	if c != nil {
		loaded = make(map[string]bool, len(c.Sources))
		for _, name := range c.Sources {
			loaded[name] = true
		}
	}
	var out []catalog.Problem
	for _, im := range s.images {
		im.mu.Lock()
		over := im.pending != nil && loaded[ociimage.SourceName(im.ref, im.pending.Digest)]
		if im.problem != "" && !over {
			out = append(out, catalog.Problem{Path: im.ref, Field: "image", Reason: im.problem, Severity: catalog.SeverityError})
		}
		im.mu.Unlock()
	}
	return out
}

// Check resolves every image again; those whose digest changed are pulled
// and the catalog reloaded with them. It returns the failures, which are
// also logged and reported by Problems.
func (s *ImageCatalogs) Check(ctx context.Context) error {
	var errs []error
	changed := false
	for _, im := range s.images {
		content, err := s.client.PullCatalog(ctx, im.ref)
		im.mu.Lock()
		switch {
		case err != nil:
			im.problem = fmt.Sprintf("%v; still serving %s", err, digestOf(im.served))
			errs = append(errs, err)
			s.log.Error(err, "catalog image pull failed; still serving the last good catalog", "image", im.ref, "digest", digestOf(im.served))
		case im.served != nil && content.Digest == im.served.Digest:
			im.problem = ""
		default:
			im.pending = content
			changed = true
			s.log.Info("catalog image changed", "image", im.ref, "from", digestOf(im.served), "to", content.Digest)
		}
		im.mu.Unlock()
	}
	if !changed {
		return errors.Join(errs...)
	}
	err := s.reloader.Reload(ctx)
	var served []string
	for _, im := range s.images {
		im.mu.Lock()
		if im.pending != nil {
			if err == nil {
				if im.served != nil {
					im.previous = im.served.Digest
				}
				im.served, im.problem = im.pending, ""
				s.remember(im.ref, im.served)
			} else {
				im.problem = fmt.Sprintf("catalog image %s did not load: %v; still serving %s", im.pending.Digest, err, digestOf(im.served))
				errs = append(errs, fmt.Errorf("catalog image %s at %s: %w", im.ref, im.pending.Digest, err))
			}
			im.pending = nil
		}
		if im.served != nil {
			served = append(served, im.served.Digest)
		}
		if im.previous != "" {
			served = append(served, im.previous)
		}
		im.mu.Unlock()
	}
	if err == nil && s.onServed != nil {
		s.onServed(served)
	}
	return errors.Join(errs...)
}

func digestOf(c *ociimage.Content) string {
	if c == nil {
		return "nothing"
	}
	return c.Digest
}

// Run checks every interval (±10%, so that many catalogd replicas do not
// ask the registry at once; 0: only when triggered) and whenever trigger
// fires, until ctx ends. Each check may take up to timeout.
func (s *ImageCatalogs) Run(ctx context.Context, interval, timeout time.Duration, trigger <-chan struct{}) {
	t := time.NewTimer(jitter(interval))
	if interval <= 0 {
		t.Stop()
	}
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
			s.log.Info("catalog image check requested by signal")
		case <-t.C:
		}
		checkCtx, cancel := context.WithTimeout(ctx, timeout)
		_ = s.Check(checkCtx)
		cancel()
		t.Stop()
		if interval > 0 {
			t.Reset(jitter(interval))
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64())) //nolint:gosec // spreading polls needs no secure randomness
}
