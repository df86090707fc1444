package model

import (
	"testing"

	"github.com/rocmforge/rocmforge/compute"
)

// topkBackend is a host backend with the TopKer capability (the plain-Go
// definition), so that ForwardTopK's backend path runs here.
type topkBackend struct {
	compute.Backend
	calls int
}

func (b *topkBackend) TopKRows(x *compute.Tensor, k int, ids []int32, vals []float32, lse []float32) error {
	b.calls++
	return compute.TopKRows(x, k, ids, vals, lse)
}

// batchRunner builds the steps of nSeq sequences in one cache (blocks of 2
// slots, sequence si owning blocks si, si+nSeq, ...).
type batchRunner struct {
	nSeq int
	lens []int
}

func (r *batchRunner) step(tokens func() int32, counts ...int) *Batch {
	const bs = 2
	if r.lens == nil {
		r.lens = make([]int, r.nSeq)
	}
	var b Batch
	for si, cnt := range counts {
		if cnt == 0 {
			continue
		}
		var table []int32
		for blk := range 16 {
			table = append(table, int32(blk*r.nSeq+si))
		}
		q0 := len(b.Tokens)
		for range cnt {
			p := r.lens[si]
			b.Tokens = append(b.Tokens, tokens())
			b.Positions = append(b.Positions, int32(p))
			b.Slots = append(b.Slots, table[p/bs]*bs+int32(p%bs))
			r.lens[si]++
		}
		b.Seqs = append(b.Seqs, compute.SeqAttn{QStart: q0, QLen: cnt, CtxLen: r.lens[si], Blocks: table})
		b.Outputs = append(b.Outputs, len(b.Tokens)-1)
	}
	return &b
}

// TestForwardTopK: ForwardTopK gives compute.TopKRow of Forward's logits,
// through a backend's TopKer and through the host fallback, for k below
// and above the vocabulary size.
func TestForwardTopK(t *testing.T) {
	rng := newRNG(t)
	g := newTinyLlama(rng)
	tb := &topkBackend{Backend: compute.NewReference()}
	models := []*Model{loadTiny(t, g, compute.NewReference()), loadTiny(t, g, compute.NewReference()), loadTiny(t, g, tb)}
	caches := make([]*Cache, len(models))
	for i, m := range models {
		c, err := NewCache(m.Backend(), m.HParams, 3*16, 2)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Free)
		caches[i] = c
	}
	run := &batchRunner{nSeq: 3}
	for i, counts := range [][]int{{4, 2, 3}, {1, 1, 1}, {1, 0, 1}, {2, 1, 1}} {
		toks := make([]int32, 0, 12)
		for range 12 {
			toks = append(toks, int32(rng.IntN(tinyVocab)))
		}
		next := 0
		b := run.step(func() int32 { next++; return toks[next-1] }, counts...)
		n := len(b.Outputs)
		logits := make([]float32, n*tinyVocab)
		if err := models[0].Forward(b, caches[0], logits); err != nil {
			t.Fatal(err)
		}
		k := []int{1, 5, tinyVocab + 3, 17}[i]
		for mi, name := range []string{"", "host fallback", "backend TopKer"} {
			if mi == 0 {
				continue
			}
			ids, vals, lse := make([]int32, n*k), make([]float32, n*k), make([]float32, n)
			if err := models[mi].ForwardTopK(b, caches[mi], k, ids, vals, lse); err != nil {
				t.Fatalf("step %d %s: %v", i, name, err)
			}
			wantIDs, wantVals := make([]int32, k), make([]float32, k)
			for r := range n {
				want := compute.TopKRow(logits[r*tinyVocab:(r+1)*tinyVocab], wantIDs, wantVals)
				for s := range k {
					if ids[r*k+s] != wantIDs[s] || vals[r*k+s] != wantVals[s] {
						t.Fatalf("step %d %s output %d slot %d: (%d, %v), want (%d, %v)", i, name, r, s, ids[r*k+s], vals[r*k+s], wantIDs[s], wantVals[s])
					}
				}
				if lse[r] != float32(want) {
					t.Errorf("step %d %s output %d: lse %v, want %v", i, name, r, lse[r], want)
				}
			}
		}
	}
	if tb.calls != 4 {
		t.Errorf("the backend's TopKRows ran %d times, want 4", tb.calls)
	}
	b := run.step(func() int32 { return 1 }, 1, 1, 1)
	for _, k := range []int{0, compute.MaxTopK + 1} {
		if err := models[2].ForwardTopK(b, caches[2], k, make([]int32, 3*max(k, 0)), make([]float32, 3*max(k, 0)), make([]float32, 3)); err == nil {
			t.Errorf("k %d: no error", k)
		}
	}
	if err := models[2].ForwardTopK(b, caches[2], 2, make([]int32, 5), make([]float32, 6), make([]float32, 3)); err == nil {
		t.Error("5 ids for 3 outputs of top 2: no error")
	}
}
