package ggml

import (
	"encoding/binary"
	"math"
)

// Byte offsets inside the K-quant super-blocks (ggml-common.h).
const (
	// block_q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
	q2kScales, q2kQs, q2kD, q2kDmin = 0, 16, 80, 82
	// block_q3_K: hmask[32], qs[64], scales[12] (16 packed 6-bit), d.
	q3kHmask, q3kQs, q3kScales, q3kD = 0, 32, 96, 108
	// block_q4_K: d, dmin, scales[12] (8 packed 6-bit scales and mins), qs[128].
	q4kD, q4kDmin, q4kScales, q4kQs = 0, 2, 4, 16
	// block_q5_K: d, dmin, scales[12], qh[32], qs[128].
	q5kD, q5kDmin, q5kScales, q5kQh, q5kQs = 0, 2, 4, 16, 48
	// block_q6_K: ql[128], qh[64], scales[16] (int8), d.
	q6kQl, q6kQh, q6kScales, q6kD = 0, 128, 192, 208
	// block_q8_K: float32 d, qs[256] (int8), bsums[16] (int16).
	q8kD, q8kQs, q8kBsums = 0, 4, 260
)

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7) from the
// 12-byte scales field of Q4_K/Q5_K (ggml's get_scale_min_k4). Sub-blocks 0-3
// keep their 6 bits in the low bits of bytes j and j+4; sub-blocks 4-7 keep
// their low 4 bits in byte j+4 and their top 2 bits in the spare top bits of
// bytes j-4 (scale) and j (min).
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// q3kScale unpacks the signed 6-bit scale of sub-block j (0..15) of Q3_K:
// the low 4 bits are a nibble of bytes 0-7 (low nibbles for j < 8, high
// nibbles for j >= 8), the top 2 bits are bits 2*(j/4) of byte 8 + j%4.
func q3kScale(j int, s []byte) int {
	var lo byte
	if j < 8 {
		lo = s[j] & 0x0f
	} else {
		lo = s[j-8] >> 4
	}
	hi := (s[8+j%4] >> (2 * (j / 4))) & 3
	return int(lo|hi<<4) - 32
}

// Q2_K: 16 sub-blocks of 16; value = d*sc*q - dmin*m with 2-bit q. Byte
// qs[32*h + l] holds, in bit pairs 0..3, elements 128*h + 32*k + l (k = pair).
func dequantQ2K(src []byte, dst []float32) {
	const bs = 84
	for ib := 0; ib < len(dst)/QK_K; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*QK_K : ib*QK_K+QK_K]
		d, dmin := half(b[q2kD:]), half(b[q2kDmin:])
		scales := b[q2kScales : q2kScales+16]
		is := 0
		for n := 0; n < QK_K; n += 128 {
			q := b[q2kQs+n/4 : q2kQs+n/4+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for sub := 0; sub < 2; sub++ {
					sc := scales[is]
					is++
					dl := d * float32(sc&0x0f)
					ml := float32(dmin * float32(sc>>4)) // rounded before the subtraction, as in C
					out := y[n+int(shift)*16+16*sub:][:16]
					qq := q[16*sub : 16*sub+16]
					for l := range 16 {
						out[l] = float32(dl*float32((qq[l]>>shift)&3)) - ml
					}
				}
			}
		}
	}
}

// Q3_K: 16 sub-blocks of 16; value = d*(sc-32)*(q-4) where q has 2 low bits
// in qs (packed as in Q2_K) and a high bit in hmask: element i's bit is bit
// i/32 of hmask[i%32], and a clear bit means subtract 4.
func dequantQ3K(src []byte, dst []float32) {
	const bs = 110
	for ib := 0; ib < len(dst)/QK_K; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*QK_K : ib*QK_K+QK_K]
		dAll := half(b[q3kD:])
		scales := b[q3kScales : q3kScales+12]
		hm := b[q3kHmask : q3kHmask+32]
		is := 0
		m := uint8(1) // hmask bit of the current 32 elements
		for n := 0; n < QK_K; n += 128 {
			q := b[q3kQs+n/4 : q3kQs+n/4+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for sub := 0; sub < 2; sub++ {
					dl := dAll * float32(q3kScale(is, scales))
					is++
					out := y[n+int(shift)*16+16*sub:][:16]
					qq := q[16*sub : 16*sub+16]
					hh := hm[16*sub : 16*sub+16]
					for l := range 16 {
						v := int((qq[l] >> shift) & 3)
						if hh[l]&m == 0 { // a clear high bit means subtract 4
							v -= 4
						}
						out[l] = dl * float32(v)
					}
				}
				m <<= 1
			}
		}
	}
}

// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins; value = d*sc*q -
// dmin*m. Each 32-byte group of qs holds two sub-blocks: low nibbles first.
func dequantQ4K(src []byte, dst []float32) {
	const bs = 144
	for ib := 0; ib < len(dst)/QK_K; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*QK_K : ib*QK_K+QK_K]
		d, dmin := half(b[q4kD:]), half(b[q4kDmin:])
		scales := b[q4kScales : q4kScales+12]
		for g := range 4 {
			q := b[q4kQs+32*g : q4kQs+32*g+32]
			sc1, m1 := scaleMinK4(2*g, scales)
			sc2, m2 := scaleMinK4(2*g+1, scales)
			d1, min1 := d*float32(sc1), float32(dmin*float32(m1))
			d2, min2 := d*float32(sc2), float32(dmin*float32(m2))
			lo := y[64*g : 64*g+32]
			hi := y[64*g+32 : 64*g+64]
			for l := range 32 {
				lo[l] = float32(d1*float32(q[l]&0x0f)) - min1
				hi[l] = float32(d2*float32(q[l]>>4)) - min2
			}
		}
	}
}

// Q5_K: as Q4_K with a fifth bit per element in qh: element 64*g + l takes
// bit 2g of qh[l], element 64*g + 32 + l takes bit 2g+1.
func dequantQ5K(src []byte, dst []float32) {
	const bs = 176
	for ib := 0; ib < len(dst)/QK_K; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*QK_K : ib*QK_K+QK_K]
		d, dmin := half(b[q5kD:]), half(b[q5kDmin:])
		scales := b[q5kScales : q5kScales+12]
		qh := b[q5kQh : q5kQh+32]
		for g := range 4 {
			ql := b[q5kQs+32*g : q5kQs+32*g+32]
			sc1, m1 := scaleMinK4(2*g, scales)
			sc2, m2 := scaleMinK4(2*g+1, scales)
			d1, min1 := d*float32(sc1), float32(dmin*float32(m1))
			d2, min2 := d*float32(sc2), float32(dmin*float32(m2))
			s1, s2 := uint(2*g), uint(2*g+1) // qh bits of the two sub-blocks
			lo := y[64*g : 64*g+32]
			hi := y[64*g+32 : 64*g+64]
			for l := range 32 {
				v1 := ql[l]&0x0f | (qh[l]>>(s1&7)&1)<<4
				v2 := ql[l]>>4 | (qh[l]>>(s2&7)&1)<<4
				lo[l] = float32(d1*float32(v1)) - min1
				hi[l] = float32(d2*float32(v2)) - min2
			}
		}
	}
}

// Q6_K: 16 sub-blocks of 16 with int8 scales; value = d*sc*(q-32) with 6-bit
// q. Per 128-element half h: ql[64h + l] holds elements l (low nibble) and
// l+64 (high nibble), ql[64h + 32 + l] holds l+32 and l+96, and qh[32h + l]
// holds the top 2 bits of l, l+32, l+64, l+96 in bit pairs 0..3.
func dequantQ6K(src []byte, dst []float32) {
	const bs = 210
	for ib := 0; ib < len(dst)/QK_K; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*QK_K : ib*QK_K+QK_K]
		d := half(b[q6kD:])
		for h := range 2 {
			ql := b[q6kQl+64*h : q6kQl+64*h+64]
			qh := b[q6kQh+32*h : q6kQh+32*h+32]
			sc := b[q6kScales+8*h : q6kScales+8*h+8]
			out := y[128*h : 128*h+128]
			for l := range 32 {
				is := l / 16
				q1 := int(ql[l]&0x0f|(qh[l]&3)<<4) - 32
				q2 := int(ql[l+32]&0x0f|((qh[l]>>2)&3)<<4) - 32
				q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				// (d*sc)*q, in that order, as in C.
				out[l] = d * float32(int8(sc[is])) * float32(q1)
				out[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				out[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				out[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
}

// Q8_K: float32 d, 256 int8 qs, 16 int16 bsums (sums of 16 qs, for dot
// products only); value = d*q.
func dequantQ8K(src []byte, dst []float32) {
	const bs = 292
	for ib := 0; ib < len(dst)/QK_K; ib++ {
		b := src[ib*bs : ib*bs+bs]
		y := dst[ib*QK_K : ib*QK_K+QK_K]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b[q8kD:]))
		qs := b[q8kQs : q8kQs+QK_K]
		for j := range QK_K {
			y[j] = d * float32(int8(qs[j]))
		}
	}
}
