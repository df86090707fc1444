package model

import (
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// promptLogits evaluates a fixed prompt on a fresh session of m and returns
// every position's logits.
func promptLogits(t *testing.T, m *Model) []float32 {
	t.Helper()
	s, err := NewSession(m, tinyCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.EvalAll([]int32{1, 5, 9, 2, 30, 7, 7, 11, 3, 20, 36, 4})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRopeFreqsTensor: a file with rope_freqs.weight (Llama 3.1 and later)
// feeds its factors to RoPE. Factors of 1 give the logits of the same file
// without the tensor, bit for bit; Llama-3-like factors (1 for the fast
// pair, 8 for the slow one) change them; a tensor of the wrong length is an
// error naming it. The rotation itself is checked against float64 in
// package compute (TestRoPEAgainstFloat64) and on the GPU.
func TestRopeFreqsTensor(t *testing.T) {
	rng := newRNG(t)
	g := newTinyLlama(rng)
	half := 2 // tiny llama: head dim 4, all of it rotated
	base := promptLogits(t, loadTiny(t, g, compute.NewReference()))

	g.add("rope_freqs.weight", ggml.F32, []uint64{uint64(half)}, f32Bytes([]float32{1, 1}))
	ones := promptLogits(t, loadTiny(t, g, compute.NewReference()))
	for i := range base {
		if base[i] != ones[i] {
			t.Fatalf("logit %d: %v with factors of 1, %v without the tensor", i, ones[i], base[i])
		}
	}

	g.add("rope_freqs.weight", ggml.F32, []uint64{uint64(half)}, f32Bytes([]float32{1, 8}))
	scaled := promptLogits(t, loadTiny(t, g, compute.NewReference()))
	if d := maxDiff(scaled, base); d < 1e-4 {
		t.Errorf("factors (1, 8) moved the logits by at most %.3g: not applied", d)
	} else {
		t.Logf("factors (1, 8) moved the logits by up to %.3g", d)
	}

	g.add("rope_freqs.weight", ggml.F32, []uint64{3}, f32Bytes([]float32{1, 1, 1}))
	if m, err := Load(g.open(t), compute.NewReference()); err == nil {
		m.Close()
		t.Error("rope_freqs.weight of 3 factors for n_rot 4: no error")
	} else if !strings.Contains(err.Error(), "rope_freqs.weight") {
		t.Errorf("error %q does not name rope_freqs.weight", err)
	}
}
