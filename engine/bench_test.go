package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
)

// BenchmarkEngineThroughput runs 1, 8 and 32 concurrent greedy requests of
// 64 generated tokens each on stories260K and reports the aggregate
// generated tokens per second, on the reference and the CPU backend.
func BenchmarkEngineThroughput(b *testing.B) {
	backends := []struct {
		name string
		new  func() compute.Backend
	}{
		{"ref", refBackend},
		{"cpu", func() compute.Backend { return cpu.New(0) }},
	}
	for _, be := range backends {
		for _, conc := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/conc=%d", be.name, conc), func(b *testing.B) {
				s := loadStories(b, be.new)
				e := startEngine(b, s, DefaultConfig())
				reqs := make([]Request, conc)
				for i := range reqs {
					reqs[i] = greedy(s.encode(b, testPrompts[i%len(testPrompts)]), 64)
					reqs[i].IgnoreEOS = true
				}
				tokens := 0
				for b.Loop() {
					var wg sync.WaitGroup
					counts := make([]int, conc)
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
					for _, c := range counts {
						tokens += c
					}
				}
				b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
				st := e.Stats()
				b.ReportMetric(float64(st.ComputedTokens)/float64(max(st.Steps, 1)), "rows/step")
			})
		}
	}
}

// BenchmarkEngineLoad is the serving load of docs/perf.md without HTTP:
// closed-loop clients, each running requests of a fresh 48-token prompt
// (random token ids: no prefix-cache hits) and 64 greedy tokens one after
// another, on stories260K and the CPU backend. It reports generated tokens
// per second, the figure to set beside `rocmforge loadgen`'s over HTTP.
func BenchmarkEngineLoad(b *testing.B) {
	for _, clients := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s := loadStories(b, func() compute.Backend { return cpu.New(0) })
			e := startEngine(b, s, DefaultConfig())
			rng := rand.New(rand.NewPCG(uint64(clients), 9))
			nv := int32(s.tok.NVocab())
			prompt := func() []int32 {
				p := make([]int32, 48)
				p[0] = 1
				for i := 1; i < len(p); i++ {
					p[i] = 3 + rng.Int32N(nv-3)
				}
				return p
			}
			const perClient = 4
			tokens := 0
			for b.Loop() {
				prompts := make([][]int32, clients*perClient)
				for i := range prompts {
					prompts[i] = prompt()
				}
				counts := make([]int, clients)
				var wg sync.WaitGroup
				for c := range clients {
					wg.Go(func() {
						for k := range perClient {
							r := greedy(prompts[c*perClient+k], 64)
							r.IgnoreEOS = true
							h, err := e.Submit(context.Background(), r)
							if err != nil {
								b.Error(err)
								return
							}
							for ev := range h.Events {
								if !ev.Done {
									counts[c]++
								}
							}
						}
					})
				}
				wg.Wait()
				for _, n := range counts {
					tokens += n
				}
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
			st := e.Stats()
			b.ReportMetric(float64(st.ComputedTokens)/float64(max(st.Steps, 1)), "rows/step")
		})
	}
}
