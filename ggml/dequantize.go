package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Dequantize converts len(dst) elements of type t from their GGML byte layout
// in src to float32. len(dst) must be a whole number of t's blocks and len(src)
// must be exactly t.RowSize(len(dst)). Types this package recognises but
// cannot decode give an error wrapping ErrUnsupported.
//
// The arithmetic follows ggml's dequantize_row_* reference code operation by
// operation (including float32 rounding of each intermediate), so results are
// bit-identical to ggml's reference.
func Dequantize(t Type, src []byte, dst []float32) error {
	if err := checkSupported(t); err != nil {
		return err
	}
	want, err := t.RowSize(int64(len(dst)))
	if err != nil {
		return fmt.Errorf("dequantize: %w", err)
	}
	if int64(len(src)) != want {
		return fmt.Errorf("dequantize %s: %d elements need %d bytes, got %d", t, len(dst), want, len(src))
	}
	rowFn := dequantizer(t)
	if rowFn == nil {
		return fmt.Errorf("dequantize %s: %w (no decoder)", t, ErrUnsupported)
	}
	rowFn(src, dst)
	return nil
}

// dequantizer returns the function that decodes whole blocks of t, or nil.
// Callers have checked that src and dst sizes agree.
func dequantizer(t Type) func(src []byte, dst []float32) {
	switch t {
	case F32:
		return dequantF32
	case F16:
		return dequantF16
	case BF16:
		return dequantBF16
	case Q4_0:
		return dequantQ4_0
	case Q4_1:
		return dequantQ4_1
	case Q5_0:
		return dequantQ5_0
	case Q5_1:
		return dequantQ5_1
	case Q8_0:
		return dequantQ8_0
	case Q8_1:
		return dequantQ8_1
	case Q2_K:
		return dequantQ2K
	case Q3_K:
		return dequantQ3K
	case Q4_K:
		return dequantQ4K
	case Q5_K:
		return dequantQ5K
	case Q6_K:
		return dequantQ6K
	case Q8_K:
		return dequantQ8K
	}
	return nil
}

// le16 reads a little-endian half (or bfloat16) at b[0:2].
func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

// half reads a little-endian f16 at b[0:2] as float32.
func half(b []byte) float32 { return FP16ToFP32(binary.LittleEndian.Uint16(b)) }

func dequantF32(src []byte, dst []float32) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i : 4*i+4]))
	}
}

func dequantF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		h := le16(src[2*i : 2*i+2])
		// FP16ToFP32's normal-number path, repeated here because the
		// function is slightly too big for the compiler to inline.
		if h&0x7c00-0x400 <= 0x7400 {
			dst[i] = math.Float32frombits(uint32(h&0x8000)<<16 | uint32(h&0x7fff)<<13 + (127-15)<<23)
		} else {
			dst[i] = fp16SpecialToFP32(h)
		}
	}
}

func dequantBF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = BF16ToFP32(le16(src[2*i : 2*i+2]))
	}
}

// block_q4_0: f16 d, 16 bytes qs. Element j is the low nibble of qs[j],
// element j+16 the high nibble; value = (q-8)*d.
func dequantQ4_0(src []byte, dst []float32) {
	const bs = 18
	for ib := 0; ib < len(dst)/32; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*32 : ib*32+32]
		d := half(b)
		qs := b[2:18]
		for j := range 16 {
			y[j] = float32(int(qs[j]&0x0f)-8) * d
			y[j+16] = float32(int(qs[j]>>4)-8) * d
		}
	}
}

// block_q4_1: f16 d, f16 m, 16 bytes qs; value = q*d + m.
func dequantQ4_1(src []byte, dst []float32) {
	const bs = 20
	for ib := 0; ib < len(dst)/32; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*32 : ib*32+32]
		d, m := half(b), half(b[2:])
		qs := b[4:20]
		for j := range 16 {
			// float32(...) keeps the product rounded before the add, as in C
			// (Go may otherwise fuse into an FMA on some architectures).
			y[j] = float32(float32(qs[j]&0x0f)*d) + m
			y[j+16] = float32(float32(qs[j]>>4)*d) + m
		}
	}
}

// block_q5_0: f16 d, uint32 qh (little-endian, bit j is the 5th bit of
// element j), 16 bytes qs as in Q4_0; value = (q-16)*d.
func dequantQ5_0(src []byte, dst []float32) {
	const bs = 22
	for ib := 0; ib < len(dst)/32; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*32 : ib*32+32]
		d := half(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		qs := b[6:22]
		for j := range 16 {
			h0 := (int(qh>>j) << 4) & 0x10
			h1 := int(qh>>(j+12)) & 0x10
			y[j] = float32((int(qs[j]&0x0f)|h0)-16) * d
			y[j+16] = float32((int(qs[j]>>4)|h1)-16) * d
		}
	}
}

// block_q5_1: f16 d, f16 m, uint32 qh, 16 bytes qs; value = q*d + m.
func dequantQ5_1(src []byte, dst []float32) {
	const bs = 24
	for ib := 0; ib < len(dst)/32; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*32 : ib*32+32]
		d, m := half(b), half(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		qs := b[8:24]
		for j := range 16 {
			h0 := (int(qh>>j) << 4) & 0x10
			h1 := int(qh>>(j+12)) & 0x10
			y[j] = float32(float32(int(qs[j]&0x0f)|h0)*d) + m
			y[j+16] = float32(float32(int(qs[j]>>4)|h1)*d) + m
		}
	}
}

// block_q8_0: f16 d, 32 int8 qs; value = q*d.
func dequantQ8_0(src []byte, dst []float32) {
	const bs = 34
	for ib := 0; ib < len(dst)/32; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*32 : ib*32+32]
		d := half(b)
		qs := b[2:34]
		for j := range 32 {
			y[j] = float32(int8(qs[j])) * d
		}
	}
}

// block_q8_1: f16 d, f16 s (= d*sum(qs), used only by dot products), 32 int8
// qs; value = q*d. ggml has no to_float for Q8_1; this is the obvious one.
func dequantQ8_1(src []byte, dst []float32) {
	const bs = 36
	for ib := 0; ib < len(dst)/32; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*32 : ib*32+32]
		d := half(b)
		qs := b[4:36]
		for j := range 32 {
			y[j] = float32(int8(qs[j])) * d
		}
	}
}
