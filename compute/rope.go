package compute

import (
	"fmt"
	"math"

	"github.com/rocmforge/rocmforge/ggml"
)

// RoPE implements Backend: rotary position embedding of x [n, heads,
// headDim] in place, token i at position pos[i], as ggml's CPU rope
// (ggml_rope_ext on F32) computes it. See RoPECache and RoPEApply.
func (r *Reference) RoPE(x *Tensor, pos []int32, p RoPEParams) error {
	if err := CheckRoPE(x, pos, p); err != nil {
		return err
	}
	n, heads, hd := x.Shape[0], x.Shape[1], x.Shape[2]
	cache := make([]float32, p.NRot)
	for i := range n {
		RoPECache(cache, pos[i], p)
		for h := range heads {
			off := (i*heads + h) * hd
			RoPEApply(x.F32[off:off+hd], cache, p.Kind, p.NRot)
		}
	}
	return nil
}

// CheckRoPE validates the arguments of Backend.RoPE: x is F32 [n, heads,
// headDim], len(pos) == n with no negative position, NRot is even and in
// (0, headDim], FreqBase > 0, FreqScale >= 0 (0 means 1), and YaRN
// (ExtFactor != 0) has OrigCtx, BetaFast, BetaSlow and AttnFactor set.
func CheckRoPE(x *Tensor, pos []int32, p RoPEParams) error {
	const op = "rope"
	if err := checkF32(op, "x", x); err != nil {
		return err
	}
	if len(x.Shape) != 3 {
		return fmt.Errorf("%s: x %s must be [n, heads, headDim]", op, desc(x))
	}
	if len(pos) != x.Shape[0] {
		return fmt.Errorf("%s: x %s but %d positions", op, desc(x), len(pos))
	}
	for i, q := range pos {
		if q < 0 {
			return fmt.Errorf("%s: negative position %d for token %d", op, q, i)
		}
	}
	hd := x.Shape[2]
	if p.NRot <= 0 || p.NRot%2 != 0 || p.NRot > hd {
		return fmt.Errorf("%s: NRot %d must be even and in (0, %d] for x %s", op, p.NRot, hd, desc(x))
	}
	if p.Kind != RoPENorm && p.Kind != RoPENeoX {
		return fmt.Errorf("%s: unknown kind %d", op, p.Kind)
	}
	if !(p.FreqBase > 0) || math.IsInf(float64(p.FreqBase), 0) {
		return fmt.Errorf("%s: FreqBase %v must be positive", op, p.FreqBase)
	}
	if !(p.FreqScale >= 0) || math.IsInf(float64(p.FreqScale), 0) {
		return fmt.Errorf("%s: FreqScale %v must be positive (or 0 for 1)", op, p.FreqScale)
	}
	if f := p.FreqFactors; f != nil {
		if f.Type != ggml.F32 || len(f.Shape) != 1 || f.Shape[0] != p.NRot/2 {
			return fmt.Errorf("%s: FreqFactors %s must be F32 [%d] (one per rotary pair of NRot %d)", op, desc(f), p.NRot/2, p.NRot)
		}
	}
	if p.ExtFactor != 0 {
		// Zero values here would silently produce garbage angles or zero
		// every rotated element, so YaRN must be fully described.
		if p.OrigCtx <= 0 || !(p.BetaFast > 0) || !(p.BetaSlow > 0) || p.AttnFactor == 0 {
			return fmt.Errorf("%s: YaRN (ExtFactor %v) needs OrigCtx > 0, BetaFast > 0, BetaSlow > 0 and AttnFactor != 0; got %d, %v, %v, %v",
				op, p.ExtFactor, p.OrigCtx, p.BetaFast, p.BetaSlow, p.AttnFactor)
		}
	}
	return nil
}

// RoPECorrDims is ggml's rope_yarn_corr_dims: the range of rotary pair
// indices over which YaRN ramps from extrapolation to interpolation.
func RoPECorrDims(nRot, origCtx int, freqBase, betaFast, betaSlow float32) [2]float32 {
	corrDim := func(beta float32) float32 {
		// n_dims * log(n_ctx_orig / (beta * 2π)) / (2 * log(base)), in float32 like ggml.
		num := float32(math.Log(float64(float32(origCtx) / (beta * 2 * float32(math.Pi)))))
		den := 2 * float32(math.Log(float64(freqBase)))
		return float32(nRot) * num / den
	}
	start := float32(math.Floor(float64(corrDim(betaFast))))
	end := float32(math.Ceil(float64(corrDim(betaSlow))))
	return [2]float32{max(0, start), min(float32(nRot-1), end)}
}

// RoPECache fills cache[2i] and cache[2i+1] with the cosine and sine of the
// angle of rotary pair i at position pos, for i < p.NRot/2 (len(cache) >=
// p.NRot), exactly as ggml's CPU rope does: float32 arithmetic, the angle
// starting at pos and multiplied by base^(-2/NRot) once per pair, then
// frequency scaling, YaRN mixing and magnitude scaling (rope_yarn).
//
// FreqScale 0 means 1; AttnFactor 0 means 1 when ExtFactor is 0. With
// FreqFactors (a host tensor here), pair i's angle is first divided by
// FreqFactors[i].
func RoPECache(cache []float32, pos int32, p RoPEParams) {
	freqScale := p.FreqScale
	if freqScale == 0 {
		freqScale = 1
	}
	attn := p.AttnFactor
	if attn == 0 && p.ExtFactor == 0 {
		attn = 1
	}
	var corr [2]float32
	if p.ExtFactor != 0 {
		corr = RoPECorrDims(p.NRot, p.OrigCtx, p.FreqBase, p.BetaFast, p.BetaSlow)
	}
	thetaScale := float32(math.Pow(float64(p.FreqBase), float64(float32(-2)/float32(p.NRot))))
	theta := float32(pos)
	var ff []float32
	if p.FreqFactors != nil {
		ff = p.FreqFactors.F32
	}
	for i := range p.NRot / 2 {
		t := theta
		if ff != nil {
			t = theta / ff[i]
		}
		c, s := ropeYaRN(t, freqScale, corr, i, p.ExtFactor, attn)
		cache[2*i], cache[2*i+1] = c, s
		theta *= thetaScale
	}
}

// ropeYaRN is ggml's rope_yarn for pair i: the interpolated angle mixed with
// the extrapolated one over the ramp, and the magnitude scale mscale.
func ropeYaRN(thetaExtrap, freqScale float32, corr [2]float32, i int, extFactor, mscale float32) (cos, sin float32) {
	thetaInterp := freqScale * thetaExtrap
	theta := thetaInterp
	if extFactor != 0 {
		y := (float32(i) - corr[0]) / max(0.001, corr[1]-corr[0])
		rampMix := (1 - min(1, max(0, y))) * extFactor
		theta = thetaInterp*(1-rampMix) + thetaExtrap*rampMix
		mscale *= 1 + 0.1*float32(math.Log(float64(1/freqScale)))
	}
	return float32(math.Cos(float64(theta))) * mscale, float32(math.Sin(float64(theta))) * mscale
}

// RoPEApply rotates one head vector in place with a cache from RoPECache.
// RoPENorm rotates pairs (2i, 2i+1), RoPENeoX pairs (i, i+nRot/2), for
// i < nRot/2; elements at nRot and beyond are left unchanged.
func RoPEApply(head, cache []float32, kind RoPEKind, nRot int) {
	half := nRot / 2
	for i := range half {
		a, b := 2*i, 2*i+1
		if kind == RoPENeoX {
			a, b = i, i+half
		}
		c, s := cache[2*i], cache[2*i+1]
		x0, x1 := head[a], head[b]
		// float32() stops the compiler from fusing into FMAs: ggml rounds each product.
		head[a] = float32(x0*c) - float32(x1*s)
		head[b] = float32(x0*s) + float32(x1*c)
	}
}
