package catalogd

import (
	"context"
	"time"

	"github.com/ferrydev/ferry/internal/catalog"
)

// SetExtraSources adds sources that are not directories on disk, such as the
// published bundles, to every reload: fn is called, with the reloader's lock
// held, each time the catalog is loaded. Call it before Run.
func (r *Reloader) SetExtraSources(fn func() []catalog.Source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra = fn
}

// SetSources adds sources resolved at each load, such as catalog images
// unpacked into a cache: fn is called, with the reloader's lock held, each
// time the catalog is loaded; its sources come after the static ones and
// before the extra ones. Call it before the first load.
func (r *Reloader) SetSources(fn func() []catalog.Source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dynamic = fn
}

// Sources returns the static sources followed by the extra ones.
func (r *Reloader) Sources() []catalog.Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.allSources(r.extraSources())
}

func (r *Reloader) extraSources() []catalog.Source {
	if r.extra == nil {
		return nil
	}
	return r.extra()
}

func (r *Reloader) allSources(extra []catalog.Source) []catalog.Source {
	var dynamic []catalog.Source
	if r.dynamic != nil {
		dynamic = r.dynamic()
	}
	out := make([]catalog.Source, 0, len(r.sources)+len(dynamic)+len(extra))
	out = append(out, r.sources...)
	out = append(out, dynamic...)
	return append(out, extra...)
}

// LoadFunc loads the static sources followed by extra, with the reloader's
// options, without serving the result.
type LoadFunc func(ctx context.Context, extra []catalog.Source) (*catalog.Catalog, error)

// Update runs fn with the reloader's lock held, so no reload interleaves:
// fn may load candidate catalogs and change what the extra sources return,
// and returns the catalog to serve (nil to serve nothing new). An error from
// fn is returned as is.
func (r *Reloader) Update(ctx context.Context, fn func(load LoadFunc) (*catalog.Catalog, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	c, err := fn(func(ctx context.Context, extra []catalog.Source) (*catalog.Catalog, error) {
		return catalog.Load(ctx, r.allSources(extra), r.opts...)
	})
	if err != nil || c == nil {
		return err
	}
	r.serve(c, start)
	return nil
}
