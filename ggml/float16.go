package ggml

import "math"

// FP16ToFP32 converts an IEEE 754 half-precision value to float32. Every half
// value, subnormals, infinities and NaN payloads included, is exactly
// representable in float32, so the conversion is exact.
func FP16ToFP32(h uint16) float32 {
	// Normal numbers take the short path (small enough to be inlined):
	// rebias the exponent from 15 to 127 and widen the mantissa.
	if h&0x7c00-0x400 <= 0x7400 { // exponent field 1..30 (0 wraps around)
		return math.Float32frombits(uint32(h&0x8000)<<16 | uint32(h&0x7fff)<<13 + (127-15)<<23)
	}
	return fp16SpecialToFP32(h)
}

// fp16SpecialToFP32 converts the halves with a zero or all-ones exponent:
// zeros, subnormals, infinities and NaNs.
func fp16SpecialToFP32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	mant := uint32(h & 0x3ff)
	if h&0x7c00 == 0x7c00 {
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	// Zero or subnormal: mant * 2^-24, exact in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// FP32ToFP16 converts a float32 to IEEE 754 half precision, rounding to
// nearest with ties to even, as ggml's GGML_FP32_TO_FP16 does (and as the
// x86 F16C instruction vcvtps2ph does): values that round past 65504 become
// infinity, small values become half subnormals or signed zero, and NaNs stay
// NaN with the quiet bit set and the top payload bits kept.
func FP32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	abs := b & 0x7fffffff
	switch {
	case abs > 0x7f800000: // NaN
		return sign | 0x7e00 | uint16(abs>>13)&0x3ff
	case abs >= 0x477ff000: // >= 65520 (halfway past 65504, odd): rounds to infinity
		return sign | 0x7c00
	case abs >= 0x38800000: // normal half range, >= 2^-14
		// Rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10
		// bits; a carry out of the mantissa correctly bumps the exponent.
		v := abs - (127-15)<<23
		v += 0xfff + (v>>13)&1
		return sign | uint16(v>>13)
	}
	// Half subnormal (or zero): the result is abs / 2^-24 rounded to an
	// integer. A result of 0x400 is the smallest normal, which is also its
	// correct encoding.
	e := abs >> 23
	if e < 102 { // below 2^-25: rounds to zero
		return sign
	}
	m := abs&0x7fffff | 0x800000
	shift := 126 - e // 14..24
	q := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	return sign | uint16(q)
}

// BF16ToFP32 converts a bfloat16 value to float32 (exact: bfloat16 is the top
// half of a float32).
func BF16ToFP32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// FP32ToBF16 converts a float32 to bfloat16 like ggml_compute_fp32_to_bf16:
// round to nearest even, subnormals kept, NaN made quiet (payload truncated).
func FP32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}
