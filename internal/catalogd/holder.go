package catalogd

import (
	"sync"

	"github.com/ferrydev/ferry/internal/catalog"
)

// Holder holds the catalog being served. Readers take a consistent snapshot
// with Current; Swap replaces it atomically and wakes every watcher.
type Holder struct {
	mu      sync.RWMutex
	cur     *catalog.Catalog
	changed chan struct{}
}

// NewHolder returns a holder serving c.
func NewHolder(c *catalog.Catalog) *Holder {
	return &Holder{cur: c, changed: make(chan struct{})}
}

// Current returns the catalog being served and a channel closed at the next swap.
func (h *Holder) Current() (*catalog.Catalog, <-chan struct{}) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cur, h.changed
}

// Catalog returns the catalog being served.
func (h *Holder) Catalog() *catalog.Catalog {
	c, _ := h.Current()
	return c
}

// Swap serves c from now on. It reports whether the digest changed; watchers
// are only woken when it did.
func (h *Holder) Swap(c *catalog.Catalog) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	same := h.cur != nil && h.cur.Digest == c.Digest
	h.cur = c
	if same {
		return false
	}
	close(h.changed)
	h.changed = make(chan struct{})
	return true
}
