package cpu

import (
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestSwiGLU compares Backend.SwiGLU with compute.Reference (float64 exp):
// |Δ| ≤ 2e-6·|want| + 1e-37 (float32 exp, division and product), including
// gates far in both tails and lengths with a tail past the vector width.
func TestSwiGLU(t *testing.T) {
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, noAsm := range []bool{false, true} {
		b := New(2)
		defer b.Close()
		if noAsm {
			b.math = goAttnMath()
		} else if !b.Asm() {
			t.Log("assembly kernels unavailable: testing the Go path only")
			continue
		}
		for _, shape := range [][]int{{1, 13}, {3, 172}, {40, 5632}} {
			gate, _ := ref.NewTensor("gate", ggml.F32, shape...)
			up, _ := ref.NewTensor("up", ggml.F32, shape...)
			for i := range gate.F32 {
				gate.F32[i] = float32(3 * rng.NormFloat64())
				up.F32[i] = float32(rng.NormFloat64())
			}
			copy(gate.F32, []float32{-100, 100, -88, 88, -87.5, 1e-8, -1e-8, 0, 20, -20})
			got, _ := ref.NewTensor("got", ggml.F32, shape...)
			want, _ := ref.NewTensor("want", ggml.F32, shape...)
			if err := b.SwiGLU(got, gate, up); err != nil {
				t.Fatal(err)
			}
			if err := ref.SwiGLU(want, gate, up); err != nil {
				t.Fatal(err)
			}
			for i := range want.F32 {
				if d := math.Abs(float64(got.F32[i] - want.F32[i])); !(d <= 2e-6*math.Abs(float64(want.F32[i]))+1e-37) {
					t.Fatalf("asm=%v %v: silu(%g)·%g = %g, reference %g", !noAsm, shape, gate.F32[i], up.F32[i], got.F32[i], want.F32[i])
				}
			}
		}
		bad, _ := ref.NewTensor("bad", ggml.F32, 2, 3)
		ok, _ := ref.NewTensor("ok", ggml.F32, 3, 2)
		if err := b.SwiGLU(ok, bad, ok); err == nil {
			t.Error("SwiGLU accepted gate [2 3] with dst [3 2]")
		}
	}
}

// TestSwiGLURowInvariance checks that a row's result does not depend on
// the rows around it (the tail past a multiple of 8 goes through the same
// code): SwiGLU of [n, f] must equal, bit for bit, SwiGLU of each row alone.
func TestSwiGLURowInvariance(t *testing.T) {
	rng := newRNG(t)
	ref := compute.NewReference()
	b := New(2)
	defer b.Close()
	const n, f = 5, 172 // f % 8 == 4
	gate := newF32(t, ref, randomActivations(rng, n*f), n, f)
	up := newF32(t, ref, randomActivations(rng, n*f), n, f)
	all := newF32(t, ref, nil, n, f)
	if err := b.SwiGLU(all, gate, up); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		g := newF32(t, ref, gate.F32[i*f:(i+1)*f], 1, f)
		u := newF32(t, ref, up.F32[i*f:(i+1)*f], 1, f)
		one := newF32(t, ref, nil, 1, f)
		if err := b.SwiGLU(one, g, u); err != nil {
			t.Fatal(err)
		}
		for j, v := range one.F32 {
			if v != all.F32[i*f+j] {
				t.Fatalf("row %d element %d: %g alone, %g in the batch", i, j, v, all.F32[i*f+j])
			}
		}
	}
}
