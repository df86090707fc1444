package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
)

// topkRowKinds are the rows of each TopKRows test tensor: plain random,
// many exact ties with -Inf and signed zeros, fewer candidates than most k
// (the rest -Inf), every element -Inf, a NaN and a +Inf planted (the host
// sampler refuses such rows; both must still agree), a large offset, and
// one value repeated over the whole row.
var topkRowKinds = []string{"normal", "ties", "sparse", "all -Inf", "NaN", "+Inf", "offset", "constant"}

func topkRow(rng *rand.Rand, kind string, m int) []float32 {
	row := make([]float32, m)
	ninf := float32(math.Inf(-1))
	for j := range row {
		row[j] = float32(rng.NormFloat64() * 3)
	}
	switch kind {
	case "ties":
		for j := range row {
			switch rng.IntN(6) {
			case 0:
				row[j] = ninf
			case 1:
				row[j] = float32(math.Copysign(0, rng.Float64()-0.5))
			default:
				row[j] = float32(rng.IntN(4)) // the top values tie by the thousand
			}
		}
	case "sparse":
		for j := range row {
			if rng.IntN(200) != 0 {
				row[j] = ninf
			}
		}
	case "all -Inf":
		for j := range row {
			row[j] = ninf
		}
	case "NaN":
		for range 1 + m/100 {
			row[rng.IntN(m)] = float32(math.NaN())
		}
	case "+Inf":
		row[rng.IntN(m)] = float32(math.Inf(1))
	case "offset":
		for j := range row {
			row[j] += 500
		}
	case "constant":
		for j := range row {
			row[j] = -2.5
		}
	}
	return row
}

// poisonTopK fills the device output of TopKRows (sized for words) with a
// NaN pattern, which is also an impossible id, so that a slot the kernel
// leaves unwritten shows.
func poisonTopK(t testing.TB, b *Backend, words int) {
	t.Helper()
	must(t, "enter", b.enter())
	defer b.leave()
	must(t, "grow", b.grow(&b.topk.out, 4*int64(words)))
	must(t, "memset", b.drv.MemsetD32Async(b.topk.out.ptr, 0x7fc00001, words, b.stream))
	must(t, "sync", b.drv.StreamSynchronize(b.stream))
}

// TestTopKRows compares TopKRows with compute.TopKRow on rows of awkward
// lengths (the vector and scalar kernel paths) and every topkRowKinds, for
// k from 1 to compute.MaxTopK and beyond the row length: ids and values
// exactly, the log-sum-exp within 1e-5 + 1e-6·|lse| (float32 sums on the
// device against float64).
func TestTopKRows(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	lengths := []int{1, 7, 1000, 32000, 32001, 151936}
	ks := []int{1, 5, 40, 64, compute.MaxTopK}
	if testing.Short() { // for compute-sanitizer
		lengths, ks = []int{1, 7, 1000, 32001}, []int{1, 40, compute.MaxTopK}
	}
	for _, m := range lengths {
		n := len(topkRowKinds)
		data := make([]float32, 0, n*m)
		for _, kind := range topkRowKinds {
			data = append(data, topkRow(rng, kind, m)...)
		}
		x := f32Pair(t, b, "logits", data, n, m)
		mks := ks
		if m+3 <= compute.MaxTopK {
			mks = append(mks[:len(mks):len(mks)], m+3) // k past the row's end
		}
		for _, k := range mks {
			ids, vals, lse := make([]int32, n*k), make([]float32, n*k), make([]float32, n)
			for i := range ids {
				ids[i], vals[i] = -7, float32(math.NaN())
			}
			poisonTopK(t, b, n*(2*k+1))
			must(t, "topk", b.TopKRows(x.g, k, ids, vals, lse))
			wantIDs, wantVals := make([]int32, k), make([]float32, k)
			for r, kind := range topkRowKinds {
				what := fmt.Sprintf("m=%d k=%d row %q", m, k, kind)
				want := compute.TopKRow(data[r*m:(r+1)*m], wantIDs, wantVals)
				for i := range k {
					gi, gv := ids[r*k+i], vals[r*k+i]
					if gi != wantIDs[i] || math.Float32bits(gv) != math.Float32bits(wantVals[i]) {
						t.Fatalf("%s: slot %d is (%d, %v), want (%d, %v)", what, i, gi, gv, wantIDs[i], wantVals[i])
					}
				}
				checkLSE(t, what, lse[r], want)
			}
		}
	}
}

func checkLSE(t *testing.T, what string, got float32, want float64) {
	t.Helper()
	g := float64(got)
	switch {
	case math.IsNaN(want):
		if !math.IsNaN(g) {
			t.Errorf("%s: lse %v, want NaN", what, got)
		}
	case math.IsInf(want, -1):
		if !math.IsInf(g, -1) {
			t.Errorf("%s: lse %v, want -Inf", what, got)
		}
	case !(math.Abs(g-want) <= 1e-5+1e-6*math.Abs(want)):
		t.Errorf("%s: lse %v, want %v (difference %.3g)", what, got, want, g-want)
	}
}

// TestTopKRowsArgs: bad k and lengths are errors, not launches.
func TestTopKRowsArgs(t *testing.T) {
	b := testBackend(t)
	x := f32Pair(t, b, "x", randVec(newRNG(t), 6, 1), 2, 3)
	for _, tc := range []struct {
		name string
		k    int
		ids  int
		lse  int
	}{
		{"k 0", 0, 0, 2},
		{"k over MaxTopK", compute.MaxTopK + 1, 2 * (compute.MaxTopK + 1), 2},
		{"short ids", 2, 3, 2},
		{"short lse", 2, 4, 1},
	} {
		if err := b.TopKRows(x.g, tc.k, make([]int32, tc.ids), make([]float32, tc.ids), make([]float32, tc.lse)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestTopKRowsAfterGraphStep: TopKRows reads the logits a replayed graph
// step left on the device, as the model's ForwardTopK does, and refuses to
// run inside a step (like ArgmaxRows).
func TestTopKRowsAfterGraphStep(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	const n, m, k = 3, 32000, 40
	data := randVec(rng, n*m, 8)
	x := f32Pair(t, b, "logits", data, n, m)
	var inStep error
	for i := range 4 {
		err := b.GraphStep("topk step", func(be compute.Backend) error {
			if err := be.Scale(x.g, -1); err != nil {
				return err
			}
			if v, ok := be.(*Backend); ok && v.mode != modeEager {
				inStep = v.TopKRows(x.g, k, make([]int32, n*k), make([]float32, n*k), make([]float32, n))
			}
			return nil
		})
		must(t, "graph step", err)
		for j := range data {
			data[j] = -data[j]
		}
		ids, vals, lse := make([]int32, n*k), make([]float32, n*k), make([]float32, n)
		must(t, "topk", b.TopKRows(x.g, k, ids, vals, lse))
		wantIDs, wantVals := make([]int32, k), make([]float32, k)
		for r := range n {
			want := compute.TopKRow(data[r*m:(r+1)*m], wantIDs, wantVals)
			for s := range k {
				if ids[r*k+s] != wantIDs[s] || vals[r*k+s] != wantVals[s] {
					t.Fatalf("step %d row %d slot %d: (%d, %v), want (%d, %v)", i, r, s, ids[r*k+s], vals[r*k+s], wantIDs[s], wantVals[s])
				}
			}
			checkLSE(t, fmt.Sprintf("step %d row %d", i, r), lse[r], want)
		}
	}
	st := b.GraphStats()
	t.Logf("graph stats %+v; TopKRows inside a step: %v", st, inStep)
	if st.Replays == 0 {
		t.Error("no graph replay: the test did not exercise a replayed step")
	}
	if inStep == nil {
		t.Error("TopKRows inside a captured step: no error")
	}
}

// BenchmarkTopKRows: the device top-k of a sampled decode step's logits
// (32000-token rows, k 40) against reading the whole rows back, the
// transfer it replaces; both include the copy to the host.
func BenchmarkTopKRows(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	rng := rand.New(rand.NewPCG(1, 2))
	const m, k = 32000, 40
	for _, n := range []int{8, 32, 64} {
		x := f32Pair(bm, b, "logits", randVec(rng, n*m, 10), n, m)
		ids, vals, lse := make([]int32, n*k), make([]float32, n*k), make([]float32, n)
		host := make([]float32, n*m)
		bm.Run(fmt.Sprintf("rows=%d/topk", n), func(bm *testing.B) {
			timeGPU(bm, b, func() error { return b.TopKRows(x.g, k, ids, vals, lse) })
		})
		bm.Run(fmt.Sprintf("rows=%d/read", n), func(bm *testing.B) {
			timeGPU(bm, b, func() error { return b.Read(x.g, host) })
		})
	}
}
