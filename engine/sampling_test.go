package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/sample"
)

// samplingCase makes n requests with seeded samplers (top-k, top-p,
// temperature, repeat penalty, logprobs) and n random logit rows.
func samplingCase(t testing.TB, n, nVocab int, seed uint64) ([]*request, []float32) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	reqs := make([]*request, n)
	for i := range reqs {
		p := sample.DefaultParams()
		p.Temperature, p.TopK, p.TopP, p.RepeatPenalty = 0.8, 40, 0.95, 1.1
		p.Seed = uint64(100 + i)
		p.TopLogprobs = 2
		sm, err := sample.New(p, nVocab)
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = &request{sampler: sm}
	}
	logits := make([]float32, n*nVocab)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	return reqs, logits
}

// TestSampleRowsParallel: sampling a step's rows over several goroutines
// gives, row by row, exactly what sampling them one after another gives,
// for row counts around the parallel threshold and the worker split.
func TestSampleRowsParallel(t *testing.T) {
	const nVocab = 1000
	for _, n := range []int{1, 3, 4, 7, 64} {
		for _, workers := range []int{2, 3, 8} {
			seed := rand.Uint64()
			reqs, logits := samplingCase(t, n, nVocab, seed)
			want := make([]sampled, n)
			sampleRows(reqs, logits, nVocab, 1, want)
			reqs2, _ := samplingCase(t, n, nVocab, seed)
			got := make([]sampled, n)
			sampleRows(reqs2, logits, nVocab, workers, got)
			for i := range want {
				if want[i].err != nil || got[i].err != nil {
					t.Fatalf("n %d workers %d row %d: errors %v, %v", n, workers, i, want[i].err, got[i].err)
				}
				if fmt.Sprint(got[i].res) != fmt.Sprint(want[i].res) {
					t.Errorf("n %d workers %d row %d: %+v in parallel, %+v one by one (seed %d)", n, workers, i, got[i].res, want[i].res, seed)
				}
			}
		}
	}
}

// BenchmarkSampleRows: 64 rows of a 32000-token vocabulary (top-k 40,
// top-p 0.95, temperature 0.8, repeat penalty, 2 top logprobs), one
// goroutine against one per CPU: the host work of a sampled 64-sequence
// decode step.
func BenchmarkSampleRows(b *testing.B) {
	const n, nVocab = 64, 32000
	for _, workers := range []int{1, samplingWorkers()} {
		b.Run(fmt.Sprintf("workers%d", workers), func(b *testing.B) {
			reqs, logits := samplingCase(b, n, nVocab, 7)
			out := make([]sampled, n)
			for b.Loop() {
				sampleRows(reqs, logits, nVocab, workers, out)
			}
		})
	}
}
