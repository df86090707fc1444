package tokenizer

// symbol is one piece of a word while merges run: a byte range of the text
// being tokenized, linked to its neighbours. A merged-away symbol has n == 0.
type symbol struct {
	start, n   int32
	prev, next int32
	id         int32 // SPM: token id of the text, -1 if none; BPE: interned string id, -1 if none
}

// candidate is a possible merge of symbols left and right (adjacent when it
// was queued). Higher prio pops first, then the lower left index, which is
// both llama.cpp's SPM order (score, then position) and its BPE order (with
// prio = -rank).
type candidate struct {
	prio        float32
	left, right int32
	size        int32 // combined length when queued; a mismatch means stale
	result      int32 // id of the merged symbol
}

// mergeQueue is a binary max-heap of candidates; it keeps its backing array
// between calls so that steady-state tokenizing does not allocate.
type mergeQueue struct{ h []candidate }

func (q *mergeQueue) reset() { q.h = q.h[:0] }

func (q *mergeQueue) len() int { return len(q.h) }

func (a *candidate) before(b *candidate) bool {
	return a.prio > b.prio || (a.prio == b.prio && a.left < b.left)
}

func (q *mergeQueue) push(c candidate) {
	q.h = append(q.h, c)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *mergeQueue) pop() candidate {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h = q.h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && q.h[r].before(&q.h[l]) {
			m = r
		}
		if !q.h[m].before(&q.h[i]) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

// pairer computes the merge candidate for two adjacent live symbols, if the
// vocabulary has one.
type pairer interface {
	pair(left, right int32) (candidate, bool)
}

// linearMergeMax is the symbol count up to which merging scans the pairs
// instead of using the heap: for the short words that make up most text a
// scan of a few cached candidates beats heap upkeep. Both give the same
// merges, since both pick the live pair with the best (priority, position).
const linearMergeMax = 24

// mergeSymbols merges the symbols of a chain that starts at 0 and is laid
// out in order (syms[i].next == i+1).
func mergeSymbols(syms []symbol, q *mergeQueue, p pairer, linearMax int) {
	if len(syms) < 2 {
		return
	}
	if len(syms) <= linearMax {
		mergeLinear(syms, q, p)
		return
	}
	q.reset()
	for i := int32(1); i < int32(len(syms)); i++ {
		if c, ok := p.pair(i-1, i); ok {
			q.push(c)
		}
	}
	mergeHeap(syms, q, p)
}

// mergeHeap runs the merge loop as llama.cpp does: pop the best candidate,
// skip it if either side has changed since it was queued, else merge right
// into left and queue the new pairs with the neighbours.
func mergeHeap(syms []symbol, q *mergeQueue, p pairer) {
	for q.len() > 0 {
		c := q.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != c.size {
			continue
		}
		merge(syms, c)
		if l.prev >= 0 {
			if c, ok := p.pair(l.prev, c.left); ok {
				q.push(c)
			}
		}
		if l.next >= 0 {
			if c, ok := p.pair(c.left, l.next); ok {
				q.push(c)
			}
		}
	}
}

// merge joins the right symbol of c into the left one.
func merge(syms []symbol, c candidate) {
	l, r := &syms[c.left], &syms[c.right]
	l.n += r.n
	l.id = c.result
	r.n = 0
	l.next = r.next
	if r.next >= 0 {
		syms[r.next].prev = c.left
	}
}

// mergeLinear keeps, per live symbol, the candidate with its right
// neighbour (in q's backing array) and picks the best by scanning.
func mergeLinear(syms []symbol, q *mergeQueue, p pairer) {
	n := len(syms)
	cands := q.h[:0]
	for i := range n {
		c, ok := candidate{}, false
		if i+1 < n {
			c, ok = p.pair(int32(i), int32(i+1))
		}
		if !ok {
			c.left = -1
		}
		cands = append(cands, c)
	}
	q.h = cands
	refresh := func(i int32) {
		c, ok := candidate{}, false
		if next := syms[i].next; next >= 0 {
			c, ok = p.pair(i, next)
		}
		if !ok {
			c.left = -1
		}
		cands[i] = c
	}
	for {
		best := int32(-1)
		for i := int32(0); i >= 0; i = syms[i].next {
			if cands[i].left >= 0 && (best < 0 || cands[i].before(&cands[best])) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		merge(syms, cands[best])
		refresh(best)
		if prev := syms[best].prev; prev >= 0 {
			refresh(prev)
		}
	}
}
