package pieces

import (
	"container/list"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/storage"
)

// treeCache keeps the most recently used trees within a memory budget, so
// that proofs of a busy piece do not reread and rehash its tree file.
type treeCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // of *cached, most recent first
	byCID map[cid.Cid]*list.Element
}

type cached struct {
	id   cid.Cid
	tree *storage.Tree
	size int64
}

func newTreeCache(max int64) *treeCache {
	return &treeCache{max: max, order: list.New(), byCID: make(map[cid.Cid]*list.Element)}
}

// treeMemory is the memory of a tree's levels: 32 bytes per 2^CacheHeight
// leaves at the lowest level, about as much again above it.
func treeMemory(t *storage.Tree) int64 {
	return int64(t.Padded>>t.CacheHeight) * 2
}

func (c *treeCache) get(id cid.Cid) *storage.Tree {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byCID[id]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cached).tree
}

func (c *treeCache) put(id cid.Cid, t *storage.Tree) {
	size := treeMemory(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byCID[id]; ok {
		c.drop(e)
	}
	if size > c.max {
		return // would evict everything and still not fit
	}
	c.byCID[id] = c.order.PushFront(&cached{id: id, tree: t, size: size})
	c.used += size
	for c.used > c.max {
		c.drop(c.order.Back())
	}
}

func (c *treeCache) remove(id cid.Cid) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byCID[id]; ok {
		c.drop(e)
	}
}

func (c *treeCache) drop(e *list.Element) {
	v := c.order.Remove(e).(*cached)
	delete(c.byCID, v.id)
	c.used -= v.size
}
