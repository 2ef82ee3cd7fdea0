package edge

import (
	"container/list"
	"sync"
)

// cache is an LRU map from request path to object, bounded by the bytes
// its objects cost (object.size). Freshness is the caller's to judge: a
// stale object stays until it is replaced or evicted, so it can still be
// served when every origin fails.
type cache struct {
	mu        sync.Mutex
	max       int64
	size      int64
	ll        *list.List // front: most recently used
	items     map[string]*list.Element
	evictions uint64
}

type cacheEntry struct {
	key  string
	obj  *object
	size int64
}

// newCache returns a cache of maxBytes; 0 keeps nothing.
func newCache(maxBytes int64) *cache {
	return &cache{max: max(maxBytes, 0), ll: list.New(), items: make(map[string]*list.Element)}
}

// get returns the object under key, fresh or not, and marks it used.
func (c *cache) get(key string) (*object, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*cacheEntry).obj, true
}

// put stores o under key, replacing what was there, and evicts the least
// recently used objects until the cache fits. An object bigger than the
// whole cache is not stored (and what the key held is dropped).
func (c *cache) put(key string, o *object) bool {
	n := o.size(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
	if n > c.max {
		return false
	}
	for c.size+n > c.max {
		c.removeElement(c.ll.Back())
		c.evictions++
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, obj: o, size: n})
	c.size += n
	return true
}

// remove drops key.
func (c *cache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
}

func (c *cache) removeElement(el *list.Element) {
	e := c.ll.Remove(el).(*cacheEntry)
	delete(c.items, e.key)
	c.size -= e.size
}

// cacheStats is a snapshot of the cache's size.
type cacheStats struct {
	objects   int
	bytes     int64
	capacity  int64
	evictions uint64
}

func (c *cache) stats() cacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheStats{objects: c.ll.Len(), bytes: c.size, capacity: c.max, evictions: c.evictions}
}
