package sample

import (
	"math"
	"testing"
)

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	const nVocab = 100
	cases := []struct {
		name string
		edit func(*Params)
		ok   bool
	}{
		{"default", func(*Params) {}, true},
		{"greedy", func(p *Params) { p.Temperature = 0 }, true},
		{"full", func(p *Params) {
			p.Temperature, p.TopK, p.TopP, p.MinP = 0.7, 40, 0.9, 0.05
			p.RepeatPenalty, p.PresencePenalty, p.FrequencyPenalty, p.PenaltyLastN = 1.1, -0.5, 0.5, -1
			p.LogitBias = map[int32]float32{0: float32(math.Inf(-1)), 99: 3}
			p.TopLogprobs = 20
		}, true},
		{"top_k above vocabulary", func(p *Params) { p.TopK = 1000 }, true},
		{"temperature < 0", func(p *Params) { p.Temperature = -0.1 }, false},
		{"temperature NaN", func(p *Params) { p.Temperature = nan }, false},
		{"temperature Inf", func(p *Params) { p.Temperature = inf }, false},
		{"top_k < 0", func(p *Params) { p.TopK = -1 }, false},
		{"top_p 0", func(p *Params) { p.TopP = 0 }, false},
		{"top_p > 1", func(p *Params) { p.TopP = 1.01 }, false},
		{"top_p NaN", func(p *Params) { p.TopP = nan }, false},
		{"min_p < 0", func(p *Params) { p.MinP = -0.01 }, false},
		{"min_p > 1", func(p *Params) { p.MinP = 1.5 }, false},
		{"min_p NaN", func(p *Params) { p.MinP = nan }, false},
		{"repeat_penalty 0", func(p *Params) { p.RepeatPenalty = 0 }, false},
		{"repeat_penalty < 0", func(p *Params) { p.RepeatPenalty = -1 }, false},
		{"repeat_penalty NaN", func(p *Params) { p.RepeatPenalty = nan }, false},
		{"repeat_penalty Inf", func(p *Params) { p.RepeatPenalty = inf }, false},
		{"presence NaN", func(p *Params) { p.PresencePenalty = nan }, false},
		{"presence Inf", func(p *Params) { p.PresencePenalty = -inf }, false},
		{"frequency NaN", func(p *Params) { p.FrequencyPenalty = nan }, false},
		{"frequency Inf", func(p *Params) { p.FrequencyPenalty = inf }, false},
		{"penalty_last_n -2", func(p *Params) { p.PenaltyLastN = -2 }, false},
		{"bias id negative", func(p *Params) { p.LogitBias = map[int32]float32{-1: 1} }, false},
		{"bias id = vocab", func(p *Params) { p.LogitBias = map[int32]float32{nVocab: 1} }, false},
		{"bias NaN", func(p *Params) { p.LogitBias = map[int32]float32{3: nan} }, false},
		{"bias +Inf", func(p *Params) { p.LogitBias = map[int32]float32{3: inf} }, false},
		{"top_logprobs < 0", func(p *Params) { p.TopLogprobs = -1 }, false},
		{"top_logprobs > 20", func(p *Params) { p.TopLogprobs = 21 }, false},
	}
	for _, tc := range cases {
		p := DefaultParams()
		tc.edit(&p)
		err := p.Validate(nVocab)
		if tc.ok && err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
		}
		if !tc.ok {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			} else {
				t.Logf("%s: %v", tc.name, err)
			}
			if _, err := New(p, nVocab); err == nil {
				t.Errorf("%s: New accepted it", tc.name)
			}
		}
	}
	if err := DefaultParams().Validate(0); err == nil {
		t.Error("vocabulary 0: no error")
	}
	if err := (Params{}).Validate(nVocab); err == nil {
		t.Error("zero Params: no error (top_p 0)")
	}
}
