package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/sample"
)

// topkCPU is the CPU backend with compute.TopKer (the plain-Go definition),
// standing in for a device so that the engine's top-k path runs with the
// real model's ForwardTopK.
type topkCPU struct {
	*cpu.Backend
	calls atomic.Int64
}

func (b *topkCPU) TopKRows(x *compute.Tensor, k int, ids []int32, vals []float32, lse []float32) error {
	b.calls.Add(1)
	return compute.TopKRows(x, k, ids, vals, lse)
}

// topkRequests are sampled requests the top-k path can serve (top-k with
// top-p, min-p, logprobs; greedy with top logprobs) and, when mixed, one
// with a repetition penalty and 10 tokens, whose steps need the whole rows.
func topkRequests(t *testing.T, s *stories, mixed bool) []Request {
	var reqs []Request
	for i, text := range testPrompts {
		p := sample.DefaultParams()
		p.Seed = uint64(100 + i)
		switch i % 4 {
		case 0:
			p.TopK = 40
		case 1:
			p.Temperature, p.TopK, p.TopP, p.TopLogprobs = 0.7, 10, 0.9, 3
		case 2:
			p.Temperature, p.TopK, p.MinP, p.Logprobs = 1.3, 5, 0.05, true
		case 3:
			p.Temperature, p.TopLogprobs = 0, 2
		}
		n := 40
		if mixed && i == 5 {
			// Its steps read whole rows; once it ends (after 10 tokens)
			// the others go on through the top-k path.
			p.RepeatPenalty, n = 1.2, 10
		}
		reqs = append(reqs, Request{Prompt: s.encode(t, text), MaxTokens: n, IgnoreEOS: true, Params: p})
	}
	return reqs
}

// candidateDiff is sameOutput with logprobs within 1e-6·max(1, |logprob|):
// the top-k path's log-sum-exp is a float32.
func candidateDiff(got, want output) string {
	close := func(a, b float32) bool {
		return math.Abs(float64(a)-float64(b)) <= 1e-6*max(1, math.Abs(float64(b)))
	}
	switch {
	case !slices.Equal(got.tokens, want.tokens):
		return fmt.Sprintf("tokens differ: %v vs %v", got.tokens, want.tokens)
	case !slices.EqualFunc(got.logprobs, want.logprobs, close):
		return fmt.Sprintf("logprobs differ: %v vs %v", got.logprobs, want.logprobs)
	case !slices.EqualFunc(got.tops, want.tops, func(a, b []sample.TokenLogprob) bool {
		return slices.EqualFunc(a, b, func(x, y sample.TokenLogprob) bool { return x.Token == y.Token && close(x.Logprob, y.Logprob) })
	}):
		return "top logprobs differ"
	case got.text != want.text:
		return "text differs"
	case got.done.FinishReason != want.done.FinishReason:
		return "finish reasons differ: " + got.done.FinishReason + " vs " + want.done.FinishReason
	}
	return ""
}

// TestDeviceTopKSwitch: on a backend with TopKer, sampled steps take the
// top-k path unless ROCMFORGE_DEVICE_TOPK=0, and the token streams (fixed
// seeds) are the same either way, with requests that all fit the path and
// with one that needs whole rows in the mix.
func TestDeviceTopKSwitch(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		t.Run(fmt.Sprintf("mixed=%v", mixed), func(t *testing.T) {
			start := func(env string) (*Engine, *topkCPU, []Request) {
				t.Setenv("ROCMFORGE_DEVICE_TOPK", env)
				be := &topkCPU{Backend: cpu.New(2)}
				s := loadStories(t, func() compute.Backend { return be })
				return startEngine(t, s, DefaultConfig()), be, topkRequests(t, s, mixed)
			}
			eOff, beOff, reqs := start("0")
			if eOff.topk != nil {
				t.Fatal("ROCMFORGE_DEVICE_TOPK=0: the engine has the top-k path")
			}
			want := runAll(t, eOff, reqs)
			eOn, beOn, _ := start("")
			if eOn.topk == nil {
				t.Fatal("backend with TopKer: the engine has no top-k path")
			}
			got := runAll(t, eOn, reqs)
			for i := range reqs {
				if d := candidateDiff(got[i], want[i]); d != "" {
					t.Errorf("request %d (%+v): top-k path vs full rows: %s", i, reqs[i].Params, d)
				}
				if len(got[i].tokens) != reqs[i].MaxTokens {
					t.Errorf("request %d: %d tokens, want %d (%s)", i, len(got[i].tokens), reqs[i].MaxTokens, got[i].done.FinishReason)
				}
			}
			on, off := beOn.calls.Load(), beOff.calls.Load()
			t.Logf("TopKRows calls: %d with the switch on, %d off", on, off)
			if on == 0 || off != 0 {
				t.Errorf("TopKRows ran %d times with the switch on (want > 0) and %d off (want 0)", on, off)
			}
		})
	}
}

// topkModel is a top-k capability that candidatesK only checks for.
type topkModel struct{}

func (*topkModel) ForwardTopK(*model.Batch, *model.Cache, int, []int32, []float32, []float32) error {
	return errors.New("topkModel: not a model")
}

// TestCandidatesK: a step's k is the largest any sampled row needs; any
// row that needs the whole logit row or more than compute.MaxTopK tokens,
// or a model without device top-k, gives 0.
func TestCandidatesK(t *testing.T) {
	const nVocab = 32000
	sampler := func(edit func(*sample.Params)) *request {
		p := sample.DefaultParams()
		edit(&p)
		sm, err := sample.New(p, nVocab)
		if err != nil {
			t.Fatal(err)
		}
		return &request{sampler: sm}
	}
	topK := func(k int) func(*sample.Params) { return func(p *sample.Params) { p.TopK = k } }
	greedyLP := func(p *sample.Params) { p.Temperature, p.TopLogprobs = 0, 7 }
	full := func(p *sample.Params) { p.TopK = 0 }
	penalty := func(p *sample.Params) { p.TopK, p.PresencePenalty = 40, 0.5 }
	for _, tc := range []struct {
		name  string
		rows  []func(*sample.Params)
		noOut int // rows not sampled this step (prefill chunks), any sampler
		want  int
	}{
		{"one top-k 40", []func(*sample.Params){topK(40)}, 0, 40},
		{"largest wins", []func(*sample.Params){topK(5), topK(64), greedyLP, topK(40)}, 1, 64},
		{"greedy with logprobs", []func(*sample.Params){greedyLP}, 0, 7},
		{"a full row", []func(*sample.Params){topK(40), full}, 0, 0},
		{"a penalty", []func(*sample.Params){penalty, topK(3)}, 0, 0},
		{"over MaxTopK", []func(*sample.Params){topK(compute.MaxTopK + 1)}, 0, 0},
		{"no sampled row", nil, 2, 0},
	} {
		s := &scheduler{e: &Engine{topk: &topkModel{}}}
		for _, edit := range tc.rows {
			s.sched = append(s.sched, scheduled{r: sampler(edit), output: true})
		}
		for range tc.noOut {
			s.sched = append(s.sched, scheduled{r: sampler(full), output: false})
		}
		if got := s.candidatesK(); got != tc.want {
			t.Errorf("%s: k %d, want %d", tc.name, got, tc.want)
		}
		s.e.topk = nil
		if got := s.candidatesK(); got != 0 {
			t.Errorf("%s without device top-k: k %d, want 0", tc.name, got)
		}
	}
}
