package sample

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSample times one Sample over a 32000-token vocabulary with
// llama-like logits (normal, sd 3) and a 64-token penalty window.
func BenchmarkSample(b *testing.B) {
	const n = 32000
	r := rand.New(rand.NewPCG(1, 2))
	logits := randLogits(r, n, 3)
	for _, bc := range []struct {
		name string
		p    Params
	}{
		{"greedy", Params{TopP: 1, RepeatPenalty: 1}},
		{"topk40_topp0.95", Params{Temperature: 0.8, TopK: 40, TopP: 0.95, RepeatPenalty: 1}},
		{"topk40_topp0.95_minp_penalties", Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05,
			RepeatPenalty: 1.1, PresencePenalty: 0.1, FrequencyPenalty: 0.1, PenaltyLastN: 64}},
		{"topp0.95", Params{Temperature: 0.8, TopP: 0.95, RepeatPenalty: 1}},
		{"minp0.05", Params{Temperature: 0.8, TopP: 1, MinP: 0.05, RepeatPenalty: 1}},
		{"full_softmax", Params{Temperature: 1, TopP: 1, RepeatPenalty: 1}},
		{"greedy_top5_logprobs", Params{TopP: 1, RepeatPenalty: 1, TopLogprobs: 5}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(bc.p, n)
			if err != nil {
				b.Fatal(err)
			}
			for range 64 {
				_ = s.Accept(int32(r.IntN(n)))
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sample(logits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
