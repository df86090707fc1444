package sample

// window counts the tokens among the most recently accepted ones. The counts
// are kept incrementally so that applying the penalties costs O(distinct
// tokens in the window) per step, not O(window).
type window struct {
	ring   []int32 // the last len(ring) tokens; nil when the window is the whole context
	head   int     // next slot of ring to overwrite
	filled int     // slots of ring in use
	counts map[int32]int32
}

func newWindow(lastN int) *window {
	w := &window{counts: make(map[int32]int32)}
	if lastN > 0 {
		w.ring = make([]int32, lastN)
	}
	return w
}

func (w *window) add(tok int32) {
	if w.ring != nil {
		if w.filled == len(w.ring) {
			old := w.ring[w.head]
			if c := w.counts[old] - 1; c > 0 {
				w.counts[old] = c
			} else {
				delete(w.counts, old)
			}
		} else {
			w.filled++
		}
		w.ring[w.head] = tok
		w.head++
		if w.head == len(w.ring) {
			w.head = 0
		}
	}
	w.counts[tok]++
}

// apply penalizes logits in place (llama.cpp's order: repetition, then
// frequency and presence) and returns the first token id whose logit became
// NaN or +Inf, or -1.
func (w *window) apply(logits []float32, repeat, presence, frequency float32) int32 {
	bad := int32(-1)
	// Map order is random, but each token is penalized independently, so the
	// result does not depend on it; bad is the lowest offending id for a
	// deterministic error message.
	for id, c := range w.counts {
		l := logits[id]
		if l > 0 {
			l /= repeat
		} else {
			l *= repeat
		}
		l -= presence + frequency*float32(c)
		logits[id] = l
		if !finiteOrNegInf(l) && (bad < 0 || id < bad) {
			bad = id
		}
	}
	return bad
}
