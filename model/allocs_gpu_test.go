package model

import (
	"path/filepath"
	"testing"

	"github.com/rocmforge/rocmforge/compute/gpu"
	"github.com/rocmforge/rocmforge/gguf"
)

// TestDecodeAllocsGPU: once a decode step's graph is captured, a greedy
// decode step (Session.EvalArgmax: feed the index arrays, replay the graph,
// copy back one id) allocates nothing on the Go heap nor on the device, on
// each of two models
// (a llama and a gemma2: different ops).
func TestDecodeAllocsGPU(t *testing.T) {
	if err := gpu.Available(); err != nil {
		t.Skipf("no usable CUDA GPU, GPU allocation test skipped: %v", err)
	}
	dir := goldenDir(t)
	for _, name := range []string{"llama256-q4_0", "gemma2-f16"} {
		t.Run(name, func(t *testing.T) {
			be, err := gpu.New()
			if err != nil {
				t.Fatalf("gpu.New: %v", err)
			}
			defer be.Close()
			f, err := gguf.Open(modelPath(t, filepath.Join(dir, name, "model.gguf")))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := Load(f, be)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			s, err := NewSession(m, 256)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tok := []int32{1}
			if _, err := s.Eval([]int32{1, 2, 3, 4, 5}); err != nil {
				t.Fatal(err)
			}
			step := func() {
				id, err := s.EvalArgmax(tok)
				if err != nil {
					t.Fatal(err)
				}
				tok[0] = id
			}
			for range 4 { // op by op, capture, replays
				step()
			}
			before := be.GraphStats()
			free0, _, err := be.MemInfo()
			if err != nil {
				t.Fatal(err)
			}
			a := testing.AllocsPerRun(50, step)
			st := be.GraphStats()
			free1, _, err := be.MemInfo()
			if err != nil {
				t.Fatal(err)
			}
			// Nothing else runs on the test's GPU; the driver's figure moves in
			// 2 MiB pages, so any device allocation on the step path shows.
			if free1 != free0 {
				t.Errorf("free device memory went from %d to %d bytes over 51 decode steps, want no change", free0, free1)
			}
			t.Logf("%.2f allocations a decode step over %d replays", a, st.Replays-before.Replays)
			if st.Replays-before.Replays < 50 {
				t.Errorf("%d graph replays in 51 steps: the steps did not replay a graph", st.Replays-before.Replays)
			}
			if a != 0 {
				t.Errorf("a decode step allocates %.2f times, want 0", a)
			}
		})
	}
}
