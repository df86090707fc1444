//go:build amd64 && !purego

package cpu

import (
	"encoding/binary"
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

// Row loops in assembly. Each computes, for every r < len(dst), the dot of
// the weight row at w[r*stride:] with one activation row x. The block-format
// loops cover the first 8*groups blocks of a row, in groups of 8 blocks whose
// integer sums are reduced into one vector and scaled with one FMA; aux holds
// 16 floats per group (auxQ8_0 / auxQ8_1). The float loops cover n elements,
// a multiple of their vector width.
//
//go:noescape
func dotQ8_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ4_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotF32Rows(dst []float32, w []byte, stride int, x []byte, n int)

//go:noescape
func dotF16Rows(dst []float32, w []byte, stride int, x []byte, n int)

//go:noescape
func dotBF16Rows(dst []float32, w []byte, stride int, x []byte, n int)

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
func dotQ4_1Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

//go:noescape
func dotQ5_1Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)

// addAsmKernels swaps in the assembly row loops this CPU can run.
func addAsmKernels(ks map[ggml.Type]*kernel) {
	if !asmSupported() {
		return
	}
	set := func(t ggml.Type, name string, loop blockLoop, wlen int, pairs bool) {
		k := ks[t]
		k.asm = name
		xlen := k.x.TypeSize()
		k.prep = prepFor(k.x, pairs)
		k.side = sideBlocks
		if pairs {
			k.side = sidePairs
		}
		k.rows = groupedRows(k.dot, loop, wlen, xlen, pairs)
	}
	setFloat := func(t ggml.Type, name string, loop floatLoop) {
		k := ks[t]
		k.asm = name
		k.rows = floatRows(k.dot, loop, t.TypeSize(), t != ggml.F32)
		if t != ggml.F32 {
			k.prep = widenX(t)
			k.side = func(k int) (p, aux int) { return 4 * k, 0 }
		}
	}
	setFloat(ggml.F32, "dotF32Rows", dotF32Rows)
	setFloat(ggml.F16, "dotF16Rows", dotF16Rows)
	setFloat(ggml.BF16, "dotBF16Rows", dotBF16Rows)
	setK := func(t ggml.Type, name string, loop superLoop) {
		k := ks[t]
		k.asm = name
		k.rows = superRows(loop, t.TypeSize())
	}
	setK(ggml.Q2_K, "dotQ2_KRows", dotQ2_KRows)
	setK(ggml.Q3_K, "dotQ3_KRows", dotQ3_KRows)
	setK(ggml.Q4_K, "dotQ4_KRows", dotQ4_KRows)
	setK(ggml.Q5_K, "dotQ5_KRows", dotQ5_KRows)
	setK(ggml.Q6_K, "dotQ6_KRows", dotQ6_KRows)
	set(ggml.Q8_0, "dotQ8_0Rows", dotQ8_0Rows, q8_0Len, false)
	set(ggml.Q4_0, "dotQ4_0Rows", dotQ4_0Rows, q4_0Len, true)
	set(ggml.Q4_1, "dotQ4_1Rows", dotQ4_1Rows, q4_1Len, true)
	set(ggml.Q5_0, "dotQ5_0Rows", dotQ5_0Rows, q5_0Len, true)
	set(ggml.Q5_1, "dotQ5_1Rows", dotQ5_1Rows, q5_1Len, true)
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
// size; with wide the loop reads the activations widened to f32 (x.p).
func floatRows(dot func(k int, w, x []byte) float32, loop floatLoop, es int, wide bool) func([]float32, []byte, int, *xrow, int) {
	return func(dst []float32, w []byte, stride int, x *xrow, k int) {
		if len(dst) == 0 {
			return
		}
		n := k &^ 7
		xs := x.q[:n*es]
		if wide {
			xs = x.p[:4*n]
		}
		loop(dst, w[:(len(dst)-1)*stride+n*es], stride, xs, n)
		if k > n {
			for r := range dst {
				dst[r] += dot(k-n, w[r*stride+n*es:], x.q[n*es:])
			}
		}
	}
}

// widenX returns the prep of the F16 and BF16 loops: x.p is x.q widened to
// little-endian float32 (exactly: every f16 and bf16 value is a float32).
func widenX(t ggml.Type) func(x *xrow) {
	return func(x *xrow) {
		for i := range len(x.q) / 2 {
			h := binary.LittleEndian.Uint16(x.q[2*i:])
			v := math.Float32frombits(uint32(h) << 16)
			if t == ggml.F16 {
				v = ggml.FP16ToFP32(h)
			}
			binary.LittleEndian.PutUint32(x.p[4*i:], math.Float32bits(v))
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

// sideBlocks sizes the side data of prepBlocks: 16 floats per 8 blocks.
func sideBlocks(k int) (p, aux int) { return 0, k / qk8 / 8 * 16 }

// sidePairs sizes the side data of prepPairs: k quant bytes and 16 floats
// per 8 blocks.
func sidePairs(k int) (p, aux int) { return k / qk8 / 8 * 8 * qk8, k / qk8 / 8 * 16 }

// blockOrder is the lane order of the 8 block sums of a group: natural for
// the Q8_0 loop, 0 2 4 6 1 3 5 7 after the pair loops' REDUCE4.
var (
	blockOrder = [8]int{0, 1, 2, 3, 4, 5, 6, 7}
	pairOrder  = [8]int{0, 2, 4, 6, 1, 3, 5, 7}
)

// prepFor returns the prep of an assembly loop over activations of type xt
// (Q8_0 or Q8_1). It fills x.aux: per group of 8 blocks, the 8 block scales
// as float32, then 8 more values: Σq as int32 bits for Q8_0 (the offset of
// Q4_0 and Q5_0), s as float32 for Q8_1. With pairs it also fills x.p with
// the pair layout (for blocks A, B: A[0:16] B[0:16] A[16:32] B[16:32]) and
// orders aux lanes as the pair loops' sums.
func prepFor(xt ggml.Type, pairs bool) func(x *xrow) {
	xl := xt.TypeSize()
	qo := xl - qk8 // offset of the quants in a block
	order := blockOrder
	if pairs {
		order = pairOrder
	}
	return func(x *xrow) {
		groups := len(x.aux) / 16
		for g := range groups {
			for lane, i := range order {
				b := x.q[(8*g+i)*xl:]
				x.aux[16*g+lane] = f16At(b)
				if xt == ggml.Q8_1 {
					x.aux[16*g+8+lane] = f16At(b[2:])
					continue
				}
				var s int32
				for _, v := range b[qo:xl] {
					s += int32(int8(v))
				}
				x.aux[16*g+8+lane] = math.Float32frombits(uint32(s))
			}
		}
		if !pairs {
			return
		}
		for b := 0; b < groups*8; b += 2 {
			a, c := x.q[b*xl+qo:], x.q[(b+1)*xl+qo:]
			p := x.p[b*qk8:]
			copy(p[0:16], a[0:16])
			copy(p[16:32], c[0:16])
			copy(p[32:48], a[16:32])
			copy(p[48:64], c[16:32])
		}
	}
}
