package kvcache

// alloc takes a block for new content: a free one if any, else the least
// recently released cached block, which leaves the prefix cache. Callers
// check Available first; alloc with none available is a bug.
func (m *Manager) alloc() int32 {
	var b int32
	if n := len(m.free); n > 0 {
		b = m.free[n-1]
		m.free = m.free[:n-1]
	} else {
		b = m.links[m.lru].next
		if b == m.lru {
			panic("kvcache: alloc with no free or cached block") // guarded by Available in every caller
		}
		m.lruRemove(b)
		m.unregister(b)
		m.evictions++
	}
	m.blocks[b].ref = 1
	return b
}

// ref adds a reference to a block, taking it out of the cache list if it
// was unreferenced.
func (m *Manager) ref(b int32) {
	if m.blocks[b].ref == 0 {
		m.lruRemove(b) // only cached blocks are unreferenced and reachable
	}
	m.blocks[b].ref++
}

// unref drops a reference; an unreferenced block becomes cached (most
// recently used) if it is registered, free otherwise.
func (m *Manager) unref(b int32) {
	m.blocks[b].ref--
	if m.blocks[b].ref > 0 {
		return
	}
	if m.blocks[b].hashed {
		m.lruPush(b)
	} else {
		m.free = append(m.free, b)
	}
}

// lruPush appends b as the most recently released cached block.
func (m *Manager) lruPush(b int32) {
	tail := m.links[m.lru].prev
	m.links[b] = link{prev: tail, next: m.lru}
	m.links[tail].next = b
	m.links[m.lru].prev = b
	m.cached++
}

func (m *Manager) lruRemove(b int32) {
	l := m.links[b]
	m.links[l.prev].next = l.next
	m.links[l.next].prev = l.prev
	m.links[b] = link{}
	m.cached--
}
