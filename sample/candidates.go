package sample

import (
	"errors"
	"fmt"
	"math"
)

// ErrBadRow is returned by [Sampler.SampleCandidates] when the row's
// log-sum-exp says it holds a NaN or +Inf logit, which [Sampler.Sample]
// refuses (naming the token; the candidates cannot say which it was).
var ErrBadRow = errors.New("sample: the logit row holds a NaN or +Inf")

// Candidates reports how many of a row's best tokens [Sampler.SampleCandidates]
// needs to give exactly what [Sampler.Sample] gives over the whole row, or 0
// when this sampler needs the whole row: with logit bias or penalties (they
// move tokens in and out of the best ones), or sampling at a temperature
// without a top-k below the vocabulary size. Greedy sampling needs
// max(1, TopLogprobs); sampling with top-k needs max(TopK, TopLogprobs).
func (s *Sampler) Candidates() int {
	if s.win != nil || len(s.biasIDs) > 0 {
		return 0
	}
	if s.p.Temperature == 0 {
		return max(1, s.p.TopLogprobs)
	}
	if s.p.TopK < 1 || s.p.TopK >= s.nVocab {
		return 0
	}
	return max(s.p.TopK, s.p.TopLogprobs)
}

// SampleCandidates is [Sampler.Sample] given only a row's best tokens, as
// compute.TopKer returns them: ids and vals in (logit descending, id
// ascending) order, id -1 after the row's last token that is not -Inf, at
// least Candidates() of them, and lse, the log-sum-exp of the whole row
// (NaN when the row holds a NaN or +Inf). It draws the same random number
// and returns the same Result as Sample over the row would, its logprobs
// up to lse's rounding. It is an error to call it when Candidates() is 0.
func (s *Sampler) SampleCandidates(ids []int32, vals []float32, lse float64) (Result, error) {
	need := s.Candidates()
	if need == 0 {
		return Result{}, fmt.Errorf("sample: this request's sampling (%s) needs the whole logit row, not its best tokens", s.wholeRowReason())
	}
	if len(ids) < need || len(vals) != len(ids) {
		return Result{}, fmt.Errorf("sample: %d candidate ids and %d values, want %d of each", len(ids), len(vals), need)
	}
	if math.IsNaN(lse) || math.IsInf(lse, 1) {
		return Result{}, ErrBadRow
	}
	c := s.cands[:0]
	for i, id := range ids[:need] {
		if id < 0 {
			break // the row has no more tokens that are not -Inf
		}
		if int(id) >= s.nVocab {
			return Result{}, fmt.Errorf("sample: candidate %d is token id %d, outside the vocabulary [0, %d)", i, id, s.nVocab)
		}
		c = append(c, cand{id, vals[i]})
	}
	s.cands = c
	if len(c) == 0 {
		return Result{}, ErrNoCandidates
	}
	var res Result
	if s.p.Temperature == 0 {
		res.Token = c[0].id // the argmax, ties to the lower id
	} else {
		t := topPSorted(c[:min(len(c), s.p.TopK)], s.p.TopP)
		if s.p.MinP > 0 {
			t = minP(t, s.p.MinP)
		}
		res.Token = s.draw(t)
	}
	if s.wantLogprobs {
		for _, x := range c {
			if x.id == res.Token {
				res.Logprob = float32(float64(x.logit) - lse)
				break
			}
		}
		if n := min(s.p.TopLogprobs, len(c)); n > 0 {
			res.Top = make([]TokenLogprob, n)
			for i, x := range c[:n] {
				res.Top[i] = TokenLogprob{x.id, float32(float64(x.logit) - lse)}
			}
		}
	}
	return res, nil
}

// wholeRowReason says why Candidates is 0, for SampleCandidates' error.
func (s *Sampler) wholeRowReason() string {
	switch {
	case len(s.biasIDs) > 0:
		return "logit bias"
	case s.win != nil:
		return "penalties"
	case s.p.TopK < 1:
		return "temperature without top_k"
	}
	return fmt.Sprintf("top_k %d of a %d-token vocabulary", s.p.TopK, s.nVocab)
}
