package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestFP16RoundTripExhaustive converts every one of the 65536 half values to
// float32 and back; everything but NaN must come back bit for bit, and NaNs
// must stay NaN (quieted, sign and top payload kept).
func TestFP16RoundTripExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := FP16ToFP32(h)
		isNaN := h&0x7c00 == 0x7c00 && h&0x3ff != 0
		if isNaN {
			if !math.IsNaN(float64(f)) {
				t.Fatalf("FP16ToFP32(%#04x) = %v, want NaN", h, f)
			}
			back := FP32ToFP16(f)
			if want := h | 0x200; back != want {
				t.Fatalf("NaN %#04x: round trip gave %#04x, want %#04x (quieted)", h, back, want)
			}
			continue
		}
		if back := FP32ToFP16(f); back != h {
			t.Fatalf("FP32ToFP16(FP16ToFP32(%#04x) = %v) = %#04x", h, f, back)
		}
	}
}

// TestFP16ToFP32Values checks the decoder against the IEEE definition
// computed in float64.
func TestFP16ToFP32Values(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		exp := int(h>>10) & 0x1f
		mant := float64(h & 0x3ff)
		var want float64
		switch exp {
		case 0:
			want = mant * math.Pow(2, -24)
		case 0x1f:
			if mant != 0 {
				continue // NaN, checked elsewhere
			}
			want = math.Inf(1)
		default:
			want = (1 + mant/1024) * math.Pow(2, float64(exp-15))
		}
		if h&0x8000 != 0 {
			want = -want
		}
		got := FP16ToFP32(h)
		if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
			t.Fatalf("FP16ToFP32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

// TestFP32ToFP16Hand checks rounding on hand-picked values: ties go to even,
// overflow goes to infinity, underflow to subnormals and signed zero.
func TestFP32ToFP16Hand(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"zero", 0, 0x0000},
		{"minus zero", float32(math.Copysign(0, -1)), 0x8000},
		{"max half", 65504, 0x7bff},
		{"tie above max rounds to inf (odd)", 65520, 0x7c00},
		{"just below tie above max", math.Nextafter32(65520, 0), 0x7bff},
		{"inf", float32(math.Inf(1)), 0x7c00},
		{"minus inf", float32(math.Inf(-1)), 0xfc00},
		{"1+2^-11 tie to even (down)", 1 + 1.0/2048, 0x3c00},
		{"1+3*2^-11 tie to even (up)", 1 + 3.0/2048, 0x3c02},
		{"1+2^-11 plus ulp rounds up", math.Nextafter32(1+1.0/2048, 2), 0x3c01},
		{"smallest subnormal", 0x1p-24, 0x0001},
		{"2^-25 tie to zero (even)", 0x1p-25, 0x0000},
		{"just above 2^-25 rounds up", math.Nextafter32(0x1p-25, 1), 0x0001},
		{"1.5*2^-24 tie to even (up to 2)", 1.5 * 0x1p-24, 0x0002},
		{"2.5*2^-24 tie to even (down to 2)", 2.5 * 0x1p-24, 0x0002},
		{"largest subnormal", 1023 * 0x1p-24, 0x03ff},
		{"rounds up to smallest normal", 1023.5 * 0x1p-24, 0x0400},
		{"smallest normal", 0x1p-14, 0x0400},
		{"tiny negative to minus zero", -1e-10, 0x8000},
		{"f32 subnormal to zero", 1e-40, 0x0000},
		{"quiet NaN", float32(math.NaN()), 0x7e00},
		{"NaN payload kept (top bits)", math.Float32frombits(0x7f802000), 0x7e01},
		{"negative NaN", math.Float32frombits(0xffc00000), 0xfe00},
		{"0.1", 0.1, 0x2e66},
		{"1/3", float32(1.0 / 3), 0x3555},
	}
	for _, tt := range tests {
		if got := FP32ToFP16(tt.f); got != tt.want {
			t.Errorf("%s: FP32ToFP16(%g) = %#04x, want %#04x", tt.name, tt.f, got, tt.want)
		}
	}
}

// TestFP32ToFP16Nearest checks on random float32 bit patterns (all exponents)
// that the result is a nearest half and that ties go to the even one.
func TestFP32ToFP16Nearest(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for range 300000 {
		f := math.Float32frombits(rng.Uint32())
		// Concentrate on the half range, where rounding is interesting.
		if rng.IntN(2) == 0 {
			f = math.Float32frombits(rng.Uint32N(0x47800000-0x33000000) + 0x33000000)
			if rng.IntN(2) == 0 {
				f = -f
			}
		}
		if math.IsNaN(float64(f)) {
			continue
		}
		h := FP32ToFP16(f)
		checkNearestHalf(t, f, h)
	}
}

func checkNearestHalf(t *testing.T, f float32, h uint16) {
	t.Helper()
	x := float64(f)
	got := float64(FP16ToFP32(h))
	if math.IsInf(got, 0) {
		// Only values at or past the halfway point to 65536 may overflow.
		if math.Abs(x) < 65520 {
			t.Fatalf("FP32ToFP16(%g) = inf", f)
		}
		return
	}
	if math.Abs(x) >= 65520 {
		t.Fatalf("FP32ToFP16(%g) = %g, want inf", f, got)
	}
	errGot := math.Abs(got - x)
	// Neighbours of h in magnitude (same sign); h±1 in the bit pattern.
	for _, n := range []uint16{h + 1, h - 1} {
		if n&0x7c00 == 0x7c00 || (h&0x7fff == 0 && n == h-1) {
			continue
		}
		nv := float64(FP16ToFP32(n))
		errN := math.Abs(nv - x)
		if errN < errGot || (errN == errGot && h&1 == 1) {
			t.Fatalf("FP32ToFP16(%g) = %#04x (%g), but %#04x (%g) is nearer or the even tie", f, h, got, n, nv)
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"minus one", -1, 0xbf80},
		{"tie to even (down)", math.Float32frombits(0x3f808000), 0x3f80},
		{"tie to even (up)", math.Float32frombits(0x3f818000), 0x3f82},
		{"above tie", math.Float32frombits(0x3f808001), 0x3f81},
		{"below tie", math.Float32frombits(0x3f807fff), 0x3f80},
		{"max finite rounds to inf", math.MaxFloat32, 0x7f80},
		{"inf", float32(math.Inf(1)), 0x7f80},
		{"subnormal kept", math.Float32frombits(0x00010000), 0x0001},
		{"signalling NaN made quiet", math.Float32frombits(0x7f800001), 0x7fc0},
		{"quiet NaN", math.Float32frombits(0x7fc00000), 0x7fc0},
		{"negative NaN payload", math.Float32frombits(0xff812345), 0xffc1},
	}
	for _, tt := range tests {
		if got := FP32ToBF16(tt.f); got != tt.want {
			t.Errorf("%s: FP32ToBF16(%#08x) = %#04x, want %#04x", tt.name, math.Float32bits(tt.f), got, tt.want)
		}
	}
	// bf16 -> f32 -> bf16 is the identity except NaN quieting.
	for i := range 1 << 16 {
		h := uint16(i)
		f := BF16ToFP32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToFP32(%#04x) bits %#08x", h, math.Float32bits(f))
		}
		want := h
		if h&0x7f80 == 0x7f80 && h&0x7f != 0 {
			want |= 0x40
		}
		if back := FP32ToBF16(f); back != want {
			t.Fatalf("FP32ToBF16(BF16ToFP32(%#04x)) = %#04x, want %#04x", h, back, want)
		}
	}
}
