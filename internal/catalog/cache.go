package catalog

import (
	"container/list"
	"sync"
)

// DefaultManifestCacheBytes bounds the decoded manifests a catalog keeps in
// memory for bundles whose documents stay on disk.
const DefaultManifestCacheBytes = 64 << 20

// manifestCache keeps recently read manifests, least recently used out
// first, within a byte budget.
type manifestCache struct {
	mu      sync.Mutex
	budget  int
	used    int
	order   *list.List
	entries map[*blobRef]*list.Element
}

type cacheEntry struct {
	key  *blobRef
	ms   []Manifest
	size int
}

func newManifestCache(budget int) *manifestCache {
	return &manifestCache{budget: budget, order: list.New(), entries: map[*blobRef]*list.Element{}}
}

func (c *manifestCache) get(k *blobRef) ([]Manifest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).ms, true
}

func (c *manifestCache) put(k *blobRef, ms []Manifest) {
	size := 0
	for _, m := range ms {
		size += len(m.JSON) + len(m.Name) + len(m.Kind) + len(m.APIVersion)
	}
	if size > c.budget/4 {
		return // one huge bundle must not evict everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		return
	}
	c.entries[k] = c.order.PushFront(&cacheEntry{key: k, ms: ms, size: size})
	c.used += size
	for c.used > c.budget {
		el := c.order.Back()
		e := el.Value.(*cacheEntry)
		c.order.Remove(el)
		delete(c.entries, e.key)
		c.used -= e.size
	}
}
