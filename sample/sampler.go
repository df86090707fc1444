package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ErrNoCandidates is returned by [Sampler.Sample] when every token's logit is
// -Inf after logit bias and penalties, so there is nothing to sample.
var ErrNoCandidates = errors.New("sample: every token has logit -Inf after logit bias and penalties")

// pcgStream is the second PCG seed word; the request's Seed is the first.
const pcgStream = 0xda3e39cb94b95bdb

// firstChunk is the number of best candidates nucleusWalk selects and sorts
// first when it runs past the part known to be in the nucleus; it doubles
// while the mass is still short of TopP.
const firstChunk = 64

// TokenLogprob is a token and its log-probability.
type TokenLogprob struct {
	Token   int32
	Logprob float32
}

// Result is the outcome of one [Sampler.Sample].
type Result struct {
	// Token is the sampled token.
	Token int32
	// Logprob is Token's log-probability (see the package doc for which
	// distribution); 0 unless Params.Logprobs or Params.TopLogprobs is set.
	Logprob float32
	// Top lists the Params.TopLogprobs most likely tokens of the same
	// distribution, most likely first (ties to the lower id), leaving out
	// banned tokens. It is freshly allocated and nil when not asked for.
	Top []TokenLogprob
}

// Sampler samples the tokens of one request. It is not safe for concurrent
// use.
type Sampler struct {
	p            Params
	nVocab       int
	wantLogprobs bool
	rng          *rand.Rand
	win          *window // nil when no penalty can change a logit

	biasIDs  []int32 // ascending, so bias is applied in a fixed order
	biasVals []float32

	// Buffers reused across calls so that steady-state sampling does not
	// allocate; cands and weights grow to the largest candidate set seen.
	logits  []float32
	cands   []cand
	weights []float32
	top     []cand
}

// New validates p for a vocabulary of nVocab tokens and returns a sampler
// with its RNG seeded from p.Seed and an empty penalty window.
func New(p Params, nVocab int) (*Sampler, error) {
	if err := p.Validate(nVocab); err != nil {
		return nil, err
	}
	s := &Sampler{
		p:            p,
		nVocab:       nVocab,
		wantLogprobs: p.Logprobs || p.TopLogprobs > 0,
		rng:          rand.New(rand.NewPCG(p.Seed, pcgStream)),
		logits:       make([]float32, nVocab),
	}
	if p.penalized() {
		s.win = newWindow(p.PenaltyLastN)
	}
	if len(p.LogitBias) > 0 {
		s.biasIDs = make([]int32, 0, len(p.LogitBias))
		for id := range p.LogitBias {
			s.biasIDs = append(s.biasIDs, id)
		}
		slices.Sort(s.biasIDs)
		s.biasVals = make([]float32, len(s.biasIDs))
		for i, id := range s.biasIDs {
			s.biasVals[i] = p.LogitBias[id]
		}
	}
	return s, nil
}

// Accept records tok as part of the sequence (prompt tokens as well as
// sampled ones) so that the penalties see it.
func (s *Sampler) Accept(tok int32) error {
	if tok < 0 || int(tok) >= s.nVocab {
		return fmt.Errorf("sample: accepted token id %d outside the vocabulary [0, %d)", tok, s.nVocab)
	}
	if s.win != nil {
		s.win.add(tok)
	}
	return nil
}

// Sample picks the next token from one step's logits (len nVocab). It does
// not modify logits or keep a reference to them. It does not Accept the
// token; the caller does, once it keeps it.
func (s *Sampler) Sample(logits []float32) (Result, error) {
	buf, err := s.process(logits)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if s.p.Temperature == 0 {
		tok := argmax(buf)
		if tok < 0 {
			return Result{}, ErrNoCandidates
		}
		res.Token = tok
	} else {
		c := s.truncate(buf)
		if len(c) == 0 {
			return Result{}, ErrNoCandidates
		}
		res.Token = s.draw(c)
	}
	if s.wantLogprobs {
		lse := logSumExp(buf)
		res.Logprob = float32(float64(buf[res.Token]) - lse)
		if n := s.p.TopLogprobs; n > 0 {
			s.top = topK(s.top[:0], buf, n)
			sortCands(s.top)
			res.Top = make([]TokenLogprob, len(s.top))
			for i, c := range s.top {
				res.Top[i] = TokenLogprob{c.id, float32(float64(c.logit) - lse)}
			}
		}
	}
	return res, nil
}

// process copies logits into the private buffer and applies the logit bias
// and the penalties.
func (s *Sampler) process(logits []float32) ([]float32, error) {
	if len(logits) != s.nVocab {
		return nil, fmt.Errorf("sample: %d logits for a vocabulary of %d tokens", len(logits), s.nVocab)
	}
	buf := s.logits[:len(logits)]
	for i, l := range logits {
		if !(l <= math.MaxFloat32) { // NaN or +Inf; -Inf is a banned token
			return nil, fmt.Errorf("sample: logit of token %d is %v", i, l)
		}
		buf[i] = l
	}
	for i, id := range s.biasIDs {
		l := buf[id] + s.biasVals[i]
		if !finiteOrNegInf(l) {
			return nil, fmt.Errorf("sample: logit of token %d is %v after logit bias %v", id, l, s.biasVals[i])
		}
		buf[id] = l
	}
	if s.win != nil {
		if id := s.win.apply(buf, s.p.RepeatPenalty, s.p.PresencePenalty, s.p.FrequencyPenalty); id >= 0 {
			return nil, fmt.Errorf("sample: logit of token %d is %v after penalties", id, buf[id])
		}
	}
	return buf, nil
}

// truncate applies top-k, top-p and min-p (in that order) and returns the
// surviving candidates.
func (s *Sampler) truncate(buf []float32) []cand {
	var c []cand
	switch {
	case s.p.TopK > 0 && s.p.TopK < len(buf):
		c = topK(s.cands[:0], buf, s.p.TopK)
		s.cands = c
		if s.p.TopK <= heapSelectLimit || s.p.TopP < 1 {
			// Only the k survivors are sorted. Top-p needs the order; a
			// small k is sorted anyway so that the draw walks the
			// candidates in a canonical order, the one a device's top-k
			// hands SampleCandidates.
			sortCands(c)
		}
		c = topPSorted(c, s.p.TopP)
	case s.p.TopP < 1:
		c = s.nucleus(buf)
	case s.p.MinP > 0:
		// min-p alone: one filtering pass, no sorting.
		m := maxOf(buf)
		thr := math.Log(float64(s.p.MinP))
		c = s.cands[:0]
		for i, l := range buf {
			if float64(l)-m >= thr {
				c = append(c, cand{int32(i), l})
			}
		}
		s.cands = c
		return c
	default:
		c = appendFinite(s.cands[:0], buf)
		s.cands = c
		return c
	}
	if s.p.MinP > 0 && len(c) > 0 {
		c = minP(c, s.p.MinP)
	}
	return c
}

// topPSorted applies top-p to sorted candidates: the shortest prefix whose
// mass (softmax over c) reaches p.
func topPSorted(c []cand, p float32) []cand {
	if len(c) == 0 || p >= 1 {
		return c
	}
	m := float64(c[0].logit)
	var z float64
	for _, x := range c {
		z += expNeg(float64(x.logit) - m)
	}
	return nucleusWalk(c, len(c), m, float64(p)*z)
}

// Top-p over the whole vocabulary buckets the probability mass by distance
// of the logit from the largest one, so that only the tokens of the bucket
// where the mass crosses TopP need sorting.
const (
	nBuckets    = 512
	bucketScale = 16 // buckets per unit of logit; nBuckets/bucketScale = 32 covers all but e^-32 of the mass
)

func bucketOf(m float64, l float32) int {
	d := (m - float64(l)) * bucketScale
	if d >= nBuckets-1 { // also keeps masking logits like -MaxFloat32 from overflowing int
		return nBuckets - 1
	}
	return int(d)
}

// nucleus returns the smallest set of tokens, taken by descending logit
// (ties to the lower id), whose probability mass (softmax over buf, no
// temperature) is at least TopP. Tokens before the crossing bucket are in no
// particular order, the rest sorted.
func (s *Sampler) nucleus(buf []float32) []cand {
	m := maxOf(buf)
	if math.IsInf(m, -1) {
		return s.cands[:0]
	}
	var mass [nBuckets]float64
	var z float64
	for _, l := range buf {
		if l < -math.MaxFloat32 {
			continue
		}
		w := expNeg(float64(l) - m)
		z += w
		mass[bucketOf(m, l)] += w
	}
	target := float64(s.p.TopP) * z
	cross := nBuckets - 1
	var cum float64
	for b, w := range mass {
		cum += w
		if cum >= target {
			cross = b
			break
		}
	}
	return s.gather(buf, m, target, cross)
}

// gather returns the nucleus given the bucket cross where the mass reaches
// target: tokens of earlier buckets are all in it, and the crossing bucket is
// sorted to find where it ends. A cross below the true crossing bucket (as
// rounding may give) costs time, not correctness.
func (s *Sampler) gather(buf []float32, m, target float64, cross int) []cand {
	c := s.cands[:0]
	lim := float64(cross + 1) // bucketOf(m, l) <= cross  <=>  (m-l)*bucketScale < cross+1
	for i, l := range buf {
		if l >= -math.MaxFloat32 && (m-float64(l))*bucketScale < lim {
			c = append(c, cand{int32(i), l})
		}
	}
	done := 0
	for i, x := range c {
		if bucketOf(m, x.logit) < cross {
			c[done], c[i] = c[i], c[done]
			done++
		}
	}
	sortCands(c[done:])
	s.cands = c
	var walked float64
	for i, x := range c {
		walked += expNeg(float64(x.logit) - m)
		if walked >= target && i >= done {
			return c[:i+1]
		}
	}
	// Rounding left the sorted walk short of the bucket sums: the remaining
	// tokens follow, to be selected chunk by chunk.
	n := len(c)
	for i, l := range buf {
		if l >= -math.MaxFloat32 && (m-float64(l))*bucketScale >= lim {
			c = append(c, cand{int32(i), l})
		}
	}
	s.cands = c
	return nucleusWalk(c, n, m, target)
}

// nucleusWalk returns the shortest prefix of c whose mass (weights
// e^(logit-m)) reaches target. c[:sorted] is walked as it is: it is sorted,
// or at least every candidate in it precedes all of c[sorted:]. c[sorted:] is
// unordered; it is selected and sorted in growing chunks only as far as the
// walk needs.
func nucleusWalk(c []cand, sorted int, m, target float64) []cand {
	var cum float64
	for i := range sorted {
		cum += expNeg(float64(c[i].logit) - m)
		if cum >= target {
			return c[:i+1]
		}
	}
	lo, chunk := sorted, firstChunk
	for lo < len(c) {
		hi := min(len(c), lo+chunk)
		nthElement(c[lo:], hi-lo)
		sortCands(c[lo:hi])
		chunk *= 2
		for i := lo; i < hi; i++ {
			cum += expNeg(float64(c[i].logit) - m)
			if cum >= target {
				return c[:i+1]
			}
		}
		lo = hi
	}
	return c // rounding kept the mass just short of p: keep everything
}

// minP drops the candidates whose probability is below minP times the
// largest, keeping the order of the rest.
func minP(c []cand, minP float32) []cand {
	m := maxLogit(c)
	// p_i >= minP*p_max  <=>  logit_i - logit_max >= ln(minP)
	thr := math.Log(float64(minP))
	kept := c[:0]
	for _, x := range c {
		if float64(x.logit)-m >= thr {
			kept = append(kept, x)
		}
	}
	return kept
}

// draw applies the temperature, takes the softmax over c and draws one token
// with the request's RNG.
func (s *Sampler) draw(c []cand) int32 {
	m := maxLogit(c)
	invT := 1 / float64(s.p.Temperature)
	if cap(s.weights) < len(c) {
		s.weights = make([]float32, len(c))
	}
	w := s.weights[:len(c)]
	var sum float64
	for i, x := range c {
		// The best candidate gets weight 1, so sum >= 1 even when a tiny
		// temperature underflows every other weight to 0.
		e := float32(expNeg((float64(x.logit) - m) * invT))
		w[i] = e
		sum += float64(e)
	}
	u := s.rng.Float64() * sum
	last := 0
	for i, e := range w {
		if e == 0 {
			continue
		}
		last = i
		u -= float64(e)
		if u < 0 {
			return c[i].id
		}
	}
	return c[last].id // u landed on the rounding slack at the end
}

func maxLogit(c []cand) float64 {
	// A comparison, not the max builtin, whose NaN and signed-zero rules
	// cost a branchy sequence per element; candidates are never NaN.
	m := c[0].logit
	for _, x := range c[1:] {
		if x.logit > m {
			m = x.logit
		}
	}
	return float64(m)
}

// maxOf returns the largest logit (-Inf if all are).
func maxOf(logits []float32) float64 {
	m := float32(math.Inf(-1))
	for _, l := range logits {
		if l > m {
			m = l
		}
	}
	return float64(m)
}

// argmax returns the id of the largest logit, the lower id on ties, or -1
// when every logit is -Inf.
func argmax(logits []float32) int32 {
	best, bestL := int32(-1), float32(-math.MaxFloat32)
	for i, l := range logits {
		if l > bestL || (best < 0 && l == bestL) {
			best, bestL = int32(i), l
		}
	}
	return best
}

// logSumExp returns log(sum(exp(logits))) in float64; at least one logit is
// finite (the caller has sampled a token).
func logSumExp(logits []float32) float64 {
	m := maxOf(logits)
	var z float64
	for _, l := range logits {
		z += expNeg(float64(l) - m)
	}
	return m + math.Log(z)
}
