package cpu

import (
	"encoding/binary"
	"math"

	"github.com/rocmforge/rocmforge/ggml"
)

// Activation quantizers: one F32 row into the blocks of a weight type's
// vec_dot type, written in GGML block layout. They reproduce llama.cpp's CPU
// (AVX2 build) arithmetic operation by operation, because that rounding is
// what lets our logits match llama.cpp's to ~1e-6 instead of ~1e-2.
// len(src) is a whole number of blocks and len(dst) its row size; the callers
// (MatMul and the tests) guarantee both.

const (
	qk8     = 32  // elements per Q8_0/Q8_1 block
	q8_0Len = 34  // bytes per Q8_0 block: f16 d, 32 × int8
	q8_1Len = 36  // bytes per Q8_1 block: f16 d, f16 s, 32 × int8
	qkK     = 256 // elements per K-quant super-block
	q8KLen  = 292 // bytes per Q8_K block: f32 d, 256 × int8, 16 × int16 bsums
)

// quantizeQ8_0 is ggml's AVX2 quantize_row_q8_0: per block of 32,
// d = amax/127 (stored as f16) and q = round_half_even(x · (127/amax)).
func quantizeQ8_0(dst []byte, src []float32) {
	for b := 0; b < len(src)/qk8; b++ {
		x := src[b*qk8 : b*qk8+qk8]
		y := dst[b*q8_0Len : b*q8_0Len+q8_0Len]
		d, id := q8Scale(x)
		binary.LittleEndian.PutUint16(y, ggml.FP32ToFP16(d))
		q8Round(y[2:2+qk8], x, id)
	}
}

// quantizeQ8_1 is ggml's AVX2 quantize_row_q8_1: Q8_0 plus
// s = f16(d · Σq) with the unrounded f32 d.
func quantizeQ8_1(dst []byte, src []float32) {
	for b := 0; b < len(src)/qk8; b++ {
		x := src[b*qk8 : b*qk8+qk8]
		y := dst[b*q8_1Len : b*q8_1Len+q8_1Len]
		d, id := q8Scale(x)
		sum := q8Round(y[4:4+qk8], x, id)
		binary.LittleEndian.PutUint16(y, ggml.FP32ToFP16(d))
		binary.LittleEndian.PutUint16(y[2:], ggml.FP32ToFP16(d*float32(sum)))
	}
}

// q8Scale returns amax/127 and 127/amax (0 for an all-zero block).
func q8Scale(x []float32) (d, id float32) {
	var amax float32
	for _, v := range x {
		// Not the max builtin: its NaN and ±0 handling costs half the
		// quantizer's time.
		if a := abs32(v); a > amax {
			amax = a
		}
	}
	d = amax / 127
	if amax != 0 {
		id = 127 / amax
	}
	return d, id
}

// q8Round stores round_half_even(x[i]·id) into q and returns Σq.
func q8Round(q []byte, x []float32, id float32) int32 {
	var sum int32
	for i, v := range x {
		r := roundEven(v * id)
		q[i] = byte(int8(r))
		sum += r
	}
	return sum
}

// roundEven rounds v to the nearest integer, ties to even, for |v| < 2^22
// (quantizer inputs are at most 127.x). Adding 1.5·2^23 leaves the integer
// in the low mantissa bits, rounded by the float32 addition itself: the
// trick of ggml's nearest_int, and much cheaper than math.RoundToEven.
func roundEven(v float32) int32 {
	return int32(math.Float32bits(v+12582912)&0x7fffff) - 0x400000
}

// quantizeQ8_K is ggml's quantize_row_q8_K_ref: per super-block of 256,
// max is the element of largest magnitude (sign kept), iscale = -127/max,
// q = min(127, round_half_even(iscale·x)), d = 1/iscale, plus the sums of
// each 16 quants.
func quantizeQ8_K(dst []byte, src []float32) {
	for b := 0; b < len(src)/qkK; b++ {
		x := src[b*qkK : b*qkK+qkK]
		y := dst[b*q8KLen : b*q8KLen+q8KLen]
		var amax, mx float32
		for _, v := range x {
			if a := abs32(v); a > amax {
				amax, mx = a, v
			}
		}
		if amax == 0 {
			clear(y)
			continue
		}
		iscale := -127 / mx
		q := y[4 : 4+qkK]
		for i, v := range x {
			r := min(127, roundEven(iscale*v))
			q[i] = byte(int8(r))
		}
		for g := range qkK / 16 {
			var s int32
			for _, v := range q[g*16 : g*16+16] {
				s += int32(int8(v))
			}
			binary.LittleEndian.PutUint16(y[4+qkK+2*g:], uint16(int16(s)))
		}
		binary.LittleEndian.PutUint32(y, math.Float32bits(1/iscale))
	}
}

// quantizeF16 rounds each value to f16 (nearest even), as ggml does before
// an F16-weight matmul.
func quantizeF16(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], ggml.FP32ToFP16(v))
	}
}

// quantizeBF16 rounds each value to bf16 (nearest even).
func quantizeBF16(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], ggml.FP32ToBF16(v))
	}
}

// quantizeF32 copies the row as little-endian float32 bytes.
func quantizeF32(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// widen writes the float32 value of each f16 or bf16 in src to dst.
func widen(dst []float32, src []byte, t ggml.Type) {
	for i := range dst {
		h := binary.LittleEndian.Uint16(src[2*i:])
		if t == ggml.F16 {
			dst[i] = ggml.FP16ToFP32(h)
		} else {
			dst[i] = math.Float32frombits(uint32(h) << 16)
		}
	}
}
