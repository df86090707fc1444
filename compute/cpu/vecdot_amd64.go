//go:build amd64 && !purego

package cpu

import (
	"math"

	"golang.org/x/sys/cpu"

	"github.com/rocmforge/rocmforge/ggml"
)

// The AVX2 kernels (vecdot_amd64.s) use AVX2 integer and FMA float ops and
// F16C conversions (VCVTPH2PS). Every AVX2 CPU has F16C, but a hypervisor
// may hide a feature bit, so all three are checked.
func asmSupported() bool {
	return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
}

// Single-row loops: for every r < len(dst), the dot of the weight row at
// w[r*stride:] with one activation row x. The 32-element block formats
// cover the first 8*groups blocks of a row, 8 blocks at a time: their exact
// integer sums are reduced into one vector and scaled with one FMA, with
// the activation scales (and quant sums or s) from aux (blockLoad). The
// K-quant loops cover nb super-blocks of Q8_K activations; the float loops
// n elements, a multiple of 8.

//go:noescape
func dotQ8_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_1Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_1Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ2_KRows(dst []float32, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ3_KRows(dst []float32, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ4_KRows(dst []float32, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ5_KRows(dst []float32, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ6_KRows(dst []float32, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotF32Rows(dst []float32, w []byte, stride int, x []byte, n int)

//go:noescape
func dotF16Rows(dst []float32, w []byte, stride int, x []byte, n int)

//go:noescape
func dotBF16Rows(dst []float32, w []byte, stride int, x []byte, n int)

// Batched loops: for weight rows r < rows and the 4 activation rows of a
// batch layout, dst[i·m + r] = w_r · x_i (i < 4). See pairBatch, q8_0Batch,
// kBatch and the F16 kernel for the layouts.

//go:noescape
func dotQ8_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ2_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ3_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ4_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ5_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotQ6_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

//go:noescape
func dotF16Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, xstride int, n int, acc bool)

// Activation quantizers (quantize_amd64.s), byte-identical to the Go ones.

//go:noescape
func quantizeQ8_0AVX2(dst []byte, sums []int32, src []float32, nb int)

//go:noescape
func quantizeQ8_1AVX2(dst []byte, src []float32, nb int)

//go:noescape
func quantizeQ8_KAVX2(dst []byte, src []float32, nb int)

//go:noescape
func roundF16AVX2(q []byte, wide []float32, src []float32, n int)

// addAsmKernels swaps in the assembly row loops this CPU can run.
func addAsmKernels(ks map[ggml.Type]*kernel) {
	if !asmSupported() {
		return
	}
	blocks := func(t ggml.Type, name string, loop blockLoop, wlen int, pairs bool) *kernel {
		k := ks[t]
		k.asm = name
		k.load = blockLoad(k.x, pairs)
		k.side = blockSides(pairs)
		k.rows = groupedRows(k.dot, loop, wlen, k.x.TypeSize(), pairs)
		return k
	}
	k := blocks(ggml.Q8_0, "dotQ8_0Rows", dotQ8_0Rows, q8_0Len, false)
	k.batch = q8_0Batch()
	k = blocks(ggml.Q4_0, "dotQ4_0Rows", dotQ4_0Rows, q4_0Len, true)
	k.batch = pairBatch("dotQ4_0Rows4", dotQ4_0Rows4, k, q4_0Len, 8)
	k = blocks(ggml.Q4_1, "dotQ4_1Rows", dotQ4_1Rows, q4_1Len, true)
	k.batch = pairBatch("dotQ4_1Rows4", dotQ4_1Rows4, k, q4_1Len, 0)
	k = blocks(ggml.Q5_0, "dotQ5_0Rows", dotQ5_0Rows, q5_0Len, true)
	k.batch = pairBatch("dotQ5_0Rows4", dotQ5_0Rows4, k, q5_0Len, 16)
	k = blocks(ggml.Q5_1, "dotQ5_1Rows", dotQ5_1Rows, q5_1Len, true)
	k.batch = pairBatch("dotQ5_1Rows4", dotQ5_1Rows4, k, q5_1Len, 0)

	super := func(t ggml.Type, name string, loop superLoop, batchName string, batch kBatchLoop) {
		k := ks[t]
		k.asm = name
		k.rows = superRows(loop, t.TypeSize())
		k.load = func(x *xrow, src []float32) {
			nb := len(src) / qkK
			quantizeQ8_KAVX2(x.q[:nb*q8KLen], src[:nb*qkK], nb)
		}
		k.batch = kBatch(batchName, batch, t.TypeSize())
	}
	super(ggml.Q2_K, "dotQ2_KRows", dotQ2_KRows, "dotQ2_KRows4", dotQ2_KRows4)
	super(ggml.Q3_K, "dotQ3_KRows", dotQ3_KRows, "dotQ3_KRows4", dotQ3_KRows4)
	super(ggml.Q4_K, "dotQ4_KRows", dotQ4_KRows, "dotQ4_KRows4", dotQ4_KRows4)
	super(ggml.Q5_K, "dotQ5_KRows", dotQ5_KRows, "dotQ5_KRows4", dotQ5_KRows4)
	super(ggml.Q6_K, "dotQ6_KRows", dotQ6_KRows, "dotQ6_KRows4", dotQ6_KRows4)

	// F32 activations need no conversion: the loop reads the row itself.
	f32 := ks[ggml.F32]
	f32.asm = "dotF32Rows"
	f32.rows = floatRows(f32.dot, dotF32Rows, 4, false)
	f32.load = func(x *xrow, src []float32) { x.q = f32Bytes(src) }
	// F16 and BF16 activations are rounded, then widened back to float32
	// (exactly) into x.aux, so the loops convert only the weights.
	wide := func(k int) sides { return sides{aux: k} }
	f16 := ks[ggml.F16]
	f16.asm, f16.side = "dotF16Rows", wide
	f16.rows = floatRows(f16.dot, dotF16Rows, 2, true)
	f16.load = func(x *xrow, src []float32) {
		n := len(src) &^ 7
		roundF16AVX2(x.q, x.aux, src[:n], n)
		quantizeF16(x.q[2*n:], src[n:])
		widen(x.aux[n:], x.q[2*n:], ggml.F16)
	}
	f16.batch = &batchKernel{
		asm:  "dotF16Rows4",
		side: func(k int) sides { return sides{aux: 4 * k} },
		pack: func(b *xbatch, xs []xrow, k int) {
			for i := range 4 {
				copy(b.aux[i*k:(i+1)*k], xs[i].aux[:k])
			}
		},
		rows: func(dst []float32, m, rows int, w []byte, stride int, b *xbatch, xs []xrow, k int) {
			if rows == 0 {
				return
			}
			n := k &^ 7
			// Blocks of f16Block elements keep the 4 activation rows'
			// slices (8 KiB) in L1 while the weights stream from L2.
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
		},
	}
	bf16 := ks[ggml.BF16]
	bf16.asm, bf16.side = "dotBF16Rows", wide
	bf16.rows = floatRows(bf16.dot, dotBF16Rows, 2, true)
	bf16.load = func(x *xrow, src []float32) {
		quantizeBF16(x.q, src)
		widen(x.aux, x.q, ggml.BF16)
	}
}

// f16Block is the k-blocking of the batched F16 loop (a multiple of 8).
const f16Block = 512

// blockSides sizes the side data of blockLoad: 16 floats of aux per group
// of 8 blocks, one quant sum per block, and with pairs the quants of every
// whole group of 4 blocks in the pair layout (the batched loops use groups
// of 4).
func blockSides(pairs bool) func(k int) sides {
	return func(k int) sides {
		nb := k / qk8
		sd := sides{aux: nb / 8 * 16, sums: nb}
		if pairs {
			sd.p = nb / 4 * 4 * qk8
		}
		return sd
	}
}

// q8_0Batch returns the batched Q8_0 kernel: per group of 4 blocks and
// activation row, the 4 blocks' 128 quant bytes and 8 scales in lane order
// A B C D A B C D.
func q8_0Batch() *batchKernel {
	return &batchKernel{
		asm: "dotQ8_0Rows4",
		side: func(k int) sides {
			g := k / qk8 / 4
			return sides{p: 4 * g * 128, aux: 4 * g * 8}
		},
		pack: func(b *xbatch, xs []xrow, k int) {
			for g := range k / qk8 / 4 {
				for i, x := range xs {
					q := b.q[(4*g+i)*128:]
					a := b.aux[(4*g+i)*8 : (4*g+i+1)*8]
					for blk := range 4 {
						xb := x.q[(4*g+blk)*q8_0Len:]
						copy(q[32*blk:32*blk+32], xb[2:q8_0Len])
						a[blk] = f16At(xb)
						a[4+blk] = a[blk]
					}
				}
			}
		},
		rows: batchRows(dotQ8_0Rows4, dotQ8_0Q8_0, q8_0Len, 8),
	}
}

// batchRows runs a batched assembly loop over whole groups of 4 blocks
// (auxPer floats of aux per group and row) and adds the remaining blocks
// of each (row, activation) pair with the Go dot.
func batchRows(loop batchLoop, dot func(k int, w, x []byte) float32, wlen, auxPer int) func([]float32, int, int, []byte, int, *xbatch, []xrow, int) {
	return func(dst []float32, m, rows int, w []byte, stride int, b *xbatch, xs []xrow, k int) {
		if rows == 0 {
			return
		}
		nb := k / qk8
		groups := nb / 4
		if groups > 0 {
			loop(dst[:3*m+rows], m, rows, w[:(rows-1)*stride+groups*4*wlen], stride, b.q[:groups*512], b.aux[:groups*4*auxPer], groups)
		} else {
			for i := range 4 {
				clear(dst[i*m : i*m+rows])
			}
		}
		if tail := nb - groups*4; tail > 0 {
			wo, xo := groups*4*wlen, groups*4*(len(xs[0].q)/nb)
			for r := range rows {
				for i := range 4 {
					dst[i*m+r] += dot(tail*qk8, w[r*stride+wo:], xs[i].q[xo:])
				}
			}
		}
	}
}

// kBatchLoop is the signature of the batched K-quant assembly loops.
type kBatchLoop func(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)

// kBatch returns a batched K-quant kernel; its layout interleaves the 4
// activation rows' Q8_K blocks per super-block.
func kBatch(name string, loop kBatchLoop, wlen int) *batchKernel {
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
			loop(dst[:3*m+rows], m, rows, w[:(rows-1)*stride+nb*wlen], stride, b.q[:4*nb*q8KLen], nb)
		},
	}
}

// batchLoop is the signature of the batched assembly loops.
type batchLoop func(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)

// pairBatch returns the batched kernel of a pair-layout type: loop covers
// whole groups of 4 blocks, kn.dot the remaining blocks of each row. Per
// group and activation row the layout holds the 128 pair-layout quant
// bytes, the activation scales in lanes A A C C B B D D, and then for Q8_0
// activations off·Σq (the weights' offset: 8 for Q4_0, 16 for Q5_0) in
// lanes A 0 C 0 B 0 D 0 as int32, for Q8_1 the sums s in those lanes.
func pairBatch(name string, loop batchLoop, kn *kernel, wlen int, off int32) *batchKernel {
	xl := kn.x.TypeSize()
	return &batchKernel{
		asm: name,
		side: func(k int) sides {
			g := k / qk8 / 4
			return sides{p: 4 * g * 128, aux: 4 * g * 16}
		},
		pack: func(b *xbatch, xs []xrow, k int) {
			for g := range k / qk8 / 4 {
				for i, x := range xs {
					copy(b.q[(4*g+i)*128:(4*g+i+1)*128], x.p[128*g:])
					a := b.aux[(4*g+i)*16 : (4*g+i+1)*16]
					// Lanes A A C C | B B D D: blocks 4g, 4g+2, 4g+1, 4g+3.
					for lane, blk := range [8]int{0, 0, 2, 2, 1, 1, 3, 3} {
						bi := 4*g + blk
						xb := x.q[bi*xl:]
						a[lane], a[8+lane] = f16At(xb), 0
						switch {
						case lane%2 == 1:
						case kn.x == ggml.Q8_1:
							a[8+lane] = f16At(xb[2:])
						default:
							a[8+lane] = math.Float32frombits(uint32(off * x.sums[bi]))
						}
					}
				}
			}
		},
		rows: batchRows(loop, kn.dot, wlen, 16),
	}
}

// blockLoad returns the load of an assembly loop over Q8_0 or Q8_1
// activations. It quantizes with the AVX2 quantizer and fills x.aux: per
// group of 8 blocks, the 8 block scales as float32, then 8 more values: Σq
// as int32 bits for Q8_0 (the offset of Q4_0 and Q5_0), s as float32 for
// Q8_1. With pairs it also fills x.p with the pair layout (for blocks A, B:
// A[0:16] B[0:16] A[16:32] B[16:32]) and orders the aux lanes as the pair
// loops' sums come out (0 2 4 6 1 3 5 7).
func blockLoad(xt ggml.Type, pairs bool) func(x *xrow, src []float32) {
	xl := xt.TypeSize()
	qo := xl - qk8 // offset of the quants in a block
	order := [8]int{0, 1, 2, 3, 4, 5, 6, 7}
	if pairs {
		order = [8]int{0, 2, 4, 6, 1, 3, 5, 7}
	}
	return func(x *xrow, src []float32) {
		nb := len(src) / qk8
		if xt == ggml.Q8_1 {
			quantizeQ8_1AVX2(x.q[:nb*xl], src[:nb*qk8], nb)
		} else {
			quantizeQ8_0AVX2(x.q[:nb*xl], x.sums[:nb], src[:nb*qk8], nb)
		}
		for g := range len(x.aux) / 16 {
			a := x.aux[16*g : 16*g+16]
			for lane, i := range order {
				b := 8*g + i
				a[lane] = f16At(x.q[b*xl:])
				if xt == ggml.Q8_1 {
					a[8+lane] = f16At(x.q[b*xl+2:])
				} else {
					a[8+lane] = math.Float32frombits(uint32(x.sums[b]))
				}
			}
		}
		if !pairs {
			return
		}
		for b := 0; b+1 < len(x.p)/qk8; b += 2 {
			a, c := x.q[b*xl+qo:], x.q[(b+1)*xl+qo:]
			p := x.p[b*qk8:]
			copy(p[0:16], a[0:16])
			copy(p[16:32], c[0:16])
			copy(p[32:48], a[16:32])
			copy(p[48:64], c[16:32])
		}
	}
}

// superLoop is the signature of the K-quant assembly row loops: nb
// super-blocks per row, activations in Q8_K blocks.
type superLoop func(dst []float32, w []byte, stride int, x []byte, nb int)

// superRows runs a K-quant assembly loop; wlen is the weight block size.
func superRows(loop superLoop, wlen int) func([]float32, []byte, int, *xrow, int) {
	return func(dst []float32, w []byte, stride int, x *xrow, k int) {
		if len(dst) == 0 {
			return
		}
		nb := k / qkK
		loop(dst, w[:(len(dst)-1)*stride+nb*wlen], stride, x.q[:nb*q8KLen], nb)
	}
}

// floatLoop is the signature of the float assembly row loops.
type floatLoop func(dst []float32, w []byte, stride int, x []byte, n int)

// floatRows runs a float assembly loop over the first multiple of 8
// elements of each row and adds the rest in Go. es is the weight element
// size; the loop reads float32 activations: x.q for F32 weights, or with
// wide the f16/bf16-rounded ones widened into x.aux.
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

// blockLoop is the signature of the grouped assembly row loops.
type blockLoop func(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

// groupedRows runs an assembly loop over whole groups of 8 blocks and adds
// the remaining blocks of each row (rows of 7 blocks, say) in Go. With
// pairs the loop reads x.p (pair layout), else x.q.
func groupedRows(dot func(k int, w, x []byte) float32, loop blockLoop, wlen, xlen int, pairs bool) func([]float32, []byte, int, *xrow, int) {
	return func(dst []float32, w []byte, stride int, x *xrow, k int) {
		nb := k / qk8
		groups := nb / 8
		if len(dst) == 0 {
			return
		}
		if groups > 0 {
			// Slicing checks that every row holds its groups and that the
			// activation side data is long enough, so the loop stays in bounds.
			xs := x.q[:groups*8*xlen]
			if pairs {
				xs = x.p[:groups*8*qk8]
			}
			loop(dst, w[:(len(dst)-1)*stride+groups*8*wlen], stride, xs, x.aux[:groups*16], groups)
		} else {
			clear(dst)
		}
		if tail := nb - groups*8; tail > 0 {
			wo, xo := groups*8*wlen, groups*8*xlen
			for r := range dst {
				dst[r] += dot(tail*qk8, w[r*stride+wo:], x.q[xo:])
			}
		}
	}
}
