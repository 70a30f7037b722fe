package lru

import (
	"container/list"
	"sync"
)

// Cache holds values of type V by key K within a byte budget. It is safe for
// concurrent use. Values are shared: callers must not modify them.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	budget  int64
	used    int64
	maxItem int64
	order   *list.List // front: most recently used; values are *entry
	items   map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key  K
	val  V
	size int64
}

// New returns a cache of at most budget bytes. A single value larger than a
// quarter of the budget is not kept, so that one huge value cannot evict
// everything else.
func New[K comparable, V any](budget int64) *Cache[K, V] {
	return &Cache[K, V]{budget: budget, maxItem: budget / 4, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value for key and marks it recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).val, true
}

// Put stores value, which weighs size bytes, evicting as needed.
func (c *Cache[K, V]) Put(key K, value V, size int64) {
	if size > c.maxItem {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry[K, V])
		c.used += size - e.size
		e.val, e.size = value, size
		c.order.MoveToFront(el)
	} else {
		c.items[key] = c.order.PushFront(&entry[K, V]{key: key, val: value, size: size})
		c.used += size
	}
	for c.used > c.budget {
		el := c.order.Back()
		e := el.Value.(*entry[K, V])
		c.order.Remove(el)
		delete(c.items, e.key)
		c.used -= e.size
	}
}

// Purge removes every entry.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.items)
	c.used = 0
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Used is the number of bytes held.
func (c *Cache[K, V]) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
