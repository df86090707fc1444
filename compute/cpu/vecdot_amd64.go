//go:build amd64 && !purego

package cpu

import (
	"math"

	"golang.org/x/sys/cpu"

	"github.com/rocmforge/rocmforge/ggml"
)

// The AVX2 kernels use AVX2 integer and FMA float ops and F16C conversions
// (VCVTPH2PS). Every AVX2 CPU has F16C, but a hypervisor may hide a
// feature bit, so all three are checked.
func asmSupported() bool {
	return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
}

// Block-format and K-quant loops (vecdot_amd64.s, vecdot_k_amd64.s): for
// weight rows r < rows at w[r*stride:], the Rows4 loops set dst[i·m + r] =
// w_r·x_i for the 4 activation rows of a batch layout, the Rows1 loops
// dst[r] = w_r·x for one row (m unused), with the same per-row arithmetic.
// Block formats cover groups of 4 blocks (see blockLayout), K-quants nb
// super-blocks of Q8_K activations.

//go:noescape
func dotQ8_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ8_0Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_0Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_1Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_0Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_1Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ2_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ2_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ3_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ3_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ4_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ4_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ5_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ5_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ6_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ6_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

// Float loops (vecdot_float_amd64.s). dotF32Rows and dotBF16Rows: dst[r] =
// w_r·x over n elements (a multiple of 8) of float32 activations. The F16
// loops sum in k-blocks: Rows4 does one block of n elements for the 4
// activation rows at x + i·xstride, adding to dst with acc; Rows1 does all
// blocks of blk elements for one row. Per (row, activation) pair the
// arithmetic is the same.

//go:noescape
func dotF32Rows(dst []float32, w []byte, stride int, x []byte, n int)

//go:noescape
func dotBF16Rows(dst []float32, w []byte, stride int, x []byte, n int)

//go:noescape
func dotF16Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, xstride int, n int, acc bool)

//go:noescape
func dotF16Rows1(dst []float32, rows int, w []byte, stride int, x []byte, n int, blk int)

// Activation quantizers (quantize_amd64.s), byte-identical to the Go ones.

//go:noescape
func quantizeQ8_0AVX2(dst []byte, sums []int32, src []float32, nb int)

//go:noescape
func quantizeQ8_1AVX2(dst []byte, src []float32, nb int)

//go:noescape
func quantizeQ8_KAVX2(dst []byte, src []float32, nb int)

//go:noescape
func roundF16AVX2(q []byte, wide []float32, src []float32, n int)

// blockLoop is the signature of the block-format loops.
type blockLoop func(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

// superLoop is the signature of the K-quant loops.
type superLoop func(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

// addAsmKernels swaps in the assembly loops this CPU can run.
func addAsmKernels(ks map[ggml.Type]*kernel) {
	if !asmSupported() {
		return
	}
	blocks := func(t ggml.Type, name string, one, four blockLoop, l blockLayout) {
		k := ks[t]
		k.asm = name
		k.load = l.load
		k.side = l.side
		k.rows = l.rows(one, k.dot, t.TypeSize())
		k.batch = &batchKernel{asm: name + "4", side: l.batchSide, pack: l.pack, rows: l.batchRows(four, k.dot, t.TypeSize())}
	}
	blocks(ggml.Q8_0, "dotQ8_0Rows1", dotQ8_0Rows1, dotQ8_0Rows4, blockLayout{xt: ggml.Q8_0})
	blocks(ggml.Q4_0, "dotQ4_0Rows1", dotQ4_0Rows1, dotQ4_0Rows4, blockLayout{xt: ggml.Q8_0, pairs: true, off: 8})
	blocks(ggml.Q4_1, "dotQ4_1Rows1", dotQ4_1Rows1, dotQ4_1Rows4, blockLayout{xt: ggml.Q8_1, pairs: true})
	blocks(ggml.Q5_0, "dotQ5_0Rows1", dotQ5_0Rows1, dotQ5_0Rows4, blockLayout{xt: ggml.Q8_0, pairs: true, off: 16})
	blocks(ggml.Q5_1, "dotQ5_1Rows1", dotQ5_1Rows1, dotQ5_1Rows4, blockLayout{xt: ggml.Q8_1, pairs: true})

	super := func(t ggml.Type, name string, one, four superLoop) {
		k := ks[t]
		k.asm = name
		k.load = func(x *xrow, src []float32) {
			nb := len(src) / qkK
			quantizeQ8_KAVX2(x.q[:nb*q8KLen], src[:nb*qkK], nb)
		}
		k.rows = superRows(one, t.TypeSize())
		k.batch = kBatch(name[:len(name)-1]+"4", four, t.TypeSize())
	}
	super(ggml.Q2_K, "dotQ2_KRows1", dotQ2_KRows1, dotQ2_KRows4)
	super(ggml.Q3_K, "dotQ3_KRows1", dotQ3_KRows1, dotQ3_KRows4)
	super(ggml.Q4_K, "dotQ4_KRows1", dotQ4_KRows1, dotQ4_KRows4)
	super(ggml.Q5_K, "dotQ5_KRows1", dotQ5_KRows1, dotQ5_KRows4)
	super(ggml.Q6_K, "dotQ6_KRows1", dotQ6_KRows1, dotQ6_KRows4)

	// F32 activations need no conversion: the loop reads the row itself.
	f32 := ks[ggml.F32]
	f32.asm = "dotF32Rows"
	f32.rows = floatRows(f32.dot, dotF32Rows, 4, false)
	f32.load = func(x *xrow, src []float32) { x.q = f32Bytes(src) }

	// F16 and BF16 activations are rounded, then widened back to float32
	// (exactly) into x.aux, so the loops convert only the weights.
	wide := func(k int) sides { return sides{aux: k} }
	bf16 := ks[ggml.BF16]
	bf16.asm, bf16.side = "dotBF16Rows", wide
	bf16.rows = floatRows(bf16.dot, dotBF16Rows, 2, true)
	bf16.load = func(x *xrow, src []float32) {
		quantizeBF16(x.q, src)
		widen(x.aux, x.q, ggml.BF16)
	}
	f16 := ks[ggml.F16]
	f16.asm, f16.side = "dotF16Rows1", wide
	f16.load = func(x *xrow, src []float32) {
		n := len(src) &^ 7
		roundF16AVX2(x.q, x.aux, src[:n], n)
		quantizeF16(x.q[2*n:], src[n:])
		widen(x.aux[n:], x.q[2*n:], ggml.F16)
	}
	f16.rows = f16Rows
	f16.batch = &batchKernel{
		asm:  "dotF16Rows4",
		side: func(k int) sides { return sides{aux: 4 * k} },
		pack: func(b *xbatch, xs []xrow, k int) {
			for i := range 4 {
				copy(b.aux[i*k:(i+1)*k], xs[i].aux[:k])
			}
		},
		rows: f16BatchRows,
	}
}

// f16Block is the k-blocking of the F16 loops (a multiple of 8): the 4
// activation rows' slices of a batch (8 KiB) stay in L1 while the weights
// stream from L2. The single-row loop uses the same blocks, so its sums
// are the batched loop's.
const f16Block = 512

// f16Rows is the F16 row loop: dotF16Rows1, then the elements past the
// last multiple of 8 in Go.
func f16Rows(dst []float32, w []byte, stride int, x *xrow, k int) {
	rows := len(dst)
	if rows == 0 {
		return
	}
	n := k &^ 7
	if n == 0 {
		clear(dst)
	} else {
		dotF16Rows1(dst, rows, w[:(rows-1)*stride+2*n], stride, f32Bytes(x.aux[:n]), n, f16Block)
	}
	if n < k {
		for r := range dst {
			dst[r] += dotF16F16(k-n, w[r*stride+2*n:], x.q[2*n:])
		}
	}
}

// f16BatchRows is f16Rows for the 4 activation rows of a batch.
func f16BatchRows(dst []float32, m, rows int, w []byte, stride int, b *xbatch, xs []xrow, k int) {
	if rows == 0 {
		return
	}
	n := k &^ 7
	if n == 0 {
		for i := range 4 {
			clear(dst[i*m : i*m+rows])
		}
	}
	for k0 := 0; k0 < n; k0 += f16Block {
		kl := min(f16Block, n-k0)
		dotF16Rows4(dst[:3*m+rows], m, rows, w[2*k0:(rows-1)*stride+2*(k0+kl)], stride, f32Bytes(b.aux[k0:3*k+k0+kl]), 4*k, kl, k0 > 0)
	}
	if n < k {
		for r := range rows {
			for i := range 4 {
				dst[i*m+r] += dotF16F16(k-n, w[r*stride+2*n:], xs[i].q[2*n:])
			}
		}
	}
}

// blockLayout describes the activation layout of a block-format loop over
// Q8_0 or Q8_1 activations (xt). Per group of 4 blocks a row has 128 quant
// bytes in x.p — the pair layout (for blocks A, B: A[0:16] B[0:16]
// A[16:32] B[16:32]) for the 4- and 5-bit formats, plain block order for
// Q8_0 — and aux floats: for pairs 16, the activation scales in lanes
// A A C C B B D D and then, in lanes A 0 C 0 B 0 D 0, off·Σq as int32 bits
// (off = the weights' offset, 8 for Q4_0, 16 for Q5_0) for Q8_0
// activations or the sums s for Q8_1; for Q8_0 weights 8, the scales in
// lanes A B C D A B C D. Blocks past the last whole group are done in Go.
type blockLayout struct {
	xt    ggml.Type
	pairs bool
	off   int32
}

// auxPer is the number of aux floats per group and row.
func (l blockLayout) auxPer() int {
	if l.pairs {
		return 16
	}
	return 8
}

func (l blockLayout) side(k int) sides {
	g := k / qk8 / 4
	return sides{p: 128 * g, aux: l.auxPer() * g, sums: k / qk8}
}

func (l blockLayout) batchSide(k int) sides {
	sd := l.side(k)
	return sides{p: 4 * sd.p, aux: 4 * sd.aux}
}

// load quantizes one activation row with the AVX2 quantizer and builds
// the row's layout.
func (l blockLayout) load(x *xrow, src []float32) {
	nb := len(src) / qk8
	xl := l.xt.TypeSize()
	if l.xt == ggml.Q8_1 {
		quantizeQ8_1AVX2(x.q[:nb*xl], src[:nb*qk8], nb)
	} else {
		quantizeQ8_0AVX2(x.q[:nb*xl], x.sums[:nb], src[:nb*qk8], nb)
	}
	qo := xl - qk8 // offset of the quants in a block
	quants := func(b int) []byte { return x.q[b*xl+qo : (b+1)*xl] }
	for g := range nb / 4 {
		p := x.p[128*g : 128*g+128]
		a := x.aux[l.auxPer()*g : l.auxPer()*(g+1)]
		if !l.pairs {
			for blk := range 4 {
				copy(p[32*blk:32*blk+32], quants(4*g+blk))
				a[blk] = f16At(x.q[(4*g+blk)*xl:])
				a[4+blk] = a[blk]
			}
			continue
		}
		for pair := range 2 {
			qa, qb := quants(4*g+2*pair), quants(4*g+2*pair+1)
			pp := p[64*pair:]
			copy(pp[0:16], qa[0:16])
			copy(pp[16:32], qb[0:16])
			copy(pp[32:48], qa[16:32])
			copy(pp[48:64], qb[16:32])
		}
		for lane, blk := range [8]int{0, 0, 2, 2, 1, 1, 3, 3} {
			b := 4*g + blk
			a[lane], a[8+lane] = f16At(x.q[b*xl:]), 0
			switch {
			case lane%2 == 1:
			case l.xt == ggml.Q8_1:
				a[8+lane] = f16At(x.q[b*xl+2:])
			default:
				a[8+lane] = math.Float32frombits(uint32(l.off * x.sums[b]))
			}
		}
	}
}

// pack interleaves the layouts of 4 loaded rows per group.
func (l blockLayout) pack(b *xbatch, xs []xrow, k int) {
	ap := l.auxPer()
	for g := range k / qk8 / 4 {
		for i, x := range xs {
			copy(b.q[(4*g+i)*128:(4*g+i+1)*128], x.p[128*g:])
			copy(b.aux[(4*g+i)*ap:(4*g+i+1)*ap], x.aux[ap*g:])
		}
	}
}

// rows is the single-row loop: one over whole groups, dot over the rest.
func (l blockLayout) rows(one blockLoop, dot func(k int, w, x []byte) float32, wlen int) func([]float32, []byte, int, *xrow, int) {
	xl, ap := l.xt.TypeSize(), l.auxPer()
	return func(dst []float32, w []byte, stride int, x *xrow, k int) {
		rows := len(dst)
		if rows == 0 {
			return
		}
		nb := k / qk8
		groups := nb / 4
		if groups > 0 {
			// Slicing checks that every row holds its groups and that the
			// activation layout is long enough, so the loop stays in bounds.
			one(dst, 0, rows, w[:(rows-1)*stride+groups*4*wlen], stride, x.p[:groups*128], x.aux[:groups*ap], groups)
		} else {
			clear(dst)
		}
		if tail := nb - groups*4; tail > 0 {
			wo, xo := groups*4*wlen, groups*4*xl
			for r := range dst {
				dst[r] += dot(tail*qk8, w[r*stride+wo:], x.q[xo:])
			}
		}
	}
}

// batchRows is rows for the 4 activation rows of a batch.
func (l blockLayout) batchRows(four blockLoop, dot func(k int, w, x []byte) float32, wlen int) func([]float32, int, int, []byte, int, *xbatch, []xrow, int) {
	xl, ap := l.xt.TypeSize(), l.auxPer()
	return func(dst []float32, m, rows int, w []byte, stride int, b *xbatch, xs []xrow, k int) {
		if rows == 0 {
			return
		}
		nb := k / qk8
		groups := nb / 4
		if groups > 0 {
			four(dst[:3*m+rows], m, rows, w[:(rows-1)*stride+groups*4*wlen], stride, b.q[:groups*512], b.aux[:groups*4*ap], groups)
		} else {
			for i := range 4 {
				clear(dst[i*m : i*m+rows])
			}
		}
		if tail := nb - groups*4; tail > 0 {
			wo, xo := groups*4*wlen, groups*4*xl
			for r := range rows {
				for i := range 4 {
					dst[i*m+r] += dot(tail*qk8, w[r*stride+wo:], xs[i].q[xo:])
				}
			}
		}
	}
}

// superRows is the single-row K-quant loop over the plain Q8_K row.
func superRows(one superLoop, wlen int) func([]float32, []byte, int, *xrow, int) {
	return func(dst []float32, w []byte, stride int, x *xrow, k int) {
		if len(dst) == 0 {
			return
		}
		nb := k / qkK
		one(dst, 0, len(dst), w[:(len(dst)-1)*stride+nb*wlen], stride, x.q[:nb*q8KLen], nb)
	}
}

// kBatch returns a batched K-quant kernel; its layout interleaves the 4
// activation rows' Q8_K blocks per super-block.
func kBatch(name string, four superLoop, wlen int) *batchKernel {
	return &batchKernel{
		asm:  name,
		side: func(k int) sides { return sides{p: 4 * k / qkK * q8KLen} },
		pack: func(b *xbatch, xs []xrow, k int) {
			for sb := range k / qkK {
				for i, x := range xs {
					copy(b.q[(4*sb+i)*q8KLen:(4*sb+i+1)*q8KLen], x.q[sb*q8KLen:])
				}
			}
		},
		rows: func(dst []float32, m, rows int, w []byte, stride int, b *xbatch, xs []xrow, k int) {
			if rows == 0 {
				return
			}
			nb := k / qkK
			four(dst[:3*m+rows], m, rows, w[:(rows-1)*stride+nb*wlen], stride, b.q[:4*nb*q8KLen], nb)
		},
	}
}

// floatLoop is the signature of the F32 and BF16 loops.
type floatLoop func(dst []float32, w []byte, stride int, x []byte, n int)

// floatRows runs a float assembly loop over the first multiple of 8
// elements of each row and adds the rest in Go. es is the weight element
// size; the loop reads float32 activations: x.q for F32 weights, or with
// wide the bf16-rounded ones widened into x.aux.
func floatRows(dot func(k int, w, x []byte) float32, loop floatLoop, es int, wide bool) func([]float32, []byte, int, *xrow, int) {
	return func(dst []float32, w []byte, stride int, x *xrow, k int) {
		if len(dst) == 0 {
			return
		}
		n := k &^ 7
		var xs []byte
		if wide {
			xs = f32Bytes(x.aux[:n])
		} else {
			xs = x.q[:n*4]
		}
		loop(dst, w[:(len(dst)-1)*stride+n*es], stride, xs, n)
		if k > n {
			for r := range dst {
				dst[r] += dot(k-n, w[r*stride+n*es:], x.q[n*es:])
			}
		}
	}
}
