package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// withMMVQ sets the 8-bit decode path on or off and returns the undo.
func withMMVQ(b *Backend, on bool) func() {
	old := b.mmvqOn
	b.mmvqOn = on
	return func() { b.mmvqOn = old }
}

// q8Ref is what the 8-bit path computes: x rounded per 32-element block to
// d·q (d = max|x|/127 in float32, q = x/d rounded to nearest even), times
// the dequantized weight, in float64. The kernels differ from it only by
// float32 rounding, so their tolerance is tight.
func q8Ref(t *testing.T, dst, x, w *compute.Tensor) {
	t.Helper()
	xq := &compute.Tensor{Name: x.Name, Type: ggml.F32, Shape: x.Shape, F32: make([]float32, len(x.F32))}
	for b0 := 0; b0 < len(x.F32); b0 += 32 {
		var amax float32
		for _, v := range x.F32[b0 : b0+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		for i, v := range x.F32[b0 : b0+32] {
			q := 0.0
			if amax != 0 {
				q = math.RoundToEven(float64(v / d))
			}
			xq.F32[b0+i] = float32(q) * d
		}
	}
	must(t, "reference matmul", compute.NewReference().MatMul(dst, xq, w))
}

// q8Tol: float32 accumulation of k ≤ ~12k products of integers, scales
// applied per block.
const q8Tol = 2e-5

// TestMatMulQ8 checks the 8-bit-activation kernels against q8Ref on row
// lengths that take every thread split (units per row 7 to 360), odd row
// counts, 1 to 8 tokens, and a fused three-weight launch; and, loosely, that
// the result stays near the float product.
func TestMatMulQ8(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	defer withBLASMin(b, 0)()
	defer withMMVQ(b, true)()
	defer func(r8 bool, tpr int) { b.q8.r8, b.q8.maxTPR = r8, tpr }(b.q8.r8, b.q8.maxTPR)
	for _, tc := range []struct {
		typ ggml.Type
		k   int
	}{
		{ggml.Q4_0, 224}, {ggml.Q4_0, 2080}, {ggml.Q4_0, 11520}, {ggml.Q8_0, 224}, {ggml.Q8_0, 4128},
		{ggml.Q4_K, 768}, {ggml.Q4_K, 4352}, {ggml.Q4_K, 11008 + 256}, {ggml.Q6_K, 768}, {ggml.Q6_K, 4352},
		{ggml.Q6_K, 11264},
	} {
		m := 101
		w := weightPair(t, b, "w", tc.typ, randomWeight(t, rng, tc.typ, m, tc.k), m, tc.k)
		for _, c := range []struct {
			n      int
			r8     bool
			maxTPR int
		}{{1, false, 128}, {1, true, 128}, {1, false, 32}, {2, false, 128}, {3, false, 64}, {5, false, 128}, {8, false, 128}} {
			n := c.n
			b.q8.r8, b.q8.maxTPR = c.r8, c.maxTPR
			what := fmt.Sprintf("%s k=%d n=%d (r8 %v, tpr ≤ %d)", tc.typ, tc.k, n, c.r8, c.maxTPR)
			if !b.useMMVQ(w.g.Dev.(*devBuf).layout, n, tc.k) {
				t.Fatalf("%s: not on the 8-bit path", what)
			}
			x := f32Pair(t, b, "x", randVec(rng, n*tc.k, 1), n, tc.k)
			dst := poisonedPair(t, b, "dst", n, m)
			must(t, what, b.MatMul(dst.g, x.g, w.g))
			q8Ref(t, dst.r, x.r, w.r)
			check(t, b, what, dst, q8Tol)
			// Against the float product: int8 activations cost ~0.5 %.
			fl := &compute.Tensor{Name: "fl", Type: ggml.F32, Shape: []int{n, m}, F32: make([]float32, n*m)}
			must(t, what, compute.NewReference().MatMul(fl, x.r, w.r))
			if e := relErr(read(t, b, dst.g), fl.F32); e > 2e-2 {
				t.Errorf("%s: relative error %.3g against the float product", what, e)
			}
		}
	}

	b.q8.r8, b.q8.maxTPR = false, mmvqThreads
	// Q, K, V of different heights as one launch, n = 1 and 3.
	k := 1024
	var ws []pair
	for _, m := range []int{96, 33, 33} {
		ws = append(ws, weightPair(t, b, "w", ggml.Q4_0, randomWeight(t, rng, ggml.Q4_0, m, k), m, k))
	}
	for _, n := range []int{1, 3} {
		x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
		var dg, wg []*compute.Tensor
		var ds []pair
		for _, w := range ws {
			d := poisonedPair(t, b, "dst", n, w.g.Shape[0])
			ds = append(ds, d)
			dg, wg = append(dg, d.g), append(wg, w.g)
		}
		must(t, "matmul multi", b.MatMulMulti(dg, x.g, wg))
		for i, d := range ds {
			q8Ref(t, d.r, x.r, ws[i].r)
			check(t, b, fmt.Sprintf("matmul multi n=%d weight %d", n, i), d, q8Tol)
		}
	}
}

// TestQ8Producers checks that the norms and SwiGLU hand their q8 blocks to
// the product that follows (same result as quantizing afresh), and that a
// stale copy is not reused after another op wrote the input.
func TestQ8Producers(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	defer withBLASMin(b, 0)()
	defer withMMVQ(b, true)()
	ref := compute.NewReference()
	n, k, m := 3, 2048+32, 77
	w := weightPair(t, b, "w", ggml.Q8_0, randomWeight(t, rng, ggml.Q8_0, m, k), m, k)
	x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
	a := f32Pair(t, b, "a", randVec(rng, n*k, 1), n, k)
	nw := f32Pair(t, b, "nw", randVec(rng, k, 1), k)
	xn := poisonedPair(t, b, "xn", n, k)
	dst := poisonedPair(t, b, "dst", n, m)

	// Warm the scratch, then: AddRMSNorm emits, MatMul reuses.
	must(t, "matmul", b.MatMul(dst.g, x.g, w.g))
	must(t, "add+rmsnorm", b.AddRMSNorm(xn.g, x.g, a.g, nw.g, 1e-5))
	seq := b.opSeq
	must(t, "matmul", b.MatMul(dst.g, xn.g, w.g))
	if b.q8.seq != seq+1 || b.q8.src != xn.g.Dev.(*devBuf).ptr {
		t.Errorf("MatMul after AddRMSNorm did not reuse its q8 blocks (seq %d, op %d)", b.q8.seq, seq)
	}
	must(t, "add", ref.Add(x.r, x.r, a.r))
	must(t, "rmsnorm", ref.RMSNorm(xn.r, x.r, nw.r, 1e-5))
	check(t, b, "add+rmsnorm", xn, exactTol)
	q8Ref(t, dst.r, xn.r, w.r)
	check(t, b, "matmul after add+rmsnorm", dst, q8Tol)

	// Another op writes the input: the product must quantize again.
	must(t, "scale", b.Scale(xn.g, -0.5))
	must(t, "scale", ref.Scale(xn.r, -0.5))
	must(t, "matmul", b.MatMul(dst.g, xn.g, w.g))
	q8Ref(t, dst.r, xn.r, w.r)
	check(t, b, "matmul after scale", dst, q8Tol)

	// SwiGLU emits, MatMul reuses.
	g := f32Pair(t, b, "g", randVec(rng, n*k, 3), n, k)
	act := poisonedPair(t, b, "act", n, k)
	must(t, "swiglu", b.SwiGLU(act.g, g.g, a.g))
	seq = b.opSeq
	must(t, "matmul", b.MatMul(dst.g, act.g, w.g))
	if b.q8.seq != seq+1 || b.q8.src != act.g.Dev.(*devBuf).ptr {
		t.Errorf("MatMul after SwiGLU did not reuse its q8 blocks")
	}
	must(t, "swiglu", ref.SwiGLU(act.r, g.r, a.r))
	check(t, b, "swiglu (q8 variant)", act, exactTol)
	q8Ref(t, dst.r, act.r, w.r)
	check(t, b, "matmul after swiglu", dst, q8Tol)
}

// TestArgmaxRows checks ArgmaxRows against compute.ArgmaxRow on awkward
// lengths, with ties, NaN and -Inf planted, and rows of nothing else.
func TestArgmaxRows(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	for _, m := range []int{1, 31, 33, 1000, 32000, 32001} {
		n := 5
		v := randVec(rng, n*m, 4)
		for i := range v {
			switch rng.IntN(10) {
			case 0:
				v[i] = float32(math.NaN())
			case 1:
				v[i] = float32(math.Inf(-1))
			case 2:
				v[i] = float32(math.Round(float64(v[i]))) // ties
			}
		}
		// Row 1: a tie at the maximum, far apart; row 2: only NaN and -Inf.
		row1 := v[m : 2*m]
		hi := float32(100)
		row1[m-1] = hi
		row1[m/2] = hi
		for i := 2 * m; i < 3*m; i++ {
			v[i] = float32(math.NaN())
			if i%2 == 0 {
				v[i] = float32(math.Inf(-1))
			}
		}
		x := f32Pair(t, b, "logits", v, n, m)
		got := make([]int32, n)
		must(t, "argmax", b.ArgmaxRows(x.g, got))
		for r := range n {
			want := compute.ArgmaxRow(v[r*m : (r+1)*m])
			if got[r] != want {
				t.Errorf("m=%d row %d: argmax %d, want %d", m, r, got[r], want)
			}
		}
	}
	x := f32Pair(t, b, "x", randVec(rng, 6, 1), 2, 3)
	if err := b.ArgmaxRows(x.g, make([]int32, 3)); err == nil {
		t.Errorf("ArgmaxRows with 3 outputs for 2 rows: no error")
	}
}

// TestRoPEPair checks RoPEPair against the reference's RoPE of each tensor
// (the same bits), for head counts that split into uneven chunks.
func TestRoPEPair(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, tc := range []struct {
		n, hq, hk, hd int
		p             compute.RoPEParams
	}{
		{1, 32, 4, 64, compute.RoPEParams{Kind: compute.RoPENorm, NRot: 64, FreqBase: 10000, FreqScale: 1}},
		{3, 13, 5, 128, compute.RoPEParams{Kind: compute.RoPENeoX, NRot: 128, FreqBase: 1e6}},
		{2, 7, 7, 64, compute.RoPEParams{Kind: compute.RoPENeoX, NRot: 26, FreqBase: 10000, FreqScale: 0.25}},
	} {
		q := f32Pair(t, b, "q", randVec(rng, tc.n*tc.hq*tc.hd, 2), tc.n, tc.hq, tc.hd)
		k := f32Pair(t, b, "k", randVec(rng, tc.n*tc.hk*tc.hd, 2), tc.n, tc.hk, tc.hd)
		pos := make([]int32, tc.n)
		for i := range pos {
			pos[i] = int32(rng.IntN(5000))
		}
		must(t, "rope pair", b.RoPEPair(q.g, k.g, pos, tc.p))
		must(t, "rope q", ref.RoPE(q.r, pos, tc.p))
		must(t, "rope k", ref.RoPE(k.r, pos, tc.p))
		what := fmt.Sprintf("rope pair n=%d heads %d+%d", tc.n, tc.hq, tc.hk)
		check(t, b, what+" q", q, exactTol)
		check(t, b, what+" k", k, exactTol)
	}
}

// TestMatMulMultiFloat checks the fused float launch (Q, K, V of different
// heights) against the reference, for each float type and 1 to 8 tokens.
func TestMatMulMultiFloat(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	defer withBLASMin(b, 0)()
	defer withMMVQ(b, true)()
	ref := compute.NewReference()
	for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.BF16} {
		k := 136
		var ws []pair
		var wg []*compute.Tensor
		for _, m := range []int{97, 13, 13} {
			w := weightPair(t, b, "w", typ, randomWeight(t, rng, typ, m, k), m, k)
			ws, wg = append(ws, w), append(wg, w.g)
		}
		for _, n := range []int{1, 2, 5, 8} {
			x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
			var dg []*compute.Tensor
			var ds []pair
			for _, w := range ws {
				d := poisonedPair(t, b, "dst", n, w.g.Shape[0])
				ds, dg = append(ds, d), append(dg, d.g)
			}
			if !b.useFloatMulti(ws[0].g.Dev.(*devBuf).layout, n, k) {
				t.Fatalf("%s n=%d: not on the fused float path", typ, n)
			}
			must(t, "matmul multi", b.MatMulMulti(dg, x.g, wg))
			for i, d := range ds {
				must(t, "reference", ref.MatMul(d.r, x.r, ws[i].r))
				check(t, b, fmt.Sprintf("%s matmul multi n=%d weight %d", typ, n, i), d, f32Tol)
			}
		}
	}
}

// TestNormRowLengths checks RMSNorm and AddRMSNorm (whose short rows are
// normalised from registers, long ones in two passes over memory) against
// the reference on both sides of the switch, in place too.
func TestNormRowLengths(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, d := range []int{5, 64, 1000, 2080, 8192, 8193, 9000} {
		n := 3
		x := f32Pair(t, b, "x", randVec(rng, n*d, 2), n, d)
		a := f32Pair(t, b, "a", randVec(rng, n*d, 2), n, d)
		w := f32Pair(t, b, "w", randVec(rng, d, 1), d)
		dst := poisonedPair(t, b, "dst", n, d)
		must(t, "add+rmsnorm", b.AddRMSNorm(dst.g, x.g, a.g, w.g, 1e-5))
		must(t, "add", ref.Add(x.r, x.r, a.r))
		must(t, "rmsnorm", ref.RMSNorm(dst.r, x.r, w.r, 1e-5))
		check(t, b, fmt.Sprintf("add+rmsnorm d=%d: x", d), x, exactTol)
		check(t, b, fmt.Sprintf("add+rmsnorm d=%d: dst", d), dst, exactTol)
		must(t, "rmsnorm in place", b.RMSNorm(x.g, x.g, nil, 1e-6))
		must(t, "rmsnorm in place", ref.RMSNorm(x.r, x.r, nil, 1e-6))
		check(t, b, fmt.Sprintf("rmsnorm in place d=%d", d), x, exactTol)
	}
}
