package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/compute"
)

// candidateRow is a random logit row: Gaussian at some scale, sometimes
// with exact ties, -Inf entries or almost everything -Inf.
func candidateRow(r *rand.Rand, n int) []float32 {
	l := randLogits(r, n, []float64{0.5, 2, 5}[r.IntN(3)])
	switch r.IntN(5) {
	case 0:
		for i := range l {
			l[i] = float32(math.Round(float64(l[i]))) // ties
		}
	case 1:
		for i := range l {
			if r.IntN(4) == 0 {
				l[i] = float32(math.Inf(-1))
			}
		}
	case 2:
		for i := range l {
			if r.IntN(50) != 0 {
				l[i] = float32(math.Inf(-1)) // fewer tokens than most top-k
			}
		}
	}
	return l
}

// randomCandidateParams draws settings SampleCandidates can serve for a
// vocabulary of n tokens (Candidates() > 0).
func randomCandidateParams(r *rand.Rand, n int) Params {
	p := DefaultParams()
	p.Temperature = []float32{0, 0.3, 1, 1.7}[r.IntN(4)]
	p.TopK = 1 + r.IntN(min(n-1, 64))
	p.TopP = []float32{1, 1, 0.9, 0.5}[r.IntN(4)]
	p.MinP = []float32{0, 0, 0.05, 0.3}[r.IntN(4)]
	p.Logprobs = r.IntN(2) == 0
	if r.IntN(2) == 0 {
		p.TopLogprobs = r.IntN(MaxTopLogprobs + 1)
	}
	p.Seed = r.Uint64()
	return p
}

// TestSampleCandidatesMatchesSample: for random rows and settings, sampling
// from the row's best tokens (compute.TopKRow, the device's definition)
// gives Sample's token and top-logprob ids, step after step with one seed,
// and its logprobs within 1e-6 (relative above 1 in magnitude).
func TestSampleCandidatesMatchesSample(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	r := newRand(t, seed)
	const cases, steps = 400, 12
	for c := range cases {
		n := []int{2, 3, 17, 100, 1000, 5003}[r.IntN(6)]
		p := randomCandidateParams(r, n)
		full, cand := mustNew(t, p, n), mustNew(t, p, n)
		need := cand.Candidates()
		if want := max(p.TopK, p.TopLogprobs, 1); p.Temperature == 0 {
			if need != max(1, p.TopLogprobs) {
				t.Fatalf("case %d %+v: Candidates %d, want %d", c, p, need, max(1, p.TopLogprobs))
			}
		} else if need != want {
			t.Fatalf("case %d %+v: Candidates %d, want %d", c, p, need, want)
		}
		k := min(need+r.IntN(3)*r.IntN(30), compute.MaxTopK) // the engine passes a longer prefix
		ids, vals := make([]int32, k), make([]float32, k)
		for s := range steps {
			row := candidateRow(r, n)
			lse := compute.TopKRow(row, ids, vals)
			want, werr := full.Sample(row)
			got, gerr := cand.SampleCandidates(ids, vals, lse)
			what := fmt.Sprintf("case %d step %d (n %d, k %d, %+v)", c, s, n, k, p)
			if werr != nil || gerr != nil {
				if !errors.Is(werr, ErrNoCandidates) || !errors.Is(gerr, ErrNoCandidates) {
					t.Fatalf("%s: errors %v (row) and %v (candidates)", what, werr, gerr)
				}
				continue
			}
			if d := resultDiff(got, want); d != "" {
				t.Fatalf("%s: %s", what, d)
			}
		}
	}
}

// resultDiff says how got differs from want: tokens exactly, logprobs
// within 1e-6·max(1, |logprob|).
func resultDiff(got, want Result) string {
	close := func(a, b float32) bool {
		return math.Abs(float64(a)-float64(b)) <= 1e-6*max(1, math.Abs(float64(b)))
	}
	if got.Token != want.Token || !close(got.Logprob, want.Logprob) || len(got.Top) != len(want.Top) {
		return fmt.Sprintf("candidates give %+v, the row %+v", got, want)
	}
	for i := range want.Top {
		if got.Top[i].Token != want.Top[i].Token || !close(got.Top[i].Logprob, want.Top[i].Logprob) {
			return fmt.Sprintf("top %d: candidates give %+v, the row %+v", i, got.Top, want.Top)
		}
	}
	return ""
}

// TestCandidatesWholeRow: settings that need the whole row report 0 and
// SampleCandidates refuses them.
func TestCandidatesWholeRow(t *testing.T) {
	const n = 100
	base := DefaultParams()
	base.TopK = 40
	for _, tc := range []struct {
		name string
		edit func(*Params)
	}{
		{"no top-k", func(p *Params) { p.TopK = 0 }},
		{"top-k of the whole vocabulary", func(p *Params) { p.TopK = n }},
		{"logit bias", func(p *Params) { p.LogitBias = map[int32]float32{3: 1} }},
		{"repeat penalty", func(p *Params) { p.RepeatPenalty = 1.1 }},
		{"presence penalty", func(p *Params) { p.PresencePenalty = 0.5 }},
		{"greedy with bias", func(p *Params) { p.Temperature = 0; p.LogitBias = map[int32]float32{3: -1} }},
	} {
		p := base
		tc.edit(&p)
		s := mustNew(t, p, n)
		if got := s.Candidates(); got != 0 {
			t.Errorf("%s: Candidates %d, want 0", tc.name, got)
		}
		if _, err := s.SampleCandidates(make([]int32, 64), make([]float32, 64), 0); err == nil {
			t.Errorf("%s: SampleCandidates: no error", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	// A penalty window of 0 turns the penalties off: eligible.
	p := base
	p.RepeatPenalty, p.PenaltyLastN = 1.3, 0
	if got := mustNew(t, p, n).Candidates(); got != 40 {
		t.Errorf("penalty with window 0: Candidates %d, want 40", got)
	}
}

// TestSampleCandidatesErrors: a NaN or +Inf row fails as Sample fails on
// it, and malformed candidates are errors.
func TestSampleCandidatesErrors(t *testing.T) {
	const n = 50
	p := DefaultParams()
	p.TopK = 5
	r := newRand(t, 21)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		row := randLogits(r, n, 1)
		row[7] = bad
		ids, vals := make([]int32, 5), make([]float32, 5)
		lse := compute.TopKRow(row, ids, vals)
		if _, err := mustNew(t, p, n).Sample(row); err == nil {
			t.Fatalf("row with %v: Sample gave no error", bad)
		}
		if _, err := mustNew(t, p, n).SampleCandidates(ids, vals, lse); !errors.Is(err, ErrBadRow) {
			t.Errorf("row with %v: SampleCandidates error %v, want ErrBadRow", bad, err)
		}
	}
	s := mustNew(t, p, n)
	if _, err := s.SampleCandidates(make([]int32, 4), make([]float32, 4), 0); err == nil {
		t.Error("4 candidates for top_k 5: no error")
	}
	if _, err := s.SampleCandidates([]int32{1, 2, 3, 4, n}, make([]float32, 5), 0); err == nil {
		t.Errorf("candidate id %d of a %d-token vocabulary: no error", n, n)
	}
}
