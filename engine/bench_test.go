package engine

import (
	"context"
	"fmt"
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
