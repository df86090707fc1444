package compute

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// Tolerance for MatMul and Embedding: both the op and the test accumulate in
// float64, so only the float32 output rounding (2^-24 relative) differs.
const matmulTol = 1e-6

// weightTypes are the weight types MatMul and Embedding must accept.
var weightTypes = []ggml.Type{
	ggml.F32, ggml.F16, ggml.BF16,
	ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q8_0, ggml.Q8_1,
	ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.Q8_K,
}

// colsFor is an awkward row length that is a whole number of t's blocks.
func colsFor(t ggml.Type) int {
	switch t.BlockSize() {
	case 1:
		return 70
	case 32:
		return 96
	default:
		return 2 * t.BlockSize() // 512 for the K-quants: rows span two super-blocks
	}
}

// randomWeight makes a [m, k] tensor of type typ and returns it with its
// values as float64. Float types are rounded from random floats. Quantized
// blocks are random bytes, so every bit pattern of the quants and scales is
// exercised; a block is redrawn while it decodes to a non-finite value or to
// magnitudes above 100 (random f16 scales can be huge), which keeps the sums
// in a sane range.
func randomWeight(t testing.TB, rng *rand.Rand, typ ggml.Type, m, k int) (*Tensor, []float64) {
	t.Helper()
	w := &Tensor{Name: "w", Type: typ, Shape: []int{m, k}}
	vals := make([]float64, m*k)
	switch typ {
	case ggml.F32:
		w.F32 = randVec(rng, m*k, 1)
		for i, v := range w.F32 {
			vals[i] = float64(v)
		}
		return w, vals
	case ggml.F16, ggml.BF16:
		w.Raw = make([]byte, 2*m*k)
		for i, v := range randVec(rng, m*k, 1) {
			var h uint16
			if typ == ggml.F16 {
				h = ggml.FP32ToFP16(v)
				vals[i] = float64(ggml.FP16ToFP32(h))
			} else {
				h = ggml.FP32ToBF16(v)
				vals[i] = float64(ggml.BF16ToFP32(h))
			}
			binary.LittleEndian.PutUint16(w.Raw[2*i:], h)
		}
		return w, vals
	}
	bsz, tsz := typ.BlockSize(), typ.TypeSize()
	nb := m * k / bsz
	w.Raw = make([]byte, nb*tsz)
	block := make([]float32, bsz)
	for b := range nb {
		raw := w.Raw[b*tsz : (b+1)*tsz]
		for try := 0; ; try++ {
			if try == 1000 {
				t.Fatalf("%s: no sane random block in 1000 draws", typ)
			}
			for i := range raw {
				raw[i] = byte(rng.Uint32())
			}
			if err := ggml.Dequantize(typ, raw, block); err != nil {
				t.Fatal(err)
			}
			if saneBlock(block) {
				break
			}
		}
		for i, v := range block {
			vals[b*bsz+i] = float64(v)
		}
	}
	return w, vals
}

func saneBlock(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.Abs(float64(x)) > 100 {
			return false
		}
	}
	return true
}

func TestMatMulEveryType(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const n, m = 5, 7
	for _, typ := range weightTypes {
		t.Run(typ.String(), func(t *testing.T) {
			k := colsFor(typ)
			w, wv := randomWeight(t, rng, typ, m, k)
			x := f32("x", randVec(rng, n*k, 2), n, k)
			dst := poisoned("dst", n, m)
			if err := r.MatMul(dst, x, w); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, n*m)
			for i := range n {
				for j := range m {
					var s float64
					for c := range k {
						s += float64(x.F32[i*k+c]) * wv[j*k+c]
					}
					want[i*m+j] = s
				}
			}
			checkClose(t, fmt.Sprintf("matmul %s k=%d", typ, k), dst.F32, want, matmulTol)
		})
	}
}

func TestMatMulQuantizedWeights(t *testing.T) {
	// Weights as llama-quantize makes them (ggml.Quantize of random floats),
	// rather than random blocks: realistic scales and minimums.
	rng := newRNG(t)
	r := NewReference()
	const n, m = 5, 7
	for _, typ := range weightTypes {
		t.Run(typ.String(), func(t *testing.T) {
			k := colsFor(typ)
			src := randVec(rng, m*k, 1)
			raw, err := ggml.Quantize(typ, src)
			if err != nil {
				t.Fatalf("quantize %s: %v", typ, err)
			}
			w := &Tensor{Name: "w", Type: typ, Shape: []int{m, k}, Raw: raw}
			if typ == ggml.F32 {
				w = f32("w", src, m, k)
			}
			wv := make([]float32, m*k)
			if err := ggml.Dequantize(typ, raw, wv); err != nil {
				t.Fatal(err)
			}
			x := f32("x", randVec(rng, n*k, 2), n, k)
			dst := poisoned("dst", n, m)
			if err := r.MatMul(dst, x, w); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, n*m)
			for i := range n {
				for j := range m {
					for c := range k {
						want[i*m+j] += float64(x.F32[i*k+c]) * float64(wv[j*k+c])
					}
				}
			}
			checkClose(t, fmt.Sprintf("matmul quantized %s k=%d", typ, k), dst.F32, want, matmulTol)
		})
	}
}

func TestMatMulQ8_0Hand(t *testing.T) {
	// One Q8_0 block built by hand: d = 0.5 (f16 0x3800), quants -16..15.
	raw := make([]byte, 34)
	binary.LittleEndian.PutUint16(raw, 0x3800)
	for i := range 32 {
		raw[2+i] = byte(int8(i - 16))
	}
	w := &Tensor{Name: "w", Type: ggml.Q8_0, Shape: []int{1, 32}, Raw: raw}
	x := make([]float32, 32)
	var want float64
	for i := range x {
		x[i] = float32(i%5) - 2
		want += float64(x[i]) * 0.5 * float64(i-16)
	}
	dst := poisoned("dst", 1, 1)
	if err := NewReference().MatMul(dst, f32("x", x, 1, 32), w); err != nil {
		t.Fatal(err)
	}
	checkClose(t, "q8_0 by hand", dst.F32, []float64{want}, 0)
}

func TestMatMulBatchShapes(t *testing.T) {
	// x may carry extra leading dimensions; dst must match them.
	rng := newRNG(t)
	r := NewReference()
	w, wv := randomWeight(t, rng, ggml.F32, 3, 11)
	x := f32("x", randVec(rng, 2*4*11, 1), 2, 4, 11)
	dst := poisoned("dst", 2, 4, 3)
	if err := r.MatMul(dst, x, w); err != nil {
		t.Fatal(err)
	}
	want := make([]float64, 8*3)
	for i := range 8 {
		for j := range 3 {
			for c := range 11 {
				want[i*3+j] += float64(x.F32[i*11+c]) * wv[j*11+c]
			}
		}
	}
	checkClose(t, "matmul 3-d x", dst.F32, want, matmulTol)
	wantErr(t, r.MatMul(poisoned("dst", 8, 3), x, w), "leading dimensions")
}

func TestMatMulErrors(t *testing.T) {
	r := NewReference()
	x := f32("x", make([]float32, 5*96), 5, 96)
	w := &Tensor{Name: "blk.0.attn_q.weight", Type: ggml.Q4_0, Shape: []int{7, 96}, Raw: make([]byte, 7*3*18)}
	wantErr(t, r.MatMul(poisoned("dst", 5, 6), x, w), "matmul", "blk.0.attn_q.weight Q4_0[7 96]", "dst F32[5 6]")
	wantErr(t, r.MatMul(poisoned("dst", 5, 7), f32("x", make([]float32, 5*64), 5, 64), w), "x F32[5 64]", "96 columns")
	wantErr(t, r.MatMul(poisoned("dst", 4, 7), x, w), "dst F32[4 7]")
	w3 := &Tensor{Name: "w3", Type: ggml.F32, Shape: []int{1, 7, 96}, F32: make([]float32, 7*96)}
	wantErr(t, r.MatMul(poisoned("dst", 5, 7), x, w3), "must be 2-D")
	wBad := &Tensor{Name: "wb", Type: ggml.Q4_0, Shape: []int{7, 80}, Raw: make([]byte, 7*3*18)}
	wantErr(t, r.MatMul(poisoned("dst", 5, 7), f32("x", make([]float32, 5*80), 5, 80), wBad), "wb", "80")
	sq := f32("sq", make([]float32, 96*96), 96, 96)
	wantErr(t, r.MatMul(sq, sq, sq), "share storage")
	xq := &Tensor{Name: "xq", Type: ggml.Q8_0, Shape: []int{5, 96}, Raw: make([]byte, 5*3*34)}
	wantErr(t, r.MatMul(poisoned("dst", 5, 7), xq, w), "x xq Q8_0[5 96] must be F32")
}

func TestEmbeddingEveryType(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const vocab = 9
	ids := []int32{3, 0, 8, 3, 5}
	for _, typ := range weightTypes {
		t.Run(typ.String(), func(t *testing.T) {
			d := colsFor(typ)
			table, tv := randomWeight(t, rng, typ, vocab, d)
			dst := poisoned("dst", len(ids), d)
			if err := r.Embedding(dst, table, ids); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, len(ids)*d)
			for i, id := range ids {
				copy(want[i*d:(i+1)*d], tv[int(id)*d:(int(id)+1)*d])
			}
			checkClose(t, "embedding "+typ.String(), dst.F32, want, 0)
		})
	}
}

func TestEmbeddingErrors(t *testing.T) {
	r := NewReference()
	table := f32("token_embd.weight", make([]float32, 9*6), 9, 6)
	wantErr(t, r.Embedding(poisoned("dst", 2, 6), table, []int32{1, 9}), "id 9", "vocab 9")
	wantErr(t, r.Embedding(poisoned("dst", 2, 6), table, []int32{-1, 2}), "id -1")
	wantErr(t, r.Embedding(poisoned("dst", 3, 6), table, []int32{1, 2}), "2 ids", "dst F32[3 6]")
	wantErr(t, r.Embedding(poisoned("dst", 2, 5), table, []int32{1, 2}), "dst F32[2 5]")
	wantErr(t, r.Embedding(poisoned("dst", 2, 6), f32("t3", make([]float32, 54), 9, 1, 6), []int32{1, 2}), "2-D")
}

func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := NewReference()
	for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0, ggml.Q4_K} {
		b.Run(typ.String(), func(b *testing.B) {
			const n, m, k = 8, 256, 512
			w, _ := randomWeight(b, rng, typ, m, k)
			x := f32("x", randVec(rng, n*k, 1), n, k)
			dst := poisoned("dst", n, m)
			for b.Loop() {
				if err := r.MatMul(dst, x, w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*m*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
