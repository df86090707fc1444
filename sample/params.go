package sample

import (
	"fmt"
	"math"
)

// MaxTopLogprobs is the largest accepted Params.TopLogprobs (OpenAI's limit).
const MaxTopLogprobs = 20

// Params are the sampling settings of one request. The zero value is not
// valid (TopP and RepeatPenalty 0); start from [DefaultParams] and override
// what the request sets.
type Params struct {
	// Temperature divides the logits before the final softmax; 0 selects
	// greedy decoding (argmax, ties to the lower token id), for which the
	// truncation settings make no difference.
	Temperature float32
	// TopK keeps the TopK most likely tokens; 0 turns it off.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability mass
	// is at least TopP; it must be in (0, 1], and 1 turns it off.
	TopP float32
	// MinP drops tokens whose probability is below MinP times that of the most
	// likely token; it must be in [0, 1], and 0 turns it off.
	MinP float32
	// RepeatPenalty is llama.cpp's repetition penalty over the tokens in the
	// window: a positive logit is divided by it, a non-positive one multiplied.
	// It must be > 0; 1 turns it off.
	RepeatPenalty float32
	// PresencePenalty and FrequencyPenalty follow OpenAI: for a token seen
	// count > 0 times in the window,
	// logit -= PresencePenalty + FrequencyPenalty*count.
	PresencePenalty  float32
	FrequencyPenalty float32
	// PenaltyLastN is how many of the most recently accepted tokens the
	// penalties look at: -1 means all of them, 0 turns the penalties off.
	PenaltyLastN int
	// LogitBias is added to the logits of the given token ids; -Inf bans a
	// token.
	LogitBias map[int32]float32
	// Seed seeds the request's random number generator.
	Seed uint64
	// Logprobs asks for Result.Logprob. It is implied by TopLogprobs > 0.
	// Computing it costs one pass of exp over the vocabulary per token.
	Logprobs bool
	// TopLogprobs is how many of the most likely tokens Result.Top lists,
	// 0 to MaxTopLogprobs.
	TopLogprobs int
}

// DefaultParams returns neutral settings: temperature 1, no truncation, no
// penalties (with llama.cpp's default window of 64 tokens should one be
// turned on), no logprobs, seed 0.
func DefaultParams() Params {
	return Params{
		Temperature:   1,
		TopP:          1,
		RepeatPenalty: 1,
		PenaltyLastN:  64,
	}
}

// Validate reports the first setting that is out of range for a vocabulary
// of nVocab tokens.
func (p Params) Validate(nVocab int) error {
	if nVocab <= 0 {
		return fmt.Errorf("sample: vocabulary size %d, want > 0", nVocab)
	}
	t := float64(p.Temperature)
	if math.IsNaN(t) || math.IsInf(t, 0) || t < 0 {
		return fmt.Errorf("sample: temperature %v, want a finite value >= 0", p.Temperature)
	}
	if p.TopK < 0 {
		return fmt.Errorf("sample: top_k %d, want >= 0 (0 = off)", p.TopK)
	}
	if tp := float64(p.TopP); math.IsNaN(tp) || tp <= 0 || tp > 1 {
		return fmt.Errorf("sample: top_p %v, want a value in (0, 1] (1 = off)", p.TopP)
	}
	if mp := float64(p.MinP); math.IsNaN(mp) || mp < 0 || mp > 1 {
		return fmt.Errorf("sample: min_p %v, want a value in [0, 1] (0 = off)", p.MinP)
	}
	if rp := float64(p.RepeatPenalty); math.IsNaN(rp) || math.IsInf(rp, 0) || rp <= 0 {
		return fmt.Errorf("sample: repeat_penalty %v, want a finite value > 0 (1 = off)", p.RepeatPenalty)
	}
	if pp := float64(p.PresencePenalty); math.IsNaN(pp) || math.IsInf(pp, 0) {
		return fmt.Errorf("sample: presence_penalty %v, want a finite value", p.PresencePenalty)
	}
	if fp := float64(p.FrequencyPenalty); math.IsNaN(fp) || math.IsInf(fp, 0) {
		return fmt.Errorf("sample: frequency_penalty %v, want a finite value", p.FrequencyPenalty)
	}
	if p.PenaltyLastN < -1 {
		return fmt.Errorf("sample: penalty_last_n %d, want -1 (whole context), 0 (off) or a window size", p.PenaltyLastN)
	}
	for id, b := range p.LogitBias {
		if id < 0 || int(id) >= nVocab {
			return fmt.Errorf("sample: logit_bias token id %d outside the vocabulary [0, %d)", id, nVocab)
		}
		if bf := float64(b); math.IsNaN(bf) || math.IsInf(bf, 1) {
			return fmt.Errorf("sample: logit_bias for token %d is %v, want a finite value or -Inf", id, b)
		}
	}
	if p.TopLogprobs < 0 || p.TopLogprobs > MaxTopLogprobs {
		return fmt.Errorf("sample: top_logprobs %d, want 0 to %d", p.TopLogprobs, MaxTopLogprobs)
	}
	return nil
}

// penalized reports whether any penalty can change a logit.
func (p Params) penalized() bool {
	return p.PenaltyLastN != 0 &&
		(p.RepeatPenalty != 1 || p.PresencePenalty != 0 || p.FrequencyPenalty != 0)
}
