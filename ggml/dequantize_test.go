package ggml

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// The tests in this file build blocks byte by byte from the layouts in
// ggml-common.h and compute the expected floats from those layouts, never by
// calling the code under test. Scales are small powers of two (exact f16 bit
// patterns written out), so every expected value is exact.

// f16 bit patterns used below.
const (
	h0125 = 0x3000 // 0.125
	h025  = 0x3400 // 0.25
	h05   = 0x3800 // 0.5
	h1    = 0x3c00 // 1
	h2    = 0x4000 // 2
	h3    = 0x4200 // 3
	hm125 = 0xbd00 // -1.25
)

func put16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }

// checkDequant dequantizes src as typ and compares with want exactly; the
// spot map holds a few values worked out by hand in comments as an extra
// check of the test's own index arithmetic.
func checkDequant(t *testing.T, typ Type, src []byte, want []float32, spot map[int]float32) {
	t.Helper()
	if len(src) != typ.TypeSize()*len(want)/typ.BlockSize() {
		t.Fatalf("%s: test built %d bytes for %d elements", typ, len(src), len(want))
	}
	got := make([]float32, len(want))
	if err := Dequantize(typ, src, got); err != nil {
		t.Fatalf("Dequantize(%s): %v", typ, err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("%s element %d = %v, want %v", typ, i, got[i], want[i])
		}
	}
	for i, v := range spot {
		if want[i] != v {
			t.Errorf("%s: test's own expected[%d] = %v, hand value %v", typ, i, want[i], v)
		}
	}
}

func TestDequantizeFloats(t *testing.T) {
	f32 := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 1, 0, 0, 0} // 1, -2, smallest subnormal
	checkDequant(t, F32, f32, []float32{1, -2, math.Float32frombits(1)}, nil)

	f16 := []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c, 0x55, 0x35, 0xff, 0x7b, 0x00, 0x80}
	checkDequant(t, F16, f16, []float32{1, -2, 0x1p-24, float32(math.Inf(1)), 0.333251953125, 65504, float32(math.Copysign(0, -1))}, nil)

	bf16 := []byte{0x80, 0x3f, 0x49, 0xc0, 0x01, 0x00, 0x80, 0xff}
	checkDequant(t, BF16, bf16, []float32{1, -3.140625, math.Float32frombits(0x00010000), float32(math.Inf(-1))}, nil)
}

func TestDequantizeQ4_0(t *testing.T) {
	// Two blocks: d = 0.5 and d = -2; qs[j] = j | (15-j)<<4.
	b := make([]byte, 2*18)
	var want []float32
	for blk, dd := range []struct {
		bits uint16
		d    float32
	}{{h05, 0.5}, {0xc000, -2}} {
		o := blk * 18
		put16(b[o:], dd.bits)
		for j := range 16 {
			b[o+2+j] = byte(j) | byte(15-j)<<4
		}
		vals := make([]float32, 32)
		for j := range 16 {
			vals[j] = float32(j-8) * dd.d    // low nibble of qs[j]
			vals[j+16] = float32(7-j) * dd.d // high nibble: 15-j-8
		}
		want = append(want, vals...)
	}
	// Element 0: nibble 0 -> (0-8)*0.5 = -4; element 16: nibble 15 -> 3.5;
	// element 32+5: (5-8)*-2 = 6.
	checkDequant(t, Q4_0, b, want, map[int]float32{0: -4, 16: 3.5, 37: 6})
}

func TestDequantizeQ4_1(t *testing.T) {
	b := make([]byte, 20)
	put16(b, h025)
	put16(b[2:], hm125)
	want := make([]float32, 32)
	for j := range 16 {
		lo, hi := j, (3*j)%16
		b[4+j] = byte(lo) | byte(hi)<<4
		want[j] = float32(lo)*0.25 - 1.25
		want[j+16] = float32(hi)*0.25 - 1.25
	}
	// Element 3: 3*0.25-1.25 = -0.5; element 16+7: nibble 21%16=5 -> 0.
	checkDequant(t, Q4_1, b, want, map[int]float32{3: -0.5, 23: 0})
}

func TestDequantizeQ5_0(t *testing.T) {
	b := make([]byte, 22)
	put16(b, h2)
	const qh = 0xa5a50f0f
	binary.LittleEndian.PutUint32(b[2:], qh)
	want := make([]float32, 32)
	for j := range 16 {
		b[6+j] = byte(j) | byte(15-j)<<4
	}
	for k := range 32 {
		lo := k // low nibble of qs[k] for k < 16
		if k >= 16 {
			lo = 15 - (k - 16) // high nibble of qs[k-16]
		}
		hi := (qh >> k) & 1 // bit k of qh is the 5th bit of element k
		want[k] = float32(lo+16*int(hi)-16) * 2
	}
	// Element 0: lo 0, qh bit 0 = 1 -> (16-16)*2 = 0. Element 4: lo 4, bit 4
	// of 0x0f = 0 -> (4-16)*2 = -24. Element 31: lo 0, bit 31 = 1 -> 0.
	// Element 16: lo 15, bit 16 of 0xa5a5xxxx = 1 -> (31-16)*2 = 30.
	checkDequant(t, Q5_0, b, want, map[int]float32{0: 0, 4: -24, 31: 0, 16: 30})
}

func TestDequantizeQ5_1(t *testing.T) {
	b := make([]byte, 24)
	put16(b, h05)
	put16(b[2:], h3)
	const qh = 0x80000001
	binary.LittleEndian.PutUint32(b[4:], qh)
	want := make([]float32, 32)
	for j := range 16 {
		b[8+j] = byte(15-j) | byte(j)<<4
	}
	for k := range 32 {
		lo := 15 - k
		if k >= 16 {
			lo = k - 16
		}
		hi := int(qh>>k) & 1
		want[k] = float32(lo+16*hi)*0.5 + 3
	}
	// Element 0: 15+16 = 31 -> 15.5+3 = 18.5; element 31: 15+16 -> 18.5;
	// element 1: 14 -> 10.
	checkDequant(t, Q5_1, b, want, map[int]float32{0: 18.5, 31: 18.5, 1: 10})
}

func TestDequantizeQ8_0(t *testing.T) {
	b := make([]byte, 34)
	put16(b, h0125)
	want := make([]float32, 32)
	for j := range 32 {
		q := int8(j*8 - 128)
		b[2+j] = byte(q)
		want[j] = float32(q) * 0.125
	}
	checkDequant(t, Q8_0, b, want, map[int]float32{0: -16, 31: 15})
}

func TestDequantizeQ8_1(t *testing.T) {
	b := make([]byte, 36)
	put16(b, h025)
	put16(b[2:], 0x7bff) // s is only for dot products; must be ignored
	want := make([]float32, 32)
	for j := range 32 {
		q := int8(127 - 9*j)
		b[4+j] = byte(q)
		want[j] = float32(q) * 0.25
	}
	checkDequant(t, Q8_1, b, want, map[int]float32{0: 31.75, 31: (127 - 279 + 256) * 0.25})
}

// packQ2Test stores 2-bit values q[0:256] the Q2_K/Q3_K way: element
// 128*h + 32*k + l lives in bits 2k..2k+1 of qs[32*h + l].
func packQ2Test(qs []byte, q func(e int) int) {
	for e := range 256 {
		h, k, l := e/128, (e%128)/32, e%32
		qs[32*h+l] |= byte(q(e)) << (2 * k)
	}
}

func TestDequantizeQ2K(t *testing.T) {
	b := make([]byte, 84)
	scales, qs := b[0:16], b[16:80]
	put16(b[80:], h05)  // d
	put16(b[82:], h025) // dmin
	q := func(e int) int { return (e*7 + e/16) % 4 }
	for s := range 16 {
		scales[s] = byte(s) | byte(15-s)<<4 // scale s, min 15-s
	}
	packQ2Test(qs, q)
	want := make([]float32, 256)
	for e := range want {
		s := e / 16
		want[e] = 0.5*float32(s)*float32(q(e)) - 0.25*float32(15-s)
	}
	// Element 0: q 0, scale 0, min 15 -> -3.75. Element 32 (sub-block 2,
	// bits 2-3 of qs[0]): q = (224+2)%4 = 2, scale 2, min 13 -> 2 - 3.25 =
	// -1.25. Element 255: q = (1785+15)%4 = 0, min 0 -> 0.
	checkDequant(t, Q2_K, b, want, map[int]float32{0: -3.75, 32: -1.25, 255: 0})
}

func TestDequantizeQ3K(t *testing.T) {
	b := make([]byte, 110)
	hmask, qs, scales := b[0:32], b[32:96], b[96:108]
	put16(b[108:], h025)
	sc := func(j int) int { return 4*j - 32 } // signed 6-bit scale of sub-block j
	for j := range 16 {
		u := sc(j) + 32 // stored biased by 32
		if j < 8 {
			scales[j] |= byte(u & 0x0f)
		} else {
			scales[j-8] |= byte(u&0x0f) << 4
		}
		scales[8+j%4] |= byte(u>>4) << (2 * (j / 4))
	}
	q2 := func(e int) int { return (e + e/7) % 4 }
	hbit := func(e int) bool { return (e*5)%3 == 0 }
	packQ2Test(qs, q2)
	for e := range 256 {
		if hbit(e) {
			hmask[e%32] |= 1 << (e / 32) // element e: bit e/32 of hmask[e%32]
		}
	}
	want := make([]float32, 256)
	for e := range want {
		q := q2(e)
		if !hbit(e) {
			q -= 4
		}
		want[e] = 0.25 * float32(sc(e/16)) * float32(q)
	}
	// Element 0: q2 0, high bit set -> q 0 -> 0. Element 1: q2 1, (5%3) != 0
	// so no high bit -> 1-4 = -3, scale -32 -> 0.25*-32*-3 = 24. Element 250
	// (sub-block 15, scale 28): q2 = (250+35)%4 = 1, 1250%3 = 2 -> -3 ->
	// 0.25*28*-3 = -21.
	checkDequant(t, Q3_K, b, want, map[int]float32{0: 0, 1: 24, 250: -21})
}

// packScaleMinTest stores the 8 6-bit scales and mins of Q4_K/Q5_K: for
// j < 4 scale j and min j are the low 6 bits of bytes j and j+4; for j >= 4
// their low 4 bits are the two nibbles of byte j+4 and their top 2 bits the
// top bits of bytes j-4 (scale) and j (min).
func packScaleMinTest(s []byte, sc, mn func(j int) int) {
	for j := range 4 {
		s[j] = byte(sc(j)) | byte(sc(j+4)>>4)<<6
		s[j+4] = byte(mn(j)) | byte(mn(j+4)>>4)<<6
		s[j+8] = byte(sc(j+4)&0x0f) | byte(mn(j+4)&0x0f)<<4
	}
}

func TestDequantizeQ4K(t *testing.T) {
	b := make([]byte, 144)
	put16(b[0:], h05)  // d
	put16(b[2:], h025) // dmin
	sc := func(j int) int { return 63 - 5*j }
	mn := func(j int) int { return 7*j + 3 }
	packScaleMinTest(b[4:16], sc, mn)
	qs := b[16:144]
	q := func(e int) int { return (e*3 + e/32) % 16 }
	for e := range 256 {
		g, w := e/64, e%64
		if w < 32 {
			qs[32*g+w] |= byte(q(e)) // first 32 of a group: low nibbles
		} else {
			qs[32*g+w-32] |= byte(q(e)) << 4
		}
	}
	want := make([]float32, 256)
	for e := range want {
		j := e / 32
		want[e] = 0.5*float32(sc(j))*float32(q(e)) - 0.25*float32(mn(j))
	}
	// Element 1: q 3, scale 63, min 3 -> 94.5 - 0.75 = 93.75. Element 255:
	// q = (765+7)%16 = 4, scale 28, min 52 -> 56 - 13 = 43.
	checkDequant(t, Q4_K, b, want, map[int]float32{1: 93.75, 255: 43})
}

func TestDequantizeQ5K(t *testing.T) {
	b := make([]byte, 176)
	put16(b[0:], h025)                     // d
	put16(b[2:], h05)                      // dmin
	sc := func(j int) int { return 9 * j } // 0..63
	mn := func(j int) int { return 60 - 8*j }
	packScaleMinTest(b[4:16], sc, mn)
	qh, qs := b[16:48], b[48:176]
	q := func(e int) int { return (e*11 + e/64) % 32 }
	for e := range 256 {
		g, w := e/64, e%64
		l, bit := w, 2*g
		if w >= 32 {
			l, bit = w-32, 2*g+1
		}
		if w < 32 {
			qs[32*g+l] |= byte(q(e) & 0x0f)
		} else {
			qs[32*g+l] |= byte(q(e)&0x0f) << 4
		}
		if q(e) >= 16 {
			qh[l] |= 1 << bit
		}
	}
	want := make([]float32, 256)
	for e := range want {
		j := e / 32
		want[e] = 0.25*float32(sc(j))*float32(q(e)) - 0.5*float32(mn(j))
	}
	// Element 2: q 22, scale 0, min 60 -> -30. Element 33 (second half of
	// group 0, sub-block 1): q = (363+0)%32 = 11, scale 9, min 52 -> 24.75 -
	// 26 = -1.25. Element 200 (group 3, first half, sub-block 6): q =
	// (2200+3)%32 = 27 (needs bit 6 of qh[8]), scale 54, min 12 -> 364.5 - 6
	// = 358.5.
	checkDequant(t, Q5_K, b, want, map[int]float32{2: -30, 33: -1.25, 200: 358.5})
}

func TestDequantizeQ6K(t *testing.T) {
	b := make([]byte, 210)
	ql, qh, scales := b[0:128], b[128:192], b[192:208]
	put16(b[208:], h0125)
	sc := func(s int) int { return 17*s - 128 } // int8 scales, -128..127
	for s := range 16 {
		scales[s] = byte(int8(sc(s)))
	}
	q := func(e int) int { return (e*13 + e/16) % 64 } // stored 6-bit value
	for e := range 256 {
		h, r := e/128, e%128
		k, l := r/32, r%32
		lo, hi := byte(q(e)&0x0f), byte(q(e)>>4)
		switch k {
		case 0:
			ql[64*h+l] |= lo
		case 1:
			ql[64*h+32+l] |= lo
		case 2:
			ql[64*h+l] |= lo << 4
		case 3:
			ql[64*h+32+l] |= lo << 4
		}
		qh[32*h+l] |= hi << (2 * k)
	}
	want := make([]float32, 256)
	for e := range want {
		want[e] = 0.125 * float32(sc(e/16)) * float32(q(e)-32)
	}
	// Element 0: q 0 -> -32, scale -128 -> 0.125*-128*-32 = 512. Element 130
	// (second half, quarter 0): q = (1690+8)%64 = 34 -> 2, scale 8 ->
	// 0.125*8*2 = 2.
	checkDequant(t, Q6_K, b, want, map[int]float32{0: 512, 130: 2})
}

func TestDequantizeQ8K(t *testing.T) {
	b := make([]byte, 292)
	binary.LittleEndian.PutUint32(b, math.Float32bits(-0.375))
	want := make([]float32, 256)
	for j := range 256 {
		q := int8(j*5 - 300)
		b[4+j] = byte(q)
		want[j] = -0.375 * float32(q)
	}
	for j := range 16 {
		binary.LittleEndian.PutUint16(b[260+2*j:], 0xffff) // bsums are ignored
	}
	// Element 0: int8(-300) = -44 -> 16.5.
	checkDequant(t, Q8_K, b, want, map[int]float32{0: 16.5})
}

func TestDequantizeErrors(t *testing.T) {
	dst := make([]float32, 64)
	if err := Dequantize(Q4_0, make([]byte, 35), dst); err == nil {
		t.Error("Dequantize(Q4_0) with 35 bytes for 64 elements: no error")
	}
	if err := Dequantize(Q4_K, make([]byte, 144), make([]float32, 200)); err == nil {
		t.Error("Dequantize(Q4_K) into 200 elements: no error")
	}
	for _, typ := range []Type{IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M, TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0, Q2_0, I8, I16, I32, I64, F64} {
		n := typ.BlockSize()
		src := make([]byte, typ.TypeSize())
		err := Dequantize(typ, src, make([]float32, n))
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("Dequantize(%s): error %v does not wrap ErrUnsupported", typ, err)
		}
		if typ.Supported() {
			t.Errorf("%s reports Supported", typ)
		}
	}
	err := Dequantize(Type(5), nil, nil)
	if err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("Dequantize(retired id 5): error %v, want an unknown-type error", err)
	}
	if err := Dequantize(Q8_0, nil, nil); err != nil {
		t.Errorf("Dequantize of zero elements: %v", err)
	}
}

// TestTypeTable pins the ids, block sizes and type sizes to ggml's (ggml.h
// enum ggml_type, ggml-common.h block structs).
func TestTypeTable(t *testing.T) {
	tests := []struct {
		typ       Type
		id        uint32
		name      string
		blockSize int
		typeSize  int
	}{
		{F32, 0, "F32", 1, 4}, {F16, 1, "F16", 1, 2}, {Q4_0, 2, "Q4_0", 32, 2 + 16},
		{Q4_1, 3, "Q4_1", 32, 4 + 16}, {Q5_0, 6, "Q5_0", 32, 2 + 4 + 16}, {Q5_1, 7, "Q5_1", 32, 4 + 4 + 16},
		{Q8_0, 8, "Q8_0", 32, 2 + 32}, {Q8_1, 9, "Q8_1", 32, 4 + 32},
		{Q2_K, 10, "Q2_K", 256, 16 + 64 + 4}, {Q3_K, 11, "Q3_K", 256, 32 + 64 + 12 + 2},
		{Q4_K, 12, "Q4_K", 256, 4 + 12 + 128}, {Q5_K, 13, "Q5_K", 256, 4 + 12 + 32 + 128},
		{Q6_K, 14, "Q6_K", 256, 128 + 64 + 16 + 2}, {Q8_K, 15, "Q8_K", 256, 4 + 256 + 32},
		{IQ2_XXS, 16, "IQ2_XXS", 256, 2 + 64}, {IQ2_XS, 17, "IQ2_XS", 256, 2 + 64 + 8},
		{IQ3_XXS, 18, "IQ3_XXS", 256, 2 + 96}, {IQ1_S, 19, "IQ1_S", 256, 2 + 32 + 16},
		{IQ4_NL, 20, "IQ4_NL", 32, 2 + 16}, {IQ3_S, 21, "IQ3_S", 256, 2 + 64 + 8 + 32 + 4},
		{IQ2_S, 22, "IQ2_S", 256, 2 + 64 + 16}, {IQ4_XS, 23, "IQ4_XS", 256, 2 + 2 + 4 + 128},
		{I8, 24, "I8", 1, 1}, {I16, 25, "I16", 1, 2}, {I32, 26, "I32", 1, 4}, {I64, 27, "I64", 1, 8},
		{F64, 28, "F64", 1, 8}, {IQ1_M, 29, "IQ1_M", 256, 32 + 16 + 8}, {BF16, 30, "BF16", 1, 2},
		{TQ1_0, 34, "TQ1_0", 256, 48 + 4 + 2}, {TQ2_0, 35, "TQ2_0", 256, 64 + 2},
		{MXFP4, 39, "MXFP4", 32, 1 + 16}, {NVFP4, 40, "NVFP4", 64, 4 + 32},
		{Q1_0, 41, "Q1_0", 128, 2 + 16}, {Q2_0, 42, "Q2_0", 64, 2 + 16},
	}
	for _, tt := range tests {
		if uint32(tt.typ) != tt.id || tt.typ.String() != tt.name || tt.typ.BlockSize() != tt.blockSize || tt.typ.TypeSize() != tt.typeSize {
			t.Errorf("%s: id %d block %d size %d, want %s id %d block %d size %d",
				tt.typ, uint32(tt.typ), tt.typ.BlockSize(), tt.typ.TypeSize(), tt.name, tt.id, tt.blockSize, tt.typeSize)
		}
	}
	for _, id := range []uint32{4, 5, 31, 32, 33, 36, 37, 38, 43} {
		if Type(id).Known() {
			t.Errorf("retired or unassigned id %d is Known", id)
		}
	}
}
