package cpu

import (
	"github.com/rocmforge/rocmforge/ggml"
)

// A kernel is everything MatMul needs to multiply by weights of one type:
// how to quantize an activation row to the weight type's vec_dot type, the
// pure-Go dot product, and the fastest row loop this machine has.
type kernel struct {
	w, x ggml.Type // weight type and activation (vec_dot) type

	// quant writes one F32 activation row as x-type blocks (GGML layout);
	// it is the definition, in pure Go.
	quant func(dst []byte, src []float32)
	// dot is the pure-Go vec_dot of one weight row and one activation row.
	dot func(k int, w, x []byte) float32
	// load prepares everything rows reads from one activation row: x.q
	// (the quant result, maybe from faster code) and, for the assembly
	// loops, the layouts and side data sized by side.
	load func(x *xrow, src []float32)
	// side sizes the extra buffers of an xrow for a row of k elements; nil
	// means none.
	side func(k int) sides
	// rows computes dst[r] = dot(w[r*stride:], x) for every r < len(dst).
	rows func(dst []float32, w []byte, stride int, x *xrow, k int)
	// asm names the assembly row loop in use ("" for the pure-Go one).
	asm string
	// batch, when set, multiplies each weight row with 4 activation rows
	// at once (prompt batches), sharing the weight decoding between them.
	batch *batchKernel
}

// A batchKernel runs one weight row against 4 activation rows.
type batchKernel struct {
	// side sizes an xbatch for 4 rows of k elements.
	side func(k int) sides
	// pack builds the batch layout from 4 loaded activation rows.
	pack func(b *xbatch, xs []xrow, k int)
	// rows sets dst[i·m + r] = w_r · x_i for i < 4 and r < rows.
	rows func(dst []float32, m, rows int, w []byte, stride int, b *xbatch, xs []xrow, k int)
	// asm names the assembly loop.
	asm string
}

// xbatch is the layout a batchKernel reads for 4 activation rows.
type xbatch struct {
	q   []byte
	aux []float32
}

// xrow is one quantized activation row: q in GGML layout and, for the
// assembly loops, the layout and side data they read.
type xrow struct {
	q    []byte
	p    []byte
	aux  []float32
	sums []int32
}

// sides are the lengths of an xrow's extra buffers.
type sides struct{ p, aux, sums int }

// goKernels is the pure-Go kernel of every weight type MatMul supports.
func goKernels() map[ggml.Type]*kernel {
	ks := map[ggml.Type]*kernel{
		ggml.F32:  {w: ggml.F32, x: ggml.F32, quant: quantizeF32, dot: dotF32F32},
		ggml.F16:  {w: ggml.F16, x: ggml.F16, quant: quantizeF16, dot: dotF16F16},
		ggml.BF16: {w: ggml.BF16, x: ggml.BF16, quant: quantizeBF16, dot: dotBF16BF16},
		ggml.Q4_0: {w: ggml.Q4_0, x: ggml.Q8_0, quant: quantizeQ8_0, dot: dotQ4_0Q8_0},
		ggml.Q4_1: {w: ggml.Q4_1, x: ggml.Q8_1, quant: quantizeQ8_1, dot: dotQ4_1Q8_1},
		ggml.Q5_0: {w: ggml.Q5_0, x: ggml.Q8_0, quant: quantizeQ8_0, dot: dotQ5_0Q8_0},
		ggml.Q5_1: {w: ggml.Q5_1, x: ggml.Q8_1, quant: quantizeQ8_1, dot: dotQ5_1Q8_1},
		ggml.Q8_0: {w: ggml.Q8_0, x: ggml.Q8_0, quant: quantizeQ8_0, dot: dotQ8_0Q8_0},
		ggml.Q2_K: {w: ggml.Q2_K, x: ggml.Q8_K, quant: quantizeQ8_K, dot: dotQ2_KQ8_K},
		ggml.Q3_K: {w: ggml.Q3_K, x: ggml.Q8_K, quant: quantizeQ8_K, dot: dotQ3_KQ8_K},
		ggml.Q4_K: {w: ggml.Q4_K, x: ggml.Q8_K, quant: quantizeQ8_K, dot: dotQ4_KQ8_K},
		ggml.Q5_K: {w: ggml.Q5_K, x: ggml.Q8_K, quant: quantizeQ8_K, dot: dotQ5_KQ8_K},
		ggml.Q6_K: {w: ggml.Q6_K, x: ggml.Q8_K, quant: quantizeQ8_K, dot: dotQ6_KQ8_K},
	}
	for _, k := range ks {
		k.rows = goRows(k.dot)
		k.load = quantLoad(k.quant)
	}
	return ks
}

// quantLoad is the load of the pure-Go kernels: just the quantizer.
func quantLoad(quant func(dst []byte, src []float32)) func(*xrow, []float32) {
	return func(x *xrow, src []float32) { quant(x.q, src) }
}

// goRows is the row loop over a pure-Go dot product.
func goRows(dot func(k int, w, x []byte) float32) func([]float32, []byte, int, *xrow, int) {
	return func(dst []float32, w []byte, stride int, x *xrow, k int) {
		for r := range dst {
			dst[r] = dot(k, w[r*stride:], x.q)
		}
	}
}

// kernels returns the kernel table: the assembly row loops where this CPU
// has the instructions they need (and useAsm is set), pure Go elsewhere.
func kernels(useAsm bool) map[ggml.Type]*kernel {
	ks := goKernels()
	if useAsm {
		addAsmKernels(ks)
	}
	return ks
}
