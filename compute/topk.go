package compute

import (
	"fmt"
	"math"

	"github.com/rocmforge/rocmforge/ggml"
)

// MaxTopK is the largest k a [TopKer] accepts. Sampling asks for a
// request's top_k (40 is common) or its top logprobs (at most 20); the
// GPU kernel keeps the candidates in shared memory and sorts them there.
const MaxTopK = 256

// TopKRows is [TopKer.TopKRows] over a host F32 tensor, row by row with
// [TopKRow]. It is a function rather than a method of [Reference] so that
// the host backends do not gain the capability: on the host there is no
// transfer to save, and the engine's own sampling already runs in parallel.
func TopKRows(logits *Tensor, k int, ids []int32, vals []float32, lse []float32) error {
	if err := CheckTopKRows(logits, k, ids, vals, lse); err != nil {
		return err
	}
	if logits.F32 == nil && logits.Elems() > 0 {
		return fmt.Errorf("topk: logits %s has no host storage", desc(logits))
	}
	m := logits.Cols()
	for i := range lse {
		lse[i] = float32(TopKRow(logits.F32[i*m:(i+1)*m], ids[i*k:(i+1)*k], vals[i*k:(i+1)*k]))
	}
	return nil
}

// CheckTopKRows validates TopKRows's arguments: logits a 2-D F32 tensor,
// k in [1, MaxTopK], n*k ids and values and n log-sum-exps for its n rows.
func CheckTopKRows(logits *Tensor, k int, ids []int32, vals []float32, lse []float32) error {
	if logits == nil {
		return fmt.Errorf("topk: logits is nil")
	}
	if logits.Type != ggml.F32 {
		return fmt.Errorf("topk: logits %s must be F32", desc(logits))
	}
	if len(logits.Shape) != 2 {
		return fmt.Errorf("topk: logits %s must be 2-D [n, n_vocab]", desc(logits))
	}
	if k < 1 || k > MaxTopK {
		return fmt.Errorf("topk: k %d, want 1 to %d", k, MaxTopK)
	}
	n := logits.Shape[0]
	if len(ids) != n*k || len(vals) != n*k || len(lse) != n {
		return fmt.Errorf("topk: logits %s with k %d wants %d ids, %d values and %d log-sum-exps, got %d, %d and %d",
			desc(logits), k, n*k, n*k, n, len(ids), len(vals), len(lse))
	}
	return nil
}

// TopKRow is the definition of one row of [TopKer.TopKRows], k = len(ids)
// (= len(vals)): the best k elements of row in (value descending, index
// ascending) order, -1/-Inf padding, and the row's log-sum-exp in float64.
func TopKRow(row []float32, ids []int32, vals []float32) (lse float64) {
	k := len(ids)
	// A bounded heap whose root is the worst kept candidate: after it
	// fills, most elements lose one comparison against the root.
	h := topKHeap{ids: ids[:0], vals: vals[:0]}
	m := math.Inf(-1)
	bad := false
	for j, v := range row {
		if !(v <= math.MaxFloat32) { // NaN or +Inf: the sampler refuses the row
			bad = true
		}
		if v != v || v < -math.MaxFloat32 {
			continue // NaN and -Inf are never candidates
		}
		m = max(m, float64(v))
		switch {
		case len(h.ids) < k:
			h.push(int32(j), v)
		case topKBetter(int32(j), v, h.ids[0], h.vals[0]):
			h.ids[0], h.vals[0] = int32(j), v
			h.down(0)
		}
	}
	// Heap sort in place: the root (the worst) goes last each time.
	kept := len(h.ids)
	for n := kept; n > 1; n-- {
		h.ids[0], h.ids[n-1] = h.ids[n-1], h.ids[0]
		h.vals[0], h.vals[n-1] = h.vals[n-1], h.vals[0]
		h.ids, h.vals = h.ids[:n-1], h.vals[:n-1]
		h.down(0)
	}
	for i := kept; i < k; i++ {
		ids[i], vals[i] = -1, float32(math.Inf(-1))
	}
	switch {
	case bad:
		return math.NaN()
	case math.IsInf(m, -1):
		return m
	}
	var z float64
	for _, v := range row {
		z += math.Exp(float64(v) - m)
	}
	return m + math.Log(z)
}

// topKBetter is the candidate order: the larger value first (-0 == +0 as
// the comparison has it), equal values by the lower index.
func topKBetter(ia int32, va float32, ib int32, vb float32) bool {
	return va > vb || (va == vb && ia < ib)
}

// topKHeap is a heap of candidates whose root is the worst one.
type topKHeap struct {
	ids  []int32
	vals []float32
}

func (h *topKHeap) push(id int32, v float32) {
	h.ids, h.vals = append(h.ids, id), append(h.vals, v)
	for i := len(h.ids) - 1; i > 0; {
		p := (i - 1) / 2
		if !topKBetter(h.ids[p], h.vals[p], h.ids[i], h.vals[i]) {
			break
		}
		h.swap(p, i)
		i = p
	}
}

func (h *topKHeap) down(i int) {
	n := len(h.ids)
	for {
		w := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < n && topKBetter(h.ids[w], h.vals[w], h.ids[c], h.vals[c]) {
				w = c
			}
		}
		if w == i {
			return
		}
		h.swap(i, w)
		i = w
	}
}

func (h *topKHeap) swap(i, j int) {
	h.ids[i], h.ids[j] = h.ids[j], h.ids[i]
	h.vals[i], h.vals[j] = h.vals[j], h.vals[i]
}
