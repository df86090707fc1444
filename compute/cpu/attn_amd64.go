//go:build amd64 && !purego

package cpu

//go:noescape
func expSumAVX2(x []float32, m float32) float32

//go:noescape
func axpyRowsAVX2(acc []float32, v []byte, stride int, p []float32)

// asmAttnMath is the attention arithmetic in AVX2.
func asmAttnMath() attnMath {
	return attnMath{expSum: expSumFast, axpyRows: axpyRowsFast, swiglu: swigluFast}
}

// expSumFast is expSumGo with the first multiple of 8 elements in AVX2.
func expSumFast(x []float32, m float32) float32 {
	n := len(x) &^ 7
	s := expSumAVX2(x[:n], m)
	return s + expSumGo(x[n:], m)
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

// swigluFast is swigluGo with the first multiple of 8 elements in AVX2.
func swigluFast(dst, gate, up []float32) {
	n := len(dst) &^ 7
	swigluAVX2(dst[:n], gate[:n], up[:n])
	swigluGo(dst[n:], gate[n:len(dst)], up[n:len(dst)])
}
