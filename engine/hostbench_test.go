package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
	"github.com/rocmforge/rocmforge/model"
)

// instantModel answers every forward pass at once: a greedy step's ids
// are a function of the rows' positions, and logits are left as they are.
// With it the engine's own per-step work is all that is timed.
type instantModel struct{ nv int32 }

func (m instantModel) Forward(b *model.Batch, c *model.Cache, logits []float32) error { return nil }

func (m instantModel) ForwardArgmax(b *model.Batch, c *model.Cache, ids []int32) error {
	for i, r := range b.Outputs {
		ids[i] = 3 + (b.Positions[r]*7)%(m.nv-3)
	}
	return nil
}

// BenchmarkEngineHostStep: the engine's host cost per step with a model
// that takes no time: conc greedy requests of a 128-token prompt and 128
// generated tokens each, all submitted at once (bench --parallel's load).
// Reports µs of host time per step and per generated token.
func BenchmarkEngineHostStep(b *testing.B) {
	for _, conc := range []int{8, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			s := loadStories(b, func() compute.Backend { return cpu.New(1) })
			cfg := DefaultConfig()
			cfg.MaxSeqs = max(cfg.MaxSeqs, conc)
			cfg.CtxLen = 256 // beyond stories260K's 128: positions only index the cache here
			e, err := New(s.m, s.tok, cfg)
			if err != nil {
				b.Fatal(err)
			}
			im := instantModel{nv: int32(s.m.HParams.NVocab)}
			e.fwd, e.argmax = im, im
			e.Start(context.Background())
			defer e.Close(context.Background())
			prompt := make([]int32, 128)
			for i := range prompt {
				prompt[i] = int32(3 + i%200)
			}
			reqs := make([]Request, conc)
			for i := range reqs {
				reqs[i] = greedy(append([]int32{int32(3 + i)}, prompt[1:]...), 128)
				reqs[i].IgnoreEOS = true
			}
			st0 := e.Stats()
			tokens := 0
			counts := make([]int, conc)
			for b.Loop() {
				var wg sync.WaitGroup
				for i, r := range reqs {
					h, err := e.Submit(context.Background(), r)
					if err != nil {
						b.Fatal(err)
					}
					wg.Go(func() {
						for ev := range h.Events {
							if !ev.Done {
								counts[i]++
							}
						}
					})
				}
				wg.Wait()
			}
			for _, c := range counts {
				tokens += c
			}
			st := e.Stats()
			steps := st.Steps - st0.Steps
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(max(steps, 1)), "µs/step")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(max(tokens, 1)), "µs/token")
		})
	}
}
