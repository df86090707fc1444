package cpu

import (
	"encoding/binary"
	"math"

	"github.com/rocmforge/rocmforge/ggml"
)

// Pure-Go dot products of one weight row with one quantized activation row,
// both in GGML block layout, k elements long (a whole number of blocks).
// They are the portable fallback and the definition the assembly kernels are
// tested against. Within a block the products are summed exactly in integers,
// then scaled in float32, as ggml's vec_dot_<w>_<x> functions do.

// Byte sizes of the weight blocks (ggml-common.h).
const (
	q4_0Len = 18  // f16 d, 16 nibble bytes
	q4_1Len = 20  // f16 d, f16 m, 16 nibble bytes
	q5_0Len = 22  // f16 d, u32 qh, 16 nibble bytes
	q5_1Len = 24  // f16 d, f16 m, u32 qh, 16 nibble bytes
	q2KLen  = 84  // scales[16], qs[64], f16 d, f16 dmin
	q3KLen  = 110 // hmask[32], qs[64], scales[12], f16 d
	q4KLen  = 144 // f16 d, f16 dmin, scales[12], qs[128]
	q5KLen  = 176 // f16 d, f16 dmin, scales[12], qh[32], qs[128]
	q6KLen  = 210 // ql[128], qh[64], scales[16] int8, f16 d
)

func f16At(b []byte) float32 { return ggml.FP16ToFP32(binary.LittleEndian.Uint16(b)) }

// dotQ8_0Q8_0 is vec_dot_q8_0_q8_0.
func dotQ8_0Q8_0(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qk8 {
		wb := w[b*q8_0Len : b*q8_0Len+q8_0Len]
		xb := x[b*q8_0Len : b*q8_0Len+q8_0Len]
		var s int32
		for i := 2; i < q8_0Len; i++ {
			s += int32(int8(wb[i])) * int32(int8(xb[i]))
		}
		sum += float32(s) * (f16At(wb) * f16At(xb))
	}
	return sum
}

// dotQ4_0Q8_0 is vec_dot_q4_0_q8_0: weight element j of a block is the low
// nibble of qs[j] minus 8, element j+16 the high nibble minus 8.
func dotQ4_0Q8_0(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qk8 {
		wb := w[b*q4_0Len : b*q4_0Len+q4_0Len]
		xb := x[b*q8_0Len : b*q8_0Len+q8_0Len]
		qs, xq := wb[2:18], xb[2:34]
		var s int32
		for j, v := range qs {
			s += (int32(v&15)-8)*int32(int8(xq[j])) + (int32(v>>4)-8)*int32(int8(xq[j+16]))
		}
		sum += float32(s) * (f16At(wb) * f16At(xb))
	}
	return sum
}

// dotQ4_1Q8_1 is vec_dot_q4_1_q8_1: d·q + m per weight, so the block sum is
// d_w·d_x·Σq_w·q_x + m_w·s_x where s_x = d_x·Σq_x.
func dotQ4_1Q8_1(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qk8 {
		wb := w[b*q4_1Len : b*q4_1Len+q4_1Len]
		xb := x[b*q8_1Len : b*q8_1Len+q8_1Len]
		qs, xq := wb[4:20], xb[4:36]
		var s int32
		for j, v := range qs {
			s += int32(v&15)*int32(int8(xq[j])) + int32(v>>4)*int32(int8(xq[j+16]))
		}
		sum += (f16At(wb)*f16At(xb))*float32(s) + f16At(wb[2:])*f16At(xb[2:])
	}
	return sum
}

// dotQ5_0Q8_0 is vec_dot_q5_0_q8_0: bit j of the little-endian u32 qh is the
// fifth bit of element j; values are offset by 16.
func dotQ5_0Q8_0(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qk8 {
		wb := w[b*q5_0Len : b*q5_0Len+q5_0Len]
		xb := x[b*q8_0Len : b*q8_0Len+q8_0Len]
		qh := binary.LittleEndian.Uint32(wb[2:])
		qs, xq := wb[6:22], xb[2:34]
		var s int32
		for j, v := range qs {
			lo := int32(v&15|byte(qh>>j&1)<<4) - 16
			hi := int32(v>>4|byte(qh>>(j+16)&1)<<4) - 16
			s += lo*int32(int8(xq[j])) + hi*int32(int8(xq[j+16]))
		}
		sum += float32(s) * (f16At(wb) * f16At(xb))
	}
	return sum
}

// dotQ5_1Q8_1 is vec_dot_q5_1_q8_1.
func dotQ5_1Q8_1(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qk8 {
		wb := w[b*q5_1Len : b*q5_1Len+q5_1Len]
		xb := x[b*q8_1Len : b*q8_1Len+q8_1Len]
		qh := binary.LittleEndian.Uint32(wb[4:])
		qs, xq := wb[8:24], xb[4:36]
		var s int32
		for j, v := range qs {
			lo := int32(v&15 | byte(qh>>j&1)<<4)
			hi := int32(v>>4 | byte(qh>>(j+16)&1)<<4)
			s += lo*int32(int8(xq[j])) + hi*int32(int8(xq[j+16]))
		}
		sum += (f16At(wb)*f16At(xb))*float32(s) + f16At(wb[2:])*f16At(xb[2:])
	}
	return sum
}

// q8KParts splits a Q8_K block into its scale, quants and 16-element sums.
func q8KParts(xb []byte) (d float32, q, bsums []byte) {
	d = math.Float32frombits(binary.LittleEndian.Uint32(xb))
	return d, xb[4 : 4+qkK], xb[4+qkK : q8KLen]
}

// bsum is the sum of quants of 16-element group g of a Q8_K block.
func bsum(bsums []byte, g int) int32 {
	return int32(int16(binary.LittleEndian.Uint16(bsums[2*g:])))
}

// dotQ2_KQ8_K is vec_dot_q2_K_q8_K. Sixteen groups of 16 elements, each with
// a 4-bit scale (low nibble of scales[g]) and a 4-bit min (high nibble);
// element value = d·scale·q − dmin·min with q two bits taken from qs.
func dotQ2_KQ8_K(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qkK {
		wb := w[b*q2KLen : b*q2KLen+q2KLen]
		xd, xq, bs := q8KParts(x[b*q8KLen : b*q8KLen+q8KLen])
		sc, qs := wb[:16], wb[16:80]
		var summs int32
		for g := range 16 {
			summs += bsum(bs, g) * int32(sc[g]>>4)
		}
		var isum int32
		g := 0
		for half := range 2 { // 128 elements from 32 bytes of qs
			q2 := qs[32*half : 32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for part := range 2 { // two groups of 16 share the same bytes' bit pair
					var s int32
					for l := 16 * part; l < 16*part+16; l++ {
						s += int32(q2[l]>>shift&3) * int32(int8(xq[l]))
					}
					isum += int32(sc[g]&15) * s
					g++
				}
				xq = xq[32:]
			}
		}
		dall := xd * f16At(wb[80:])
		dmin := xd * f16At(wb[82:])
		sum += dall*float32(isum) - dmin*float32(summs)
	}
	return sum
}

// q3KScales decodes the sixteen 6-bit scales of a Q3_K block (biased by 32).
func q3KScales(sc []byte) (out [16]int32) {
	for j := range 16 {
		lo := sc[j%8] & 15
		if j >= 8 {
			lo = sc[j-8] >> 4
		}
		hi := sc[8+j%4] >> (2 * (j / 4)) & 3
		out[j] = int32(lo|hi<<4) - 32
	}
	return out
}

// dotQ3_KQ8_K is vec_dot_q3_K_q8_K. Element values are the two low bits from
// qs minus 4 unless the element's bit in hmask is set; sixteen groups of 16
// each have a signed 6-bit scale.
func dotQ3_KQ8_K(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qkK {
		wb := w[b*q3KLen : b*q3KLen+q3KLen]
		xd, xq, _ := q8KParts(x[b*q8KLen : b*q8KLen+q8KLen])
		hm, qs := wb[:32], wb[32:96]
		scales := q3KScales(wb[96:108])
		var isum int32
		g := 0
		m := byte(1)
		for half := range 2 {
			q3 := qs[32*half : 32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for part := range 2 {
					var s int32
					for l := 16 * part; l < 16*part+16; l++ {
						v := int32(q3[l] >> shift & 3)
						if hm[l]&m == 0 {
							v -= 4
						}
						s += v * int32(int8(xq[l]))
					}
					isum += scales[g] * s
					g++
				}
				xq = xq[32:]
				m <<= 1
			}
		}
		sum += (f16At(wb[108:]) * xd) * float32(isum)
	}
	return sum
}

// q4KScaleMin is ggml's get_scale_min_k4: the 6-bit scale and min of
// sub-block j (0..7) packed in 12 bytes.
func q4KScaleMin(j int, q []byte) (sc, m int32) {
	if j < 4 {
		return int32(q[j] & 63), int32(q[j+4] & 63)
	}
	return int32(q[j+4]&15 | q[j-4]>>6<<4), int32(q[j+4]>>4 | q[j]>>6<<4)
}

// dotQ4_KQ8_K is vec_dot_q4_K_q8_K. Eight sub-blocks of 32 with 6-bit scale
// and min; element value = d·sc·q − dmin·m. Sub-block 2i takes the low
// nibbles of qs[32i:32i+32], sub-block 2i+1 the high ones.
func dotQ4_KQ8_K(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qkK {
		wb := w[b*q4KLen : b*q4KLen+q4KLen]
		xd, xq, bs := q8KParts(x[b*q8KLen : b*q8KLen+q8KLen])
		scl, qs := wb[4:16], wb[16:144]
		var isum, msum int32
		for j := range 8 {
			sc, m := q4KScaleMin(j, scl)
			q4 := qs[32*(j/2) : 32*(j/2)+32]
			shift := uint(4 * (j & 1))
			var s int32
			for l, v := range q4 {
				s += int32(v>>shift&15) * int32(int8(xq[32*j+l]))
			}
			isum += sc * s
			msum += m * (bsum(bs, 2*j) + bsum(bs, 2*j+1))
		}
		sum += (f16At(wb)*xd)*float32(isum) - (f16At(wb[2:])*xd)*float32(msum)
	}
	return sum
}

// dotQ5_KQ8_K is vec_dot_q5_K_q8_K: Q4_K plus a fifth bit, bit j of qh[l]
// for element l of sub-block j.
func dotQ5_KQ8_K(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qkK {
		wb := w[b*q5KLen : b*q5KLen+q5KLen]
		xd, xq, bs := q8KParts(x[b*q8KLen : b*q8KLen+q8KLen])
		scl, qh, qs := wb[4:16], wb[16:48], wb[48:176]
		var isum, msum int32
		for j := range 8 {
			sc, m := q4KScaleMin(j, scl)
			q4 := qs[32*(j/2) : 32*(j/2)+32]
			shift := uint(4 * (j & 1))
			var s int32
			for l, v := range q4 {
				q := int32(v>>shift&15) | int32(qh[l]>>j&1)<<4
				s += q * int32(int8(xq[32*j+l]))
			}
			isum += sc * s
			msum += m * (bsum(bs, 2*j) + bsum(bs, 2*j+1))
		}
		sum += (f16At(wb)*xd)*float32(isum) - (f16At(wb[2:])*xd)*float32(msum)
	}
	return sum
}

// dotQ6_KQ8_K is vec_dot_q6_K_q8_K. Each 128-element half takes 64 bytes of
// ql and 32 of qh; value = (4 low bits | 2 high bits << 4) − 32, with a
// signed 8-bit scale per 16 elements.
func dotQ6_KQ8_K(k int, w, x []byte) float32 {
	var sum float32
	for b := range k / qkK {
		wb := w[b*q6KLen : b*q6KLen+q6KLen]
		xd, xq, _ := q8KParts(x[b*q8KLen : b*q8KLen+q8KLen])
		sc := wb[192:208]
		var isum int32
		for half := range 2 {
			ql, qh := wb[64*half:64*half+64], wb[128+32*half:128+32*half+32]
			xh := xq[128*half:]
			// Four runs of 32 elements: (ql low, qh bits 0-1), (ql[32:] low,
			// bits 2-3), (ql high, bits 4-5), (ql[32:] high, bits 6-7).
			for run := range 4 {
				lo := ql[32*(run&1):]
				nib := uint(4 * (run >> 1))
				hs := uint(2 * run)
				for part := range 2 {
					var s int32
					for l := 16 * part; l < 16*part+16; l++ {
						q := int32(lo[l]>>nib&15|(qh[l]>>hs&3)<<4) - 32
						s += q * int32(int8(xh[32*run+l]))
					}
					isum += int32(int8(sc[8*half+2*run+part])) * s
				}
			}
		}
		sum += (f16At(wb[208:]) * xd) * float32(isum)
	}
	return sum
}

// dotF16F16 is vec_dot_f16: f16 × f16 products accumulated in float32.
func dotF16F16(k int, w, x []byte) float32 {
	var sum float32
	for i := range k {
		sum += f16At(w[2*i:]) * f16At(x[2*i:])
	}
	return sum
}

// dotBF16BF16 is vec_dot_bf16: bf16 × bf16 products accumulated in float32.
func dotBF16BF16(k int, w, x []byte) float32 {
	var sum float32
	for i := range k {
		a := math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i:])) << 16)
		b := math.Float32frombits(uint32(binary.LittleEndian.Uint16(x[2*i:])) << 16)
		sum += a * b
	}
	return sum
}

// dotF32F32 is vec_dot_f32 over little-endian float32 bytes.
func dotF32F32(k int, w, x []byte) float32 {
	var sum float32
	for i := range k {
		a := math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:]))
		sum += a * b
	}
	return sum
}
