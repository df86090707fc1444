package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestRMSNorm compares Backend.RMSNorm with compute.Reference (float64):
// |Δ| ≤ 1e-6·|want| + 1e-30 per element (a handful of float32 roundings).
// Non-F32 weights go through the reference itself, and bad arguments must
// still be rejected.
func TestRMSNorm(t *testing.T) {
	rng := newRNG(t)
	ref := compute.NewReference()
	b := New(2)
	defer b.Close()
	for _, shape := range [][]int{{1, 64}, {7, 2048}, {3, 5, 33}, {40, 1000}} {
		for _, wt := range []string{"none", "F32", "F16"} {
			t.Run(fmt.Sprintf("%v/w=%s", shape, wt), func(t *testing.T) {
				x, _ := ref.NewTensor("x", ggml.F32, shape...)
				copy(x.F32, randomActivations(rng, len(x.F32)))
				d := shape[len(shape)-1]
				var w *compute.Tensor
				switch wt {
				case "F32":
					w, _ = ref.NewTensor("w", ggml.F32, d)
					for i := range w.F32 {
						w.F32[i] = float32(1 + 0.1*rng.NormFloat64())
					}
				case "F16":
					raw := make([]byte, 2*d)
					for i := range d {
						binary.LittleEndian.PutUint16(raw[2*i:], ggml.FP32ToFP16(float32(1+0.1*rng.NormFloat64())))
					}
					w, _ = ref.Upload("w", ggml.F16, []int{d}, raw)
				}
				got, _ := ref.NewTensor("got", ggml.F32, shape...)
				want, _ := ref.NewTensor("want", ggml.F32, shape...)
				if err := b.RMSNorm(got, x, w, 1e-5); err != nil {
					t.Fatal(err)
				}
				if err := ref.RMSNorm(want, x, w, 1e-5); err != nil {
					t.Fatal(err)
				}
				for i := range want.F32 {
					if d := math.Abs(float64(got.F32[i] - want.F32[i])); d > 1e-6*math.Abs(float64(want.F32[i]))+1e-30 {
						t.Fatalf("y[%d] = %g, reference %g", i, got.F32[i], want.F32[i])
					}
				}
				// In place (dst == x) must give the same values.
				if err := b.RMSNorm(x, x, w, 1e-5); err != nil {
					t.Fatal(err)
				}
				for i := range x.F32 {
					if x.F32[i] != got.F32[i] {
						t.Fatalf("in place y[%d] = %g, out of place %g", i, x.F32[i], got.F32[i])
					}
				}
			})
		}
	}
	x, _ := ref.NewTensor("x", ggml.F32, 2, 8)
	bad, _ := ref.NewTensor("dst", ggml.F32, 2, 9)
	if err := b.RMSNorm(bad, x, nil, 1e-5); err == nil {
		t.Error("RMSNorm accepted dst [2 9] for x [2 8]")
	}
	if err := b.RMSNorm(x, x, nil, float32(math.NaN())); err == nil {
		t.Error("RMSNorm accepted eps NaN")
	}
}

// TestEmbedding compares Backend.Embedding with compute.Reference: both
// copy or decode the same rows, so the results must be identical, for
// short and long (parallel) id lists.
func TestEmbedding(t *testing.T) {
	rng := newRNG(t)
	ref := compute.NewReference()
	b := New(2)
	defer b.Close()
	const vocab, d = 50, 256
	for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q4_0, ggml.Q6_K} {
		table, err := ref.Upload("tok", typ, []int{vocab, d}, randomWeights(rng, typ, vocab, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 7, 300} {
			ids := make([]int32, n)
			for i := range ids {
				ids[i] = int32(rng.IntN(vocab))
			}
			got, _ := ref.NewTensor("got", ggml.F32, n, d)
			want, _ := ref.NewTensor("want", ggml.F32, n, d)
			if err := b.Embedding(got, table, ids); err != nil {
				t.Fatal(err)
			}
			if err := ref.Embedding(want, table, ids); err != nil {
				t.Fatal(err)
			}
			for i := range want.F32 {
				if got.F32[i] != want.F32[i] && !(math.IsNaN(float64(got.F32[i])) && math.IsNaN(float64(want.F32[i]))) {
					t.Fatalf("%s n=%d: dst[%d] = %g, reference %g", typ, n, i, got.F32[i], want.F32[i])
				}
			}
		}
		if err := b.Embedding(newF32(t, ref, nil, 1, d), table, []int32{vocab}); err == nil {
			t.Errorf("%s: id %d accepted for vocab %d", typ, vocab, vocab)
		}
	}
}
