package gpu

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// withBLASMin sets the smallest batch that takes the cuBLAS path (0: off)
// and returns the function that restores it.
func withBLASMin(b *Backend, n int) func() {
	old := b.blas.minTokens
	if b.blas.h == 0 {
		n = 0 // no cuBLAS: nothing to turn on
	}
	b.blas.minTokens = n
	return func() { b.blas.minTokens = old }
}

// Tolerances of the cuBLAS path, relative Frobenius error against the
// reference (which multiplies in float64-exact dequantized weights and f32
// activations):
//   - F32 weights: a float GEMM (pedantic, no TF32): f32Tol.
//   - F16 and quantized weights: activations and dequantized weights are
//     rounded to f16 (unit roundoff 2^-11 = 4.9e-4, so each product is off by
//     up to ~1e-3 relative, ~4e-4 rms, with random signs): 2e-3.
//   - BF16 weights: activations rounded to bf16 (unit roundoff 2^-8 =
//     3.9e-3, ~2.3e-3 rms): 1e-2.
const (
	blasF16Tol  = 2e-3
	blasBF16Tol = 1e-2
)

func blasTol(typ ggml.Type) float64 {
	switch typ {
	case ggml.F32:
		return f32Tol
	case ggml.BF16:
		return blasBF16Tol
	}
	return blasF16Tol
}

// TestMatMulBLAS runs every weight type through the cuBLAS path at batch
// sizes that are no multiple of any tile (33, 70, 257 tokens; 101 or 67
// weight rows), outputs poisoned with NaN first.
func TestMatMulBLAS(t *testing.T) {
	b := testBackend(t)
	if b.blas.h == 0 {
		t.Skipf("cuBLAS path not available: %s", b.MatMulPath())
	}
	t.Logf("%s", b.MatMulPath())
	defer withBLASMin(b, 17)()
	defer withMMA(b, 0)() // cuBLAS itself; TestMatMulMMA covers the mma kernels
	rng := newRNG(t)
	ref := compute.NewReference()
	for ti, typ := range weightTypes {
		worst := 0.0
		m := []int{101, 67}[ti%2] // odd row counts, alternating to keep the test short
		for _, vf := range []bool{true, false} {
			if !vf && typ.BlockSize() != 1 {
				continue
			}
			k := colsFor(typ, vf)
			w := weightPair(t, b, "w", typ, randomWeight(t, rng, typ, m, k), m, k)
			for _, n := range []int{33, 70, 257} {
				if !b.useBLAS(n) {
					t.Fatalf("n = %d does not take the cuBLAS path", n)
				}
				x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
				dst := poisonedPair(t, b, "dst", n, m)
				what := fmt.Sprintf("%s cuBLAS n%d m%d k%d", typ, n, m, k)
				must(t, what, b.MatMul(dst.g, x.g, w.g))
				must(t, what, ref.MatMul(dst.r, x.r, w.r))
				check(t, b, what, dst, blasTol(typ))
				worst = max(worst, relErr(read(t, b, dst.g), dst.r.F32))
			}
		}
		t.Logf("%-5s largest relative error %.3g (tolerance %.3g)", typ, worst, blasTol(typ))
	}
	// Below the threshold the kernels still run (exact float accumulation).
	w := weightPair(t, b, "w", ggml.Q4_0, randomWeight(t, rng, ggml.Q4_0, 37, 64), 37, 64)
	x := f32Pair(t, b, "x", randVec(rng, 16*64, 1), 16, 64)
	dst := poisonedPair(t, b, "dst", 16, 37)
	must(t, "q4_0 n16", b.MatMul(dst.g, x.g, w.g))
	must(t, "q4_0 n16", ref.MatMul(dst.r, x.r, w.r))
	check(t, b, "Q4_0 tiled below the cuBLAS threshold", dst, f32Tol)
}

// TestGraphStepBLAS: a 12-token step through the cuBLAS path, captured and
// replayed, gives the op-by-op result bit for bit; an eager batch that
// grows the scratch buffers drops the graphs (they hold the old address),
// and the step is captured again, still bit for bit.
func TestGraphStepBLAS(t *testing.T) {
	b := testBackend(t)
	if b.blas.h == 0 {
		t.Skipf("cuBLAS path not available: %s", b.MatMulPath())
	}
	defer withBLASMin(b, 9)()
	rng := newRNG(t)
	ref := compute.NewReference()
	const m, k, n = 45, 256, 12
	w := weightPair(t, b, "w", ggml.Q4_K, randomWeight(t, rng, ggml.Q4_K, m, k), m, k)
	x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
	y := poisonedPair(t, b, "y", n, m)
	must(t, "reference", ref.MatMul(y.r, x.r, w.r))
	step := func(be compute.Backend) error { return be.MatMul(y.g, x.g, w.g) }
	var want []float32
	before := b.GraphStats()
	run := func(what string) {
		t.Helper()
		must(t, what, b.GraphStep("blas step", step))
		got := read(t, b, y.g)
		if want == nil {
			want = got
			check(t, b, what, y, blasF16Tol)
			return
		}
		if e := relErr(got, want); e != 0 {
			t.Errorf("%s: differs from the op-by-op step, relative error %.3g", what, e)
		}
	}
	run("op by op")
	run("captured")
	run("replayed")

	// An eager batch larger than the activation scratch.
	old := b.blas.xh
	nBig := int(old.bytes/(2*k)) + 1
	xb := f32Pair(t, b, "xbig", randVec(rng, nBig*k, 1), nBig, k)
	yb := poisonedPair(t, b, "ybig", nBig, m)
	must(t, "big batch", b.MatMul(yb.g, xb.g, w.g))
	must(t, "big batch", ref.MatMul(yb.r, xb.r, w.r))
	check(t, b, fmt.Sprintf("%d-token batch", nBig), yb, blasF16Tol)
	if b.blas.xh.bytes <= old.bytes {
		t.Fatalf("activation scratch did not grow: %d bytes for %d tokens of %d", b.blas.xh.bytes, nBig, k)
	}
	run("op by op after growth")
	run("captured after growth")
	st := b.GraphStats()
	if st.Captures-before.Captures != 2 || st.Replays-before.Replays != 1 || st.Eager-before.Eager != 2 {
		t.Errorf("graph stats went from %+v to %+v: want 2 op-by-op steps, 2 captures, 1 replay", before, st)
	}
}

// withMMA sets the largest batch that takes the mma kernels, for every
// layout (0: off), and returns the function that restores the limits.
func withMMA(b *Backend, n int) func() {
	mm := &b.blas.mma
	old, oldMax := mm.maxTokens, maps.Clone(mm.max)
	mm.maxTokens, mm.max = n, map[string]int{}
	for l := range mmaLayouts {
		mm.max[l] = n
	}
	return func() { mm.maxTokens, mm.max = old, oldMax }
}

// withMMQ turns the mmq kernels on or off (on only where initMMA found
// them usable) and returns the function that restores the setting.
func withMMQ(b *Backend, on bool) func() {
	mm := &b.blas.mma
	old := mm.mmq
	mm.mmq = on && mm.mmqOff == ""
	return func() { mm.mmq = old }
}

// mmaTypes are the weight types with mma kernels.
var mmaTypes = []ggml.Type{ggml.F16, ggml.Q4_0, ggml.Q8_0, ggml.Q4_K, ggml.Q6_K,
	ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q2_K, ggml.Q3_K, ggml.Q5_K}

// TestMatMulMMA runs the mma kernels against the reference at batch sizes
// 9, 17, 33, 70 and 127 (every token tile, partly filled), weight rows that
// are no multiple of the 128-row tile and row lengths that are no multiple of
// the 128-column chunk, one chunk and several (split k), outputs poisoned.
// The tolerance is the cuBLAS path's (blasF16Tol): the operands are rounded
// to f16 the same way, products accumulate in f32.
func TestMatMulMMA(t *testing.T) {
	b := testBackend(t)
	if b.blas.mma.maxTokens == 0 {
		t.Skipf("mma path not available: %s", b.MatMulPath())
	}
	t.Logf("%s", b.MatMulPath())
	defer withBLASMin(b, 9)()
	if !b.useBLAS(9) {
		t.Skipf("large-batch path off: %s", b.MatMulPath())
	}
	defer withMMA(b, 128)()
	defer withMMQ(b, false)() // mma.cu's kernels; TestMatMulMMQ tests mmq.cu's
	rng := newRNG(t)
	ref := compute.NewReference()
	oldAsync := maps.Clone(b.blas.mma.async)
	defer func() { b.blas.mma.async = oldAsync }()
	splits, asyncRuns := 0, 0
	types, ns := mmaTypes, []int{9, 17, 33, 70, 127}
	if testing.Short() {
		// Under compute-sanitizer (racecheck instruments every shared
		// access): the layouts of the default path, one tile size each.
		types, ns = []ggml.Type{ggml.F16, ggml.Q4_0, ggml.Q8_0, ggml.Q4_K, ggml.Q6_K}, []int{9, 33, 70}
	}
	for ti, typ := range types {
		worst := 0.0
		m := []int{101, 300, 67}[ti%3]
		ks := []int{colsFor(typ, true), map[int]int{1: 1000, 32: 1056, 256: 1280}[typ.BlockSize()]}
		layout := layoutNames[typ]
		asyncs := []bool{false}
		if _, ok := mmaAsync[layout]; ok {
			// The cp.async kernels need whole 128-column chunks: one k
			// more that is a multiple of 128 (768 and 1280 already are,
			// for Q4_K).
			asyncs = append(asyncs, true)
			if typ.BlockSize() == 32 {
				ks = append(ks, 512)
			}
		}
		for _, async := range asyncs {
			b.blas.mma.async = map[string]bool{layout: async}
			for _, k := range ks {
				w := weightPair(t, b, "w", typ, randomWeight(t, rng, typ, m, k), m, k)
				for _, n := range ns {
					if !b.useMMA(w.g.Dev.(*devBuf), n, k) {
						t.Fatalf("%s n = %d, k = %d does not take the mma path", typ, n, k)
					}
					p := b.planMMA(layout, n, m, k)
					if p.split > 1 {
						splits++
					}
					if strings.HasPrefix(p.name, "mma_async_") {
						asyncRuns++
					}
					x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
					dst := poisonedPair(t, b, "dst", n, m)
					what := fmt.Sprintf("%s n%d m%d k%d %s", typ, n, m, k, p.name)
					must(t, what, b.MatMul(dst.g, x.g, w.g))
					must(t, what, ref.MatMul(dst.r, x.r, w.r))
					check(t, b, what, dst, blasF16Tol)
					worst = max(worst, relErr(read(t, b, dst.g), dst.r.F32))
				}
			}
		}
		t.Logf("%-5s largest relative error %.3g (tolerance %.3g)", typ, worst, blasF16Tol)
	}
	if splits == 0 || asyncRuns == 0 {
		t.Errorf("%d cases split k, %d took the cp.async kernels: a path went untested", splits, asyncRuns)
	}
	b.blas.mma.async = maps.Clone(oldAsync)

	// The same product with k split in as many parts as there are chunks
	// (ROCMFORGE_GPU_MMA_SPLIT) and not split at all: both right, and each
	// the same bits every run (the parts are summed in a fixed order). k is
	// no multiple of 128: the register-staged kernel.
	const m, k, n = 300, 1056, 70
	w := weightPair(t, b, "w", ggml.Q4_0, randomWeight(t, rng, ggml.Q4_0, m, k), m, k)
	x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
	dst := poisonedPair(t, b, "dst", n, m)
	must(t, "reference", ref.MatMul(dst.r, x.r, w.r))
	oldSplit := b.blas.mma.split
	defer func() { b.blas.mma.split = oldSplit }()
	for _, split := range []int{1, 9} {
		b.blas.mma.split = split
		p := b.planMMA("q4_0s", n, m, k)
		what := fmt.Sprintf("Q4_0 n%d m%d k%d in %d parts", n, m, k, p.split)
		if p.split != split {
			t.Fatalf("%s: want %d parts", what, split)
		}
		must(t, what, b.MatMul(dst.g, x.g, w.g))
		check(t, b, what, dst, blasF16Tol)
		first := read(t, b, dst.g)
		for rep := range 3 {
			must(t, what, b.MatMul(dst.g, x.g, w.g))
			if e := relErr(read(t, b, dst.g), first); e != 0 {
				t.Errorf("%s: run %d differs from the first, relative error %.3g", what, rep+2, e)
			}
		}
	}
}

// TestMatMulMMQ runs the mmq kernels (Q4_0 and Q8_0, k a multiple of 128),
// the cp.async and the register-staged ones, against the reference: every
// token tile (n = 5 and 8 with the mma path lowered to 2 tokens, 9, 17, 33,
// 64, 70, 127), row counts that are no multiple of the 128-row tile, one
// chunk of k and several, every split (each run twice: the same bits), and
// MatMulMulti's launch of two and three weights of different heights;
// outputs poisoned. Tolerance blasF16Tol, as the cuBLAS path and mma.cu
// (the same roundings, another order). Then the default routing of small
// batches: Q4_0 5 to 8 tokens to the mmq kernels (mmqMinTokens), 4 to mmvq;
// Q8_0 to mmvq.
func TestMatMulMMQ(t *testing.T) {
	b := testBackend(t)
	if b.blas.mma.maxTokens == 0 || !b.blas.mma.mmq {
		t.Skipf("mmq kernels not available: %s", b.MatMulPath())
	}
	t.Logf("%s", b.MatMulPath())
	rng := newRNG(t)
	ref := compute.NewReference()
	seen := map[string]bool{}
	worst := map[string]float64{}
	run := func(typ ggml.Type, what string, dst, x, w pair) {
		t.Helper()
		must(t, what, b.MatMul(dst.g, x.g, w.g))
		must(t, what, ref.MatMul(dst.r, x.r, w.r))
		check(t, b, what, dst, blasF16Tol)
		worst[typ.String()] = max(worst[typ.String()], relErr(read(t, b, dst.g), dst.r.F32))
	}
	func() {
		defer withBLASMin(b, 2)()
		if !b.useBLAS(2) {
			t.Skipf("large-batch path off: %s", b.MatMulPath())
		}
		defer withMMA(b, 128)()
		defer func(split int, async bool) { b.blas.mma.mmqSplit, b.blas.mma.mmqAsync = split, async }(b.blas.mma.mmqSplit, b.blas.mma.mmqAsync)
		ns, ms, ks := []int{5, 8, 9, 17, 33, 64, 70, 127}, []int{67, 300}, []int{128, 640}
		if testing.Short() { // under compute-sanitizer
			ns, ms, ks = []int{5, 9, 17, 70}, []int{67}, []int{640}
		}
		for _, async := range []bool{true, false} {
			b.blas.mma.mmqAsync = async
			for _, typ := range []ggml.Type{ggml.Q4_0, ggml.Q8_0} {
				layout := layoutNames[typ]
				for _, m := range ms {
					for _, k := range ks {
						w := weightPair(t, b, "w", typ, randomWeight(t, rng, typ, m, k), m, k)
						for _, n := range ns {
							if !b.useMMA(w.g.Dev.(*devBuf), n, k) || !b.useMMQ(layout, k) {
								t.Fatalf("%s n = %d, k = %d does not take the mmq path", typ, n, k)
							}
							p := b.planMMQ(layout, (m+mmaRows-1)/mmaRows, n, k)
							seen[p.name] = true
							x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
							dst := poisonedPair(t, b, "dst", n, m)
							run(typ, fmt.Sprintf("%s n%d m%d k%d %s", typ, n, m, k, p.name), dst, x, w)
						}
					}
				}
				// Every split, on 9 chunks of k (parts of 3, 2 and 1 chunk,
				// and 8 parts of 2 with the last ones empty): right, and the
				// same bits every run.
				const m, k, n = 300, 1152, 70
				w := weightPair(t, b, "w", typ, randomWeight(t, rng, typ, m, k), m, k)
				x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
				for _, split := range mmqSplits {
					b.blas.mma.mmqSplit = split
					p := b.planMMQ(layout, (m+mmaRows-1)/mmaRows, n, k)
					if p.split != split {
						t.Fatalf("%s: planned %d parts, want %d", typ, p.split, split)
					}
					seen[p.name] = true
					dst := poisonedPair(t, b, "dst", n, m)
					what := fmt.Sprintf("%s n%d m%d k%d %s", typ, n, m, k, p.name)
					run(typ, what, dst, x, w)
					first := read(t, b, dst.g)
					must(t, what, b.MatMul(dst.g, x.g, w.g))
					if e := relErr(read(t, b, dst.g), first); e != 0 {
						t.Errorf("%s: second run differs from the first, relative error %.3g", what, e)
					}
				}
				b.blas.mma.mmqSplit = 0
				// Three weights of one input in one launch (and two), rows of
				// each a different count of tiles.
				const km = 384
				heights := []int{300, 67, 129}
				var ws []pair
				for _, h := range heights {
					ws = append(ws, weightPair(t, b, "w", typ, randomWeight(t, rng, typ, h, km), h, km))
				}
				for _, nw := range []int{3, 2} {
					for _, n := range []int{9, 64} {
						multi(t, b, ref, typ, ws[:nw], heights[:nw], n, km, rng, seen, worst)
					}
				}
			}
		}
	}()

	// The default routing: 5 to 8 tokens take the mmq kernels (alone and
	// three weights together), 4 the matrix-vector ones.
	defer func(old map[string]int) { b.blas.mma.mmqMin = old }(b.blas.mma.mmqMin)
	b.blas.mma.mmqMin = maps.Clone(mmqMinTokens)
	const m, k = 300, 256
	for _, typ := range []ggml.Type{ggml.Q4_0, ggml.Q8_0} {
		layout := layoutNames[typ]
		lo := mmqMinTokens[layout]
		w := weightPair(t, b, "w", typ, randomWeight(t, rng, typ, m, k), m, k)
		for _, n := range []int{4, 6} {
			want := lo > 0 && n >= lo
			if got := b.useMMQSmall(layout, n, k); got != want {
				t.Errorf("%s n = %d: useMMQSmall %v, want %v (%s)", typ, n, got, want, b.MatMulPath())
			}
			x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
			dst := poisonedPair(t, b, "dst", n, m)
			what := fmt.Sprintf("%s n%d m%d k%d default route", typ, n, m, k)
			if want {
				run(typ, what, dst, x, w)
				continue
			}
			// mmvq (8-bit activations): ~0.5 % from the float product, as
			// TestMatMulQ8 allows.
			must(t, what, b.MatMul(dst.g, x.g, w.g))
			must(t, what, ref.MatMul(dst.r, x.r, w.r))
			check(t, b, what, dst, 2e-2)
		}
		if lo > 0 && lo <= 6 {
			ws := []pair{w, weightPair(t, b, "w", typ, randomWeight(t, rng, typ, 67, k), 67, k),
				weightPair(t, b, "w", typ, randomWeight(t, rng, typ, 129, k), 129, k)}
			multi(t, b, ref, typ, ws, []int{m, 67, 129}, 6, k, rng, seen, worst)
		}
	}

	for typ, e := range worst {
		t.Logf("%-5s largest relative error %.3g (tolerance %.3g)", typ, e, blasF16Tol)
	}
	names := slices.Sorted(maps.Keys(seen))
	t.Logf("kernels run: %v", names)
	for _, pre := range []string{"mmq_", "mmqa_"} {
		for _, want := range []string{"_8_", "_16_", "_32_", "_64_", "_s1", "_s2", "_s3", "_s4", "_s8"} {
			if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, pre) && strings.Contains(n, want) }) {
				t.Errorf("no %s kernel with %q ran: a variant went untested", pre, want)
			}
		}
	}
}

// multi checks MatMulMulti of n tokens by ws (heights rows, k columns) on
// the mmq path against the reference, outputs poisoned.
func multi(t *testing.T, b *Backend, ref compute.Backend, typ ggml.Type, ws []pair, heights []int, n, k int,
	rng *rand.Rand, seen map[string]bool, worst map[string]float64) {
	t.Helper()
	layout := layoutNames[typ]
	x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
	var dsts []pair
	var gd, gw []*compute.Tensor
	wbs := make([]*devBuf, len(ws))
	tm := 0
	for i := range ws {
		dsts = append(dsts, poisonedPair(t, b, "dst", n, heights[i]))
		gd, gw = append(gd, dsts[i].g), append(gw, ws[i].g)
		wbs[i] = ws[i].g.Dev.(*devBuf)
		tm += (heights[i] + mmaRows - 1) / mmaRows
	}
	if !b.useMMQMulti(layout, n, k, wbs) {
		t.Fatalf("%s: %d weights of %d tokens do not take the mmq path together", typ, len(ws), n)
	}
	seen[b.planMMQ(layout, tm, n, k).name] = true
	must(t, "multi", b.MatMulMulti(gd, x.g, gw))
	for i := range ws {
		what := fmt.Sprintf("%s multi %d of %d, n%d m%d k%d", typ, i, len(ws), n, heights[i], k)
		must(t, what, ref.MatMul(dsts[i].r, x.r, ws[i].r))
		check(t, b, what, dsts[i], blasF16Tol)
		worst[typ.String()] = max(worst[typ.String()], relErr(read(t, b, dsts[i].g), dsts[i].r.F32))
	}
}

// BenchmarkMatMulBatched is the batched-decode range, 8 to 128 tokens, on
// the mma kernels ("mma": the cp.async ones where the layout has them,
// "mmareg": the register-staged ones), on the mmq kernels for Q4_0 and Q8_0
// ("mmq", cp.async; "mmqsN": N parts of k, at 64 tokens; "mmqreg": the
// register-staged ones) and on the cuBLAS path
// (dequantize to f16, convert, GEMM), and at 8 tokens on the matrix-vector
// kernels too; weights cycled through 160 MB as in BenchmarkMatVec: where
// cuBLAS starts to win sets mmaMaxTokens.
func BenchmarkMatMulBatched(bm *testing.B) {
	b := testBackend(bm)
	if b.blas.mma.maxTokens == 0 || b.blas.h == 0 {
		bm.Skipf("needs both paths: %s", b.MatMulPath())
	}
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	for _, typ := range []ggml.Type{ggml.Q4_0, ggml.Q8_0, ggml.Q4_K, ggml.Q6_K, ggml.F16} {
		shapes := [][2]int{{4096, 4096}}
		if typ == ggml.Q4_0 || typ == ggml.Q8_0 {
			shapes = append(shapes, [2]int{11008, 4096}, [2]int{4096, 11008}, [2]int{2048, 2048}, [2]int{32000, 4096})
		}
		for _, sz := range shapes {
			for _, n := range []int{8, 9, 16, 32, 64, 128} {
				paths := []string{"mma", "cublas"}
				if _, ok := mmaAsync[layoutNames[typ]]; ok {
					paths = append(paths, "mmareg")
				}
				if n <= maxMatVecTokens {
					paths = append(paths, "matvec")
				}
				if b.blas.mma.mmqOff == "" && mmqLayouts[layoutNames[typ]] {
					paths = append(paths, "mmq", "mmqreg")
					if n == 64 {
						for _, sp := range mmqSplits {
							paths = append(paths, fmt.Sprintf("mmqs%d", sp))
						}
					}
				}
				for _, path := range paths {
					bm.Run(fmt.Sprintf("%s/%dx%d/n%d/%s", typ, sz[0], sz[1], n, path), func(bm *testing.B) {
						lim, from, async, mmq, split := 0, 1, true, false, 0
						switch {
						case path == "mma":
							lim = 1 << 20
						case path == "mmareg":
							lim, async = 1<<20, false
						case path == "matvec":
							from = maxMatVecTokens + 1
						case strings.HasPrefix(path, "mmq"):
							lim, mmq = 1<<20, true
							fmt.Sscanf(path, "mmqs%d", &split)
						}
						defer withBLASMin(b, from)()
						defer withMMA(b, lim)()
						defer withMMQ(b, mmq)()
						defer func(old int, async bool) { b.blas.mma.mmqSplit, b.blas.mma.mmqAsync = old, async }(b.blas.mma.mmqSplit, b.blas.mma.mmqAsync)
						b.blas.mma.mmqSplit, b.blas.mma.mmqAsync = split, path != "mmqreg"
						defer func(old map[string]bool) { b.blas.mma.async = old }(b.blas.mma.async)
						b.blas.mma.async = map[string]bool{layoutNames[typ]: async}
						benchMatMul(bm, b, typ, sz[0], sz[1], n)
					})
				}
			}
		}
	}
}

// BenchmarkMatMulMulti is a layer's products that share an input, as
// MatMulMulti issues them, at 8, 16 and 64 tokens: Q, K and V and gate and
// up in the 7B and TinyLlama shapes (Q4_0 and Q8_0), on the mmq kernels
// (one conversion, one launch; "mmq" the cp.async ones, "mmqreg" the
// register-staged ones) and on mma.cu's (a conversion, a product and a
// split-k sum per weight); the weights cycle through 160 MB.
func BenchmarkMatMulMulti(bm *testing.B) {
	b := testBackend(bm)
	if b.blas.mma.maxTokens == 0 || b.blas.mma.mmqOff != "" {
		bm.Skipf("needs the mmq kernels: %s", b.MatMulPath())
	}
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	for _, c := range []struct {
		name string
		typ  ggml.Type
		rows []int
		k    int
	}{
		{"7b-qkv", ggml.Q4_0, []int{4096, 4096, 4096}, 4096},
		{"7b-gateup", ggml.Q4_0, []int{11008, 11008}, 4096},
		{"tiny-qkv", ggml.Q8_0, []int{2048, 256, 256}, 2048},
		{"tiny-gateup", ggml.Q8_0, []int{5632, 5632}, 2048},
	} {
		for _, n := range []int{8, 16, 64} {
			for _, path := range []string{"mmq", "mmqreg", "mma"} {
				bm.Run(fmt.Sprintf("%s/n%d/%s", c.name, n, path), func(bm *testing.B) {
					defer withBLASMin(b, 1)()
					defer withMMA(b, 1<<20)()
					defer withMMQ(b, path != "mma")()
					defer func(async bool) { b.blas.mma.mmqAsync = async }(b.blas.mma.mmqAsync)
					b.blas.mma.mmqAsync = path == "mmq"
					benchMulti(bm, b, c.typ, c.rows, c.k, n)
				})
			}
		}
	}
}

func benchMulti(bm *testing.B, b *Backend, typ ggml.Type, rows []int, k, n int) {
	var sets [][]*compute.Tensor
	bytes := 0
	for bytes < 160<<20 || len(sets) < 2 {
		var set []*compute.Tensor
		for _, m := range rows {
			data := benchWeight(bm, typ, m, k)
			w, err := b.Upload("w", typ, []int{m, k}, data)
			if err != nil {
				bm.Fatal(err)
			}
			defer b.Free(w)
			set = append(set, w)
			bytes += len(data)
		}
		sets = append(sets, set)
	}
	x, err := b.NewTensor("x", ggml.F32, n, k)
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Free(x)
	if err := b.Write(x, randVec(rand.New(rand.NewPCG(3, 4)), n*k, 1)); err != nil {
		bm.Fatal(err)
	}
	var ys []*compute.Tensor
	for _, m := range rows {
		y, err := b.NewTensor("y", ggml.F32, n, m)
		if err != nil {
			bm.Fatal(err)
		}
		defer b.Free(y)
		ys = append(ys, y)
	}
	if err := b.MatMulMulti(ys, x, sets[0]); err != nil { // sizes the scratch outside the capture
		bm.Fatal(err)
	}
	if err := b.sync(); err != nil {
		bm.Fatal(err)
	}
	g, err := b.capture(func() error {
		for _, set := range sets {
			if err := b.MatMulMulti(ys, x, set); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		bm.Fatal(err)
	}
	defer b.destroy(g)
	timeGPU(bm, b, func() error { return b.replay(g) })
	calls := float64(bm.N * len(sets))
	sec := bm.Elapsed().Seconds()
	bm.ReportMetric(float64(bytes/len(sets))*calls/sec/1e9, "GB/s")
	bm.ReportMetric(sec/calls*1e6, "µs/call")
}
