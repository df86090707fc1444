package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestF16Producers: for batches on the large-batch path, RMSNorm,
// AddRMSNorm and SwiGLU also write their output rounded to f16, and the
// product right after (mmq for Q4_0/Q8_0, the mma kernels for Q4_K, cuBLAS
// for F16 weights) uses it instead of converting: every product is bit for
// bit the one computed with a conversion launch (ROCMFORGE_GPU_F16EMIT=0),
// the producers' own outputs are unchanged, and a stale copy is not reused
// after another op wrote the input.
func TestF16Producers(t *testing.T) {
	b := testBackend(t)
	if !b.useBLAS(9) {
		t.Skipf("large-batch path off: %s", b.MatMulPath())
	}
	rng := newRNG(t)
	ref := compute.NewReference()
	defer func(on bool) { b.blas.h16.on = on }(b.blas.h16.on)
	for _, tc := range []struct {
		typ     ggml.Type
		n, k, m int
	}{{ggml.Q8_0, 23, 640, 77}, {ggml.Q4_0, 64, 1024, 130}, {ggml.Q4_K, 17, 768, 45}, {ggml.F16, 33, 520, 61}} {
		what := fmt.Sprintf("%s n=%d k=%d", tc.typ, tc.n, tc.k)
		n, k, m := tc.n, tc.k, tc.m
		w := weightPair(t, b, "w", tc.typ, randomWeight(t, rng, tc.typ, m, k), m, k)
		x0 := randVec(rng, n*k, 1)
		a := f32Pair(t, b, "a", randVec(rng, n*k, 1), n, k)
		nw := f32Pair(t, b, "nw", randVec(rng, k, 1), k)
		g := f32Pair(t, b, "g", randVec(rng, n*k, 3), n, k)
		var prods [2][4][]float32
		var outs [2][3][]float32
		for i, on := range []bool{true, false} {
			b.blas.h16.on = on
			x := f32Pair(t, b, "x", append([]float32(nil), x0...), n, k)
			xn := poisonedPair(t, b, "xn", n, k)
			act := poisonedPair(t, b, "act", n, k)
			dst := poisonedPair(t, b, "dst", n, m)
			must(t, what, b.MatMul(dst.g, x.g, w.g)) // the scratch sized
			step := func(j int, producer string, src pair) {
				t.Helper()
				seq := b.opSeq
				emitted := b.blas.h16.seq == seq && b.blas.h16.src == src.g.Dev.(*devBuf).ptr
				if emitted != on {
					t.Errorf("%s, emit=%v: %s left an f16 copy: %v", what, on, producer, emitted)
				}
				must(t, what, b.MatMul(dst.g, src.g, w.g))
				reused := b.blas.h16.seq == seq+1
				if reused != on {
					t.Errorf("%s, emit=%v: the product after %s reused the f16 copy: %v", what, on, producer, reused)
				}
				prods[i][j] = read(t, b, dst.g)
			}
			must(t, what, b.RMSNorm(xn.g, x.g, nw.g, 1e-5))
			step(0, "rmsnorm", xn)
			outs[i][0] = read(t, b, xn.g)
			must(t, what, b.AddRMSNorm(xn.g, x.g, a.g, nw.g, 1e-5))
			step(1, "add+rmsnorm", xn)
			outs[i][1] = read(t, b, xn.g)
			must(t, what, b.SwiGLU(act.g, g.g, a.g))
			step(2, "swiglu", act)
			outs[i][2] = read(t, b, act.g)
			// Another op writes the input: the product converts again.
			must(t, what, b.Scale(act.g, -0.5))
			must(t, what, b.MatMul(dst.g, act.g, w.g))
			prods[i][3] = read(t, b, dst.g)
			if i == 0 {
				// The float outputs against the reference, and the last
				// product against the reference product within the f16 path's
				// tolerance.
				must(t, what, ref.RMSNorm(xn.r, x.r, nw.r, 1e-5)) // x.r was not added to yet
				must(t, what, ref.Add(x.r, x.r, a.r))
				must(t, what, ref.RMSNorm(xn.r, x.r, nw.r, 1e-5))
				check(t, b, what+" add+rmsnorm", xn, exactTol)
				must(t, what, ref.SwiGLU(act.r, g.r, a.r))
				must(t, what, ref.Scale(act.r, -0.5))
				check(t, b, what+" swiglu, scaled", act, exactTol)
				must(t, what, ref.MatMul(dst.r, act.r, w.r))
				check(t, b, what+" product after scale", dst, blasF16Tol)
			}
		}
		for j := range prods[0] {
			for e := range prods[0][j] {
				if math.Float32bits(prods[0][j][e]) != math.Float32bits(prods[1][j][e]) {
					t.Fatalf("%s: product %d element %d is %v with the producer's f16 copy, %v with a conversion", what, j, e, prods[0][j][e], prods[1][j][e])
				}
			}
		}
		for j := range outs[0] {
			for e := range outs[0][j] {
				if math.Float32bits(outs[0][j][e]) != math.Float32bits(outs[1][j][e]) {
					t.Fatalf("%s: producer %d element %d differs with the f16 copy on", what, j, e)
				}
			}
		}
	}
}
