package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantize encodes src as type t in GGML's byte layout and returns the new
// buffer. len(src) must be a whole number of t's blocks. The algorithms are
// ggml's quantize_row_*_ref reference ones (what llama-quantize uses without
// an importance matrix), ported operation by operation, so the bytes match
// ggml's for the same input.
func Quantize(t Type, src []float32) ([]byte, error) {
	if err := checkSupported(t); err != nil {
		return nil, err
	}
	n, err := t.RowSize(int64(len(src)))
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	dst := make([]byte, n)
	if err := QuantizeInto(t, dst, src); err != nil {
		return nil, err
	}
	return dst, nil
}

// QuantizeInto is Quantize writing into dst, which must be exactly
// t.RowSize(len(src)) bytes long.
func QuantizeInto(t Type, dst []byte, src []float32) error {
	if err := checkSupported(t); err != nil {
		return err
	}
	want, err := t.RowSize(int64(len(src)))
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if int64(len(dst)) != want {
		return fmt.Errorf("quantize %s: %d elements need %d bytes, dst has %d", t, len(src), want, len(dst))
	}
	fn := quantizer(t)
	if fn == nil {
		return fmt.Errorf("quantize %s: %w (no encoder)", t, ErrUnsupported)
	}
	fn(src, dst)
	return nil
}

// quantizer returns the function that encodes whole blocks as t, or nil.
// Callers have checked that src and dst sizes agree.
func quantizer(t Type) func(src []float32, dst []byte) {
	switch t {
	case F32:
		return quantF32
	case F16:
		return quantF16
	case BF16:
		return quantBF16
	case Q4_0:
		return quantQ4_0
	case Q4_1:
		return quantQ4_1
	case Q5_0:
		return quantQ5_0
	case Q5_1:
		return quantQ5_1
	case Q8_0:
		return quantQ8_0
	case Q8_1:
		return quantQ8_1
	case Q2_K:
		return quantQ2K
	case Q3_K:
		return quantQ3K
	case Q4_K:
		return quantQ4K
	case Q5_K:
		return quantQ5K
	case Q6_K:
		return quantQ6K
	case Q8_K:
		return quantQ8K
	}
	return nil
}

// putHalf stores f as a little-endian f16 at b[0:2].
func putHalf(b []byte, f float32) { binary.LittleEndian.PutUint16(b, FP32ToFP16(f)) }

// roundHalfAway is C's roundf (round to nearest, ties away from zero) for
// the int8 range. Adding ±0.5 in float64 is exact for any float32 that
// matters here, so truncating the sum rounds correctly.
func roundHalfAway(x float32) int {
	f := float64(x)
	return int(f + math.Copysign(0.5, f))
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

func quantF32(src []float32, dst []byte) {
	for i, x := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
	}
}

func quantF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], FP32ToFP16(x))
	}
}

func quantBF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], FP32ToBF16(x))
	}
}

// signedAbsMax returns the element of x with the largest magnitude (the
// first one on ties) and that magnitude, as ggml's "amax/max" loops do.
func signedAbsMax(x []float32) (max, amax float32) {
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, max = a, v
		}
	}
	return max, amax
}

// Q4_0 (quantize_row_q4_0_ref): d = max/-8 where max is the signed element
// of largest magnitude, so that element maps to q = 0; q = min(15,
// trunc(x/d + 8.5)).
func quantQ4_0(src []float32, dst []byte) {
	const bs = 18
	for ib := 0; ib < len(src)/32; ib++ {
		x := src[ib*32 : ib*32+32]
		b := dst[ib*bs : ib*bs+bs]
		max, _ := signedAbsMax(x)
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		for j := range 16 {
			// float32(x*id) keeps the product rounded before the add, as C
			// does (Go may fuse x*id + 8.5 into an FMA on some machines).
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			b[2+j] = uint8(min(15, int(x0+8.5))) | uint8(min(15, int(x1+8.5)))<<4
		}
	}
}

// minMax returns the smallest and largest elements of x, starting from
// ±MaxFloat32 as ggml's Q4_1/Q5_1 loops do.
func minMax(x []float32) (mn, mx float32) {
	mn, mx = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < mn {
			mn = v
		}
		if v > mx {
			mx = v
		}
	}
	return mn, mx
}

// Q4_1 (quantize_row_q4_1_ref): d = (max-min)/15, m = min, q = min(15,
// trunc((x-min)/d + 0.5)).
func quantQ4_1(src []float32, dst []byte) {
	const bs = 20
	for ib := 0; ib < len(src)/32; ib++ {
		x := src[ib*32 : ib*32+32]
		b := dst[ib*bs : ib*bs+bs]
		mn, mx := minMax(x)
		d := (mx - mn) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		putHalf(b[2:], mn)
		for j := range 16 {
			x0 := float32((x[j] - mn) * id)
			x1 := float32((x[j+16] - mn) * id)
			b[4+j] = uint8(min(15, int(x0+0.5))) | uint8(min(15, int(x1+0.5)))<<4
		}
	}
}

// Q5_0 (quantize_row_q5_0_ref): d = max/-16, q = min(31, trunc(x/d +
// 16.5)); the 5th bits go to the little-endian uint32 qh.
func quantQ5_0(src []float32, dst []byte) {
	const bs = 22
	for ib := 0; ib < len(src)/32; ib++ {
		x := src[ib*32 : ib*32+32]
		b := dst[ib*bs : ib*bs+bs]
		max, _ := signedAbsMax(x)
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		var qh uint32
		for j := range 16 {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			q0 := uint8(min(31, int(x0+16.5)))
			q1 := uint8(min(31, int(x1+16.5)))
			b[6+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= uint32(q0>>4) << j
			qh |= uint32(q1>>4) << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// Q5_1 (quantize_row_q5_1_ref): d = (max-min)/31, m = min, q =
// trunc((x-min)/d + 0.5).
func quantQ5_1(src []float32, dst []byte) {
	const bs = 24
	for ib := 0; ib < len(src)/32; ib++ {
		x := src[ib*32 : ib*32+32]
		b := dst[ib*bs : ib*bs+bs]
		mn, mx := minMax(x)
		d := (mx - mn) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		putHalf(b[2:], mn)
		var qh uint32
		for j := range 16 {
			x0 := float32((x[j] - mn) * id)
			x1 := float32((x[j+16] - mn) * id)
			// ggml has no clamp here; the bound only guards odd inputs.
			q0 := uint8(min(31, int(x0+0.5)))
			q1 := uint8(min(31, int(x1+0.5)))
			b[8+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= uint32(q0>>4) << j
			qh |= uint32(q1>>4) << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// Q8_0 (quantize_row_q8_0_ref): d = amax/127, q = roundf(x/d) (ties away
// from zero).
func quantQ8_0(src []float32, dst []byte) {
	const bs = 34
	for ib := 0; ib < len(src)/32; ib++ {
		x := src[ib*32 : ib*32+32]
		b := dst[ib*bs : ib*bs+bs]
		_, amax := signedAbsMax(x)
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		for j := range 32 {
			b[2+j] = uint8(int8(roundHalfAway(x[j] * id)))
		}
	}
}

// Q8_1 (quantize_row_q8_1_ref): Q8_0 plus s = d * sum(q).
func quantQ8_1(src []float32, dst []byte) {
	const bs = 36
	for ib := 0; ib < len(src)/32; ib++ {
		x := src[ib*32 : ib*32+32]
		b := dst[ib*bs : ib*bs+bs]
		_, amax := signedAbsMax(x)
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putHalf(b, d)
		sum := 0
		for j := range 32 {
			q := int8(roundHalfAway(x[j] * id))
			b[4+j] = uint8(q)
			sum += int(q)
		}
		putHalf(b[2:], float32(sum)*d)
	}
}
