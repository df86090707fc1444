//go:build amd64 && !purego

package cpu

import "math"

//go:noescape
func expSumAVX2(x []float32, m float32) float32

//go:noescape
func axpyRowsAVX2(acc []float32, v []byte, stride int, p []float32)

// asmAttnMath is the attention arithmetic in AVX2.
func asmAttnMath() attnMath {
	return attnMath{expSum: expSumFast, axpyRows: axpyRowsFast, swiglu: swigluFast, widenF16: widenF16Fast, widenQ8_0: widenQ8_0AVX2}
}

//go:noescape
func widenF16AVX2(dst []float32, src []byte)

// widenQ8_0AVX2 is widenQ8_0Go in AVX2 (the same single rounding of q·d).
//
//go:noescape
func widenQ8_0AVX2(dst []float32, src []byte)

// widenF16Fast is widenF16Go with the first multiple of 8 elements in F16C
// (VCVTPH2PS, exact like the Go conversion).
func widenF16Fast(dst []float32, src []byte) {
	n := len(dst) &^ 7
	if n > 0 {
		widenF16AVX2(dst[:n], src[:2*n])
	}
	if n < len(dst) {
		widenF16Go(dst[n:], src[2*n:])
	}
}

// expSumFast is expSumGo in AVX2. The last len(x)%8 elements go through
// the same vector code (padded), so every element's exp is the same
// function of its input wherever it sits.
func expSumFast(x []float32, m float32) float32 {
	n := len(x) &^ 7
	s := expSumAVX2(x[:n], m)
	if n < len(x) {
		var pad [8]float32
		for i := range pad {
			pad[i] = float32(math.Inf(-1)) // clamped: ~1e-38 each, nothing next to the max's 1
		}
		copy(pad[:], x[n:])
		s += expSumAVX2(pad[:], m)
		copy(x[n:], pad[:len(x)-n])
	}
	return s
}

// axpyRowsFast is axpyRowsGo with the first multiple of 8 columns in AVX2.
func axpyRowsFast(acc, v []float32, stride int, p []float32) {
	if len(p) == 0 {
		return
	}
	n := len(acc) &^ 7
	if n > 0 {
		rows := v[:(len(p)-1)*stride+n] // the loop reads exactly these
		axpyRowsAVX2(acc[:n], f32Bytes(rows), 4*stride, p)
	}
	if n < len(acc) {
		axpyRowsGo(acc[n:], v[n:], stride, p)
	}
}

//go:noescape
func swigluAVX2(dst, gate, up []float32)

// swigluFast is swigluGo in AVX2. The last len(dst)%8 elements go through
// the same vector code (padded): an element's result must not depend on
// where it sits in the tensor, or a token's activations would depend on
// the other tokens of its batch.
func swigluFast(dst, gate, up []float32) {
	n := len(dst) &^ 7
	swigluAVX2(dst[:n], gate[:n], up[:n])
	if n < len(dst) {
		var d, g, u [8]float32
		copy(g[:], gate[n:len(dst)])
		copy(u[:], up[n:len(dst)])
		swigluAVX2(d[:], g[:], u[:])
		copy(dst[n:], d[:len(dst)-n])
	}
}
