package gpu

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// The kernel tests run each op on the GPU and on compute.Reference over the
// same fresh random inputs (seed logged) of awkward sizes, with the GPU
// output poisoned with NaN first, and compare by relative error
// ‖gpu − ref‖ / ‖ref‖ (NaN never passes). Tolerances:
//   - exactTol: ops whose kernels follow the reference's formulas (float64
//     where the reference uses float64, rounded float32 products where it
//     does): only rare double-rounding or libm last-bit differences remain.
//   - f32Tol: ops that accumulate in float32 on the GPU (MatMul, Attention):
//     k ≤ 1024 terms, so about sqrt(k)·2^-24 relative, far under 1e-5.
const (
	exactTol = 1e-6
	f32Tol   = 1e-5
)

// shared is one backend for the whole test binary: making a backend loads
// the kernels, which is worth doing once.
var shared struct {
	once sync.Once
	b    *Backend
	err  error
}

// testBackend returns the shared backend, or skips the test when there is
// no usable GPU (as on CI's CPU machine).
func testBackend(t testing.TB) *Backend {
	t.Helper()
	shared.once.Do(func() {
		if err := Available(); err != nil {
			shared.err = err
			return
		}
		start := time.Now()
		shared.b, shared.err = New()
		if shared.err == nil {
			shared.b.syncEachOp = true // attribute any device fault to its op
			t.Logf("backend %s ready in %v (NVRTC %s)", shared.b.Name(), time.Since(start), shared.b.nvrtc)
		}
	})
	if shared.err != nil {
		t.Skipf("no usable CUDA GPU, GPU tests skipped: %v", shared.err)
	}
	return shared.b
}

func newRNG(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func randVec(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((rng.Float64()*2 - 1) * scale)
	}
	return v
}

// pair is one tensor on both backends.
type pair struct {
	g, r *compute.Tensor
}

// f32Pair uploads the same F32 values to the GPU and the reference.
func f32Pair(t testing.TB, b *Backend, name string, data []float32, shape ...int) pair {
	t.Helper()
	g, err := b.NewTensor(name, ggml.F32, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Free(g) })
	if err := b.Write(g, data); err != nil {
		t.Fatal(err)
	}
	r := &compute.Tensor{Name: name, Type: ggml.F32, Shape: shape, F32: append([]float32(nil), data...)}
	return pair{g, r}
}

// poisonedPair is an output: NaN on both sides, so unwritten elements show.
func poisonedPair(t testing.TB, b *Backend, name string, shape ...int) pair {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	nan := make([]float32, n)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	return f32Pair(t, b, name, nan, shape...)
}

// weightPair uploads the same raw weight bytes to both backends.
func weightPair(t testing.TB, b *Backend, name string, typ ggml.Type, data []byte, shape ...int) pair {
	t.Helper()
	g, err := b.Upload(name, typ, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Free(g) })
	r, err := compute.NewReference().Upload(name, typ, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return pair{g, r}
}

func read(t testing.TB, b *Backend, x *compute.Tensor) []float32 {
	t.Helper()
	out := make([]float32, x.Elems())
	if err := b.Read(x, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// relErr is ‖got − want‖ / ‖want‖ (absolute when want is all zeros); NaN or
// a length mismatch gives +Inf.
func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		if math.IsNaN(d) {
			if math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i])) {
				continue
			}
			return math.Inf(1)
		}
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// check compares the GPU tensor with the reference tensor.
func check(t *testing.T, b *Backend, what string, p pair, tol float64) {
	t.Helper()
	got := read(t, b, p.g)
	for i, v := range got {
		if math.IsNaN(float64(v)) && !math.IsNaN(float64(p.r.F32[i])) {
			t.Errorf("%s: element %d is NaN (unwritten or wrong), reference %v", what, i, p.r.F32[i])
			return
		}
	}
	if e := relErr(got, p.r.F32); e > tol {
		worst, wd := 0, 0.0
		for i := range got {
			if d := math.Abs(float64(got[i]) - float64(p.r.F32[i])); d > wd {
				worst, wd = i, d
			}
		}
		t.Errorf("%s: relative error %.3g > %.3g (worst element %d: gpu %v, reference %v)", what, e, tol, worst, got[worst], p.r.F32[worst])
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestMemory(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	x, err := b.NewTensor("x", ggml.F32, 3, 77)
	must(t, "new", err)
	defer b.Free(x)
	for i, v := range read(t, b, x) {
		if v != 0 {
			t.Fatalf("NewTensor element %d is %v, want 0", i, v)
		}
	}
	data := randVec(rng, 3*77, 5)
	must(t, "write", b.Write(x, data))
	got := read(t, b, x)
	for i := range got {
		if got[i] != data[i] {
			t.Fatalf("element %d: read %v after writing %v", i, got[i], data[i])
		}
	}
	if err := b.Read(x, make([]float32, 5)); err == nil {
		t.Error("Read into a short slice succeeded")
	}
	if err := b.Write(x, make([]float32, 5)); err == nil {
		t.Error("Write from a short slice succeeded")
	}
	// A view (compute.Reshape) shares the storage.
	v, err := compute.Reshape(x, 77, 3)
	must(t, "reshape", err)
	if got := read(t, b, v); got[5] != data[5] {
		t.Errorf("view element 5: %v, want %v", got[5], data[5])
	}
	b.Free(x)
	if err := b.Read(v, make([]float32, 3*77)); err == nil {
		t.Error("Read of a view of a freed tensor succeeded")
	}
	// Host tensors are rejected, not dereferenced.
	host := &compute.Tensor{Name: "host", Type: ggml.F32, Shape: []int{2}, F32: []float32{1, 2}}
	if err := b.Scale(host, 2); err == nil {
		t.Error("Scale of a host tensor succeeded")
	}
}

func TestUploadErrors(t *testing.T) {
	b := testBackend(t)
	for _, tc := range []struct {
		typ   ggml.Type
		shape []int
		n     int
		want  string
	}{
		{ggml.IQ4_NL, []int{2, 32}, 36, "IQ4_NL"},
		{ggml.Q4_0, []int{2, 30}, 36, "blocks"},
		{ggml.F16, []int{2, 4}, 15, "needs 16 bytes"},
	} {
		_, err := b.Upload("w", tc.typ, tc.shape, make([]byte, tc.n))
		_, rerr := compute.NewReference().Upload("w", tc.typ, tc.shape, make([]byte, tc.n))
		if err == nil || rerr == nil {
			t.Errorf("%s%v: gpu error %v, reference error %v; want both to fail", tc.typ, tc.shape, err, rerr)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s%v: error %q does not mention %q", tc.typ, tc.shape, err, tc.want)
		}
	}
}

func TestElementwise(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, shape := range [][]int{{7, 1000}, {3, 37}, {1, 5}} {
		n := shape[0] * shape[1]
		a := f32Pair(t, b, "a", randVec(rng, n, 4), shape...)
		c := f32Pair(t, b, "b", randVec(rng, n, 4), shape...)

		type binOp struct {
			name string
			g, r func(dst, x, y *compute.Tensor) error
		}
		for _, op := range []binOp{
			{"add", b.Add, ref.Add},
			{"swiglu", b.SwiGLU, ref.SwiGLU},
			{"geglu", b.GeGLU, ref.GeGLU},
		} {
			d := poisonedPair(t, b, "dst", shape...)
			must(t, op.name, op.g(d.g, a.g, c.g))
			must(t, op.name, op.r(d.r, a.r, c.r))
			check(t, b, op.name, d, exactTol)
		}

		type unOp struct {
			name string
			g, r func(x *compute.Tensor) error
		}
		for _, op := range []unOp{
			{"scale", func(x *compute.Tensor) error { return b.Scale(x, -1.7) }, func(x *compute.Tensor) error { return ref.Scale(x, -1.7) }},
			{"softcap", func(x *compute.Tensor) error { return b.Softcap(x, 3.5) }, func(x *compute.Tensor) error { return ref.Softcap(x, 3.5) }},
			{"gelu", b.GELU, ref.GELU},
			{"softmax", b.Softmax, ref.Softmax},
		} {
			x := f32Pair(t, b, "x", randVec(rng, n, 6), shape...)
			must(t, op.name, op.g(x.g))
			must(t, op.name, op.r(x.r))
			check(t, b, op.name, x, exactTol)
		}

		// AddBias with an F32 and an F16 bias.
		bias := randVec(rng, shape[1], 2)
		f16 := make([]byte, 2*shape[1])
		for i, v := range bias {
			binary.LittleEndian.PutUint16(f16[2*i:], ggml.FP32ToFP16(v))
		}
		for _, bp := range []pair{f32Pair(t, b, "bias", bias, shape[1]), weightPair(t, b, "bias16", ggml.F16, f16, shape[1])} {
			x := f32Pair(t, b, "x", randVec(rng, n, 1), shape...)
			must(t, "addbias", b.AddBias(x.g, bp.g))
			must(t, "addbias", ref.AddBias(x.r, bp.r))
			check(t, b, "addbias "+bp.g.Type.String(), x, exactTol)
		}
	}
	// A fully masked softmax row becomes zeros.
	row := randVec(rng, 2*33, 1)
	for i := range 33 {
		row[33+i] = float32(math.Inf(-1))
	}
	x := f32Pair(t, b, "x", row, 2, 33)
	must(t, "softmax", b.Softmax(x.g))
	must(t, "softmax", ref.Softmax(x.r))
	check(t, b, "softmax masked row", x, exactTol)
}

func TestNorms(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, shape := range [][]int{{5, 2048}, {3, 77}, {1, 4097}} {
		n, d := shape[0]*shape[1], shape[1]
		x := f32Pair(t, b, "x", randVec(rng, n, 3), shape...)
		w := f32Pair(t, b, "w", randVec(rng, d, 2), d)
		bias := f32Pair(t, b, "b", randVec(rng, d, 1), d)
		for _, withW := range []bool{false, true} {
			var wg, wr *compute.Tensor
			if withW {
				wg, wr = w.g, w.r
			}
			dst := poisonedPair(t, b, "dst", shape...)
			must(t, "rmsnorm", b.RMSNorm(dst.g, x.g, wg, 1e-5))
			must(t, "rmsnorm", ref.RMSNorm(dst.r, x.r, wr, 1e-5))
			check(t, b, "rmsnorm", dst, exactTol)
			for _, withB := range []bool{false, true} {
				var bg, br *compute.Tensor
				if withB {
					bg, br = bias.g, bias.r
				}
				dst := poisonedPair(t, b, "dst", shape...)
				must(t, "layernorm", b.LayerNorm(dst.g, x.g, wg, bg, 1e-6))
				must(t, "layernorm", ref.LayerNorm(dst.r, x.r, wr, br, 1e-6))
				check(t, b, "layernorm", dst, exactTol)
			}
		}
		// In place (dst == x).
		y := f32Pair(t, b, "y", randVec(rng, n, 3), shape...)
		must(t, "rmsnorm in place", b.RMSNorm(y.g, y.g, w.g, 1e-5))
		must(t, "rmsnorm in place", ref.RMSNorm(y.r, y.r, w.r, 1e-5))
		check(t, b, "rmsnorm in place", y, exactTol)
	}
	x := f32Pair(t, b, "x", randVec(rng, 8, 1), 2, 4)
	if err := b.RMSNorm(x.g, x.g, nil, float32(math.NaN())); err == nil {
		t.Error("RMSNorm with eps NaN succeeded")
	}
}

func TestCopy(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	src := f32Pair(t, b, "src", randVec(rng, 9*1500, 1), 9, 1500)
	dst := f32Pair(t, b, "dst", randVec(rng, 9*700, 1), 9, 700)
	must(t, "copy", b.Copy(dst.g, src.g, 13, 601, 650))
	must(t, "copy", ref.Copy(dst.r, src.r, 13, 601, 650))
	check(t, b, "copy", dst, 0)
	// Overlapping ranges in one tensor, both directions.
	for _, c := range [][3]int{{0, 100, 1300}, {150, 3, 1347}} {
		x := f32Pair(t, b, "x", randVec(rng, 9*1500, 1), 9, 1500)
		must(t, "copy", b.Copy(x.g, x.g, c[0], c[1], c[2]))
		must(t, "copy", ref.Copy(x.r, x.r, c[0], c[1], c[2]))
		check(t, b, "copy overlapping", x, 0)
	}
	if err := b.Copy(dst.g, src.g, 0, 1000, 600); err == nil {
		t.Error("Copy past src's columns succeeded")
	}
}

// weightTypes are the types every weight op must take.
var weightTypes = []ggml.Type{
	ggml.F32, ggml.F16, ggml.BF16,
	ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q8_0, ggml.Q8_1,
	ggml.Q2_K, ggml.Q3_K, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.Q8_K,
}

// randomWeight is [m, k] of typ as GGUF bytes. Quantized blocks are random
// bytes (every bit pattern of quants and scales), redrawn while a block
// decodes to NaN/Inf or to magnitudes above 100.
func randomWeight(t testing.TB, rng *rand.Rand, typ ggml.Type, m, k int) []byte {
	t.Helper()
	switch typ {
	case ggml.F32:
		out := make([]byte, 4*m*k)
		for i, v := range randVec(rng, m*k, 1) {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out
	case ggml.F16, ggml.BF16:
		out, err := ggml.Quantize(typ, randVec(rng, m*k, 1))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	bsz, tsz := typ.BlockSize(), typ.TypeSize()
	nb := m * k / bsz
	out := make([]byte, nb*tsz)
	block := make([]float32, bsz)
	for i := range nb {
		raw := out[i*tsz : (i+1)*tsz]
		for try := 0; ; try++ {
			if try == 1000 {
				t.Fatalf("%s: no sane random block in 1000 draws", typ)
			}
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			if err := ggml.Dequantize(typ, raw, block); err != nil {
				t.Fatal(err)
			}
			sane := true
			for _, v := range block {
				if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 100 {
					sane = false
					break
				}
			}
			if sane {
				break
			}
		}
	}
	return out
}

// colsFor is a row length that is a whole number of blocks but not a
// multiple of any tile: 3 super-blocks for the K-quants, 7 blocks of 32.
func colsFor(t ggml.Type, vectorFriendly bool) int {
	switch t.BlockSize() {
	case 1:
		if vectorFriendly {
			return 136 // a multiple of 8: the 16-byte-load kernels
		}
		return 99 // the element-wise kernels
	case 32:
		return 224
	default:
		return 768
	}
}

func TestEmbedding(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, typ := range weightTypes {
		d, vocab := colsFor(typ, false), 53
		w := weightPair(t, b, "table", typ, randomWeight(t, rng, typ, vocab, d), vocab, d)
		ids := []int32{0, 52, 17, 17, int32(rng.IntN(vocab)), 3, 51}
		dst := poisonedPair(t, b, "dst", len(ids), d)
		must(t, "embedding "+typ.String(), b.Embedding(dst.g, w.g, ids))
		must(t, "embedding "+typ.String(), ref.Embedding(dst.r, w.r, ids))
		check(t, b, "embedding "+typ.String(), dst, 0)
	}
	w := weightPair(t, b, "table", ggml.F32, randomWeight(t, rng, ggml.F32, 4, 8), 4, 8)
	dst := poisonedPair(t, b, "dst", 1, 8)
	gerr := b.Embedding(dst.g, w.g, []int32{4})
	rerr := ref.Embedding(dst.r, w.r, []int32{4})
	if gerr == nil || rerr == nil || gerr.Error() != rerr.Error() {
		t.Errorf("id out of range: gpu error %v, reference %v", gerr, rerr)
	}
}

// TestMatMul checks the float kernels (matrix-vector and tiled); the cuBLAS
// path for large batches is off here and has its own test (blas_test.go).
func TestMatMul(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	defer withBLASMin(b, 0)()
	defer withMMVQ(b, false)() // the float kernels here; TestMatMulQ8 covers the 8-bit path
	for _, typ := range weightTypes {
		for _, vf := range []bool{true, false} {
			if !vf && typ.BlockSize() != 1 {
				continue
			}
			k, m := colsFor(typ, vf), 101
			w := weightPair(t, b, "w", typ, randomWeight(t, rng, typ, m, k), m, k)
			for _, n := range []int{1, 2, 3, 5, 8, 9, 70} {
				x := f32Pair(t, b, "x", randVec(rng, n*k, 1), n, k)
				dst := poisonedPair(t, b, "dst", n, m)
				_, kname, _, _ := b.matmulKernel(w.g.Dev.(*devBuf).layout, n, m, k)
				what := typ.String() + " " + kname
				must(t, what, b.MatMul(dst.g, x.g, w.g))
				must(t, what, ref.MatMul(dst.r, x.r, w.r))
				check(t, b, what, dst, f32Tol)
			}
		}
	}
	// The GPU rejects what the reference rejects, with the same message.
	w := weightPair(t, b, "w", ggml.F32, randomWeight(t, rng, ggml.F32, 4, 8), 4, 8)
	x := f32Pair(t, b, "x", randVec(rng, 2*7, 1), 2, 7)
	dst := poisonedPair(t, b, "dst", 2, 4)
	gerr, rerr := b.MatMul(dst.g, x.g, w.g), ref.MatMul(dst.r, x.r, w.r)
	if gerr == nil || rerr == nil || gerr.Error() != rerr.Error() {
		t.Errorf("shape mismatch: gpu error %v, reference %v", gerr, rerr)
	}
	w8 := weightPair(t, b, "w8", ggml.F32, randomWeight(t, rng, ggml.F32, 8, 8), 8, 8)
	x8 := f32Pair(t, b, "x", randVec(rng, 8, 1), 1, 8)
	if err := b.MatMul(x8.g, x8.g, w8.g); err == nil || !strings.Contains(err.Error(), "share storage") {
		t.Errorf("MatMul with dst == x: error %v, want one about shared storage", err)
	}
}

func TestRoPE(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, p := range []compute.RoPEParams{
		{Kind: compute.RoPENorm, NRot: 64, FreqBase: 10000, FreqScale: 1},
		{Kind: compute.RoPENeoX, NRot: 64, FreqBase: 1e6, FreqScale: 0},
		{Kind: compute.RoPENeoX, NRot: 26, FreqBase: 10000, FreqScale: 0.25},
		{Kind: compute.RoPENorm, NRot: 32, FreqBase: 500000, FreqScale: 0.125, ExtFactor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 8192},
	} {
		n, heads, hd := 11, 5, 64
		x := f32Pair(t, b, "x", randVec(rng, n*heads*hd, 2), n, heads, hd)
		pos := make([]int32, n)
		for i := range pos {
			pos[i] = int32(rng.IntN(20000))
		}
		pos[0] = 0
		must(t, "rope", b.RoPE(x.g, pos, p))
		must(t, "rope", ref.RoPE(x.r, pos, p))
		check(t, b, "rope", x, exactTol)
	}
}

// attnCase builds a paged pool with sequences of the given (query rows,
// context) sizes, filled through KVWrite on both backends.
func TestKVWriteAttention(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, tc := range []struct {
		name string
		p    compute.AttnParams
		bs   int
		seqs [][2]int // query rows, context length
	}{
		{"mha causal", compute.AttnParams{NHead: 4, NKVHead: 4, HeadDim: 64, HeadDimV: 64, Causal: true}, 16, [][2]int{{5, 37}, {1, 100}}},
		{"gqa decode", compute.AttnParams{NHead: 6, NKVHead: 2, HeadDim: 40, HeadDimV: 40, Causal: true}, 5, [][2]int{{1, 1}, {1, 23}, {1, 300}}},
		{"mqa window softcap", compute.AttnParams{NHead: 3, NKVHead: 1, HeadDim: 128, HeadDimV: 96, Causal: true, Window: 7, Softcap: 30}, 8, [][2]int{{9, 9}, {3, 50}}},
		{"non-causal", compute.AttnParams{NHead: 2, NKVHead: 1, HeadDim: 32, HeadDimV: 48}, 4, [][2]int{{6, 13}}},
		// Prompts (>= atMinRows rows): the tiled kernel, with sequences
		// starting mid-tile, a decode row among them and uncovered rows.
		{"prefill gqa", compute.AttnParams{NHead: 4, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true}, 16, [][2]int{{70, 70}, {45, 100}, {1, 30}}},
		{"prefill window softcap", compute.AttnParams{NHead: 2, NKVHead: 1, HeadDim: 128, HeadDimV: 128, Causal: true, Window: 20, Softcap: 30}, 8, [][2]int{{80, 80}}},
		{"prefill non-causal", compute.AttnParams{NHead: 3, NKVHead: 3, HeadDim: 32, HeadDimV: 48}, 4, [][2]int{{40, 40}, {30, 61}}},
		// 70 decode rows of 70 sequences: the per-row kernel, not tiles
		// (a tile would walk its 32 sequences one after another).
		{"decode 70 sequences", compute.AttnParams{NHead: 4, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true}, 16, decodeRows(70, 3)},
		// A prompt chunk beside decode rows: both kernels in one call, each
		// leaving the other's rows alone.
		{"prefill mixed with decodes", compute.AttnParams{NHead: 4, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true}, 16,
			append(append(decodeRows(5, 7), [2]int{70, 90}), decodeRows(37, 11)...)},
	} {
		p := tc.p
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		// Blocks: each sequence gets its own shuffled set.
		total := 0
		for _, s := range tc.seqs {
			total += (s[1] + tc.bs - 1) / tc.bs
		}
		nBlocks := total + 3
		perm := rng.Perm(nBlocks)
		slotsN := nBlocks * tc.bs
		kc, vc := p.NKVHead*p.HeadDim, p.NKVHead*p.HeadDimV
		poolK := f32Pair(t, b, "K", randVec(rng, slotsN*kc, 1), slotsN, kc)
		poolV := f32Pair(t, b, "V", randVec(rng, slotsN*vc, 1), slotsN, vc)
		gpool := compute.KVPool{K: poolK.g, V: poolV.g, BlockSize: tc.bs}
		rpool := compute.KVPool{K: poolK.r, V: poolV.r, BlockSize: tc.bs}

		var seqs []compute.SeqAttn
		var pos, slots []int32
		rows, used := 0, 0
		for _, s := range tc.seqs {
			nb := (s[1] + tc.bs - 1) / tc.bs
			blocks := make([]int32, nb)
			for i := range blocks {
				blocks[i] = int32(perm[used+i])
			}
			used += nb
			// The query rows are the last s[0] positions of the context.
			seqs = append(seqs, compute.SeqAttn{QStart: rows, QLen: s[0], CtxLen: s[1], Blocks: blocks})
			for j := s[1] - s[0]; j < s[1]; j++ {
				pos = append(pos, int32(j))
				slots = append(slots, blocks[j/tc.bs]*int32(tc.bs)+int32(j%tc.bs))
			}
			rows += s[0]
		}
		n := rows + 2 // two rows no sequence covers: zeros
		pos = append(pos, 0, 0)
		q := f32Pair(t, b, "q", randVec(rng, n*p.NHead*p.HeadDim, 1), n, p.NHead*p.HeadDim)
		k := f32Pair(t, b, "k", randVec(rng, rows*kc, 1), rows, kc)
		v := f32Pair(t, b, "v", randVec(rng, rows*vc, 1), rows, vc)
		must(t, "kvwrite", b.KVWrite(gpool, k.g, v.g, slots))
		must(t, "kvwrite", ref.KVWrite(rpool, k.r, v.r, slots))
		check(t, b, tc.name+" kvwrite K", poolK, 0)
		check(t, b, tc.name+" kvwrite V", poolV, 0)

		out := poisonedPair(t, b, "out", n, p.NHead*p.HeadDimV)
		if tiled, _ := b.attTiled(seqs, p); tiled != (b.attTileOn && strings.HasPrefix(tc.name, "prefill")) {
			t.Errorf("%s: %d rows: tiled kernel %v", tc.name, n, tiled)
		}
		must(t, tc.name, b.Attention(out.g, q.g, gpool, pos, seqs, p))
		must(t, tc.name, ref.Attention(out.r, q.r, rpool, pos, seqs, p))
		check(t, b, tc.name, out, f32Tol)

		// Same errors as the reference for a broken block table.
		bad := append([]compute.SeqAttn(nil), seqs...)
		bad[0].Blocks = append([]int32(nil), bad[0].Blocks...)
		bad[0].Blocks[0] = int32(nBlocks)
		gerr := b.Attention(out.g, q.g, gpool, pos, bad, p)
		rerr := ref.Attention(out.r, q.r, rpool, pos, bad, p)
		if gerr == nil || rerr == nil || gerr.Error() != rerr.Error() {
			t.Errorf("%s: bad block: gpu error %v, reference %v", tc.name, gerr, rerr)
		}
	}
}

// TestStagingWrap queues many small ops with batch arrays, more than a
// staging half holds, without reading in between, and checks every result:
// the staging ring must never overwrite arrays a queued copy still needs.
func TestStagingWrap(t *testing.T) {
	b := testBackend(t)
	// Queue without waiting between ops, as in production.
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	rng := newRNG(t)
	ref := compute.NewReference()
	const vocab, d, calls = 300, 64, 60
	w := weightPair(t, b, "table", ggml.F32, randomWeight(t, rng, ggml.F32, vocab, d), vocab, d)
	outs := make([]pair, 0, calls)
	idss := make([][]int32, 0, calls)
	for c := range calls {
		// 3000 ids (12 KB) a call fill a 256 KB half about every 21 calls;
		// every 20th call stages 320 KB, more than a half, which forces a
		// drain and a larger buffer.
		m := 3000
		if c%20 == 19 {
			m = 80000
		}
		ids := make([]int32, m)
		for i := range ids {
			ids[i] = int32(rng.IntN(vocab))
		}
		out := poisonedPair(t, b, "out", m, d)
		if err := b.Embedding(out.g, w.g, ids); err != nil {
			t.Fatal(err)
		}
		outs, idss = append(outs, out), append(idss, ids)
	}
	for c, out := range outs {
		must(t, "embedding", ref.Embedding(out.r, w.r, idss[c]))
		check(t, b, "staged embedding", out, 0)
	}
}

// TestKernelResources logs registers and spills of the kernels (read off
// the loaded modules), so a spill shows up in the test log.
func TestKernelResources(t *testing.T) {
	b := testBackend(t)
	info, err := b.KernelInfo()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernels:\n%s", info)
}

// decodeRows is n sequences of one query row each, with contexts 1+step,
// 1+2*step, ... (attention test cases).
func decodeRows(n, step int) [][2]int {
	out := make([][2]int, n)
	for i := range out {
		out[i] = [2]int{1, 1 + (i+1)*step}
	}
	return out
}
