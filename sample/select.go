package sample

import (
	"math"
	"slices"
)

// cand is a candidate token and its processed logit.
type cand struct {
	id    int32
	logit float32
}

// better is the candidate order used everywhere: higher logit first, ties to
// the lower token id, which makes every selection deterministic.
func better(a, b cand) bool {
	return a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

func compareCands(a, b cand) int {
	switch {
	case better(a, b):
		return -1
	case better(b, a):
		return 1
	}
	return 0
}

func sortCands(c []cand) { slices.SortFunc(c, compareCands) }

func finiteOrNegInf(x float32) bool {
	return x == x && x <= math.MaxFloat32
}

// heapSelectLimit is the largest k for which topK uses a bounded heap; above
// it a quickselect over all candidates does less work.
const heapSelectLimit = 128

// topK appends to dst the k best tokens of logits (in no particular order),
// skipping -Inf logits, and returns it. It is O(len(logits)) for small k:
// after the heap fills, most logits lose a single comparison against its
// root.
func topK(dst []cand, logits []float32, k int) []cand {
	if k > heapSelectLimit {
		dst = appendFinite(dst, logits)
		if k < len(dst) {
			nthElement(dst, k)
			dst = dst[:k]
		}
		return dst
	}
	h := dst[:0]
	for i, l := range logits {
		if l < -math.MaxFloat32 {
			continue
		}
		c := cand{int32(i), l}
		if len(h) < k {
			h = append(h, c)
			heapUp(h, len(h)-1)
			continue
		}
		if better(c, h[0]) {
			h[0] = c
			heapDown(h, 0)
		}
	}
	return h
}

// heapUp and heapDown maintain a heap whose root is the worst candidate.
func heapUp(h []cand, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(h[p], h[i]) {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func heapDown(h []cand, i int) {
	n := len(h)
	for {
		w := i
		l, r := 2*i+1, 2*i+2
		if l < n && better(h[w], h[l]) {
			w = l
		}
		if r < n && better(h[w], h[r]) {
			w = r
		}
		if w == i {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// appendFinite appends every token whose logit is not -Inf.
func appendFinite(dst []cand, logits []float32) []cand {
	for i, l := range logits {
		if l >= -math.MaxFloat32 {
			dst = append(dst, cand{int32(i), l})
		}
	}
	return dst
}

// nthElement partially orders c so that c[:k] holds its k best candidates
// (in no particular order). It is a quickselect with a median-of-three pivot
// that falls back to a full sort if the partitions keep coming out lopsided,
// so the worst case is O(n log n).
func nthElement(c []cand, k int) {
	if k <= 0 || k >= len(c) {
		return
	}
	lo, hi := 0, len(c) // the k-th boundary lies in c[lo:hi]
	budget := 2 * bitsLen(len(c))
	for hi-lo > 16 {
		if budget == 0 {
			sortCands(c[lo:hi])
			return
		}
		budget--
		p := partition(c[lo:hi]) + lo
		switch {
		case p == k:
			return
		case p < k:
			lo = p + 1
		default:
			hi = p
		}
	}
	sortCands(c[lo:hi])
}

// partition picks a pivot by median of three, moves better candidates before
// it and the rest after, and returns its final index.
func partition(c []cand) int {
	n := len(c)
	m := n / 2
	// Order c[0], c[m], c[n-1] so that the median lands in c[m].
	if better(c[m], c[0]) {
		c[0], c[m] = c[m], c[0]
	}
	if better(c[n-1], c[m]) {
		c[m], c[n-1] = c[n-1], c[m]
		if better(c[m], c[0]) {
			c[0], c[m] = c[m], c[0]
		}
	}
	c[m], c[n-1] = c[n-1], c[m]
	pivot := c[n-1]
	i := 0
	for j := 0; j < n-1; j++ {
		if better(c[j], pivot) {
			c[i], c[j] = c[j], c[i]
			i++
		}
	}
	c[i], c[n-1] = c[n-1], c[i]
	return i
}

func bitsLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}
