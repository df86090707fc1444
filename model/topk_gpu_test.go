package model

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu"
	"github.com/rocmforge/rocmforge/gguf"
)

// TestForwardTopKGPU: on the GPU, with graph steps, ForwardTopK gives
// compute.TopKRow of the logits Forward returns for the same step (both
// replayed graphs, so the logits are the same bits): ids and values
// exactly, the log-sum-exp within 1e-5 + 1e-6·|lse|.
func TestForwardTopKGPU(t *testing.T) {
	if err := gpu.Available(); err != nil {
		t.Skipf("no usable CUDA GPU, GPU top-k test skipped: %v", err)
	}
	dir := goldenDir(t)
	be, err := gpu.New()
	if err != nil {
		t.Fatalf("gpu.New: %v", err)
	}
	defer be.Close()
	f, err := gguf.Open(modelPath(t, filepath.Join(dir, "stories260k", "model.gguf")))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(f, be)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := NewCache(be, m.HParams, 3*16, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	rng := newRNG(t)
	nv := m.HParams.NVocab
	run := &batchRunner{nSeq: 3}
	before := be.GraphStats()
	for i, counts := range [][]int{{5, 3, 4}, {1, 1, 1}, {1, 1, 1}, {1, 0, 1}, {1, 1, 1}} {
		b := run.step(func() int32 { return int32(rng.IntN(nv)) }, counts...)
		n := len(b.Outputs)
		logits := make([]float32, n*nv)
		// The same batch three times (its K/V rows rewritten with the same
		// values): op by op, captured, then replayed like ForwardTopK.
		for range 3 {
			if err := m.Forward(b, c, logits); err != nil {
				t.Fatal(err)
			}
		}
		k := []int{1, 40, compute.MaxTopK, 64, 5}[i]
		ids, vals, lse := make([]int32, n*k), make([]float32, n*k), make([]float32, n)
		if err := m.ForwardTopK(b, c, k, ids, vals, lse); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		wantIDs, wantVals := make([]int32, k), make([]float32, k)
		for r := range n {
			want := compute.TopKRow(logits[r*nv:(r+1)*nv], wantIDs, wantVals)
			for s := range k {
				if ids[r*k+s] != wantIDs[s] || vals[r*k+s] != wantVals[s] {
					t.Fatalf("step %d output %d slot %d: (%d, %v), want (%d, %v)", i, r, s, ids[r*k+s], vals[r*k+s], wantIDs[s], wantVals[s])
				}
			}
			if d := math.Abs(float64(lse[r]) - want); !(d <= 1e-5+1e-6*math.Abs(want)) {
				t.Errorf("step %d output %d: lse %v, want %v", i, r, lse[r], want)
			}
		}
	}
	st := be.GraphStats()
	t.Logf("graph steps: %d op by op, %d captures, %d replays", st.Eager-before.Eager, st.Captures-before.Captures, st.Replays-before.Replays)
	if st.Replays == before.Replays {
		t.Error("no graph replay: ForwardTopK was not exercised after a replayed step")
	}
}
