package compute

import (
	"fmt"
	"math"
)

// AddBias implements Backend: x[..., m] += b[m]. b may be any supported type.
func (r *Reference) AddBias(x, b *Tensor) error {
	const op = "addbias"
	if err := checkF32(op, "x", x); err != nil {
		return err
	}
	if err := checkVector(op, "b", b, x.Cols(), "x "+desc(x)); err != nil {
		return err
	}
	bv, err := vectorF32(b)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	m := x.Cols()
	for i := range x.Rows() {
		row := x.F32[i*m : (i+1)*m]
		for j := range row {
			row[j] += bv[j]
		}
	}
	return nil
}

// Add implements Backend: dst = a + b elementwise; dst may alias a or b.
func (r *Reference) Add(dst, a, b *Tensor) error {
	const op = "add"
	if err := checkBinary(op, dst, "a", a, "b", b); err != nil {
		return err
	}
	for i := range dst.F32 {
		dst.F32[i] = a.F32[i] + b.F32[i]
	}
	return nil
}

// Scale implements Backend: x *= s.
func (r *Reference) Scale(x *Tensor, s float32) error {
	if err := checkF32("scale", "x", x); err != nil {
		return err
	}
	for i := range x.F32 {
		x.F32[i] *= s
	}
	return nil
}

// Softcap implements Backend: x = c*tanh(x/c), c > 0.
func (r *Reference) Softcap(x *Tensor, c float32) error {
	const op = "softcap"
	if err := checkF32(op, "x", x); err != nil {
		return err
	}
	if !(c > 0) || math.IsInf(float64(c), 0) {
		return fmt.Errorf("%s: cap %v must be positive and finite", op, c)
	}
	for i, v := range x.F32 {
		x.F32[i] = SoftcapValue(v, c)
	}
	return nil
}

// SwiGLU implements Backend: dst = silu(gate) * up.
func (r *Reference) SwiGLU(dst, gate, up *Tensor) error {
	if err := checkBinary("swiglu", dst, "gate", gate, "up", up); err != nil {
		return err
	}
	for i := range dst.F32 {
		dst.F32[i] = float32(float64(SiLU(gate.F32[i])) * float64(up.F32[i]))
	}
	return nil
}

// GeGLU implements Backend: dst = gelu_tanh(gate) * up.
func (r *Reference) GeGLU(dst, gate, up *Tensor) error {
	if err := checkBinary("geglu", dst, "gate", gate, "up", up); err != nil {
		return err
	}
	for i := range dst.F32 {
		dst.F32[i] = float32(float64(GELUTanh(gate.F32[i])) * float64(up.F32[i]))
	}
	return nil
}

// GELU implements Backend: x = gelu_tanh(x) in place.
func (r *Reference) GELU(x *Tensor) error {
	if err := checkF32("gelu", "x", x); err != nil {
		return err
	}
	for i, v := range x.F32 {
		x.F32[i] = GELUTanh(v)
	}
	return nil
}

// Softmax implements Backend: each row (last dimension) in place.
func (r *Reference) Softmax(x *Tensor) error {
	if err := checkF32("softmax", "x", x); err != nil {
		return err
	}
	c := x.Cols()
	for i := range x.Rows() {
		SoftmaxRow(x.F32[i*c : (i+1)*c])
	}
	return nil
}

// Copy implements Backend: dst[:, dstCol:dstCol+cols] = src[:, srcCol:srcCol+cols]
// over the rows (every dimension but the last) of two F32 tensors with equal
// row counts. It splits fused projections such as attn_qkv.
func (r *Reference) Copy(dst, src *Tensor, dstCol, srcCol, cols int) error {
	const op = "copy"
	if err := checkF32(op, "src", src); err != nil {
		return err
	}
	if err := checkF32(op, "dst", dst); err != nil {
		return err
	}
	if src.Rows() != dst.Rows() {
		return fmt.Errorf("%s: src %s has %d rows but dst %s has %d", op, desc(src), src.Rows(), desc(dst), dst.Rows())
	}
	if cols < 0 || srcCol < 0 || srcCol+cols > src.Cols() {
		return fmt.Errorf("%s: columns [%d, %d) outside src %s", op, srcCol, srcCol+cols, desc(src))
	}
	if dstCol < 0 || dstCol+cols > dst.Cols() {
		return fmt.Errorf("%s: columns [%d, %d) outside dst %s", op, dstCol, dstCol+cols, desc(dst))
	}
	sc, dc := src.Cols(), dst.Cols()
	for i := range src.Rows() {
		// copy handles src == dst with overlapping ranges.
		copy(dst.F32[i*dc+dstCol:i*dc+dstCol+cols], src.F32[i*sc+srcCol:i*sc+srcCol+cols])
	}
	return nil
}

// checkBinary checks an elementwise op over three F32 tensors of equal shape.
func checkBinary(op string, dst *Tensor, roleA string, a *Tensor, roleB string, b *Tensor) error {
	if err := checkF32(op, roleA, a); err != nil {
		return err
	}
	if err := checkF32(op, roleB, b); err != nil {
		return err
	}
	if err := checkF32(op, "dst", dst); err != nil {
		return err
	}
	if err := checkSameShape(op, roleA, a, roleB, b); err != nil {
		return err
	}
	return checkSameShape(op, roleA, a, "dst", dst)
}

// SiLU is x * sigmoid(x), evaluated in float64.
func SiLU(x float32) float32 {
	v := float64(x)
	return float32(v / (1 + math.Exp(-v)))
}

// GELUTanh is the tanh approximation of GELU,
// 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), evaluated in float64.
//
// ggml's CPU kernel reads it from an f16 table for |x| < 10; the reference
// computes the formula exactly and leaves that rounding to the backends.
func GELUTanh(x float32) float32 {
	v := float64(x)
	const sqrt2OverPi = 0.79788456080286535587989211986876
	return float32(0.5 * v * (1 + math.Tanh(sqrt2OverPi*(v+0.044715*v*v*v))))
}

// SoftcapValue is c*tanh(x/c), evaluated in float64.
func SoftcapValue(x, c float32) float32 {
	return float32(float64(c) * math.Tanh(float64(x)/float64(c)))
}

// SoftmaxRow replaces x with softmax(x), subtracting the maximum first and
// summing in float64. A row whose every value is -Inf (fully masked) becomes
// zeros instead of NaN.
func SoftmaxRow(x []float32) {
	if len(x) == 0 {
		return
	}
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	if math.IsInf(m, -1) {
		clear(x)
		return
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - m)
	}
	// The exponentials are recomputed rather than stored: no scratch buffer.
	for i, v := range x {
		x[i] = float32(math.Exp(float64(v)-m) / sum)
	}
}

// ArgmaxRows implements Argmaxer.
func (r *Reference) ArgmaxRows(x *Tensor, dst []int32) error {
	if err := CheckArgmaxRows(x, dst); err != nil {
		return err
	}
	cols := x.Cols()
	for i := range dst {
		dst[i] = ArgmaxRow(x.F32[i*cols : (i+1)*cols])
	}
	return nil
}

// CheckArgmaxRows validates ArgmaxRows's arguments: x a 2-D F32 tensor with
// one dst element per row.
func CheckArgmaxRows(x *Tensor, dst []int32) error {
	if err := checkF32("argmax", "x", x); err != nil {
		return err
	}
	if len(x.Shape) != 2 {
		return fmt.Errorf("argmax: x %s must be 2-D [n, m]", desc(x))
	}
	if len(dst) != x.Shape[0] {
		return fmt.Errorf("argmax: x %s has %d rows but dst holds %d", desc(x), x.Shape[0], len(dst))
	}
	return nil
}

// ArgmaxRow is the reference of one row of ArgmaxRows: the lowest index of
// the largest value, skipping NaN and -Inf; -1 when nothing else is there.
func ArgmaxRow(row []float32) int32 {
	best := int32(-1)
	var bestV float32
	for j, v := range row {
		if v != v || math.IsInf(float64(v), -1) {
			continue
		}
		if best < 0 || v > bestV {
			best, bestV = int32(j), v
		}
	}
	return best
}
