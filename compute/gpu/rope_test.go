package gpu

import (
	"testing"

	"github.com/rocmforge/rocmforge/compute"
)

// TestRoPEFreqFactors: RoPE with a frequency-factor tensor (Llama 3's
// rope_freqs) on the GPU against the reference, bit for bit as TestRoPE,
// for full and partial rotation, with and without YaRN.
func TestRoPEFreqFactors(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, p := range []compute.RoPEParams{
		{Kind: compute.RoPENorm, NRot: 64, FreqBase: 500000, FreqScale: 1},
		{Kind: compute.RoPENeoX, NRot: 26, FreqBase: 10000, FreqScale: 0.25},
		{Kind: compute.RoPENorm, NRot: 32, FreqBase: 500000, FreqScale: 0.125, ExtFactor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 8192},
	} {
		n, heads, hd := 13, 3, 64
		ff := make([]float32, p.NRot/2)
		for i := range ff {
			ff[i] = float32(0.5 + 8*rng.Float64())
		}
		f := f32Pair(t, b, "ff", ff, p.NRot/2)
		x := f32Pair(t, b, "x", randVec(rng, n*heads*hd, 2), n, heads, hd)
		pos := make([]int32, n)
		for i := range pos {
			pos[i] = int32(rng.IntN(130000))
		}
		pg, pr := p, p
		pg.FreqFactors, pr.FreqFactors = f.g, f.r
		must(t, "rope", b.RoPE(x.g, pos, pg))
		must(t, "rope", ref.RoPE(x.r, pos, pr))
		check(t, b, "rope with factors", x, exactTol)
	}
}
