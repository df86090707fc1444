package cpu

import (
	"slices"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// SwiGLU implements compute.Backend: dst = silu(gate)·up in float32 (as
// ggml's swiglu), vectorized and split over the workers. Arguments outside
// the fast path go to compute.Reference, which checks them.
func (b *Backend) SwiGLU(dst, gate, up *compute.Tensor) error {
	if !sameF32(dst, gate) || !sameF32(dst, up) {
		return b.Reference.SwiGLU(dst, gate, up)
	}
	j := swigluJob{f: b.math.swiglu, dst: dst.F32, gate: gate.F32, up: up.F32}
	n := len(dst.F32)
	if b.serial(n * 12) {
		j.do(0, n)
	} else {
		jp := new(swigluJob)
		*jp = j
		b.pool.run(n, 4096, jp)
	}
	return nil
}

// sameF32 reports whether a and b are F32 tensors of one non-empty shape
// with exactly the storage that shape needs.
func sameF32(a, b *compute.Tensor) bool {
	if a == nil || b == nil || a.Type != ggml.F32 || b.Type != ggml.F32 || len(a.Shape) == 0 || !slices.Equal(a.Shape, b.Shape) {
		return false
	}
	n := 1
	for _, d := range a.Shape {
		if d < 0 {
			return false
		}
		n *= d
	}
	return len(a.F32) == n && len(b.F32) == n
}

// swigluJob computes elements [lo, hi).
type swigluJob struct {
	f             func(dst, gate, up []float32)
	dst, gate, up []float32
}

func (j *swigluJob) do(lo, hi int) { j.f(j.dst[lo:hi], j.gate[lo:hi], j.up[lo:hi]) }
