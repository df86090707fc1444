package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/gguf"
)

// HParams are a model's hyperparameters, read from the GGUF metadata keys
// general.architecture and <arch>.*.
type HParams struct {
	Arch string // general.architecture

	NVocab    int // <arch>.vocab_size, else the rows of token_embd.weight
	NCtxTrain int // <arch>.context_length
	NEmbd     int // <arch>.embedding_length
	NLayer    int // <arch>.block_count
	NFF       int // <arch>.feed_forward_length
	NHead     int // <arch>.attention.head_count
	NHeadKV   int // <arch>.attention.head_count_kv (default NHead)
	HeadDimK  int // <arch>.attention.key_length (default NEmbd/NHead)
	HeadDimV  int // <arch>.attention.value_length (default NEmbd/NHead)

	// NormEps is attention.layer_norm_rms_epsilon for RMSNorm archs and
	// attention.layer_norm_epsilon for LayerNorm archs.
	NormEps float32

	NRot        int     // rope.dimension_count (default HeadDimK)
	FreqBase    float32 // rope.freq_base (default 10000)
	FreqBaseSWA float32 // rope.freq_base_swa: base of sliding-window layers (default FreqBase)
	// FreqScale is 1/rope.scaling.factor (1 without a factor).
	FreqScale float32
	// FreqScaleSWA is the scale of sliding-window layers: FreqScale, except
	// for archs whose local layers are never scaled (gemma3).
	FreqScaleSWA float32
	RopeScaling  string // rope.scaling.type: "none", "linear" or "yarn"
	// YaRN (rope.scaling.type "yarn"); ignored otherwise.
	RopeOrigCtx    int     // rope.scaling.original_context_length (default NCtxTrain)
	YarnExtFactor  float32 // rope.scaling.yarn_ext_factor (default 1 with YaRN, else 0)
	YarnAttnFactor float32 // rope.scaling.yarn_attn_factor (default 1)
	YarnBetaFast   float32 // rope.scaling.yarn_beta_fast (default 32)
	YarnBetaSlow   float32 // rope.scaling.yarn_beta_slow (default 1)

	// SlidingWindow is attention.sliding_window (0: every layer is global).
	SlidingWindow int
	// SWAPattern is attention.sliding_window_pattern: layer il uses the
	// window when il % SWAPattern < SWAPattern-1.
	SWAPattern int

	AttnSoftcap  float32 // attn_logit_softcapping (0: none)
	FinalSoftcap float32 // final_logit_softcapping (0: none)

	// AttnScale multiplies the Q·K scores (usually 1/sqrt(HeadDimK)).
	AttnScale float32
}

// ReadHParams reads and validates the hyperparameters of f. Errors name the
// key that is missing or wrong.
func ReadHParams(f *gguf.File) (HParams, error) {
	archName, err := f.Architecture()
	if err != nil {
		return HParams{}, fmt.Errorf("model: %w", err)
	}
	a, ok := archs[archName]
	if !ok {
		return HParams{}, fmt.Errorf("model: unknown architecture %q (general.architecture); supported: %s", archName, archNames())
	}
	return readHParams(f, a)
}

// keyReader reads <arch>.* keys and remembers the first error, so the key
// list below reads like a table.
type keyReader struct {
	f    *gguf.File
	arch string
	err  error
}

func (r *keyReader) key(k string) string { return r.arch + "." + k }

func (r *keyReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *keyReader) uint(k string) int {
	v, err := r.f.GetUint32(r.key(k))
	if err != nil {
		r.fail(fmt.Errorf("model: hparams: %w", err))
	}
	return int(v)
}

func (r *keyReader) uintOr(k string, def int) int {
	v, err := r.f.GetUint32Or(r.key(k), uint32(def))
	if err != nil {
		r.fail(fmt.Errorf("model: hparams: %w", err))
	}
	return int(v)
}

func (r *keyReader) float(k string) float32 {
	v, err := r.f.GetFloat32(r.key(k))
	if err != nil {
		r.fail(fmt.Errorf("model: hparams: %w", err))
	}
	return v
}

func (r *keyReader) floatOr(k string, def float32) float32 {
	v, err := r.f.GetFloat32Or(r.key(k), def)
	if err != nil {
		r.fail(fmt.Errorf("model: hparams: %w", err))
	}
	return v
}

func (r *keyReader) stringOr(k, def string) string {
	v, err := r.f.GetStringOr(r.key(k), def)
	if err != nil {
		r.fail(fmt.Errorf("model: hparams: %w", err))
	}
	return v
}

func readHParams(f *gguf.File, a *arch) (HParams, error) {
	r := &keyReader{f: f, arch: a.name}
	hp := HParams{Arch: a.name}

	hp.NCtxTrain = r.uint("context_length")
	hp.NEmbd = r.uint("embedding_length")
	hp.NLayer = r.uint("block_count")
	hp.NFF = r.uint("feed_forward_length")
	hp.NHead = r.uint("attention.head_count")
	if r.err != nil {
		return HParams{}, r.err
	}
	hp.NHeadKV = r.uintOr("attention.head_count_kv", hp.NHead)
	if hp.NHead == 0 {
		return HParams{}, fmt.Errorf("model: hparams: %s is 0", r.key("attention.head_count"))
	}
	hp.HeadDimK = r.uintOr("attention.key_length", hp.NEmbd/hp.NHead)
	hp.HeadDimV = r.uintOr("attention.value_length", hp.NEmbd/hp.NHead)

	switch a.norm {
	case normRMS:
		hp.NormEps = r.float("attention.layer_norm_rms_epsilon")
	case normLayer:
		hp.NormEps = r.float("attention.layer_norm_epsilon")
	}

	hp.NRot = r.uintOr("rope.dimension_count", hp.HeadDimK)
	hp.FreqBase = r.floatOr("rope.freq_base", 10000)
	hp.FreqBaseSWA = r.floatOr("rope.freq_base_swa", a.defaultFreqBaseSWA(hp.FreqBase))
	hp.RopeScaling = r.stringOr("rope.scaling.type", "none")
	factor := r.floatOr("rope.scaling.factor", 0)
	if factor == 0 {
		factor = r.floatOr("rope.scale_linear", 0) // the older key name
	}
	hp.FreqScale = 1
	if factor != 0 {
		hp.FreqScale = 1 / factor
	}
	hp.FreqScaleSWA = hp.FreqScale
	if a.unscaledSWARoPE {
		hp.FreqScaleSWA = 1
	}
	hp.RopeOrigCtx = r.uintOr("rope.scaling.original_context_length", hp.NCtxTrain)
	ext := float32(0)
	if hp.RopeScaling == "yarn" {
		ext = 1
	}
	hp.YarnExtFactor = r.floatOr("rope.scaling.yarn_ext_factor", ext)
	// llama.cpp passes ggml an attention factor of 1 for plain YaRN files
	// (its mscale correction cancels), so 1 is the default here too.
	hp.YarnAttnFactor = r.floatOr("rope.scaling.yarn_attn_factor", 1)
	hp.YarnBetaFast = r.floatOr("rope.scaling.yarn_beta_fast", 32)
	hp.YarnBetaSlow = r.floatOr("rope.scaling.yarn_beta_slow", 1)

	if a.swaPattern > 0 {
		if a.swaWindowRequired {
			hp.SlidingWindow = r.uint("attention.sliding_window")
		} else {
			hp.SlidingWindow = r.uintOr("attention.sliding_window", a.defaultWindow)
		}
		hp.SWAPattern = r.uintOr("attention.sliding_window_pattern", a.swaPattern)
	}
	if a.softcaps {
		hp.AttnSoftcap = r.floatOr("attn_logit_softcapping", 0)
		hp.FinalSoftcap = r.floatOr("final_logit_softcapping", 0)
	}

	hp.NVocab = r.uintOr("vocab_size", 0)
	if r.err != nil {
		return HParams{}, r.err
	}
	if hp.NVocab == 0 {
		ti, ok := f.Tensor("token_embd.weight")
		if !ok || len(ti.Dims) != 2 {
			return HParams{}, fmt.Errorf("model: hparams: %s is missing and there is no 2-D token_embd.weight to take the vocabulary size from", r.key("vocab_size"))
		}
		hp.NVocab = int(ti.Dims[1])
	}

	hp.AttnScale = float32(1 / math.Sqrt(float64(hp.HeadDimK)))
	if a.attnScale != nil {
		hp.AttnScale = a.attnScale(&hp)
	}
	if err := hp.validate(a); err != nil {
		return HParams{}, err
	}
	return hp, nil
}

// validate checks the hyperparameters for consistency; errors name the key.
func (hp *HParams) validate(a *arch) error {
	key := func(k string) string { return hp.Arch + "." + k }
	var errs []error
	positive := func(k string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %d, must be positive", key(k), v))
		}
	}
	positive("context_length", hp.NCtxTrain)
	positive("embedding_length", hp.NEmbd)
	positive("block_count", hp.NLayer)
	positive("feed_forward_length", hp.NFF)
	positive("attention.head_count_kv", hp.NHeadKV)
	positive("attention.key_length", hp.HeadDimK)
	positive("attention.value_length", hp.HeadDimV)
	positive("vocab_size", hp.NVocab)
	if hp.NHeadKV > 0 && hp.NHead%hp.NHeadKV != 0 {
		errs = append(errs, fmt.Errorf("%s = %d is not a multiple of %s = %d", key("attention.head_count"), hp.NHead, key("attention.head_count_kv"), hp.NHeadKV))
	}
	if !(hp.NormEps > 0) {
		errs = append(errs, fmt.Errorf("layer norm epsilon is %g, must be positive", hp.NormEps))
	}
	if a.rope != ropeNone {
		if hp.NRot <= 0 || hp.NRot > hp.HeadDimK || hp.NRot%2 != 0 {
			errs = append(errs, fmt.Errorf("%s = %d must be even and in (0, %d] (the key head dimension)", key("rope.dimension_count"), hp.NRot, hp.HeadDimK))
		}
		if a.fullRotary && hp.NRot != hp.HeadDimK {
			errs = append(errs, fmt.Errorf("%s = %d but %s rotates whole heads of %d", key("rope.dimension_count"), hp.NRot, hp.Arch, hp.HeadDimK))
		}
		if !(hp.FreqBase > 0) || !(hp.FreqBaseSWA > 0) {
			errs = append(errs, fmt.Errorf("%s = %g must be positive", key("rope.freq_base"), hp.FreqBase))
		}
		if !(hp.FreqScale > 0) || math.IsInf(float64(hp.FreqScale), 0) {
			errs = append(errs, fmt.Errorf("%s gives rope frequency scale %g, must be positive", key("rope.scaling.factor"), hp.FreqScale))
		}
		switch hp.RopeScaling {
		case "none", "linear", "yarn":
		default:
			errs = append(errs, fmt.Errorf("%s = %q is not supported (want none, linear or yarn)", key("rope.scaling.type"), hp.RopeScaling))
		}
	}
	if a.swaPattern > 0 && hp.SWAPattern <= 0 {
		errs = append(errs, fmt.Errorf("%s = %d, must be positive", key("attention.sliding_window_pattern"), hp.SWAPattern))
	}
	if hp.AttnSoftcap < 0 || hp.FinalSoftcap < 0 {
		errs = append(errs, fmt.Errorf("softcaps must not be negative (attn %g, final %g)", hp.AttnSoftcap, hp.FinalSoftcap))
	}
	if len(errs) > 0 {
		return fmt.Errorf("model: hparams: %w", errors.Join(errs...))
	}
	return nil
}

// IsSWA reports whether layer il attends through the sliding window.
func (hp *HParams) IsSWA(il int) bool {
	return hp.SlidingWindow > 0 && hp.SWAPattern > 0 && il%hp.SWAPattern < hp.SWAPattern-1
}

// Window is the attention window of layer il (0: unlimited).
func (hp *HParams) Window(il int) int {
	if hp.IsSWA(il) {
		return hp.SlidingWindow
	}
	return 0
}

// RoPE returns the rotary embedding of layer il for the given kind.
func (hp *HParams) RoPE(il int, kind compute.RoPEKind) compute.RoPEParams {
	p := compute.RoPEParams{
		Kind:       kind,
		NRot:       hp.NRot,
		FreqBase:   hp.FreqBase,
		FreqScale:  hp.FreqScale,
		ExtFactor:  hp.YarnExtFactor,
		AttnFactor: hp.YarnAttnFactor,
		BetaFast:   hp.YarnBetaFast,
		BetaSlow:   hp.YarnBetaSlow,
		OrigCtx:    hp.RopeOrigCtx,
	}
	if hp.IsSWA(il) {
		p.FreqBase, p.FreqScale = hp.FreqBaseSWA, hp.FreqScaleSWA
	}
	return p
}

// QDim, KDim and VDim are the widths of the Q, K and V projections.
func (hp *HParams) QDim() int { return hp.NHead * hp.HeadDimK }

// KDim is the width of the K projection (all KV heads).
func (hp *HParams) KDim() int { return hp.NHeadKV * hp.HeadDimK }

// VDim is the width of the V projection (all KV heads).
func (hp *HParams) VDim() int { return hp.NHeadKV * hp.HeadDimV }
