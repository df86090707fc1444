package cpu

import (
	"math"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// RMSNorm implements compute.Backend with ggml's arithmetic: the squares
// are taken in float32 and summed in float64, mean and 1/sqrt(mean+eps) are
// float32, and y = (x·scale)·w in float32 (ggml_rms_norm then ggml_mul), so
// results match llama.cpp's bit for bit. Rows are split over the workers
// for batches. Arguments outside the fast path (a non-F32 weight, say, or
// anything invalid) go to compute.Reference, which checks them.
func (b *Backend) RMSNorm(dst, x, w *compute.Tensor, eps float32) error {
	if !rmsFast(dst, x, w, eps) {
		return b.Reference.RMSNorm(dst, x, w, eps)
	}
	j := rmsJob{dst: dst.F32, x: x.F32, d: x.Cols(), eps: eps}
	if w != nil {
		j.w = w.F32
	}
	if n := x.Rows(); b.serial(len(x.F32) * 4) {
		j.do(0, n) // no job on the heap for the common small case
	} else {
		jp := new(rmsJob)
		*jp = j
		b.pool.run(n, max(1, 8192/j.d), jp)
	}
	return nil
}

// rmsFast reports whether the arguments are valid and take the fast path:
// F32 x and dst of one shape with matching storage, and w nil or an F32
// vector of the row length.
func rmsFast(dst, x, w *compute.Tensor, eps float32) bool {
	if x == nil || dst == nil || x.Type != ggml.F32 || dst.Type != ggml.F32 || len(x.Shape) == 0 ||
		len(x.Shape) != len(dst.Shape) || !(eps >= 0) || math.IsInf(float64(eps), 0) {
		return false
	}
	n := 1
	for i, d := range x.Shape {
		if d <= 0 || dst.Shape[i] != d {
			return false
		}
		n *= d
	}
	if len(x.F32) != n || len(dst.F32) != n {
		return false
	}
	d := x.Cols()
	return w == nil || (w.Type == ggml.F32 && len(w.Shape) == 1 && w.Shape[0] == d && len(w.F32) == d)
}

// rmsJob normalizes rows [lo, hi).
type rmsJob struct {
	dst, x, w []float32
	d         int
	eps       float32
}

func (j *rmsJob) do(lo, hi int) {
	for r := lo; r < hi; r++ {
		rmsNormRow(j.dst[r*j.d:(r+1)*j.d], j.x[r*j.d:(r+1)*j.d], j.w, j.eps)
	}
}

// rmsNormRow is ggml_compute_forward_rms_norm_f32 followed by ggml_mul.
func rmsNormRow(dst, x, w []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	if w == nil {
		for i, v := range x {
			dst[i] = v * scale
		}
		return
	}
	w = w[:len(x)]
	for i, v := range x {
		dst[i] = (v * scale) * w[i]
	}
}
