package ggml

import (
	"math"
	"testing"
)

// relRMS is the RMS of (a-b) over the RMS of b, in float64.
func relRMS(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}

// TestGoldenQuantFamily dequantizes the same weights from every llama256-*
// golden model. All of them were quantized by llama-quantize from one F32
// master, so each must be close to the Q8_0 one; a layout bug (a swapped
// nibble order, a misread scale) makes the difference as large as the signal.
// The bounds are about 1.2x the differences measured on these files (Q6_K
// 0.019, Q5_0 0.043, Q5_1 0.038, Q5_K 0.037, Q4_0 0.086, Q4_1 0.079, Q4_K
// 0.072, Q3_K 0.151, Q2_K 0.298), far below the ~1.4 of a layout bug.
func TestGoldenQuantFamily(t *testing.T) {
	ref := openGolden(t, "llama256-q8_0")
	cases := []struct {
		name  string
		typ   Type
		bound float64 // relative RMS difference to Q8_0
	}{
		{"llama256-q8_0", Q8_0, 0},
		{"llama256-q6_k", Q6_K, 0.022},
		{"llama256-q5_0", Q5_0, 0.052},
		{"llama256-q5_1", Q5_1, 0.046},
		{"llama256-q5_k", Q5_K, 0.044},
		{"llama256-q4_0", Q4_0, 0.103},
		{"llama256-q4_1", Q4_1, 0.094},
		{"llama256-q4_k", Q4_K, 0.086},
		{"llama256-q3_k", Q3_K, 0.18},
		{"llama256-q2_k", Q2_K, 0.36},
	}
	names := []string{"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "token_embd.weight"}
	refVals := map[string][]float32{}
	for _, n := range names {
		tt, v := ref.dequantTensor(t, n)
		if tt.typ != Q8_0 {
			t.Fatalf("llama256-q8_0 %s has type %s", n, tt.typ)
		}
		refVals[n] = v
	}
	for _, c := range cases {
		g := openGolden(t, c.name)
		for _, n := range names {
			tt, v := g.dequantTensor(t, n)
			if tt.typ != c.typ {
				t.Fatalf("%s %s: type %s, want %s", c.name, n, tt.typ, c.typ)
			}
			r := relRMS(v, refVals[n])
			t.Logf("%-14s %-22s %v rel RMS vs Q8_0 = %.4f (bound %.3f)", c.name, n, tt.dims, r, c.bound)
			if r > c.bound {
				t.Errorf("%s %s: relative RMS difference to Q8_0 %.4f > %.3f", c.name, n, r, c.bound)
			}
			for i, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("%s %s[%d] = %v", c.name, n, i, x)
				}
			}
		}
	}
}

// TestGoldenFloatFamily checks that the F16 and BF16 llama models are
// exactly the llama-f32 weights rounded by ggml (round to nearest even), which
// also checks FP32ToFP16 and FP32ToBF16 against ggml's own output.
func TestGoldenFloatFamily(t *testing.T) {
	f32 := openGolden(t, "llama-f32")
	cases := []struct {
		name  string
		typ   Type
		round func(float32) float32
	}{
		{"llama-f16", F16, func(x float32) float32 { return FP16ToFP32(FP32ToFP16(x)) }},
		{"llama-bf16", BF16, func(x float32) float32 { return BF16ToFP32(FP32ToBF16(x)) }},
	}
	for _, c := range cases {
		g := openGolden(t, c.name)
		checked := 0
		for name, tt := range g.tensors {
			if tt.typ != c.typ {
				continue // 1-D norms stay F32
			}
			_, want := f32.dequantTensor(t, name)
			_, got := g.dequantTensor(t, name)
			for i := range got {
				if w := c.round(want[i]); math.Float32bits(got[i]) != math.Float32bits(w) {
					t.Fatalf("%s %s[%d] = %v, want %s(%v) = %v", c.name, name, i, got[i], c.typ, want[i], w)
				}
			}
			checked++
		}
		t.Logf("%s: %d tensors bit-exact against rounded llama-f32", c.name, checked)
		if checked == 0 {
			t.Errorf("%s: no %s tensors found", c.name, c.typ)
		}
	}
}
