package compute

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// ropeTol bounds the difference between the op (ggml's float32 arithmetic,
// the angle advanced by repeated float32 multiplication) and an exact float64
// rotation, for positions below 256: the angle error is a few float32 ulps of
// angles up to 256 rad, about 1e-5 rad.
const ropeTol = 1e-4

// ropeWant64 rotates x [n, heads, hd] exactly, in float64, from the formula:
// theta_i = p · base^(-2i/nRot), with linear scaling and YaRN as ggml defines them.
func ropeWant64(x []float32, n, heads, hd int, pos []int32, p RoPEParams) []float64 {
	fs := float64(p.FreqScale)
	if fs == 0 {
		fs = 1
	}
	mscale := float64(p.AttnFactor)
	if mscale == 0 && p.ExtFactor == 0 {
		mscale = 1
	}
	var low, high float64
	if p.ExtFactor != 0 {
		corr := func(beta float64) float64 {
			return float64(p.NRot) * math.Log(float64(p.OrigCtx)/(beta*2*math.Pi)) / (2 * math.Log(float64(p.FreqBase)))
		}
		low = max(0, math.Floor(corr(float64(p.BetaFast))))
		high = min(float64(p.NRot-1), math.Ceil(corr(float64(p.BetaSlow))))
		mscale *= 1 + 0.1*math.Log(1/fs)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	half := p.NRot / 2
	for t := range n {
		for h := range heads {
			row := out[(t*heads+h)*hd : (t*heads+h+1)*hd]
			for i := range half {
				extrap := float64(pos[t]) * math.Pow(float64(p.FreqBase), -2*float64(i)/float64(p.NRot))
				if p.FreqFactors != nil {
					extrap /= float64(p.FreqFactors.F32[i])
				}
				theta := fs * extrap
				if p.ExtFactor != 0 {
					ramp := 1 - min(1, max(0, (float64(i)-low)/max(0.001, high-low)))
					mix := ramp * float64(p.ExtFactor)
					theta = theta*(1-mix) + extrap*mix
				}
				a, b := 2*i, 2*i+1
				if p.Kind == RoPENeoX {
					a, b = i, i+half
				}
				x0, x1 := row[a], row[b]
				c, s := math.Cos(theta)*mscale, math.Sin(theta)*mscale
				row[a], row[b] = x0*c-x1*s, x0*s+x1*c
			}
		}
	}
	return out
}

func randPositions(n int, below int32, rng interface{ Int32N(int32) int32 }) []int32 {
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = rng.Int32N(below)
	}
	return pos
}

func TestRoPEAgainstFloat64(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const n, heads, hd = 5, 3, 38
	for _, tc := range []struct {
		name string
		p    RoPEParams
	}{
		{"norm full", RoPEParams{Kind: RoPENorm, NRot: hd, FreqBase: 10000, FreqScale: 1}},
		{"neox full", RoPEParams{Kind: RoPENeoX, NRot: hd, FreqBase: 1e6, FreqScale: 1}},
		{"norm partial", RoPEParams{Kind: RoPENorm, NRot: 16, FreqBase: 10000}},
		{"neox partial", RoPEParams{Kind: RoPENeoX, NRot: 22, FreqBase: 5e5}},
		{"neox linear", RoPEParams{Kind: RoPENeoX, NRot: hd, FreqBase: 1e6, FreqScale: 0.125}},
		{"norm yarn", RoPEParams{Kind: RoPENorm, NRot: hd, FreqBase: 10000, FreqScale: 0.25,
			ExtFactor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 4096}},
		{"neox yarn partial mix", RoPEParams{Kind: RoPENeoX, NRot: 30, FreqBase: 1e6, FreqScale: 0.1,
			ExtFactor: 0.5, AttnFactor: 0.9, BetaFast: 32, BetaSlow: 1, OrigCtx: 32768}},
		// Llama 3's rope_freqs: low-frequency pairs divided by up to 8.
		{"norm freq factors", RoPEParams{Kind: RoPENorm, NRot: hd, FreqBase: 500000, FreqScale: 1,
			FreqFactors: f32("ff", llama3Factors(hd/2), hd/2)}},
		{"neox partial freq factors yarn", RoPEParams{Kind: RoPENeoX, NRot: 22, FreqBase: 1e6, FreqScale: 0.5,
			ExtFactor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 4096,
			FreqFactors: f32("ff", randFactors(rng, 11), 11)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := f32("x", randVec(rng, n*heads*hd, 2), n, heads, hd)
			pos := randPositions(n, 256, rng)
			pos[0] = 255
			want := ropeWant64(x.F32, n, heads, hd, pos, tc.p)
			if err := r.RoPE(x, pos, tc.p); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "rope", x.F32, want, ropeTol)
		})
	}
}

func TestRoPEPositionZeroIsIdentity(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	for _, p := range []RoPEParams{
		{Kind: RoPENorm, NRot: 24, FreqBase: 10000, FreqScale: 1, AttnFactor: 1},
		{Kind: RoPENeoX, NRot: 20, FreqBase: 1e6, FreqScale: 0.125},
	} {
		x := f32("x", randVec(rng, 4*2*24, 3), 4, 2, 24)
		in := append([]float32(nil), x.F32...)
		if err := r.RoPE(x, make([]int32, 4), p); err != nil {
			t.Fatal(err)
		}
		for i := range in {
			if x.F32[i] != in[i] {
				t.Fatalf("%+v: element %d changed at position 0: %v -> %v", p, i, in[i], x.F32[i])
			}
		}
	}
}

func TestRoPEPairingHand(t *testing.T) {
	// hd = NRot = 4, base 10000, position 1: pair 0 turns by 1 rad, pair 1 by
	// 10000^(-1/2) = 0.01 rad. NORM pairs (0,1),(2,3); NEOX pairs (0,2),(1,3).
	r := NewReference()
	for _, tc := range []struct {
		kind RoPEKind
		want []float64
	}{
		{RoPENorm, []float64{-1.1426396637476532, 1.922075596544176, 2.9598506679133294, 4.029799501669161}},
		{RoPENeoX, []float64{-1.9841106485555495, 1.959900667496664, 2.4623779024123156, 4.019799668334994}},
	} {
		x := f32("x", []float32{1, 2, 3, 4}, 1, 1, 4)
		if err := r.RoPE(x, []int32{1}, RoPEParams{Kind: tc.kind, NRot: 4, FreqBase: 10000, FreqScale: 1}); err != nil {
			t.Fatal(err)
		}
		checkClose(t, fmt.Sprintf("kind %d", tc.kind), x.F32, tc.want, 1e-6)
	}
}

func TestRoPEPartialLeavesTail(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const n, heads, hd, nRot = 5, 4, 32, 16
	for _, kind := range []RoPEKind{RoPENorm, RoPENeoX} {
		x := f32("x", randVec(rng, n*heads*hd, 1), n, heads, hd)
		in := append([]float32(nil), x.F32...)
		if err := r.RoPE(x, randPositions(n, 100, rng), RoPEParams{Kind: kind, NRot: nRot, FreqBase: 10000}); err != nil {
			t.Fatal(err)
		}
		changed := 0
		for i := range in {
			if i%hd >= nRot {
				if x.F32[i] != in[i] {
					t.Fatalf("kind %d: tail element %d (dim %d >= NRot %d) changed", kind, i, i%hd, nRot)
				}
			} else if x.F32[i] != in[i] {
				changed++
			}
		}
		if changed == 0 {
			t.Fatalf("kind %d: nothing rotated", kind)
		}
	}
}

func TestRoPEPreservesPairNorm(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const n, heads, hd = 6, 2, 26
	for _, kind := range []RoPEKind{RoPENorm, RoPENeoX} {
		x := f32("x", randVec(rng, n*heads*hd, 4), n, heads, hd)
		in := append([]float32(nil), x.F32...)
		if err := r.RoPE(x, randPositions(n, 5000, rng), RoPEParams{Kind: kind, NRot: hd, FreqBase: 10000, FreqScale: 0.5}); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for row := range n * heads {
			for i := range hd / 2 {
				a, b := row*hd+2*i, row*hd+2*i+1
				if kind == RoPENeoX {
					a, b = row*hd+i, row*hd+i+hd/2
				}
				before := math.Hypot(float64(in[a]), float64(in[b]))
				after := math.Hypot(float64(x.F32[a]), float64(x.F32[b]))
				worst = max(worst, math.Abs(after-before)/max(before, 1e-3))
			}
		}
		// cos² + sin² = 1 up to float32 rounding of cos, sin and the products.
		if worst > 1e-6 {
			t.Fatalf("kind %d: pair norm changed by %.3g relative", kind, worst)
		}
		t.Logf("kind %d: worst pair-norm change %.3g (tolerance 1e-6)", kind, worst)
	}
}

func TestRoPELinearScalingIsScaledPositions(t *testing.T) {
	// Linear scaling by 1/4 at position 4q rotates like no scaling at q. With
	// a power-of-two factor the float32 arithmetic agrees exactly, too.
	rng := newRNG(t)
	r := NewReference()
	const n, heads, hd = 5, 2, 24
	pos := randPositions(n, 64, rng)
	scaled := make([]int32, n)
	for i := range pos {
		scaled[i] = 4 * pos[i]
	}
	for _, kind := range []RoPEKind{RoPENorm, RoPENeoX} {
		a := f32("a", randVec(rng, n*heads*hd, 1), n, heads, hd)
		b := f32("b", append([]float32(nil), a.F32...), n, heads, hd)
		if err := r.RoPE(a, scaled, RoPEParams{Kind: kind, NRot: hd, FreqBase: 10000, FreqScale: 0.25}); err != nil {
			t.Fatal(err)
		}
		if err := r.RoPE(b, pos, RoPEParams{Kind: kind, NRot: hd, FreqBase: 10000, FreqScale: 1}); err != nil {
			t.Fatal(err)
		}
		for i := range a.F32 {
			if a.F32[i] != b.F32[i] {
				t.Fatalf("kind %d: element %d: scale 1/4 at 4p gives %v, scale 1 at p gives %v", kind, i, a.F32[i], b.F32[i])
			}
		}
	}
}

func TestRoPEDefaults(t *testing.T) {
	// FreqScale 0 means 1, and AttnFactor 0 means 1 without YaRN.
	rng := newRNG(t)
	r := NewReference()
	x := randVec(rng, 3*2*16, 1)
	pos := []int32{7, 0, 190}
	a := f32("a", append([]float32(nil), x...), 3, 2, 16)
	b := f32("b", append([]float32(nil), x...), 3, 2, 16)
	if err := r.RoPE(a, pos, RoPEParams{Kind: RoPENorm, NRot: 16, FreqBase: 10000}); err != nil {
		t.Fatal(err)
	}
	if err := r.RoPE(b, pos, RoPEParams{Kind: RoPENorm, NRot: 16, FreqBase: 10000, FreqScale: 1, AttnFactor: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range a.F32 {
		if a.F32[i] != b.F32[i] {
			t.Fatalf("element %d: zero-valued defaults give %v, explicit ones %v", i, a.F32[i], b.F32[i])
		}
	}
}

func TestRoPECorrDims(t *testing.T) {
	// llama.cpp's values for a 128-dim head, base 10000, 4096 original
	// context, beta 32 and 1: floor(20.94) = 20 and ceil(45.03) = 46.
	got := RoPECorrDims(128, 4096, 10000, 32, 1)
	if got != [2]float32{20, 46} {
		t.Fatalf("RoPECorrDims = %v, want [20 46]", got)
	}
	// Clamped to [0, nRot-1].
	if got := RoPECorrDims(16, 1<<20, 10000, 0.01, 0.001); got[1] != 15 {
		t.Fatalf("high end %v not clamped to 15", got[1])
	}
}

func TestRoPEErrors(t *testing.T) {
	r := NewReference()
	x := f32("q", make([]float32, 2*3*8), 2, 3, 8)
	ok := RoPEParams{Kind: RoPENorm, NRot: 8, FreqBase: 10000}
	pos := []int32{0, 1}
	if err := r.RoPE(x, pos, ok); err != nil {
		t.Fatal(err)
	}
	yarn := ok
	yarn.ExtFactor = 1
	yarn.AttnFactor = 1
	for _, tc := range []struct {
		name string
		x    *Tensor
		pos  []int32
		p    RoPEParams
		frag string
	}{
		{"2-d x", f32("q2", make([]float32, 2*24), 2, 24), pos, ok, "[n, heads, headDim]"},
		{"positions", x, []int32{0}, ok, "1 positions"},
		{"negative position", x, []int32{0, -3}, ok, "negative position -3"},
		{"odd NRot", x, pos, RoPEParams{NRot: 7, FreqBase: 10000}, "NRot 7"},
		{"NRot beyond head", x, pos, RoPEParams{NRot: 10, FreqBase: 10000}, "NRot 10"},
		{"zero NRot", x, pos, RoPEParams{NRot: 0, FreqBase: 10000}, "NRot 0"},
		{"base", x, pos, RoPEParams{NRot: 8}, "FreqBase 0"},
		{"negative scale", x, pos, RoPEParams{NRot: 8, FreqBase: 1e4, FreqScale: -1}, "FreqScale -1"},
		{"kind", x, pos, RoPEParams{Kind: 5, NRot: 8, FreqBase: 1e4}, "unknown kind 5"},
		{"yarn without context", x, pos, yarn, "OrigCtx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, r.RoPE(tc.x, tc.pos, tc.p), "rope", tc.frag)
		})
	}
}

// llama3Factors are factors shaped like Llama 3.1's rope_freqs (factor 8,
// low 1, high 4, original context 8192, base 500000): 1 for the fast
// pairs, 8 for the slow ones, a smooth ramp between.
func llama3Factors(half int) []float32 {
	f := make([]float32, half)
	for i := range f {
		wavelen := 2 * math.Pi / math.Pow(500000, -2*float64(i)/float64(2*half))
		switch {
		case wavelen < 8192/4.0:
			f[i] = 1
		case wavelen > 8192/1.0:
			f[i] = 8
		default:
			smooth := (8192/wavelen - 1) / (4 - 1)
			f[i] = float32(1 / ((1-smooth)/8 + smooth))
		}
	}
	return f
}

func randFactors(rng interface{ Float64() float64 }, n int) []float32 {
	f := make([]float32, n)
	for i := range f {
		f[i] = float32(0.5 + 8*rng.Float64())
	}
	return f
}

// TestRoPEFreqFactors: factors of 1 change nothing, bit for bit, and a
// factors tensor of the wrong shape or type is an error.
func TestRoPEFreqFactors(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const n, heads, hd = 4, 2, 24
	data := randVec(rng, n*heads*hd, 2)
	pos := []int32{0, 3, 77, 1000}
	ones := make([]float32, hd/2)
	for i := range ones {
		ones[i] = 1
	}
	p := RoPEParams{Kind: RoPENorm, NRot: hd, FreqBase: 10000}
	a := f32("a", data, n, heads, hd)
	b := f32("b", data, n, heads, hd)
	if err := r.RoPE(a, pos, p); err != nil {
		t.Fatal(err)
	}
	p.FreqFactors = f32("ones", ones, hd/2)
	if err := r.RoPE(b, pos, p); err != nil {
		t.Fatal(err)
	}
	for i := range a.F32 {
		if a.F32[i] != b.F32[i] {
			t.Fatalf("element %d: %v with factors of 1, %v without", i, b.F32[i], a.F32[i])
		}
	}
	p.FreqFactors = f32("short", ones[:5], 5)
	if err := r.RoPE(b, pos, p); err == nil || !strings.Contains(err.Error(), "FreqFactors") {
		t.Errorf("5 factors for NRot %d: err %v", hd, err)
	}
}
