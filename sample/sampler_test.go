package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// newRand returns a generator for test inputs and logs its seed.
func newRand(t testing.TB, seed uint64) *rand.Rand {
	t.Helper()
	t.Logf("input seed %d", seed)
	return rand.New(rand.NewPCG(seed, 1))
}

func randLogits(r *rand.Rand, n int, scale float64) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * scale)
	}
	return l
}

func mustNew(t testing.TB, p Params, nVocab int) *Sampler {
	t.Helper()
	s, err := New(p, nVocab)
	if err != nil {
		t.Fatalf("New(%+v, %d): %v", p, nVocab, err)
	}
	return s
}

func mustSample(t testing.TB, s *Sampler, logits []float32) Result {
	t.Helper()
	r, err := s.Sample(logits)
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	return r
}

// refOrder returns the token ids sorted by descending logit, ties to the lower
// id, by a plain full sort.
func refOrder(logits []float32) []int32 {
	ids := make([]int32, 0, len(logits))
	for i, l := range logits {
		if !math.IsInf(float64(l), -1) {
			ids = append(ids, int32(i))
		}
	}
	slices.SortStableFunc(ids, func(a, b int32) int {
		switch {
		case logits[a] > logits[b]:
			return -1
		case logits[a] < logits[b]:
			return 1
		}
		return 0
	})
	return ids
}

// refSoftmax returns softmax(logits/temp) in float64.
func refSoftmax(logits []float32, temp float64) []float64 {
	m := math.Inf(-1)
	for _, l := range logits {
		m = max(m, float64(l))
	}
	p := make([]float64, len(logits))
	var z float64
	for i, l := range logits {
		p[i] = math.Exp((float64(l) - m) / temp)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	return p
}

// sortedIDs returns the ids of a candidate set in ascending order.
func sortedIDs(c []cand) []int32 {
	ids := candIDs(c)
	slices.Sort(ids)
	return ids
}

func candIDs(c []cand) []int32 {
	ids := make([]int32, len(c))
	for i, x := range c {
		ids[i] = x.id
	}
	return ids
}

func TestGreedyArgmax(t *testing.T) {
	r := newRand(t, 11)
	s := mustNew(t, Params{TopP: 1, RepeatPenalty: 1}, 1003)
	for trial := 0; trial < 20; trial++ {
		l := randLogits(r, 1003, 2)
		l[r.IntN(1003)] = float32(math.Inf(-1))
		want := refOrder(l)[0]
		if got := mustSample(t, s, l).Token; got != want {
			t.Fatalf("trial %d: greedy picked %d (logit %v), argmax is %d (logit %v)", trial, got, l[got], want, l[want])
		}
	}

	ties := make([]float32, 50)
	ties[17], ties[5], ties[40] = 3, 3, 3
	if got := mustSample(t, s2(t, 50), ties).Token; got != 5 {
		t.Errorf("tie between 5, 17 and 40: greedy picked %d, want 5", got)
	}

	banned := []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}
	if _, err := s2(t, 2).Sample(banned); !errors.Is(err, ErrNoCandidates) {
		t.Errorf("all logits -Inf: error %v, want ErrNoCandidates", err)
	}
}

// s2 returns a greedy sampler.
func s2(t *testing.T, n int) *Sampler {
	t.Helper()
	return mustNew(t, Params{TopP: 1, RepeatPenalty: 1}, n)
}

func TestTinyTemperatureMatchesGreedy(t *testing.T) {
	const n = 997
	r := newRand(t, 12)
	greedy := mustNew(t, Params{TopP: 1, RepeatPenalty: 1}, n)
	cold := mustNew(t, Params{Temperature: 1e-6, TopP: 1, RepeatPenalty: 1, Seed: 99}, n)
	for trial := 0; trial < 200; trial++ {
		l := randLogits(r, n, 1)
		l[refOrder(l)[0]] += 0.01 // a clear winner: equal logits would split the draw
		g := mustSample(t, greedy, l).Token
		if c := mustSample(t, cold, l).Token; c != g {
			t.Fatalf("trial %d: temperature 1e-6 picked %d, greedy %d", trial, c, g)
		}
	}
}

func TestTopK(t *testing.T) {
	const (
		n     = 1009
		draws = 10000
		temp  = 0.8
	)
	for _, k := range []int{1, 10, 300} { // 300 > heapSelectLimit takes the quickselect path
		r := newRand(t, 13+uint64(k))
		l := randLogits(r, n, 1)
		order := refOrder(l)
		top := order[:k]
		seed := uint64(1000 + k)
		t.Logf("k=%d sampler seed %d", k, seed)
		s := mustNew(t, Params{Temperature: temp, TopK: k, TopP: 1, RepeatPenalty: 1, Seed: seed}, n)
		counts := make(map[int32]int)
		for range draws {
			counts[mustSample(t, s, l).Token]++
		}
		for tok := range counts {
			if !slices.Contains(top, tok) {
				t.Fatalf("k=%d: sampled token %d (logit %v), outside the top-k (k-th logit %v)", k, tok, l[tok], l[top[k-1]])
			}
		}
		if k != 10 {
			continue
		}
		kl := make([]float32, k)
		for i, id := range top {
			kl[i] = l[id]
		}
		p := refSoftmax(kl, temp)
		var chi2 float64
		for i, id := range top {
			e := p[i] * draws
			if e < 5 {
				t.Fatalf("test setup: expected count %v < 5 for token %d", e, id)
			}
			d := float64(counts[id]) - e
			chi2 += d * d / e
		}
		// 99.9th percentile of chi-square with 9 degrees of freedom.
		const crit = 27.877
		t.Logf("k=%d: chi-square %.2f over %d draws (critical %.3f)", k, chi2, draws, crit)
		if chi2 > crit {
			t.Errorf("k=%d: chi-square %.2f > %.3f: empirical distribution does not match softmax", k, chi2, crit)
		}
	}
}

func TestTopKTiesToLowerID(t *testing.T) {
	l := make([]float32, 37)
	l[30] = 1
	for _, k := range []int{5, 200} {
		s := mustNew(t, Params{Temperature: 1, TopK: k, TopP: 1, RepeatPenalty: 1}, len(l))
		got := candIDs(s.truncate(slices.Clone(l)))
		slices.Sort(got)
		want := []int32{0, 1, 2, 3, 30}
		if k >= len(l) {
			want = refOrder(l)
			slices.Sort(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("k=%d over equal logits: kept %v, want %v", k, got, want)
		}
	}
}

// handLogits has probabilities 0.1, 0.5, 0.15, 0.25 for ids 0..3 and bans
// id 4, so that top_k 4 takes the top-k path yet keeps every possible token.
func handLogits() []float32 {
	p := []float64{0.1, 0.5, 0.15, 0.25, 0}
	l := make([]float32, len(p))
	for i, x := range p {
		l[i] = float32(math.Log(x))
	}
	return l
}

func TestTopPHand(t *testing.T) {
	cases := []struct {
		topP float32
		want []int32
	}{
		{0.4, []int32{1}},
		{0.7, []int32{1, 3}},
		{0.8, []int32{1, 3, 2}},
		{0.95, []int32{1, 3, 2, 0}},
		{1, []int32{1, 3, 2, 0}},
	}
	for _, tc := range cases {
		for _, k := range []int{0, 4} {
			s := mustNew(t, Params{Temperature: 1, TopK: k, TopP: tc.topP, RepeatPenalty: 1, Seed: 5}, 5)
			got := sortedIDs(s.truncate(handLogits()))
			if !slices.Equal(got, slices.Sorted(slices.Values(tc.want))) {
				t.Errorf("top_p %v top_k %d: kept %v, want %v", tc.topP, k, got, tc.want)
			}
			for range 500 {
				if tok := mustSample(t, s, handLogits()).Token; !slices.Contains(tc.want, tok) {
					t.Fatalf("top_p %v top_k %d: sampled %d outside %v", tc.topP, k, tok, tc.want)
				}
			}
		}
	}
}

// TestTopPLargeVocab checks the chunked nucleus selection against a full
// sort, for nuclei smaller and larger than the first chunk.
func TestTopPLargeVocab(t *testing.T) {
	const n = 5003
	r := newRand(t, 14)
	for _, scale := range []float64{0.3, 3} {
		l := randLogits(r, n, scale)
		l[7] = float32(math.Inf(-1))
		l[8] = -math.MaxFloat32 // a masking value some models use instead of -Inf
		l[9] = -1e9
		order := refOrder(l)
		p := refSoftmax(l, 1)
		for _, topP := range []float32{0.05, 0.5, 0.9, 0.999} {
			var cum float64
			want := order
			for i, id := range order {
				cum += p[id]
				if cum >= float64(topP) {
					want = order[:i+1]
					break
				}
			}
			s := mustNew(t, Params{Temperature: 1, TopP: topP, RepeatPenalty: 1}, n)
			got := sortedIDs(s.truncate(slices.Clone(l)))
			want = slices.Sorted(slices.Values(want))
			if !slices.Equal(got, want) {
				t.Errorf("scale %v top_p %v: kept %d tokens, reference %d (first %v vs %v)",
					scale, topP, len(got), len(want), got[:min(5, len(got))], want[:min(5, len(want))])
			} else {
				t.Logf("scale %v top_p %v: nucleus of %d tokens", scale, topP, len(got))
			}
		}
	}
}

// TestNucleusWalkChunks checks the chunk-by-chunk selection on its own (the
// path taken when the bucketed walk falls short), against a full sort.
func TestNucleusWalkChunks(t *testing.T) {
	const n = 3001
	r := newRand(t, 19)
	for _, scale := range []float64{0.2, 4} {
		l := randLogits(r, n, scale)
		order := refOrder(l)
		p := refSoftmax(l, 1)
		m := float64(l[order[0]])
		var z float64
		for _, x := range l {
			z += expNeg(float64(x) - m)
		}
		for _, topP := range []float64{0.01, 0.3, 0.95} {
			var cum float64
			want := order
			for i, id := range order {
				cum += p[id]
				if cum >= topP {
					want = order[:i+1]
					break
				}
			}
			got := candIDs(nucleusWalk(appendFinite(nil, l), 0, m, topP*z))
			if !slices.Equal(got, want) { // the chunks come out sorted
				t.Errorf("scale %v top_p %v: walk kept %d tokens, reference %d", scale, topP, len(got), len(want))
			}
		}
	}
}

// TestNucleusGatherFallback gives gather crossing buckets below the true one,
// so that its walk falls short and the chunked fallback has to finish it.
func TestNucleusGatherFallback(t *testing.T) {
	const n = 2003
	r := newRand(t, 20)
	l := randLogits(r, n, 2)
	l[5] = float32(math.Inf(-1))
	l[6] = -math.MaxFloat32
	order := refOrder(l)
	p := refSoftmax(l, 1)
	const topP = 0.8
	var cum float64
	var want []int32
	for i, id := range order {
		cum += p[id]
		if cum >= topP {
			want = slices.Sorted(slices.Values(order[:i+1]))
			break
		}
	}
	m := float64(l[order[0]])
	var z float64
	for _, x := range l {
		z += expNeg(float64(x) - m)
	}
	trueCross := bucketOf(m, l[order[len(want)-1]])
	s := mustNew(t, Params{Temperature: 1, TopP: topP, RepeatPenalty: 1}, n)
	for cross := 0; cross <= trueCross; cross++ {
		if got := sortedIDs(s.gather(l, m, topP*z, cross)); !slices.Equal(got, want) {
			t.Errorf("cross %d (true %d): kept %d tokens, reference %d", cross, trueCross, len(got), len(want))
		}
	}
	t.Logf("nucleus of %d tokens, crossing bucket %d", len(want), trueCross)
}

func TestTopPTiesToLowerID(t *testing.T) {
	l := make([]float32, 1001) // uniform: 501 tokens are the first to reach half the mass
	s := mustNew(t, Params{Temperature: 1, TopP: 0.5, RepeatPenalty: 1}, len(l))
	got := sortedIDs(s.truncate(l))
	if len(got) != 501 || got[0] != 0 || got[500] != 500 {
		t.Errorf("top_p 0.5 over 1001 equal logits: kept %d tokens %v..%v, want ids 0..500", len(got), got[:min(3, len(got))], got[max(0, len(got)-3):])
	}
}

func TestMinPHand(t *testing.T) {
	cases := []struct {
		minP float32
		want []int32
	}{
		{0.25, []int32{1, 3, 2}}, // threshold 0.125: 0.1 goes
		{0.4, []int32{1, 3}},     // threshold 0.2
		{0.6, []int32{1}},        // threshold 0.3
		{0.19, []int32{0, 1, 2, 3}},
	}
	for _, tc := range cases {
		for _, setup := range []struct {
			name string
			topK int
			topP float32
		}{{"alone", 0, 1}, {"after top-k", 4, 1}, {"after top-p", 0, 0.999}} {
			s := mustNew(t, Params{Temperature: 1, TopK: setup.topK, TopP: setup.topP, MinP: tc.minP, RepeatPenalty: 1, Seed: 6}, 5)
			got := candIDs(s.truncate(handLogits()))
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("min_p %v %s: kept %v, want %v", tc.minP, setup.name, got, want)
			}
			for range 300 {
				if tok := mustSample(t, s, handLogits()).Token; !slices.Contains(want, tok) {
					t.Fatalf("min_p %v %s: sampled %d outside %v", tc.minP, setup.name, tok, want)
				}
			}
		}
	}
}

// TestTruncationOrder checks that top-p sees the distribution renormalized
// over the top-k survivors, as in llama.cpp.
func TestTruncationOrder(t *testing.T) {
	// top_k 2 leaves {1: 0.5, 3: 0.25}, renormalized {2/3, 1/3}; top_p 0.6
	// then keeps only token 1, while over all four it would keep {1, 3}.
	s := mustNew(t, Params{Temperature: 1, TopK: 2, TopP: 0.6, RepeatPenalty: 1}, 5)
	if got := candIDs(s.truncate(handLogits())); !slices.Equal(got, []int32{1}) {
		t.Errorf("top_k 2 then top_p 0.6: kept %v, want [1]", got)
	}
}

func TestPenaltiesHand(t *testing.T) {
	logits := []float32{1, 2, -1, 0.5, 3, 0}
	p := Params{Temperature: 1, TopP: 1, RepeatPenalty: 2, PresencePenalty: 0.5, FrequencyPenalty: 0.25, PenaltyLastN: 3}
	s := mustNew(t, p, len(logits))
	for _, tok := range []int32{1, 2, 5, 2, 3} {
		if err := s.Accept(tok); err != nil {
			t.Fatal(err)
		}
	}
	// The window of 3 holds 5, 2, 3: token 1 and the first 2 have left it.
	got, err := s.process(logits)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{
		1,                 // not in window
		2,                 // 1 left the window
		-1*2 - 0.5 - 0.25, // logit <= 0: multiplied, count 1
		0.5/2 - 0.5 - 0.25,
		3,
		0*2 - 0.5 - 0.25, // zero stays zero either way
	}
	if !slices.Equal(got, want) {
		t.Errorf("window 3 after 1,2,5,2,3: logits %v, want %v", got, want)
	}

	// The whole context: token 2 twice.
	p.PenaltyLastN = -1
	s = mustNew(t, p, len(logits))
	for _, tok := range []int32{1, 2, 5, 2, 3} {
		if err := s.Accept(tok); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = s.process(logits)
	want = []float32{
		1,
		2.0/2 - 0.5 - 0.25,
		-1*2 - 0.5 - 2*0.25,
		0.5/2 - 0.5 - 0.25,
		3,
		0*2 - 0.5 - 0.25,
	}
	if !slices.Equal(got, want) {
		t.Errorf("whole context after 1,2,5,2,3: logits %v, want %v", got, want)
	}

	// Window 0 turns the penalties off.
	p.PenaltyLastN = 0
	s = mustNew(t, p, len(logits))
	_ = s.Accept(4)
	got, _ = s.process(logits)
	if !slices.Equal(got, logits) {
		t.Errorf("penalty_last_n 0: logits %v, want unchanged %v", got, logits)
	}

	if err := s.Accept(6); err == nil {
		t.Error("Accept(6) with a vocabulary of 6: no error")
	}
	if err := s.Accept(-1); err == nil {
		t.Error("Accept(-1): no error")
	}
}

func TestPenaltyChangesGreedy(t *testing.T) {
	logits := []float32{0, 2, 1.5}
	s := mustNew(t, Params{TopP: 1, RepeatPenalty: 1.5, PenaltyLastN: 64}, 3)
	if got := mustSample(t, s, logits).Token; got != 1 {
		t.Fatalf("before any token: greedy %d, want 1", got)
	}
	_ = s.Accept(1) // 2/1.5 = 1.33 < 1.5
	if got := mustSample(t, s, logits).Token; got != 2 {
		t.Errorf("after accepting 1 with repeat penalty 1.5: greedy %d, want 2", got)
	}
}

func TestLogitBias(t *testing.T) {
	const n = 101
	r := newRand(t, 15)
	l := randLogits(r, n, 1)
	best := refOrder(l)[0]
	second := refOrder(l)[1]
	neg := float32(math.Inf(-1))

	g := mustNew(t, Params{TopP: 1, RepeatPenalty: 1, LogitBias: map[int32]float32{best: neg}}, n)
	if got := mustSample(t, g, l).Token; got != second {
		t.Errorf("greedy with the argmax %d banned: picked %d, want %d", best, got, second)
	}
	g = mustNew(t, Params{TopP: 1, RepeatPenalty: 1, LogitBias: map[int32]float32{50: 100}}, n)
	if got := mustSample(t, g, l).Token; got != 50 {
		t.Errorf("greedy with bias +100 on 50: picked %d", got)
	}

	// Concentrate the mass on the banned token so a leak would show.
	hot := slices.Clone(l)
	hot[best] = 20
	for _, p := range []Params{
		{Temperature: 2, TopP: 1, RepeatPenalty: 1},
		{Temperature: 2, TopK: 5, TopP: 1, RepeatPenalty: 1},
		{Temperature: 2, TopP: 0.9, RepeatPenalty: 1},
		{Temperature: 2, TopP: 1, MinP: 0.01, RepeatPenalty: 1},
	} {
		p.Seed = 77
		p.LogitBias = map[int32]float32{best: neg}
		s := mustNew(t, p, n)
		for range 10000 {
			if tok := mustSample(t, s, hot).Token; tok == best {
				t.Fatalf("%+v: sampled banned token %d", p, best)
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	const n, steps = 1000, 300
	r := newRand(t, 16)
	inputs := make([][]float32, steps)
	for i := range inputs {
		inputs[i] = randLogits(r, n, 0.5)
	}
	run := func(seed uint64) []int32 {
		p := DefaultParams()
		p.Seed = seed
		p.TopK = 100
		p.TopP = 0.95
		p.RepeatPenalty = 1.1
		p.FrequencyPenalty = 0.1
		s := mustNew(t, p, n)
		toks := make([]int32, steps)
		for i, l := range inputs {
			toks[i] = mustSample(t, s, l).Token
			if err := s.Accept(toks[i]); err != nil {
				t.Fatal(err)
			}
		}
		return toks
	}
	a, b := run(42), run(42)
	if !slices.Equal(a, b) {
		t.Errorf("seed 42 twice: sequences differ")
	}
	c := run(43)
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 gave the same %d tokens", steps)
	}
}

func TestTopLogprobs(t *testing.T) {
	neg := float32(math.Inf(-1))
	small := []float32{0.3, 2, -1, 2, 0.7, 1.9, neg, -3, 0, 0.3, 5, 1, -0.5}
	r := newRand(t, 17)
	large := randLogits(r, 5003, 2)
	for _, tc := range []struct {
		name   string
		logits []float32
		temp   float32
		top    int
	}{
		{"small greedy", small, 0, 20},
		{"small sampled", small, 0.5, 20},
		{"large", large, 1.3, 5},
	} {
		s := mustNew(t, Params{Temperature: tc.temp, TopP: 1, RepeatPenalty: 1, TopLogprobs: tc.top, Seed: 3}, len(tc.logits))
		res := mustSample(t, s, tc.logits)

		// float64 reference: log-softmax of the logits, temperature ignored.
		m := math.Inf(-1)
		for _, l := range tc.logits {
			m = max(m, float64(l))
		}
		var z float64
		for _, l := range tc.logits {
			z += math.Exp(float64(l) - m)
		}
		lse := m + math.Log(z)
		const tol = 1e-6 // absolute, on log-probabilities of order 1..10

		if d := math.Abs(float64(res.Logprob) - (float64(tc.logits[res.Token]) - lse)); d > tol {
			t.Errorf("%s: logprob of token %d is %v, reference %v", tc.name, res.Token, res.Logprob, float64(tc.logits[res.Token])-lse)
		}
		order := refOrder(tc.logits)
		wantLen := min(tc.top, len(order))
		if len(res.Top) != wantLen {
			t.Fatalf("%s: %d top logprobs, want %d", tc.name, len(res.Top), wantLen)
		}
		var mass float64
		for i, e := range res.Top {
			if e.Token != order[i] {
				t.Errorf("%s: top[%d] is token %d, want %d", tc.name, i, e.Token, order[i])
			}
			if i > 0 && e.Logprob > res.Top[i-1].Logprob {
				t.Errorf("%s: top not sorted at %d: %v after %v", tc.name, i, e.Logprob, res.Top[i-1].Logprob)
			}
			ref := float64(tc.logits[e.Token]) - lse
			if d := math.Abs(float64(e.Logprob) - ref); d > tol {
				t.Errorf("%s: top[%d] logprob %v, reference %v", tc.name, i, e.Logprob, ref)
			}
			mass += math.Exp(float64(e.Logprob))
		}
		if wantLen == len(order) && math.Abs(mass-1) > 1e-5 {
			t.Errorf("%s: top logprobs cover the vocabulary but their mass is %v", tc.name, mass)
		}
	}
}

func TestLogprobsOff(t *testing.T) {
	s := mustNew(t, Params{Temperature: 1, TopP: 1, RepeatPenalty: 1}, 5)
	res := mustSample(t, s, handLogits())
	if res.Logprob != 0 || res.Top != nil {
		t.Errorf("logprobs not asked for: got %v, %v", res.Logprob, res.Top)
	}
	s = mustNew(t, Params{Temperature: 0, TopP: 1, RepeatPenalty: 1, Logprobs: true}, 5)
	res = mustSample(t, s, handLogits())
	if d := math.Abs(float64(res.Logprob) - math.Log(0.5)); d > 1e-6 || res.Top != nil {
		t.Errorf("logprobs only: got %v (want ln 0.5), top %v (want nil)", res.Logprob, res.Top)
	}
}

func TestSampleInputErrors(t *testing.T) {
	s := mustNew(t, DefaultParams(), 4)
	for _, tc := range []struct {
		name   string
		logits []float32
	}{
		{"short", []float32{1, 2, 3}},
		{"NaN", []float32{1, float32(math.NaN()), 3, 4}},
		{"+Inf", []float32{1, 2, float32(math.Inf(1)), 4}},
	} {
		if _, err := s.Sample(tc.logits); err == nil {
			t.Errorf("%s logits: no error", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	p := DefaultParams()
	p.LogitBias = map[int32]float32{2: math.MaxFloat32}
	s = mustNew(t, p, 4)
	if _, err := s.Sample([]float32{0, 0, math.MaxFloat32, 0}); err == nil {
		t.Error("logit overflowing to +Inf after bias: no error")
	}
}

func TestSampleLeavesLogitsAlone(t *testing.T) {
	p := DefaultParams()
	p.RepeatPenalty = 1.3
	p.LogitBias = map[int32]float32{0: -2}
	p.TopK = 2
	s := mustNew(t, p, 5)
	_ = s.Accept(1)
	l := handLogits()
	orig := slices.Clone(l)
	mustSample(t, s, l)
	if !slices.Equal(l, orig) {
		t.Errorf("Sample modified its input: %v, was %v", l, orig)
	}
}

func TestSampleAllocs(t *testing.T) {
	r := newRand(t, 18)
	l := randLogits(r, 32000, 2)
	for _, tc := range []struct {
		name string
		p    Params
	}{
		{"greedy", Params{TopP: 1, RepeatPenalty: 1}},
		{"top-k top-p", Params{Temperature: 0.8, TopK: 40, TopP: 0.95, RepeatPenalty: 1.1, PenaltyLastN: 64}},
		{"top-p", Params{Temperature: 0.8, TopP: 0.95, RepeatPenalty: 1}},
		{"min-p logprobs", Params{Temperature: 0.8, TopP: 1, MinP: 0.05, RepeatPenalty: 1, Logprobs: true}},
	} {
		s := mustNew(t, tc.p, len(l))
		for i := range 100 {
			_ = s.Accept(int32(i * 7))
		}
		mustSample(t, s, l) // grow the buffers
		if a := testing.AllocsPerRun(20, func() { _, _ = s.Sample(l) }); a != 0 {
			t.Errorf("%s: %v allocations per Sample, want 0", tc.name, a)
		}
	}
}
