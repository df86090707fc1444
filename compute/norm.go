package compute

import (
	"fmt"
	"math"
)

// RMSNorm implements Backend: each row of x (the last dimension) becomes
// x / sqrt(mean(x²) + eps) * w. w is [d] or nil; dst may be x.
func (r *Reference) RMSNorm(dst, x, w *Tensor, eps float32) error {
	const op = "rmsnorm"
	if err := checkNormArgs(op, dst, x, w, nil, eps); err != nil {
		return err
	}
	var wv []float32
	if w != nil {
		var err error
		if wv, err = vectorF32(w); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	d := x.Cols()
	for i := range x.Rows() {
		RMSNormRow(dst.F32[i*d:(i+1)*d], x.F32[i*d:(i+1)*d], wv, eps)
	}
	return nil
}

// LayerNorm implements Backend: each row of x becomes
// (x - mean) / sqrt(var + eps) * w + b, with w and b [d] or nil; dst may be x.
func (r *Reference) LayerNorm(dst, x, w, b *Tensor, eps float32) error {
	const op = "layernorm"
	if err := checkNormArgs(op, dst, x, w, b, eps); err != nil {
		return err
	}
	var wv, bv []float32
	var err error
	if w != nil {
		if wv, err = vectorF32(w); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if b != nil {
		if bv, err = vectorF32(b); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	d := x.Cols()
	for i := range x.Rows() {
		LayerNormRow(dst.F32[i*d:(i+1)*d], x.F32[i*d:(i+1)*d], wv, bv, eps)
	}
	return nil
}

func checkNormArgs(op string, dst, x, w, b *Tensor, eps float32) error {
	if !(eps >= 0) || math.IsInf(float64(eps), 0) {
		return fmt.Errorf("%s: eps %v must be finite and >= 0", op, eps)
	}
	if err := checkF32(op, "x", x); err != nil {
		return err
	}
	if err := checkF32(op, "dst", dst); err != nil {
		return err
	}
	if err := checkSameShape(op, "x", x, "dst", dst); err != nil {
		return err
	}
	against := "x " + desc(x)
	if w != nil {
		if err := checkVector(op, "w", w, x.Cols(), against); err != nil {
			return err
		}
	}
	if b != nil {
		if err := checkVector(op, "b", b, x.Cols(), against); err != nil {
			return err
		}
	}
	return nil
}

// RMSNormRow writes x / sqrt(mean(x²) + eps) * w to dst (w may be nil). The
// sum of squares is taken in float64, as ggml does. dst may alias x.
func RMSNormRow(dst, x, w []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v) * float64(v)
	}
	scale := 1 / math.Sqrt(sum/float64(len(x))+float64(eps))
	for i, v := range x {
		y := float64(v) * scale
		if w != nil {
			y *= float64(w[i])
		}
		dst[i] = float32(y)
	}
}

// LayerNormRow writes (x - mean) / sqrt(var + eps) * w + b to dst (w and b may
// be nil), with mean and (biased) variance in float64. dst may alias x.
func LayerNormRow(dst, x, w, b []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	var ss float64
	for _, v := range x {
		c := float64(v) - mean
		ss += c * c
	}
	scale := 1 / math.Sqrt(ss/float64(len(x))+float64(eps))
	for i, v := range x {
		y := (float64(v) - mean) * scale
		if w != nil {
			y *= float64(w[i])
		}
		if b != nil {
			y += float64(b[i])
		}
		dst[i] = float32(y)
	}
}
