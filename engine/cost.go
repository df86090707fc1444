package engine

import (
	"math"
	"time"
)

// costModel predicts a step's duration from its rows, for the adaptive
// prefill cap. The scheduler feeds it every step it runs; tests replace it
// to make the cap deterministic.
type costModel interface {
	// observe records that a step of rows rows took d.
	observe(rows int, d time.Duration)
	// rowsWithin returns how many rows a step can have and still be
	// predicted to take at most target; false while nothing is known.
	rowsWithin(target time.Duration) (int, bool)
}

// costDecay is the weight an observation keeps per later step: about the
// last 1/(1-costDecay) = 20 steps count, so the fit follows changes in the
// mix (context lengths grow, another process takes a core) within a few
// steps.
const costDecay = 0.95

// stepCost fits step time = a + b*rows by exponentially weighted least
// squares: a is the per-step cost (weights read once, launches, sampling),
// b the per-row cost. Decode rows and prompt rows are not told apart: on
// a compute-bound backend they cost about the same once batched, and the
// fit is only used to size prompt chunks next to decodes.
type stepCost struct {
	w, sn, st, snn, snt float64 // weighted sums of 1, n, t, n², n·t
}

func (c *stepCost) observe(rows int, d time.Duration) {
	if rows <= 0 || d < 0 {
		return
	}
	n, t := float64(rows), d.Seconds()
	c.w = c.w*costDecay + 1
	c.sn = c.sn*costDecay + n
	c.st = c.st*costDecay + t
	c.snn = c.snn*costDecay + n*n
	c.snt = c.snt*costDecay + n*t
}

// fit returns the per-step and per-row costs in seconds. When the recent
// steps all had about the same number of rows the two cannot be told apart,
// and the whole time is charged to the rows (which overestimates the cost of
// more rows: a cap erring small).
func (c *stepCost) fit() (a, b float64, ok bool) {
	if c.w == 0 {
		return 0, 0, false
	}
	mn, mt := c.sn/c.w, c.st/c.w
	if mn <= 0 || mt <= 0 {
		return 0, 0, false
	}
	if varN := c.snn/c.w - mn*mn; varN > 1 && varN > 1e-3*mn*mn {
		b = (c.snt/c.w - mn*mt) / varN
		if b > 0 {
			return max(mt-b*mn, 0), b, true
		}
	}
	return 0, mt / mn, true
}

func (c *stepCost) rowsWithin(target time.Duration) (int, bool) {
	a, b, ok := c.fit()
	if !ok {
		return 0, false
	}
	n := (target.Seconds() - a) / b
	if n < 0 {
		return 0, true
	}
	return int(min(n, math.MaxInt32)), true
}

// prefillCap is the number of prompt rows a step may add after its decode
// rows, with budget rows left of MaxBatchTokens.
func (s *scheduler) prefillCap(decodes, budget int) int {
	cfg := &s.e.cfg
	switch {
	case decodes == 0 || budget <= 0:
		return budget
	case cfg.MaxPrefillTokens > 0:
		return min(budget, cfg.MaxPrefillTokens)
	case cfg.TargetStepLatency < 0:
		return budget
	}
	n, ok := s.cost.rowsWithin(cfg.TargetStepLatency)
	if !ok {
		return budget
	}
	// The floor keeps admissions going when the decodes alone fill the
	// target (a slow backend): prompts get at least the rows the decodes
	// get, and at least minPrefill.
	return min(budget, max(n-decodes, decodes, s.minPrefill))
}

// defaultMinPrefill is the adaptive cap's floor of prompt rows per step.
// Below it, on a backend too slow for the target, a prompt is spread over
// so many steps that each step's fixed cost (the weights are read once per
// step) makes the whole run slower, and few sequences can be admitted per
// step, so that few decode at once: measured on the 2-core CPU with a
// TinyLlama-shaped model, a floor of 16 rows cost up to a third of the
// throughput at 8 clients. 64 rows are a few milliseconds on a GPU.
const defaultMinPrefill = 64
