package ggml

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// quantTypes are the types Quantize supports, with the largest RMS
// round-trip error allowed relative to the RMS of the input, for Gaussian and
// for uniform data, and on a lone outlier. The RMS bounds are about 1.25x the
// worst values measured over 12 seeds and three scales (for example Q8_0
// 0.0057, Q4_0 0.090, Q4_K 0.075, Q2_K 0.311 on Gaussian data); F16 and BF16
// sit just above their theoretical 2^-11/√3 and 2^-8/√3.
var quantTypes = []struct {
	typ              Type
	normal, uniform  float64
	outlierRelErrMax float64 // error allowed on a lone huge outlier, relative to it
}{
	{F32, 0, 0, 0},
	{F16, 3e-4, 3e-4, 1e-3},
	{BF16, 2.3e-3, 2.3e-3, 4e-3},
	{Q8_0, 0.0072, 0.0050, 1e-3},
	{Q8_1, 0.0072, 0.0050, 1e-3},
	{Q8_K, 0.0097, 0.0051, 1e-3},
	{Q6_K, 0.023, 0.0175, 1e-3},
	{Q5_0, 0.056, 0.041, 1e-3},
	{Q5_1, 0.049, 0.038, 1e-3},
	{Q5_K, 0.047, 0.036, 0.02},
	{Q4_0, 0.113, 0.086, 1e-3},
	{Q4_1, 0.102, 0.079, 1e-3},
	{Q4_K, 0.094, 0.071, 0.02},
	{Q3_K, 0.20, 0.165, 0.02},
	{Q2_K, 0.39, 0.30, 0.07},
}

func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// elemsFor is an awkward element count for t: about 1500 elements, a whole
// number of blocks, not a power of two.
func elemsFor(t Type) int {
	bs := t.BlockSize()
	return bs * max(3, 1500/bs)
}

// roundTrip quantizes x as t and dequantizes it back.
func roundTrip(t *testing.T, typ Type, x []float32) []float32 {
	t.Helper()
	q, err := Quantize(typ, x)
	if err != nil {
		t.Fatalf("Quantize(%s, %d elements): %v", typ, len(x), err)
	}
	y := make([]float32, len(x))
	if err := Dequantize(typ, q, y); err != nil {
		t.Fatalf("Dequantize(%s): %v", typ, err)
	}
	return y
}

func TestQuantizeRoundTrip(t *testing.T) {
	rng := newRand(t)
	dists := []struct {
		name string
		gen  func() float64
	}{
		{"normal", rng.NormFloat64},
		{"uniform", func() float64 { return 2*rng.Float64() - 1 }},
	}
	for _, qt := range quantTypes {
		for _, dist := range dists {
			bound := qt.normal
			if dist.name == "uniform" {
				bound = qt.uniform
			}
			worst := 0.0
			for _, scale := range []float64{0.05, 1, 300} {
				x := make([]float32, elemsFor(qt.typ))
				for i := range x {
					x[i] = float32(scale * dist.gen())
				}
				y := roundTrip(t, qt.typ, x)
				for i, v := range y {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s %s scale %g: element %d = %v", qt.typ, dist.name, scale, i, v)
					}
				}
				r := relRMS(y, x)
				worst = max(worst, r)
				if r > bound {
					t.Errorf("%s %s scale %g: relative RMS error %.5f > %.5f", qt.typ, dist.name, scale, r, bound)
				}
			}
			t.Logf("%-5s %-7s worst relative RMS error %.5f (bound %.5f)", qt.typ, dist.name, worst, bound)
		}
	}
}

// TestQuantizeZeroAndOutlier checks all-zero blocks (must decode to exact
// zeros) and blocks of small values with one huge outlier (no NaN or Inf,
// and the outlier itself survives).
func TestQuantizeZeroAndOutlier(t *testing.T) {
	rng := newRand(t)
	for _, qt := range quantTypes {
		n := elemsFor(qt.typ)
		zero := make([]float32, n)
		for i, v := range roundTrip(t, qt.typ, zero) {
			if v != 0 {
				t.Fatalf("%s: zero input decodes to %v at %d", qt.typ, v, i)
			}
		}
		for _, big := range []float32{1e4, -6e4} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			// One outlier in every block, at a random place.
			bs := max(qt.typ.BlockSize(), 32)
			var at []int
			for b := 0; b+bs <= n; b += bs {
				at = append(at, b+rng.IntN(bs))
			}
			for _, i := range at {
				x[i] = big
			}
			y := roundTrip(t, qt.typ, x)
			for i, v := range y {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s outlier %g: element %d = %v", qt.typ, big, i, v)
				}
			}
			for _, i := range at {
				if e := math.Abs(float64(y[i]-x[i])) / math.Abs(float64(x[i])); e > qt.outlierRelErrMax {
					t.Errorf("%s: outlier %g at %d decodes to %g (relative error %.4f > %g)", qt.typ, x[i], i, y[i], e, qt.outlierRelErrMax)
				}
			}
		}
	}
}

// TestRequantizeFixedPoint: quantizing the dequantized values of a Q8_0 or
// Q4_0 tensor must give back the same bytes. For Q4_0 the element that
// chose d decodes to exactly -8*d, so d is found again; for Q8_0 the
// element of largest magnitude decodes to ±127*d.
func TestRequantizeFixedPoint(t *testing.T) {
	rng := newRand(t)
	for _, typ := range []Type{Q8_0, Q4_0} {
		for _, scale := range []float64{0.05, 1, 300} {
			x := make([]float32, elemsFor(typ))
			for i := range x {
				x[i] = float32(scale * rng.NormFloat64())
			}
			q1, err := Quantize(typ, x)
			if err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := Dequantize(typ, q1, y); err != nil {
				t.Fatal(err)
			}
			q2, err := Quantize(typ, y)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(q1, q2) {
				t.Errorf("%s scale %g: quantize(dequantize(q)) != q", typ, scale)
			}
		}
	}
}

// TestRequantizeGolden re-quantizes the dequantized weights of the Q8_0 and
// Q4_0 golden models (made by llama-quantize) and expects the file's bytes.
func TestRequantizeGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		typ  Type
	}{{"llama256-q8_0", Q8_0}, {"llama256-q4_0", Q4_0}} {
		g := openGolden(t, c.name)
		checked := 0
		for name, tt := range g.tensors {
			if tt.typ != c.typ {
				continue
			}
			raw, err := g.bytesOf(tt)
			if err != nil {
				t.Fatal(err)
			}
			_, y := g.dequantTensor(t, name)
			q, err := Quantize(c.typ, y)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(q, raw) {
				t.Errorf("%s %s: re-quantized bytes differ from the file", c.name, name)
			}
			checked++
		}
		if checked == 0 {
			t.Fatalf("%s: no %s tensors", c.name, c.typ)
		}
		t.Logf("%s: %d tensors re-quantize to identical bytes", c.name, checked)
	}
}

// ggmlVectorInput builds a deterministic input from splitmix64 integers with
// exact (dyadic) arithmetic only, so it is the same on every platform. kind
// selects the shape: 0 roughly Gaussian (Irwin-Hall of 4), 1 uniform in
// [-300, 300), 2 positive, 3 mostly zeros, 4 small integers (exact ties for
// the rounding rules). Block 2 of every input is all zeros and block 5 has
// one outlier.
func ggmlVectorInput(kind, n int) []float32 {
	state := uint64(0x243f6a8885a308d3) + uint64(kind)
	next := func() uint64 {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	unit := func() float64 { return float64(next()>>40) / (1 << 24) } // [0, 1), 24 bits
	x := make([]float32, n)
	for i := range x {
		var v float64
		switch kind {
		case 0:
			v = (unit() + unit() + unit() + unit() - 2) * 0.05
		case 1:
			v = (unit()*2 - 1) * 300
		case 2:
			v = unit() + 0.5
		case 3:
			if next()%4 == 0 {
				v = unit() - 0.5
			}
		case 4:
			v = float64(int(next()%17) - 8)
		}
		x[i] = float32(v)
	}
	for i := 2 * 256; i < 3*256 && i < n; i++ {
		x[i] = 0
	}
	if 5*256+7 < n {
		x[5*256+7] = 1000
	}
	return x
}

// TestQuantizeMatchesGGML compares Quantize with ggml's own reference
// quantizers: ggmlReferenceHashes holds SHA-256 of the bytes that ggml's
// quantize_row_*_ref functions (transcribed from ggml-quants.c at llama.cpp
// commit 01243c58 into a scratch C program, compiled with gcc -O2 for
// baseline x86-64, i.e. without FMA contraction, as libggml-base is built)
// produced for ggmlVectorInput(kind, 256*24).
func TestQuantizeMatchesGGML(t *testing.T) {
	const n = 256 * 24
	if len(ggmlReferenceHashes) == 0 {
		t.Fatal("no reference hashes")
	}
	for typ, hashes := range ggmlReferenceHashes {
		for kind := range 5 {
			q, err := Quantize(typ, ggmlVectorInput(kind, n))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(q)
			if got := hex.EncodeToString(sum[:]); got != hashes[kind] {
				t.Errorf("%s input %d: sha256 %s, ggml reference %s", typ, kind, got, hashes[kind])
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	if _, err := Quantize(Q4_0, make([]float32, 33)); err == nil {
		t.Error("Quantize(Q4_0, 33 elements): no error")
	}
	if err := QuantizeInto(Q4_0, make([]byte, 17), make([]float32, 32)); err == nil {
		t.Error("QuantizeInto(Q4_0) with a 17-byte dst: no error")
	}
	for _, typ := range []Type{IQ2_XXS, IQ4_NL, TQ1_0, MXFP4, I8, F64} {
		if _, err := Quantize(typ, make([]float32, 256)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Quantize(%s): error %v does not wrap ErrUnsupported", typ, err)
		}
	}
	if _, err := Quantize(Type(4), make([]float32, 32)); err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("Quantize(retired id 4): error %v, want an unknown-type error", err)
	}
	// Empty input is a whole number (zero) of blocks.
	if q, err := Quantize(Q6_K, nil); err != nil || len(q) != 0 {
		t.Errorf("Quantize(Q6_K, nil) = %d bytes, %v", len(q), err)
	}
}

// TestQuantizeNonFinite: NaN and Inf inputs are garbage in, garbage out (as
// in ggml), but must not panic or fail.
func TestQuantizeNonFinite(t *testing.T) {
	for _, qt := range quantTypes {
		x := make([]float32, elemsFor(qt.typ))
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		x[1] = float32(math.NaN())
		x[len(x)-1] = float32(math.Inf(1))
		x[len(x)/2] = float32(math.Inf(-1))
		roundTrip(t, qt.typ, x)
	}
}
