package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// matmulTol bounds the error against compute.Reference, which multiplies
// the unrounded activations, relative to the products' size:
// sqrt(Σ_ij Δ_ij² / Σ_ij Σ_l (w_jl·x_il)²). That ratio measures the
// activation rounding: steps of amax/127 per 32 elements (Q8_0, Q8_1) or
// per 256 (Q8_K, larger amax), 8 bits of mantissa for bf16, 11 for f16;
// F32 has float32 summation only. On these random weights and Gaussian x,
// with 7 activation rows and 33 or 100 weight rows, the largest values seen
// in repeated runs were 0.009 (Q8_0/Q8_1), 0.011 (Q8_K), 0.0023 (bf16),
// 0.0003 (f16) and 3e-7 (F32); the bounds leave room for other seeds.
func matmulTol(t ggml.Type) float64 {
	switch t {
	case ggml.F32:
		return 1e-6
	case ggml.F16:
		return 1e-3
	case ggml.BF16:
		return 5e-3
	}
	if t.BlockSize() == qkK {
		return 2e-2
	}
	return 1.5e-2
}

// matmulShapes are awkward shapes: single rows, odd row counts, and row
// lengths with whole 8-block groups plus a tail (or not a multiple of 8
// for the float types).
func matmulShapes(t ggml.Type) (ns, ms, ks []int) {
	ns, ms = []int{1, 7, 9}, []int{1, 33, 100}
	switch t.BlockSize() {
	case 1:
		// 2125: four whole F16 k-blocks of 512, a short one and a tail.
		ks = []int{77, 256, 2125}
	case qk8:
		ks = []int{32 * 9, 512}
	default:
		ks = []int{256, 768}
	}
	return ns, ms, ks
}

// TestMatMul compares Backend.MatMul with compute.Reference for every
// weight type, and checks that every output equals the kernel's own row
// loop on that row (so chunking and threading change nothing).
func TestMatMul(t *testing.T) {
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, noAsm := range []bool{false, true} {
		b := New(3)
		defer b.Close()
		if noAsm {
			b.kernels = kernels(false)
		} else if !b.Asm() {
			t.Log("assembly kernels unavailable: testing the Go kernels only")
			continue
		}
		for _, typ := range dotTypes {
			ns, ms, ks := matmulShapes(typ)
			for _, n := range ns {
				for _, m := range ms {
					for _, k := range ks {
						name := fmt.Sprintf("asm=%v/%s/n=%d/m=%d/k=%d", !noAsm, typ, n, m, k)
						t.Run(name, func(t *testing.T) {
							checkMatMul(t, b, ref, rng, typ, n, m, k)
						})
					}
				}
			}
		}
	}
}

// checkMatMul multiplies random data three ways. Against compute.Reference
// it checks the rounding error statistically (matmulTol, on shapes with 7
// activation rows and at least 33 weight rows, where the ratio is stable). Each output must also match
// the float64 dot of the dequantized weight row and quantized activation
// row to 1e-5·Σ|w·x| (float32 summation), and equal bit for bit the
// single-row kernel run on that weight row and activation row alone: the
// batched kernels, chunking and threads change nothing (batch invariance,
// which the engine relies on).
func checkMatMul(t *testing.T, b *Backend, ref *compute.Reference, r *rand.Rand, typ ggml.Type, n, m, k int) {
	t.Helper()
	w, err := ref.Upload("w", typ, []int{m, k}, randomWeights(r, typ, m, k))
	if err != nil {
		t.Fatal(err)
	}
	x := newF32(t, ref, randomActivations(r, n*k), n, k)
	got := newF32(t, ref, nil, n, m)
	want := newF32(t, ref, nil, n, m)
	if err := b.MatMul(got, x, w); err != nil {
		t.Fatal(err)
	}
	if err := ref.MatMul(want, x, w); err != nil {
		t.Fatal(err)
	}
	kn := b.kernels[typ]
	wb := w.Raw
	if typ == ggml.F32 {
		wb = f32Bytes(w.F32)
	}
	stride := len(wb) / m
	// Each output again, one weight row and one activation row at a time,
	// through the single-row kernel: batching, chunking and threads must
	// not change a bit.
	alone := make([]float32, n*m)
	for i := range n {
		xr := xrowFor(t, kn, x.F32[i*k:(i+1)*k])
		for j := range m {
			kn.rows(alone[i*m+j:i*m+j+1], wb[j*stride:(j+1)*stride], stride, xr, k)
		}
	}
	var errSq, prodSq float64
	for i := range n {
		xr := xrowFor(t, kn, x.F32[i*k:(i+1)*k])
		for j := range m {
			wr := wb[j*stride : (j+1)*stride]
			g := got.F32[i*m+j]
			emu, mag := refDot(t, kn, k, wr, xr.q)
			if d := math.Abs(float64(g) - emu); d > 1e-5*mag {
				t.Fatalf("dst[%d][%d] = %g, float64 on the quantized activations %g: |Δ| %g > 1e-5·Σ|wx| = %g", i, j, g, emu, d, 1e-5*mag)
			}
			if alone[i*m+j] != g {
				t.Fatalf("dst[%d][%d] = %g but the single-row kernel on that weight and activation row gives %g (batch invariance)", i, j, g, alone[i*m+j])
			}
			d := float64(g) - float64(want.F32[i*m+j])
			errSq += d * d
			wf := dequant(t, typ, wr, k)
			for l, v := range wf {
				p := float64(v) * float64(x.F32[i*k+l])
				prodSq += p * p
			}
		}
	}
	if n >= 7 && m >= 33 {
		if e := math.Sqrt(errSq / prodSq); e > matmulTol(typ) {
			t.Errorf("error vs reference relative to the products %.3g > %.3g", e, matmulTol(typ))
		}
	}
}

// newF32 makes an F32 tensor [rows, cols] holding data (zeros if nil).
func newF32(t testing.TB, ref *compute.Reference, data []float32, rows, cols int) *compute.Tensor {
	t.Helper()
	x, err := ref.NewTensor("x", ggml.F32, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	copy(x.F32, data)
	return x
}
