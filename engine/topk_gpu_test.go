package engine

import (
	"math"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu"
)

// countingGPU is the GPU backend counting its TopKRows calls.
type countingGPU struct {
	*gpu.Backend
	calls atomic.Int64
}

func (b *countingGPU) TopKRows(x *compute.Tensor, k int, ids []int32, vals []float32, lse []float32) error {
	b.calls.Add(1)
	return b.Backend.TopKRows(x, k, ids, vals, lse)
}

// TestDeviceTopKGPU: on the GPU, sampled requests give the same tokens
// with the device top-k (the default) as with ROCMFORGE_DEVICE_TOPK=0 (the
// rows copied out and sampled on the host), each request alone on an
// engine of its own backend so that both runs compute the same logits;
// logprobs agree within 1e-5 (the device's log-sum-exp is a float32 sum).
func TestDeviceTopKGPU(t *testing.T) {
	if err := gpu.Available(); err != nil {
		t.Skipf("no usable CUDA GPU: %v", err)
	}
	start := func(env string) (*Engine, *countingGPU, []Request) {
		t.Setenv("ROCMFORGE_DEVICE_TOPK", env)
		b, err := gpu.New()
		if err != nil {
			t.Fatalf("gpu.New: %v", err)
		}
		be := &countingGPU{Backend: b}
		s := loadStories(t, func() compute.Backend { return be })
		return startEngine(t, s, DefaultConfig()), be, topkRequests(t, s, true)
	}
	eOff, beOff, reqs := start("0")
	want := runEach(t, eOff, reqs)
	eOn, beOn, _ := start("")
	if eOn.topk == nil {
		t.Fatal("GPU backend: the engine has no top-k path")
	}
	got := runEach(t, eOn, reqs)
	for i := range reqs {
		g, w := got[i], want[i]
		if !slices.Equal(g.tokens, w.tokens) || g.text != w.text {
			t.Errorf("request %d (%+v): tokens differ between the device top-k and full rows:\n%v\n%v", i, reqs[i].Params, g.tokens, w.tokens)
			continue
		}
		maxD := 0.0
		for j := range g.logprobs {
			maxD = math.Max(maxD, math.Abs(float64(g.logprobs[j]-w.logprobs[j])))
			for r := range min(len(g.tops[j]), len(w.tops[j])) {
				if g.tops[j][r].Token != w.tops[j][r].Token {
					t.Errorf("request %d token %d: top logprobs %v vs %v", i, j, g.tops[j], w.tops[j])
				}
				maxD = math.Max(maxD, math.Abs(float64(g.tops[j][r].Logprob-w.tops[j][r].Logprob)))
			}
		}
		t.Logf("request %d: %d tokens equal, max |Δ logprob| %.3g", i, len(g.tokens), maxD)
		if maxD > 1e-5 {
			t.Errorf("request %d: logprobs differ by %.3g > 1e-5", i, maxD)
		}
	}
	on, off := beOn.calls.Load(), beOff.calls.Load()
	t.Logf("TopKRows calls: %d with the switch on, %d off", on, off)
	if on == 0 || off != 0 {
		t.Errorf("TopKRows ran %d times with the switch on (want > 0) and %d off (want 0)", on, off)
	}
}
