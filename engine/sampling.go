package engine

import (
	"os"
	"runtime"
	"strconv"
	"sync"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/sample"
)

// minParallelRows is the fewest sampled rows of a step that are spread
// over goroutines: a row of a 32000-token vocabulary with top-k/top-p costs
// tens of microseconds on the host, so 64 rows a step are milliseconds —
// as long as a whole batched decode step on a GPU.
const minParallelRows = 4

// sampled is one output row's sampling result.
type sampled struct {
	res sample.Result
	err error
}

// sampleRows samples row i of logits (nVocab wide) with reqs[i]'s sampler
// into out[i], over up to workers goroutines. Every request's sampler is
// its own (RNG, penalty window, buffers), so rows are independent and the
// results are those of sampling one after another; the caller applies them
// in order.
func sampleRows(reqs []*request, logits []float32, nVocab, workers int, out []sampled) {
	forRows(len(reqs), workers, func(i int) {
		res, err := reqs[i].sampler.Sample(logits[i*nVocab : (i+1)*nVocab])
		out[i] = sampled{res, err}
	})
}

// forRows calls one(i) for i in [0, n), over up to workers goroutines in
// contiguous shares when there are enough rows.
func forRows(n, workers int, one func(i int)) {
	workers = min(workers, n/2)
	if n < minParallelRows || workers < 2 {
		for i := range n {
			one(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Contiguous shares: rows w*n/workers to (w+1)*n/workers.
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				one(i)
			}
		})
	}
	wg.Wait()
}

// topkForwarder is the optional model capability of sampled steps whose
// rows each need only their best tokens: a forward pass that writes each
// output's k best tokens and the log-sum-exp of its row
// (compute.TopKer's definition) instead of copying the rows out.
type topkForwarder interface {
	ForwardTopK(b *model.Batch, c *model.Cache, k int, ids []int32, vals []float32, lse []float32) error
}

// deviceTopK returns m's top-k capability when its backend finds the best
// tokens where the logits are (compute.TopKer), which saves a device
// copying out every row, and nil otherwise or when ROCMFORGE_DEVICE_TOPK
// is 0 (the full-row path, for A/B timing). Host backends have no TopKer:
// there is no copy to save, and full rows are already sampled in parallel.
func deviceTopK(m *model.Model) topkForwarder {
	if os.Getenv("ROCMFORGE_DEVICE_TOPK") == "0" {
		return nil
	}
	if _, ok := m.Backend().(compute.TopKer); !ok {
		return nil
	}
	return m
}

// candidatesK returns the k for a step whose sampled rows can all be
// sampled from their best tokens (sample.Sampler.Candidates): the largest
// any of them needs, a row needing fewer taking its prefix. It is 0, the
// full-row path, when one needs the whole row or more than compute.MaxTopK
// tokens, or the model has no device top-k.
func (s *scheduler) candidatesK() int {
	if s.e.topk == nil {
		return 0
	}
	k := 0
	for _, sc := range s.sched {
		if !sc.output {
			continue
		}
		n := sc.r.sampler.Candidates()
		if n == 0 || n > compute.MaxTopK {
			return 0
		}
		k = max(k, n)
	}
	return k
}

// candidates are a step's best tokens: output i's k best at
// ids[i*k:(i+1)*k] and vals[i*k:(i+1)*k], its row's log-sum-exp at lse[i].
type candidates struct {
	k    int
	ids  []int32
	vals []float32
	lse  []float32
}

// forward runs the step, keeping each output's k best tokens.
func (c *candidates) forward(e *Engine, b *model.Batch, k int) error {
	n := len(b.Outputs)
	if cap(c.ids) < n*k {
		c.ids, c.vals = make([]int32, n*k), make([]float32, n*k)
	}
	if cap(c.lse) < n {
		c.lse = make([]float32, n)
	}
	c.k, c.ids, c.vals, c.lse = k, c.ids[:n*k], c.vals[:n*k], c.lse[:n]
	return e.topk.ForwardTopK(b, e.cache, k, c.ids, c.vals, c.lse)
}

// sample samples output i with reqs[i]'s sampler from its best tokens into
// out[i], as sampleRows does from the whole rows (the same results).
func (c *candidates) sample(reqs []*request, workers int, out []sampled) {
	k := c.k
	forRows(len(reqs), workers, func(i int) {
		res, err := reqs[i].sampler.SampleCandidates(c.ids[i*k:(i+1)*k], c.vals[i*k:(i+1)*k], float64(c.lse[i]))
		out[i] = sampled{res, err}
	})
}

// samplingWorkers is how many goroutines sample a step's rows: one per
// CPU, or ROCMFORGE_SAMPLE_WORKERS when it is a number >= 1 (for A/B
// timing).
func samplingWorkers() int {
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_SAMPLE_WORKERS")); err == nil && v >= 1 {
		return v
	}
	return runtime.GOMAXPROCS(0)
}
