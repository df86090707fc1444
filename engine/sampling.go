package engine

import (
	"os"
	"runtime"
	"strconv"
	"sync"

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
	n := len(reqs)
	one := func(i int) {
		res, err := reqs[i].sampler.Sample(logits[i*nVocab : (i+1)*nVocab])
		out[i] = sampled{res, err}
	}
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

// samplingWorkers is how many goroutines sample a step's rows: one per
// CPU, or ROCMFORGE_SAMPLE_WORKERS when it is a number >= 1 (for A/B
// timing).
func samplingWorkers() int {
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_SAMPLE_WORKERS")); err == nil && v >= 1 {
		return v
	}
	return runtime.GOMAXPROCS(0)
}
