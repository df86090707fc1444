package gpu

import (
	"fmt"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestAddRMSNorm: the fused residual add and norm equals Add then RMSNorm
// of the reference, both outputs, on awkward widths.
func TestAddRMSNorm(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	defer func(on bool) { b.fuseOn = on }(b.fuseOn)
	for _, fuse := range []bool{true, false} {
		b.fuseOn = fuse
		for _, shape := range [][]int{{5, 2048}, {3, 77}, {1, 4097}} {
			n, d := shape[0]*shape[1], shape[1]
			x := f32Pair(t, b, "x", randVec(rng, n, 3), shape...)
			a := f32Pair(t, b, "a", randVec(rng, n, 3), shape...)
			w := f32Pair(t, b, "w", randVec(rng, d, 2), d)
			dst := poisonedPair(t, b, "dst", shape...)
			must(t, "add_rmsnorm", b.AddRMSNorm(dst.g, x.g, a.g, w.g, 1e-5))
			must(t, "add", ref.Add(x.r, x.r, a.r))
			must(t, "rmsnorm", ref.RMSNorm(dst.r, x.r, w.r, 1e-5))
			check(t, b, fmt.Sprintf("add_rmsnorm (fused %v) x", fuse), x, exactTol)
			check(t, b, fmt.Sprintf("add_rmsnorm (fused %v) dst", fuse), dst, exactTol)
		}
	}
	x := f32Pair(t, b, "x", randVec(rng, 8, 1), 2, 4)
	if err := b.AddRMSNorm(x.g, x.g, x.g, nil, 1e-5); err == nil {
		t.Error("AddRMSNorm with dst == x succeeded")
	}
}

// TestGraphStep: a step of Embedding, RMSNorm, MatMul and KV write with new
// ids and slots each time gives, once captured and replayed, what the same
// ops give op by op; a step that stages a different layout is recaptured.
func TestGraphStep(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	const vocab, d, m, slots = 37, 64, 24, 50
	table := weightPair(t, b, "table", ggml.F32, randomWeight(t, rng, ggml.F32, vocab, d), vocab, d)
	w := weightPair(t, b, "w", ggml.Q8_0, randomWeight(t, rng, ggml.Q8_0, m, d), m, d)
	x := f32Pair(t, b, "x", make([]float32, 3*d), 3, d)
	y := f32Pair(t, b, "y", make([]float32, 3*m), 3, m)
	pool := compute.KVPool{K: f32Pair(t, b, "K", make([]float32, slots*d), slots, d).g,
		V: f32Pair(t, b, "V", make([]float32, slots*m), slots, m).g, BlockSize: 5}
	step := func(be compute.Backend, ids, sl []int32) error {
		n := len(ids)
		xv := &compute.Tensor{Name: x.g.Name, Type: x.g.Type, Shape: []int{n, d}, Dev: x.g.Dev}
		yv := &compute.Tensor{Name: y.g.Name, Type: y.g.Type, Shape: []int{n, m}, Dev: y.g.Dev}
		if err := be.Embedding(xv, table.g, ids); err != nil {
			return err
		}
		if err := be.RMSNorm(xv, xv, nil, 1e-6); err != nil {
			return err
		}
		if err := be.MatMul(yv, xv, w.g); err != nil {
			return err
		}
		return be.KVWrite(pool, xv, yv, sl)
	}
	run := func(graph bool, ids, sl []int32) ([]float32, []float32) {
		t.Helper()
		var err error
		if graph {
			err = b.GraphStep(len(ids), func(be compute.Backend) error { return step(be, ids, sl) })
		} else {
			err = step(b, ids, sl)
		}
		must(t, "step", err)
		return read(t, b, y.g)[:len(ids)*m], read(t, b, pool.V)
	}
	before := b.GraphStats()
	for i := range 6 {
		n := 1 + i%2
		ids, sl := make([]int32, n), make([]int32, n)
		for j := range ids {
			ids[j] = int32(rng.IntN(vocab))
			sl[j] = int32(rng.IntN(slots))
		}
		if n == 2 && sl[0] == sl[1] {
			sl[1] = (sl[0] + 1) % slots
		}
		wantY, wantV := run(false, ids, sl)
		gotY, gotV := run(true, ids, sl)
		if e := relErr(gotY, wantY); e != 0 {
			t.Errorf("step %d (%d tokens): output differs from op by op, relative error %.3g", i, n, e)
		}
		if e := relErr(gotV, wantV); e != 0 {
			t.Errorf("step %d: KV pool differs from op by op, relative error %.3g", i, e)
		}
	}
	st := b.GraphStats()
	if st.Captures-before.Captures != 2 || st.Replays-before.Replays != 2 || st.Eager-before.Eager != 2 {
		t.Errorf("graph stats went from %+v to %+v: want 2 op-by-op steps, 2 captures, 2 replays", before, st)
	}
}
