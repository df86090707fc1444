package ggml

import (
	"encoding/binary"
	"math"
)

// The K-quant encoders below are ports of ggml's quantize_row_q*_K_ref
// functions and their helpers (make_qx_quants, make_q3_quants,
// make_qkx2_quants). Float32 operations are kept in ggml's order; products
// that feed an addition or subtraction are wrapped in float32(...) so that Go
// never fuses them into an FMA (as it may on arm64, or amd64 with GOAMD64=v3),
// which C, compiled for baseline x86-64, does not do either.

// groupMaxEps is ggml's GROUP_MAX_EPS: groups with a smaller magnitude count
// as all zero.
const groupMaxEps = 1e-15

// nearestInt is ggml's nearest_int: round to nearest, ties to even, by
// adding 1.5*2^23 and reading the mantissa bits. Valid for |f| < 2^22, like
// the C code (which asserts it); other inputs give garbage but no panic.
func nearestInt(f float32) int {
	v := float32(f) + 12582912
	return int(int32(math.Float32bits(v))&0x007fffff) - 0x00400000
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// makeQXQuants is make_qx_quants with rmse_type 1 and no importance weights
// (weights x²): it picks a scale for the signed levels [-nmax, nmax-1] by
// trying 19 candidate scales around nmax/max and keeping the best weighted
// least-squares fit. L receives the levels offset by nmax.
func makeQXQuants(nmax int, x []float32, L []int8) float32 {
	max, amax := signedAbsMax(x)
	if amax < groupMaxEps {
		clear(L[:len(x)])
		return 0
	}
	fnmax := float32(nmax)
	iscale := -fnmax / max
	var sumlx, suml2 float32
	for i, v := range x {
		l := nearestInt(iscale * v)
		l = max2(-nmax, min(nmax-1, l))
		L[i] = int8(l + nmax)
		w := v * v
		fl := float32(l)
		sumlx += float32(w * v * fl)
		suml2 += float32(w * fl * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fnmax + float32(float32(0.1)*float32(is))) / max
		sumlx, suml2 = 0, 0
		for _, v := range x {
			l := nearestInt(iscale * v)
			l = max2(-nmax, min(nmax-1, l))
			w := v * v
			fl := float32(l)
			sumlx += float32(w * v * fl)
			suml2 += float32(w * fl * fl)
		}
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			for i, v := range x {
				l := nearestInt(iscale * v)
				L[i] = int8(nmax + max2(-nmax, min(nmax-1, l)))
			}
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// max2 is the builtin max for ints, named so that it does not clash with the
// local variables called max that mirror ggml's code.
func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// makeQ3Quants is make_q3_quants with do_rmse: start from the levels of
// scale max/-nmax, then move single levels while that improves the weighted
// (x²) least-squares fit, for up to 5 passes. L receives levels offset by nmax.
func makeQ3Quants(nmax int, x []float32, L []int8) float32 {
	max, amax := signedAbsMax(x)
	if amax < groupMaxEps {
		clear(L[:len(x)])
		return 0
	}
	iscale := -float32(nmax) / max
	var sumlx, suml2 float32
	for i, v := range x {
		l := nearestInt(iscale * v)
		l = max2(-nmax, min(nmax-1, l))
		L[i] = int8(l)
		w := v * v
		fl := float32(l)
		sumlx += float32(w * v * fl)
		suml2 += float32(w * fl * fl)
	}
	for range 5 {
		changed := 0
		for i, v := range x {
			w := v * v
			li := float32(L[i])
			slx := sumlx - float32(w*v*li)
			if slx > 0 {
				sl2 := suml2 - float32(w*li*li)
				newL := nearestInt(v * sl2 / slx)
				newL = max2(-nmax, min(nmax-1, newL))
				if newL != int(L[i]) {
					fn := float32(newL)
					slx += float32(w * v * fn)
					sl2 += float32(w * fn * fn)
					if sl2 > 0 && slx*slx*suml2 > sumlx*sumlx*sl2 {
						L[i] = int8(newL)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range x {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants is make_qkx2_quants: an affine fit x ≈ scale*l - min with
// levels l in [0, nmax] and min >= 0, searching nstep+1 candidate scales and
// solving weighted least squares for each. It returns scale and min; L gets
// the levels, laux is scratch of len(x).
func makeQKX2Quants(nmax int, x, weights []float32, L, laux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	n := len(x)
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < mn {
			mn = x[i]
		}
		if x[i] > mx {
			mx = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		clear(L[:n])
		return 0, -mn
	}
	fnmax := float32(nmax)
	iscale := fnmax / (mx - mn)
	scale = 1 / iscale
	var bestError float32
	for i := range n {
		l := nearestInt(iscale * (x[i] - mn))
		L[i] = uint8(max2(0, min(nmax, l)))
		diff := float32(scale*float32(L[i])) + mn - x[i]
		if useMAD {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestError += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -mn
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + fnmax) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := nearestInt(iscale * (x[i] - mn))
			l = max2(0, min(nmax, l))
			laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(w * fl * fl)
			sumXL += float32(w * fl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := range n {
				diff := float32(thisScale*float32(laux[i])) + thisMin - x[i]
				if useMAD {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				curError += float32(weights[i] * diff)
			}
			if curError < bestError {
				copy(L[:n], laux[:n])
				bestError = curError
				scale = thisScale
				mn = thisMin
			}
		}
	}
	return scale, -mn
}

// packQ2 packs 2-bit levels L[0:256] the way Q2_K and Q3_K store them: byte
// qs[32*h + l] holds elements 128*h + l + 32*k in bits 2k..2k+1.
func packQ2(qs []byte, L []uint8) {
	for j := 0; j < QK_K; j += 128 {
		for l := range 32 {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// Q2_K (quantize_row_q2_K_ref): per 16-element sub-block an affine fit with
// 2-bit levels (weights |x|, mean absolute error), then the sub-block scales
// and mins quantized to 4 bits against the super-block d and dmin, then the
// levels recomputed with the quantized scales.
func quantQ2K(src []float32, dst []byte) {
	const bs = 84
	const q4scale = 15
	var (
		L       [QK_K]uint8
		laux    [16]uint8
		weights [16]float32
		mins    [QK_K / 16]float32
		scales  [QK_K / 16]float32
	)
	for ib := 0; ib < len(src)/QK_K; ib++ {
		x := src[ib*QK_K : ib*QK_K+QK_K]
		b := dst[ib*bs : ib*bs+bs]
		sc := b[q2kScales : q2kScales+16]
		var maxScale, maxMin float32
		for j := range QK_K / 16 {
			xs := x[16*j : 16*j+16]
			for l := range 16 {
				weights[l] = abs32(xs[l])
			}
			scales[j], mins[j] = makeQKX2Quants(3, xs, weights[:], L[16*j:16*j+16], laux[:], -0.5, 0.1, 15, true)
			if scales[j] > maxScale { // scales are >= 0 as the min is subtracted
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := range QK_K / 16 {
				sc[j] = uint8(nearestInt(iscale * scales[j]))
			}
			putHalf(b[q2kD:], maxScale/q4scale)
		} else {
			clear(sc)
			putHalf(b[q2kD:], 0)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := range QK_K / 16 {
				sc[j] |= uint8(nearestInt(iscale*mins[j]) << 4)
			}
			putHalf(b[q2kDmin:], maxMin/q4scale)
		} else {
			putHalf(b[q2kDmin:], 0)
		}
		d0, dmin0 := half(b[q2kD:]), half(b[q2kDmin:])
		for j := range QK_K / 16 {
			d := d0 * float32(sc[j]&0x0f)
			if d == 0 {
				continue
			}
			dm := float32(dmin0 * float32(sc[j]>>4))
			for ii := range 16 {
				l := nearestInt((x[16*j+ii] + dm) / d)
				L[16*j+ii] = uint8(max2(0, min(3, l)))
			}
		}
		packQ2(b[q2kQs:q2kQs+64], L[:])
	}
}

// Q3_K (quantize_row_q3_K_ref): per 16-element sub-block a symmetric fit
// with levels -4..3 (make_q3_quants), the 16 scales quantized to signed 6
// bits against d, then the levels recomputed; the high level bit goes to
// hmask (element i: bit i/32 of byte i%32), the low 2 bits are packed as in
// Q2_K.
func quantQ3K(src []float32, dst []byte) {
	const bs = 110
	var (
		L      [QK_K]int8
		scales [QK_K / 16]float32
		lu     [QK_K]uint8
	)
	for ib := 0; ib < len(src)/QK_K; ib++ {
		x := src[ib*QK_K : ib*QK_K+QK_K]
		b := dst[ib*bs : ib*bs+bs]
		var maxScale, amax float32
		for j := range QK_K / 16 {
			scales[j] = makeQ3Quants(4, x[16*j:16*j+16], L[16*j:16*j+16])
			if s := abs32(scales[j]); s > amax {
				amax, maxScale = s, scales[j]
			}
		}
		sc := b[q3kScales : q3kScales+12]
		clear(sc)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := range QK_K / 16 {
				l := int(int8(nearestInt(iscale * scales[j])))
				l = max2(-32, min(31, l)) + 32
				if j < 8 {
					sc[j] = uint8(l & 0x0f)
				} else {
					sc[j-8] |= uint8((l & 0x0f) << 4)
				}
				l >>= 4
				sc[j%4+8] |= uint8(l << (2 * (j / 4)))
			}
			putHalf(b[q3kD:], 1/iscale)
		} else {
			putHalf(b[q3kD:], 0)
		}
		d0 := half(b[q3kD:])
		for j := range QK_K / 16 {
			d := d0 * float32(q3kScale(j, sc))
			if d == 0 {
				continue
			}
			for ii := range 16 {
				l := nearestInt(x[16*j+ii] / d)
				L[16*j+ii] = int8(max2(-4, min(3, l)) + 4)
			}
		}
		hmask := b[q3kHmask : q3kHmask+32]
		clear(hmask)
		for j := range QK_K {
			l := uint8(L[j])
			if l > 3 {
				hmask[j%32] |= 1 << (j / 32)
				l -= 4
			}
			lu[j] = l
		}
		packQ2(b[q3kQs:q3kQs+64], lu[:])
	}
}

// putScaleMinK4 stores 6-bit scale ls and min lm of sub-block j (0..7) in
// the 12-byte scales field of Q4_K/Q5_K (the inverse of scaleMinK4). Bytes
// must start zeroed for sub-blocks 4..7 to OR into.
func putScaleMinK4(j int, q []byte, ls, lm uint8) {
	if j < 4 {
		q[j] = ls
		q[j+4] = lm
		return
	}
	q[j+4] = ls&0x0f | (lm&0x0f)<<4
	q[j-4] |= (ls >> 4) << 6
	q[j] |= (lm >> 4) << 6
}

// quantKAffine is the part shared by Q4_K and Q5_K (quantize_row_q4_K_ref
// and quantize_row_q5_K_ref): per 32-element sub-block an affine fit
// (weights av_x + |x|), the 8 scales and mins quantized to 6 bits against d
// and dmin, then the levels recomputed into L (0..nmax).
func quantKAffine(x []float32, b []byte, nmax int, rmin float32, nstep int, L *[QK_K]uint8, dOff, dminOff, scOff int) {
	var (
		laux    [32]uint8
		weights [32]float32
		mins    [QK_K / 32]float32
		scales  [QK_K / 32]float32
	)
	var maxScale, maxMin float32
	for j := range QK_K / 32 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := sqrt32(sumX2 / 32)
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, xs, weights[:], L[32*j:32*j+32], laux[:], rmin, 0.1, nstep, false)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := b[scOff : scOff+12]
	clear(sc)
	for j := range QK_K / 32 {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		putScaleMinK4(j, sc, ls, lm)
	}
	putHalf(b[dOff:], maxScale/63)
	putHalf(b[dminOff:], maxMin/63)
	d0, dmin0 := half(b[dOff:]), half(b[dminOff:])
	for j := range QK_K / 32 {
		s, m := scaleMinK4(j, sc)
		d := d0 * float32(s)
		if d == 0 {
			continue
		}
		dm := float32(dmin0 * float32(m))
		for ii := range 32 {
			l := nearestInt((x[32*j+ii] + dm) / d)
			L[32*j+ii] = uint8(max2(0, min(nmax, l)))
		}
	}
}

// Q4_K (quantize_row_q4_K_ref): 4-bit levels; each 32-byte group of qs
// holds sub-block 2g in its low nibbles and 2g+1 in its high nibbles.
func quantQ4K(src []float32, dst []byte) {
	const bs = 144
	var L [QK_K]uint8
	for ib := 0; ib < len(src)/QK_K; ib++ {
		x := src[ib*QK_K : ib*QK_K+QK_K]
		b := dst[ib*bs : ib*bs+bs]
		quantKAffine(x, b, 15, -1, 20, &L, q4kD, q4kDmin, q4kScales)
		q := b[q4kQs : q4kQs+128]
		for g := range 4 {
			for l := range 32 {
				q[32*g+l] = L[64*g+l] | L[64*g+l+32]<<4
			}
		}
	}
}

// Q5_K (quantize_row_q5_K_ref): 5-bit levels, low 4 bits as in Q4_K, the
// 5th bit of element 64g + l in bit 2g of qh[l] (bit 2g+1 for 64g + 32 + l).
func quantQ5K(src []float32, dst []byte) {
	const bs = 176
	var L [QK_K]uint8
	for ib := 0; ib < len(src)/QK_K; ib++ {
		x := src[ib*QK_K : ib*QK_K+QK_K]
		b := dst[ib*bs : ib*bs+bs]
		quantKAffine(x, b, 31, -0.5, 15, &L, q5kD, q5kDmin, q5kScales)
		qh := b[q5kQh : q5kQh+32]
		ql := b[q5kQs : q5kQs+128]
		clear(qh)
		for g := range 4 {
			m1, m2 := uint8(1)<<(2*g), uint8(2)<<(2*g)
			for j := range 32 {
				l1 := L[64*g+j]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				l2 := L[64*g+j+32]
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[32*g+j] = l1 | l2<<4
			}
		}
	}
}

// Q6_K (quantize_row_q6_K_ref): per 16-element sub-block a symmetric fit
// with levels -32..31 (make_qx_quants), the scales quantized to int8 against
// d = max_scale/-128, then the levels recomputed and split into ql/qh.
func quantQ6K(src []float32, dst []byte) {
	const bs = 210
	var (
		L      [QK_K]int8
		scales [QK_K / 16]float32
	)
	for ib := 0; ib < len(src)/QK_K; ib++ {
		x := src[ib*QK_K : ib*QK_K+QK_K]
		b := dst[ib*bs : ib*bs+bs]
		var maxScale, maxAbsScale float32
		for j := range QK_K / 16 {
			scales[j] = makeQXQuants(32, x[16*j:16*j+16], L[16*j:16*j+16])
			if a := abs32(scales[j]); a > maxAbsScale {
				maxAbsScale, maxScale = a, scales[j]
			}
		}
		if maxAbsScale < groupMaxEps {
			clear(b)
			continue
		}
		iscale := -128 / maxScale
		putHalf(b[q6kD:], 1/iscale)
		sc := b[q6kScales : q6kScales+16]
		for j := range QK_K / 16 {
			sc[j] = uint8(int8(min(127, nearestInt(iscale*scales[j]))))
		}
		d0 := half(b[q6kD:])
		for j := range QK_K / 16 {
			d := d0 * float32(int8(sc[j]))
			if d == 0 {
				continue
			}
			for ii := range 16 {
				l := nearestInt(x[16*j+ii] / d)
				L[16*j+ii] = int8(max2(-32, min(31, l)) + 32)
			}
		}
		for h := range 2 {
			ql := b[q6kQl+64*h : q6kQl+64*h+64]
			qh := b[q6kQh+32*h : q6kQh+32*h+32]
			Lh := L[128*h : 128*h+128]
			for l := range 32 {
				q1, q2, q3, q4 := uint8(Lh[l]), uint8(Lh[l+32]), uint8(Lh[l+64]), uint8(Lh[l+96])
				ql[l] = q1&0x0f | (q3&0x0f)<<4
				ql[l+32] = q2&0x0f | (q4&0x0f)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
}

// Q8_K (quantize_row_q8_K_ref): d = max/-127 in float32 where max is the
// signed element of largest magnitude, q = min(127, nearest_int(x*iscale))
// (ties to even), bsums = sums of 16 consecutive q.
func quantQ8K(src []float32, dst []byte) {
	const bs = 292
	for ib := 0; ib < len(src)/QK_K; ib++ {
		x := src[ib*QK_K : ib*QK_K+QK_K]
		b := dst[ib*bs : ib*bs+bs]
		max, amax := signedAbsMax(x)
		if amax == 0 {
			clear(b)
			continue
		}
		iscale := -127 / max
		qs := b[q8kQs : q8kQs+QK_K]
		for j, v := range x {
			qs[j] = uint8(int8(min(127, nearestInt(iscale*v))))
		}
		for j := range QK_K / 16 {
			sum := 0
			for _, q := range qs[16*j : 16*j+16] {
				sum += int(int8(q))
			}
			binary.LittleEndian.PutUint16(b[q8kBsums+2*j:], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(b[q8kD:], math.Float32bits(1/iscale))
	}
}
