package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/ggml"
)

// newRNG returns a generator seeded from the clock, with the seed logged so
// a failure can be replayed.
func newRNG(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// scaleFields lists the byte offsets of the f16 scale fields of one block
// of each quantized type; randomWeights overwrites them with sane values so
// that random block bytes never hold infinities or NaNs.
var scaleFields = map[ggml.Type][]int{
	ggml.Q4_0: {0}, ggml.Q4_1: {0, 2}, ggml.Q5_0: {0}, ggml.Q5_1: {0, 2}, ggml.Q8_0: {0},
	ggml.Q2_K: {80, 82}, ggml.Q3_K: {108}, ggml.Q4_K: {0, 2}, ggml.Q5_K: {0, 2}, ggml.Q6_K: {208},
}

// randomWeights returns rows*k elements of type t: every quant bit random,
// every scale a random f16 of magnitude 1e-3..5e-2 (minimums and the
// plain float types may be negative).
func randomWeights(rng *rand.Rand, t ggml.Type, rows, k int) []byte {
	n := rows * k
	switch t {
	case ggml.F32:
		b := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64())))
		}
		return b
	case ggml.F16, ggml.BF16:
		b := make([]byte, 2*n)
		for i := range n {
			v := float32(rng.NormFloat64())
			h := ggml.FP32ToFP16(v)
			if t == ggml.BF16 {
				h = ggml.FP32ToBF16(v)
			}
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		return b
	}
	nb := n / t.BlockSize()
	bl := t.TypeSize()
	b := make([]byte, nb*bl)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for blk := range nb {
		for j, off := range scaleFields[t] {
			v := float32(1e-3 + rng.Float64()*0.049)
			if j > 0 && rng.IntN(2) == 0 {
				v = -v
			}
			binary.LittleEndian.PutUint16(b[blk*bl+off:], ggml.FP32ToFP16(v))
		}
	}
	return b
}

// randomActivations returns n floats ~ N(0, 1), with one 32-element block
// zeroed when there is room (the all-zero block path of the quantizers).
func randomActivations(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	if n >= 64 {
		clear(x[32:64])
	}
	return x
}

// quantizeRow quantizes src with the kernel's activation quantizer.
func quantizeRow(t testing.TB, k *kernel, src []float32) []byte {
	t.Helper()
	n, err := k.x.RowSize(int64(len(src)))
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, n)
	k.quant(dst, src)
	return dst
}

// dequant decodes a whole row with ggml.Dequantize.
func dequant(t testing.TB, typ ggml.Type, b []byte, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := ggml.Dequantize(typ, b, out); err != nil {
		t.Fatalf("dequantize %s: %v", typ, err)
	}
	return out
}

// refDot is the float64 dot product of the dequantized weight and
// activation rows, and the sum of |products| (the scale for tolerances).
// For Q8_1 activations the _1 weight types use the block's stored
// s = f16(d·Σq) instead of d_f16·Σq, exactly as vec_dot does, so that term
// is corrected here.
func refDot(t testing.TB, kn *kernel, k int, w, xq []byte) (dot, mag float64) {
	t.Helper()
	wf := dequant(t, kn.w, w, k)
	xf := dequant(t, kn.x, xq, k)
	for i := range k {
		p := float64(wf[i]) * float64(xf[i])
		dot += p
		mag += math.Abs(p)
	}
	if kn.x == ggml.Q8_1 {
		wl := kn.w.TypeSize()
		for b := range k / qk8 {
			xb := xq[b*q8_1Len:]
			var sq int64
			for _, v := range xb[4:q8_1Len] {
				sq += int64(int8(v))
			}
			m := float64(f16At(w[b*wl+2:]))
			s := float64(f16At(xb[2:]))
			dot += m * (s - float64(f16At(xb))*float64(sq))
		}
	}
	return dot, mag
}

// dotTestSizes are the row lengths each type is tested at: one block, odd
// block counts, one whole group of 8 blocks and groups plus a tail.
func dotTestSizes(t ggml.Type) []int {
	switch t.BlockSize() {
	case 1:
		return []int{1, 7, 31, 32, 33, 100, 256*3 + 5}
	case qk8:
		return []int{32, 32 * 7, 32 * 8, 32 * 23, 32 * 64}
	}
	return []int{256, 256 * 3, 256 * 8}
}

// dotTypes is every weight type MatMul supports, in a fixed order.
var dotTypes = []ggml.Type{
	ggml.F32, ggml.F16, ggml.BF16, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q8_0,
	ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K,
}

// TestVecDotGo checks every pure-Go vec_dot against the float64 dot of the
// dequantized weight and activation rows. The only error is float32
// rounding of per-block scaled sums: |Δ| ≤ 1e-5·Σ|w_i·x_i|.
func TestVecDotGo(t *testing.T) {
	rng := newRNG(t)
	ks := goKernels()
	for _, typ := range dotTypes {
		kn := ks[typ]
		for _, k := range dotTestSizes(typ) {
			t.Run(fmt.Sprintf("%s/k=%d", typ, k), func(t *testing.T) {
				w := randomWeights(rng, typ, 1, k)
				xq := quantizeRow(t, kn, randomActivations(rng, k))
				got := kn.dot(k, w, xq)
				want, mag := refDot(t, kn, k, w, xq)
				if d := math.Abs(float64(got) - want); d > 1e-5*mag {
					t.Errorf("dot = %g, float64 reference %g: |Δ| %g > 1e-5·Σ|wx| = %g", got, want, d, 1e-5*mag)
				}
			})
		}
	}
}

// TestVecDotAsm checks the assembly row loops against the pure-Go dot of
// each row, on several rows at once (so row strides are exercised) and
// with block counts that leave a tail for the Go remainder. Agreement is
// |Δ| ≤ 1e-5·Σ|w_i·x_i| (the two differ only in float32 summation order).
func TestVecDotAsm(t *testing.T) {
	if !asmSupported() {
		t.Skip("no assembly kernels on this CPU/build (needs amd64 with AVX2, FMA and F16C)")
	}
	rng := newRNG(t)
	ks := kernels(true)
	for _, typ := range dotTypes {
		kn := ks[typ]
		if kn.asm == "" {
			continue
		}
		for _, k := range dotTestSizes(typ) {
			t.Run(fmt.Sprintf("%s/k=%d", typ, k), func(t *testing.T) {
				const rows = 5
				w := randomWeights(rng, typ, rows, k)
				x := xrowFor(t, kn, randomActivations(rng, k))
				got := make([]float32, rows)
				stride := len(w) / rows
				kn.rows(got, w, stride, x, k)
				for r := range rows {
					wr := w[r*stride : (r+1)*stride]
					want := kn.dot(k, wr, x.q)
					_, mag := refDot(t, kn, k, wr, x.q)
					if d := math.Abs(float64(got[r] - want)); d > 1e-5*mag {
						t.Errorf("row %d: %s = %g, Go dot %g: |Δ| %g > 1e-5·Σ|wx| = %g", r, kn.asm, got[r], want, d, 1e-5*mag)
					}
				}
			})
		}
	}
}

// xrowFor quantizes one activation row for a kernel, side data included.
func xrowFor(t testing.TB, kn *kernel, src []float32) *xrow {
	t.Helper()
	x := &xrow{q: quantizeRow(t, kn, src)}
	if kn.side != nil {
		sd := kn.side(len(src))
		x.p, x.aux, x.sums = make([]byte, sd.p), make([]float32, sd.aux), make([]int32, sd.sums)
	}
	kn.load(x, src)
	return x
}
