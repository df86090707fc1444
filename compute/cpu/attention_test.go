package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestAttention compares Backend.Attention with compute.Reference (float64)
// on random pools. Outputs are convex combinations of V rows, so the bound
// is absolute in units of the largest |v|: |Δ| ≤ 1e-5·max|v| (float32
// dot products, exp and sums). F16 and Q8_0 pools are read exactly by both
// (dequantized rows), so the bound is the same.
func TestAttention(t *testing.T) {
	rng := newRNG(t)
	ref := compute.NewReference()
	cases := []struct {
		name                string
		nHead, nKV, hd, hdv int
		bs                  int
		causal              bool
		window              int
		softcap             float32
	}{
		{"gqa", 8, 2, 64, 64, 16, true, 0, 0},
		{"mha-odd-dims", 4, 4, 36, 20, 5, true, 0, 0},
		{"mqa", 6, 1, 72, 72, 16, true, 0, 0},
		{"stories", 8, 4, 8, 8, 16, true, 0, 0},
		{"window-softcap", 4, 2, 32, 32, 8, true, 8, 2},
		{"noncausal", 4, 2, 32, 48, 7, false, 0, 0},
		{"noncausal-window", 2, 1, 40, 40, 4, false, 6, 0},
		{"gqa-q8-aligned", 8, 2, 64, 32, 16, true, 0, 0},
		{"heads-across-q8-blocks", 4, 2, 48, 80, 5, true, 5, 1.5},
	}
	for _, noAsm := range []bool{false, true} {
		b := New(2)
		defer b.Close()
		if noAsm {
			b.math, b.kernels = goAttnMath(), kernels(false)
		} else if !b.Asm() {
			t.Log("assembly kernels unavailable: testing the Go path only")
			continue
		}
		for _, c := range cases {
			for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
				if typ == ggml.Q8_0 && (c.nKV*c.hd%32 != 0 || c.nKV*c.hdv%32 != 0) {
					continue // Q8_0 rows must be whole blocks
				}
				t.Run(fmt.Sprintf("asm=%v/%s/%s", !noAsm, c.name, typ), func(t *testing.T) {
					p := compute.AttnParams{NHead: c.nHead, NKVHead: c.nKV, HeadDim: c.hd, HeadDimV: c.hdv,
						Scale: float32(1 / math.Sqrt(float64(c.hd))), Causal: c.causal, Window: c.window, Softcap: c.softcap}
					checkAttention(t, b, ref, rng, p, c.bs, typ)
				})
			}
		}
	}
}

// checkAttention runs three sequences (a prefill chunk after earlier
// context, a first token, a long decode step) plus one batch row no
// sequence covers, with block tables in random order, over a pool of type
// typ filled through KVWrite.
func checkAttention(t *testing.T, b *Backend, ref *compute.Reference, rng *rand.Rand, p compute.AttnParams, bs int, typ ggml.Type) {
	t.Helper()
	const nBlocks = 40
	slots := nBlocks * bs
	kT := newF32(t, ref, randomActivations(rng, slots*p.NKVHead*p.HeadDim), slots, p.NKVHead*p.HeadDim)
	vT := newF32(t, ref, randomActivations(rng, slots*p.NKVHead*p.HeadDimV), slots, p.NKVHead*p.HeadDimV)
	pk, err := ref.NewTensor("pool.k", typ, slots, p.NKVHead*p.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := ref.NewTensor("pool.v", typ, slots, p.NKVHead*p.HeadDimV)
	if err != nil {
		t.Fatal(err)
	}
	pool := compute.KVPool{K: pk, V: pv, BlockSize: bs}
	all := make([]int32, slots)
	for i := range all {
		all[i] = int32(i)
	}
	if err := b.KVWrite(pool, kT, vT, all); err != nil {
		t.Fatal(err)
	}
	perm := rng.Perm(nBlocks)
	take := func(ctx int) []int32 {
		n := (ctx + bs - 1) / bs
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(perm[0])
			perm = perm[1:]
		}
		return ids
	}
	seqs := []compute.SeqAttn{
		{QStart: 0, QLen: 5, CtxLen: 37, Blocks: take(37)},
		{QStart: 5, QLen: 1, CtxLen: 1, Blocks: take(1)},
		{QStart: 7, QLen: 1, CtxLen: 50, Blocks: take(50)},
	}
	pos := []int32{32, 33, 34, 35, 36, 0, 9, 49} // row 6 belongs to no sequence
	n := len(pos)
	q := newF32(t, ref, randomActivations(rng, n*p.NHead*p.HeadDim), n, p.NHead*p.HeadDim)
	got := newF32(t, ref, nil, n, p.NHead*p.HeadDimV)
	want := newF32(t, ref, nil, n, p.NHead*p.HeadDimV)
	for i := range got.F32 {
		got.F32[i] = float32(math.NaN()) // Attention must write every element
	}
	if err := b.Attention(got, q, pool, pos, seqs, p); err != nil {
		t.Fatal(err)
	}
	if err := ref.Attention(want, q, pool, pos, seqs, p); err != nil {
		t.Fatal(err)
	}
	var vmax float64
	for _, v := range vT.F32 {
		vmax = max(vmax, math.Abs(float64(v)))
	}
	for i := range want.F32 {
		if d := math.Abs(float64(got.F32[i]) - float64(want.F32[i])); !(d <= 1e-5*vmax) {
			t.Fatalf("out[%d][%d] = %g, reference %g: |Δ| %g > 1e-5·max|v| = %g", i/got.Cols(), i%got.Cols(), got.F32[i], want.F32[i], d, 1e-5*vmax)
		}
	}
}

// TestExpSum checks the exp kernel against float64 math.Exp: relative error
// ≤ 1e-6 (a few float32 ulps) down to where exp underflows, and the
// returned sum against the float64 sum of the results.
func TestExpSum(t *testing.T) {
	rng := newRNG(t)
	for _, m := range attnMaths(t) {
		x := make([]float32, 203)
		for i := range x {
			x[i] = float32(-100 * rng.Float64())
		}
		x[0], x[1], x[2] = 0, -1e-7, -87
		in := append([]float32(nil), x...)
		const mx = 1.5
		for i := range in {
			in[i] += mx
		}
		sum := m.expSum(in, mx)
		var ref float64
		for i, v := range x {
			want := math.Exp(float64(v))
			if d := math.Abs(float64(in[i]) - want); d > 1e-6*want && d > 1e-37 {
				t.Errorf("exp(%g) = %g, want %g", v, in[i], want)
			}
			ref += float64(in[i])
		}
		if math.Abs(float64(sum)-ref) > 1e-6*ref {
			t.Errorf("sum %g, want %g", sum, ref)
		}
	}
}

// TestAxpyRows checks the weighted row sum against float64 on widths with
// and without a tail past the vector width.
func TestAxpyRows(t *testing.T) {
	rng := newRNG(t)
	for _, m := range attnMaths(t) {
		for _, cols := range []int{8, 13, 64, 100} {
			const rows, stride = 9, 131
			v := randomActivations(rng, rows*stride)
			p := randomActivations(rng, rows)
			acc := randomActivations(rng, cols)
			want := make([]float64, cols)
			var mag float64
			for i := range want {
				want[i] = float64(acc[i])
				mag = max(mag, math.Abs(want[i]))
				for r := range rows {
					pr := float64(p[r]) * float64(v[r*stride+i])
					want[i] += pr
					mag = max(mag, math.Abs(pr))
				}
			}
			m.axpyRows(acc, v, stride, p)
			for i := range want {
				if d := math.Abs(float64(acc[i]) - want[i]); d > 1e-5*mag {
					t.Errorf("cols %d: acc[%d] = %g, want %g", cols, i, acc[i], want[i])
				}
			}
		}
	}
}

// attnMaths is the Go arithmetic and, where this CPU runs it, the assembly.
func attnMaths(t *testing.T) []attnMath {
	t.Helper()
	if !asmSupported() {
		t.Log("assembly kernels unavailable: testing the Go arithmetic only")
		return []attnMath{goAttnMath()}
	}
	return []attnMath{goAttnMath(), asmAttnMath()}
}

// TestWiden checks the F16C conversion against the Go one bit for bit,
// specials (±0, subnormals, ±Inf, NaN) included, on lengths with tails;
// and the Q8_0 dequantization against ggml.Dequantize.
func TestWiden(t *testing.T) {
	rng := newRNG(t)
	for _, m := range attnMaths(t) {
		for _, n := range []int{0, 5, 8, 37} {
			src := make([]byte, 2*n)
			for i := range n {
				h := uint16(rng.Uint32())
				switch i % 7 {
				case 1:
					h = 0x8000 // -0
				case 2:
					h = 0x0001 // smallest subnormal
				case 3:
					h = 0x7c00 // +Inf
				case 4:
					h = 0xfe01 // NaN
				}
				src[2*i], src[2*i+1] = byte(h), byte(h>>8)
			}
			got, want := make([]float32, n), make([]float32, n)
			m.widenF16(got, src)
			widenF16Go(want, src)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("n=%d: element %d = %v, want %v", n, i, got[i], want[i])
				}
			}
		}
		// Q8_0: whole blocks of random rows against ggml.Dequantize.
		for _, nb := range []int{1, 3} {
			x := randomActivations(rng, 32*nb)
			x[3] = 1e-30 // scales down to F16 subnormals
			q, err := ggml.Quantize(ggml.Q8_0, x)
			if err != nil {
				t.Fatal(err)
			}
			got, want := make([]float32, 32*nb), make([]float32, 32*nb)
			m.widenQ8_0(got, q)
			if err := ggml.Dequantize(ggml.Q8_0, q, want); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("Q8_0 %d blocks: element %d = %v, want %v", nb, i, got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkAttention is one layer's attention on the 2-core machine for
// F32, F16 and Q8_0 pools: decode (one row) at 1024 cached positions and a
// 64-row prompt chunk after 448, TinyLlama (32 heads, 4 KV heads of 64) and
// 7B (32 heads of 128) shapes.
func BenchmarkAttention(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	ref := compute.NewReference()
	be := New(0)
	defer be.Close()
	for _, shape := range []struct {
		name           string
		nHead, nKV, hd int
	}{{"tinyllama", 32, 4, 64}, {"7b", 32, 32, 128}} {
		for _, run := range []struct {
			name     string
			qLen, at int
		}{{"decode1024", 1, 1023}, {"prefill64at448", 64, 448}} {
			for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
				b.Run(fmt.Sprintf("%s/%s/%s", shape.name, run.name, typ), func(b *testing.B) {
					const bs = 16
					ctx := run.at + run.qLen
					p := compute.AttnParams{NHead: shape.nHead, NKVHead: shape.nKV, HeadDim: shape.hd, HeadDimV: shape.hd,
						Scale: float32(1 / math.Sqrt(float64(shape.hd))), Causal: true}
					slots := (ctx + bs - 1) / bs * bs
					kv := shape.nKV * shape.hd
					pk, _ := ref.NewTensor("k", typ, slots, kv)
					pv, _ := ref.NewTensor("v", typ, slots, kv)
					pool := compute.KVPool{K: pk, V: pv, BlockSize: bs}
					all := make([]int32, slots)
					blocks := make([]int32, slots/bs)
					for i := range all {
						all[i] = int32(i)
					}
					for i := range blocks {
						blocks[i] = int32(i)
					}
					rows := newF32(b, ref, randomActivations(rng, slots*kv), slots, kv)
					if err := ref.KVWrite(pool, rows, rows, all); err != nil {
						b.Fatal(err)
					}
					q := newF32(b, ref, randomActivations(rng, run.qLen*shape.nHead*shape.hd), run.qLen, shape.nHead*shape.hd)
					out := newF32(b, ref, nil, run.qLen, shape.nHead*shape.hd)
					pos := make([]int32, run.qLen)
					for i := range pos {
						pos[i] = int32(run.at + i)
					}
					seqs := []compute.SeqAttn{{QLen: run.qLen, CtxLen: ctx, Blocks: blocks}}
					for b.Loop() {
						if err := be.Attention(out, q, pool, pos, seqs, p); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
