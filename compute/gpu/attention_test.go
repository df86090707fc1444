package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/ggml"
)

// attnSetup is one attention problem on both backends: a pool of some KV
// type filled through each backend's KVWrite from the same F32 rows,
// sequences with shuffled block tables, positions, queries.
type attnSetup struct {
	p      compute.AttnParams
	gpool  compute.KVPool
	rpool  compute.KVPool
	seqs   []compute.SeqAttn
	pos    []int32
	q      pair
	n      int
	slotsN int
}

// newAttnSetup writes the whole context of every sequence (query rows,
// context length) through KVWrite, into blocks taken in shuffled order
// with a few spare ones; n = the query rows plus two rows no sequence
// covers (zeros).
func newAttnSetup(t *testing.T, b *Backend, rng *rand.Rand, p compute.AttnParams, typ ggml.Type, bs int, spec [][2]int) *attnSetup {
	t.Helper()
	ref := compute.NewReference()
	total := 0
	for _, s := range spec {
		total += (s[1] + bs - 1) / bs
	}
	nBlocks := total + 3
	perm := rng.Perm(nBlocks)
	slotsN := nBlocks * bs
	kc, vc := p.NKVHead*p.HeadDim, p.NKVHead*p.HeadDimV
	a := &attnSetup{p: p, slotsN: slotsN}
	newPool := func(name string, cols int) pair {
		g, err := b.NewTensor(name, typ, slotsN, cols)
		must(t, "new pool", err)
		t.Cleanup(func() { b.Free(g) })
		r, err := ref.NewTensor(name, typ, slotsN, cols)
		must(t, "new pool", err)
		return pair{g, r}
	}
	pk, pv := newPool("K", kc), newPool("V", vc)
	a.gpool = compute.KVPool{K: pk.g, V: pv.g, BlockSize: bs}
	a.rpool = compute.KVPool{K: pk.r, V: pv.r, BlockSize: bs}
	var slots []int32
	rows, used := 0, 0
	for _, s := range spec {
		nb := (s[1] + bs - 1) / bs
		blocks := make([]int32, nb)
		for i := range blocks {
			blocks[i] = int32(perm[used+i])
		}
		used += nb
		// The query rows are the last s[0] positions of the context.
		a.seqs = append(a.seqs, compute.SeqAttn{QStart: rows, QLen: s[0], CtxLen: s[1], Blocks: blocks})
		for j := 0; j < s[1]; j++ {
			slots = append(slots, blocks[j/bs]*int32(bs)+int32(j%bs))
		}
		for j := s[1] - s[0]; j < s[1]; j++ {
			a.pos = append(a.pos, int32(j))
		}
		rows += s[0]
	}
	a.n = rows + 2
	a.pos = append(a.pos, 0, 0)
	k := f32Pair(t, b, "k", randVec(rng, len(slots)*kc, 1.5), len(slots), kc)
	v := f32Pair(t, b, "v", randVec(rng, len(slots)*vc, 1), len(slots), vc)
	must(t, "kvwrite", b.KVWrite(a.gpool, k.g, v.g, slots))
	must(t, "kvwrite", ref.KVWrite(a.rpool, k.r, v.r, slots))
	a.q = f32Pair(t, b, "q", randVec(rng, a.n*p.NHead*p.HeadDim, 1), a.n, p.NHead*p.HeadDim)
	return a
}

// checkPoolExact reads every slot of the GPU pool back through Embedding
// (which dequantizes exactly) and requires the reference pool's values bit
// for bit: the GPU's KVWrite must store EncodeKVRow's bytes.
func (a *attnSetup) checkPoolExact(t *testing.T, b *Backend, what string) {
	t.Helper()
	ref := compute.NewReference()
	ids := make([]int32, a.slotsN)
	for i := range ids {
		ids[i] = int32(i)
	}
	for _, x := range []struct {
		role string
		g, r *compute.Tensor
	}{{"K", a.gpool.K, a.rpool.K}, {"V", a.gpool.V, a.rpool.V}} {
		out := poisonedPair(t, b, "rows", a.slotsN, x.g.Cols())
		must(t, "embedding", b.Embedding(out.g, x.g, ids))
		must(t, "embedding", ref.Embedding(out.r, x.r, ids))
		got := read(t, b, out.g)
		for i, w := range out.r.F32 {
			if math.Float32bits(got[i]) != math.Float32bits(w) {
				t.Fatalf("%s: pool %s slot %d col %d holds %v, reference %v", what, x.role, i/x.g.Cols(), i%x.g.Cols(), got[i], w)
			}
		}
	}
}

// run compares the GPU's Attention with the reference's over the same
// pool contents (f32Tol: the GPU accumulates in float32) and returns the
// GPU's output.
func (a *attnSetup) run(t *testing.T, b *Backend, what string) []float32 {
	t.Helper()
	out := poisonedPair(t, b, "out", a.n, a.p.NHead*a.p.HeadDimV)
	must(t, what, b.Attention(out.g, a.q.g, a.gpool, a.pos, a.seqs, a.p))
	must(t, what, compute.NewReference().Attention(out.r, a.q.r, a.rpool, a.pos, a.seqs, a.p))
	check(t, b, what, out, f32Tol)
	return read(t, b, out.g)
}

// attModes are the decode kernel choices the attention tests run under:
// the per-head kernel only (groupMin 0, ROCMFORGE_GPU_ATT_GROUP=0) and the
// grouped kernel for every call whose heads share KV heads (groupMin 1),
// its head-dim vector paths loading each key group a group ahead (pf, the
// default) or as used (ROCMFORGE_GPU_ATT_PF=0).
var attModes = []struct {
	name     string
	groupMin int
	pf       bool
}{{"per-head", 0, true}, {"grouped", 1, true}, {"grouped-no-prefetch", 1, false}}

// withAttGroup sets the grouped kernel's row threshold until the returned
// function restores it and the prefetch switch.
func withAttGroup(b *Backend, min int) func() {
	old, pf := b.att.groupMin, b.att.groupPF
	b.att.groupMin = min
	return func() { b.att.groupMin, b.att.groupPF = old, pf }
}

// checkGrouped fails the test unless a decode call of a's rows took the
// grouped kernel exactly when the mode asks for it and the heads share KV
// heads (and head_dim_v fits its generic path).
func (a *attnSetup) checkGrouped(t *testing.T, b *Backend, what string) attDecPlan {
	t.Helper()
	pl := b.attDec("f32", a.n, a.gpool.K.Shape[0], a.p, attKeyRoom(a.seqs, a.gpool.BlockSize), false)
	want := b.att.groupMin > 0 && a.p.NHead > a.p.NKVHead && a.p.HeadDimV <= attGroupNV*b.warp
	if pl.grouped != want {
		t.Errorf("%s: grouped kernel %v, want %v (G = %d, hdv %d, groupMin %d)", what, pl.grouped, want,
			a.p.NHead/a.p.NKVHead, a.p.HeadDimV, b.att.groupMin)
	}
	return pl
}

// TestAttentionKVTypes runs decode and prompt (tiled) attention over F32,
// F16 and Q8_0 pools: the GPU's KVWrite stores exactly the reference's
// values (F16 rounding, ggml's Q8_0 quantizer), and attention over them
// matches the reference within f32Tol. Shapes: GQA, MQA with window and
// softcap, non-causal, head dims that start Q8_0 blocks mid-head (40),
// sequences whose cached part ends mid-block. Decode runs with the per-head
// and with the grouped kernel (attModes).
func TestAttentionKVTypes(t *testing.T) {
	b := testBackend(t)
	defer withAttGroup(b, b.att.groupMin)()
	rng := newRNG(t)
	for _, tc := range []struct {
		name string
		p    compute.AttnParams
		bs   int
		seqs [][2]int
	}{
		{"gqa decode", compute.AttnParams{NHead: 8, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true}, 16, [][2]int{{1, 1}, {1, 23}, {2, 301}}},
		{"gqa decode 128 softcap", compute.AttnParams{NHead: 8, NKVHead: 2, HeadDim: 128, HeadDimV: 128, Causal: true, Softcap: 30}, 16, [][2]int{{1, 1}, {1, 300}, {3, 701}}},
		{"mha heads across q8 blocks", compute.AttnParams{NHead: 4, NKVHead: 4, HeadDim: 40, HeadDimV: 40, Causal: true}, 5, [][2]int{{5, 37}, {1, 100}}},
		{"mqa window softcap", compute.AttnParams{NHead: 3, NKVHead: 1, HeadDim: 128, HeadDimV: 96, Causal: true, Window: 7, Softcap: 30}, 8, [][2]int{{9, 9}, {3, 50}}},
		{"non-causal", compute.AttnParams{NHead: 2, NKVHead: 1, HeadDim: 32, HeadDimV: 64}, 4, [][2]int{{6, 13}}},
		{"prefill gqa", compute.AttnParams{NHead: 4, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true}, 16, [][2]int{{70, 70}, {45, 100}, {1, 30}}},
		{"prefill window softcap", compute.AttnParams{NHead: 2, NKVHead: 1, HeadDim: 128, HeadDimV: 128, Causal: true, Window: 20, Softcap: 30}, 8, [][2]int{{80, 80}}},
		{"prefill heads across q8 blocks", compute.AttnParams{NHead: 4, NKVHead: 4, HeadDim: 40, HeadDimV: 40, Causal: true}, 7, [][2]int{{66, 79}}},
	} {
		for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
			p := tc.p
			p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
			what := fmt.Sprintf("%s/%s", tc.name, typ)
			a := newAttnSetup(t, b, rng, p, typ, tc.bs, tc.seqs)
			a.checkPoolExact(t, b, what)
			for _, mode := range attModes {
				b.att.groupMin, b.att.groupPF = mode.groupMin, mode.pf
				if !strings.HasPrefix(tc.name, "prefill") {
					a.checkGrouped(t, b, what+"/"+mode.name)
				}
				a.run(t, b, what+"/"+mode.name)
			}
		}
	}
}

// TestAttentionSplitK compares split-K decode attention with the
// reference at contexts 1, 17, 300 and 2049 (GQA, one and three decode
// rows, heads of 64; heads of 128 for one row at 1, 17 and 2049), for every pool type,
// and checks that the long contexts do split and that turning the split
// off gives the same results within f32Tol; with the per-head and the
// grouped kernel.
func TestAttentionSplitK(t *testing.T) {
	b := testBackend(t)
	defer func(on bool) { b.att.splitOn = on }(b.att.splitOn)
	defer withAttGroup(b, b.att.groupMin)()
	rng := newRNG(t)
	p64 := compute.AttnParams{NHead: 8, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true, Scale: 0.125}
	p128 := p64
	p128.HeadDim, p128.HeadDimV, p128.Scale = 128, 128, 0.088
	rowCounts := []int{1, 3}
	if testing.Short() { // under compute-sanitizer
		rowCounts = rowCounts[:1]
	}
	for _, ctx := range []int{1, 17, 300, 2049} {
		for _, rows := range rowCounts {
			p := p64
			if ctx%2 == 1 && rows == 1 {
				p = p128
			}
			for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
				spec := make([][2]int, rows)
				for i := range spec {
					spec[i] = [2]int{1, max(1, ctx-7*i)}
				}
				a := newAttnSetup(t, b, rng, p, typ, 16, spec)
				for _, mode := range attModes {
					b.att.groupMin, b.att.groupPF = mode.groupMin, mode.pf
					for _, on := range []bool{true, false} {
						b.att.splitOn = on
						what := fmt.Sprintf("ctx %d rows %d hd %d %s %s split=%v", ctx, rows, p.HeadDim, typ, mode.name, on)
						splits := a.checkGrouped(t, b, what).splits
						if on && ctx >= 300 && splits < 2 {
							t.Errorf("%s: %d rows: %d split(s), want several", what, a.n, splits)
						}
						a.run(t, b, fmt.Sprintf("%s (%d)", what, splits))
					}
				}
			}
		}
	}
	// A window shorter than a split: most splits see no key.
	b.att.splitOn = true
	pw := p64
	pw.Window = 5
	a := newAttnSetup(t, b, rng, pw, ggml.Q8_0, 16, [][2]int{{1, 2049}})
	for _, mode := range attModes {
		b.att.groupMin, b.att.groupPF = mode.groupMin, mode.pf
		a.checkGrouped(t, b, "window 5 at ctx 2049/"+mode.name)
		a.run(t, b, "window 5 at ctx 2049/"+mode.name)
	}
}

// TestKVPoolErrors: pools the GPU cannot use are refused with the
// reference's messages, not launched.
func TestKVPoolErrors(t *testing.T) {
	b := testBackend(t)
	k, err := b.NewTensor("k", ggml.F16, 16, 64)
	must(t, "new", err)
	defer b.Free(k)
	v, err := b.NewTensor("v", ggml.Q8_0, 16, 64)
	must(t, "new", err)
	defer b.Free(v)
	rows, err := b.NewTensor("rows", ggml.F32, 1, 64)
	must(t, "new", err)
	defer b.Free(rows)
	err = b.KVWrite(compute.KVPool{K: k, V: v, BlockSize: 4}, rows, rows, []int32{0})
	if err == nil || !strings.Contains(err.Error(), "kvwrite") || !strings.Contains(err.Error(), "same type") {
		t.Errorf("mixed pool: error %v", err)
	}
}

// BenchmarkAttentionDecode is one decode row's attention (one layer) in the
// TinyLlama (32 query heads, 4 KV heads of 64) and 7B (32 heads of 128)
// shapes at contexts 128, 1024 and 4096, over F32, F16 and Q8_0 pools, with
// split-K on and off. Enough pools (layers) rotate to exceed the L2 cache
// (as a model's layers do), and the calls replay from a captured graph, so
// the figure is the kernels' time. GB/s counts the K and V bytes a call
// must read.
func BenchmarkAttentionDecode(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func(on bool, perSM int) { b.syncEachOp, b.att.splitOn, b.att.perSM = true, on, perSM }(b.att.splitOn, b.att.perSM)
	for _, sh := range []struct {
		name              string
		heads, kvHeads, d int
	}{{"tiny", 32, 4, 64}, {"7b", 32, 32, 128}} {
		for _, ctx := range []int{128, 1024, 4096} {
			for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
				// split=0: off; N: split-K aiming at N blocks per multiprocessor.
				for _, perSM := range []int{0, attSplitBlocksPerSM, 2 * attSplitBlocksPerSM} {
					bm.Run(fmt.Sprintf("%s/ctx%d/%s/split=%d", sh.name, ctx, typ, perSM), func(bm *testing.B) {
						b.att.splitOn, b.att.perSM = perSM > 0, max(perSM, 1)
						benchDecode(bm, b, sh.heads, sh.kvHeads, sh.d, ctx, typ)
					})
				}
			}
		}
	}
}

func benchDecode(bm *testing.B, b *Backend, heads, kvHeads, d, ctx int, typ ggml.Type) {
	const bs = 16
	p := compute.AttnParams{NHead: heads, NKVHead: kvHeads, HeadDim: d, HeadDimV: d, Causal: true,
		Scale: float32(1 / math.Sqrt(float64(d)))}
	rng := rand.New(rand.NewPCG(7, 8))
	kc := kvHeads * d
	rowBytes, _ := typ.RowSize(int64(kc))
	poolBytes := 2 * int(rowBytes) * ctx
	const rotate = 160 << 20 // 3x the 50 MB L2
	copies := min(64, max(2, (rotate+poolBytes-1)/poolBytes))
	newT := func(t ggml.Type, rows, cols int) *compute.Tensor {
		x, err := b.NewTensor("t", t, rows, cols)
		if err != nil {
			bm.Fatal(err)
		}
		bm.Cleanup(func() { b.Free(x) })
		return x
	}
	src := newT(ggml.F32, ctx, kc)
	if err := b.Write(src, randVec(rng, ctx*kc, 1)); err != nil {
		bm.Fatal(err)
	}
	slots := make([]int32, ctx)
	blocks := make([]int32, ctx/bs)
	for i := range blocks {
		blocks[i] = int32(len(blocks) - 1 - i)
	}
	for j := range slots {
		slots[j] = blocks[j/bs]*bs + int32(j%bs)
	}
	pools := make([]compute.KVPool, copies)
	for i := range pools {
		pools[i] = compute.KVPool{K: newT(typ, ctx, kc), V: newT(typ, ctx, kc), BlockSize: bs}
		if err := b.KVWrite(pools[i], src, src, slots); err != nil {
			bm.Fatal(err)
		}
	}
	q := newT(ggml.F32, 1, heads*d)
	if err := b.Write(q, randVec(rng, heads*d, 1)); err != nil {
		bm.Fatal(err)
	}
	out := newT(ggml.F32, 1, heads*d)
	pos := []int32{int32(ctx - 1)}
	seqs := []compute.SeqAttn{{QStart: 0, QLen: 1, CtxLen: ctx, Blocks: blocks}}
	benchAttentionReplay(bm, b, pools, out, q, pos, seqs, p, poolBytes)
	pl := b.attDec(layoutNames[typ], 1, ctx, p, attKeyRoom(seqs, bs), false)
	bm.Logf("%d pools, %d split(s), grouped %v", copies, pl.splits, pl.grouped)
}

// BenchmarkAttentionPrefillKV is BenchmarkAttentionPrefill's 512-token
// prompt (tiled kernel) over F32, F16 and Q8_0 pools.
func BenchmarkAttentionPrefillKV(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	for _, sh := range []struct {
		name              string
		heads, kvHeads, d int
	}{{"7b", 32, 32, 128}, {"tiny", 32, 4, 64}} {
		for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
			bm.Run(fmt.Sprintf("%s/n512/%s", sh.name, typ), func(bm *testing.B) {
				const n, bs = 512, 16
				p := compute.AttnParams{NHead: sh.heads, NKVHead: sh.kvHeads, HeadDim: sh.d, HeadDimV: sh.d,
					Causal: true, Scale: 0.1}
				rng := rand.New(rand.NewPCG(7, 8))
				kc := sh.kvHeads * sh.d
				newT := func(t ggml.Type, rows, cols int) *compute.Tensor {
					x, err := b.NewTensor("t", t, rows, cols)
					if err != nil {
						bm.Fatal(err)
					}
					bm.Cleanup(func() { b.Free(x) })
					return x
				}
				fill := func(x *compute.Tensor) *compute.Tensor {
					if err := b.Write(x, randVec(rng, x.Elems(), 1)); err != nil {
						bm.Fatal(err)
					}
					return x
				}
				src := fill(newT(ggml.F32, n, kc))
				pool := compute.KVPool{K: newT(typ, n, kc), V: newT(typ, n, kc), BlockSize: bs}
				blocks := make([]int32, n/bs)
				for i := range blocks {
					blocks[i] = int32(len(blocks) - 1 - i)
				}
				pos, slots := make([]int32, n), make([]int32, n)
				for i := range pos {
					pos[i] = int32(i)
					slots[i] = blocks[i/bs]*bs + int32(i%bs)
				}
				if err := b.KVWrite(pool, src, src, slots); err != nil {
					bm.Fatal(err)
				}
				q := fill(newT(ggml.F32, n, sh.heads*sh.d))
				out := newT(ggml.F32, n, sh.heads*sh.d)
				seqs := []compute.SeqAttn{{QStart: 0, QLen: n, CtxLen: n, Blocks: blocks}}
				timeGPU(bm, b, func() error { return b.Attention(out, q, pool, pos, seqs, p) })
				bm.ReportMetric(bm.Elapsed().Seconds()/float64(bm.N)*1e3, "ms/call")
			})
		}
	}
}

// TestAttSplits checks the split-K choice without a GPU: no split for large
// grids or block tables under attSplitMinRoom keys, a split that grows
// with the room up to attMaxSplits, at least attSplitMinKeys keys a split,
// and never more partial records than the scratch holds.
func TestAttSplits(t *testing.T) {
	b := &Backend{core: &core{sms: 132, att: attState{splitOn: true, perSM: attSplitBlocksPerSM, part: 1}}}
	for _, tc := range []struct {
		rows, heads, keys int
		want              int
	}{
		{1, 32, 256, 1},   // room below attSplitMinRoom
		{1, 32, 512, 16},  // 512/32 keys a split
		{1, 32, 4096, 17}, // ceil(4·132 / 32)
		{1, 8, 8192, 32},  // capped at attMaxSplits
		{8, 32, 4096, 3},  // 256 blocks: ceil(528/256)
		{9, 32, 4096, 1},  // 288 blocks: 2·288 > 528
	} {
		got := b.attSplits(tc.rows*tc.heads, tc.rows*tc.heads, tc.keys)
		if got != tc.want {
			t.Errorf("attSplits(%d rows, %d heads, %d keys) = %d, want %d", tc.rows, tc.heads, tc.keys, got, tc.want)
		}
		if got*tc.rows*tc.heads > attPartials && got > 1 {
			t.Errorf("attSplits(%d, %d, %d) = %d: %d partials, scratch holds %d", tc.rows, tc.heads, tc.keys, got, got*tc.rows*tc.heads, attPartials)
		}
	}
	b.att.splitOn = false
	if got := b.attSplits(32, 32, 4096); got != 1 {
		t.Errorf("split off: %d splits", got)
	}
	for _, tc := range []struct {
		ctx  []int
		bs   int
		want int
	}{{[]int{1}, 16, 256}, {[]int{300, 17}, 16, 512}, {[]int{2049}, 16, 4096}, {[]int{100}, 32, 512}} {
		var seqs []compute.SeqAttn
		for _, c := range tc.ctx {
			seqs = append(seqs, compute.SeqAttn{CtxLen: c})
		}
		if got := attKeyRoom(seqs, tc.bs); got != tc.want {
			t.Errorf("attKeyRoom(%v, bs %d) = %d, want %d", tc.ctx, tc.bs, got, tc.want)
		}
	}
}

// BenchmarkAttentionBatchDecode is one layer's attention in a batched decode
// step: 64 sequences of one query row each, contexts 129 to 256 (mean ~192,
// as midway through `bench --parallel 64 -p 128 -n 128`), in the TinyLlama
// and 7B shapes, over F32 and F16 pools (and Q8_0 for TinyLlama); enough
// layers' pools rotate to pass the L2 cache and the calls replay from a
// graph. GB/s counts the K and V bytes the rows must read (GQA heads share
// theirs). TinyLlama also at 1, 8, 16 and 32 sequences over F16 pools, where
// the grouped kernel (taken as ROCMFORGE_GPU_ATT_GROUP says) and the
// per-head one cross over.
func BenchmarkAttentionBatchDecode(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	type run struct {
		seqs int
		typ  ggml.Type
	}
	for _, sh := range []struct {
		name              string
		heads, kvHeads, d int
		runs              []run
	}{
		{"tiny", 32, 4, 64, []run{{64, ggml.F32}, {64, ggml.F16}, {64, ggml.Q8_0}, {1, ggml.F16}, {8, ggml.F16}, {16, ggml.F16}, {32, ggml.F16}}},
		{"7b", 32, 32, 128, []run{{64, ggml.F32}, {64, ggml.F16}}},
	} {
		for _, r := range sh.runs {
			typ := r.typ
			bm.Run(fmt.Sprintf("%s/seqs%d/%s", sh.name, r.seqs, typ), func(bm *testing.B) {
				const bs, room = 16, 256
				seqs := r.seqs
				p := compute.AttnParams{NHead: sh.heads, NKVHead: sh.kvHeads, HeadDim: sh.d, HeadDimV: sh.d,
					Causal: true, Scale: float32(1 / math.Sqrt(float64(sh.d)))}
				rng := rand.New(rand.NewPCG(9, 10))
				kc := sh.kvHeads * sh.d
				newT := func(t ggml.Type, rows, cols int) *compute.Tensor {
					x, err := b.NewTensor("t", t, rows, cols)
					if err != nil {
						bm.Fatal(err)
					}
					bm.Cleanup(func() { b.Free(x) })
					return x
				}
				// Block tables: sequence i owns blocks i, i+64, i+128, ...
				// (interleaved, as a pool handed out block by block).
				ss := make([]compute.SeqAttn, seqs)
				pos := make([]int32, seqs)
				keyBytes := 0
				rowBytes, _ := typ.RowSize(int64(kc))
				for i := range ss {
					ctx := 129 + i*127/max(seqs-1, 1)
					blocks := make([]int32, room/bs)
					for j := range blocks {
						blocks[j] = int32(j*seqs + i)
					}
					ss[i] = compute.SeqAttn{QStart: i, QLen: 1, CtxLen: ctx, Blocks: blocks}
					pos[i] = int32(ctx - 1)
					keyBytes += 2 * ctx * int(rowBytes)
				}
				srcRows := min(1024, seqs*room) // divides seqs*room
				src := newT(ggml.F32, srcRows, kc)
				if err := b.Write(src, randVec(rng, srcRows*kc, 1)); err != nil {
					bm.Fatal(err)
				}
				poolBytes := 2 * seqs * room * int(rowBytes)
				layers := min(8, max(2, (160<<20+poolBytes-1)/poolBytes))
				slots := make([]int32, srcRows)
				pools := make([]compute.KVPool, layers)
				for l := range pools {
					pools[l] = compute.KVPool{K: newT(typ, seqs*room, kc), V: newT(typ, seqs*room, kc), BlockSize: bs}
					for s0 := 0; s0 < seqs*room; s0 += srcRows {
						for j := range slots {
							slots[j] = int32(s0 + j)
						}
						if err := b.KVWrite(pools[l], src, src, slots); err != nil {
							bm.Fatal(err)
						}
					}
				}
				q := newT(ggml.F32, seqs, sh.heads*sh.d)
				if err := b.Write(q, randVec(rng, seqs*sh.heads*sh.d, 1)); err != nil {
					bm.Fatal(err)
				}
				out := newT(ggml.F32, seqs, sh.heads*sh.d)
				benchAttentionReplay(bm, b, pools, out, q, pos, ss, p, keyBytes)
				pl := b.attDec(layoutNames[typ], seqs, seqs*room, p, attKeyRoom(ss, bs), false)
				bm.Logf("grouped %v (%d heads a block), grid %v, %d warps, %d split(s)", pl.grouped, pl.gm, pl.grid, pl.warps, pl.splits)
			})
		}
	}
}

// TestAttentionQ8: decode attention (unsplit, split-K, rows of no sequence)
// writes the q8 blocks of its output for the output projection, which then
// reuses them instead of quantizing: the product equals, bit for bit, the
// one computed with a separate quantize launch (ROCMFORGE_GPU_ATT_Q8=0),
// and the 8-bit reference of the attention output within q8Tol; with the
// per-head and with the grouped kernel (G = 3: a block's fourth head slot
// idle).
func TestAttentionQ8(t *testing.T) {
	b := testBackend(t)
	rng := newRNG(t)
	defer withBLASMin(b, 0)()
	defer withMMVQ(b, true)()
	defer func(q8, split bool) { b.att.q8On, b.att.splitOn = q8, split }(b.att.q8On, b.att.splitOn)
	defer withAttGroup(b, b.att.groupMin)()
	for _, tc := range []struct {
		hd    int
		ctx   int
		split bool
		typ   ggml.Type
	}{{64, 37, false, ggml.F16}, {128, 2049, true, ggml.Q8_0}, {96, 700, true, ggml.F32}} {
		p := compute.AttnParams{NHead: 6, NKVHead: 2, HeadDim: tc.hd, HeadDimV: tc.hd, Causal: true, Scale: 0.1}
		spec := [][2]int{{1, tc.ctx}, {1, max(1, tc.ctx-9)}, {1, 5}}
		a := newAttnSetup(t, b, rng, p, tc.typ, 16, spec)
		k, m := p.NHead*p.HeadDimV, 45
		w := weightPair(t, b, "wo", ggml.Q8_0, randomWeight(t, rng, ggml.Q8_0, m, k), m, k)
		for _, mode := range attModes {
			b.att.groupMin, b.att.groupPF = mode.groupMin, mode.pf
			what := fmt.Sprintf("hd %d ctx %d %s split=%v %s", tc.hd, tc.ctx, tc.typ, tc.split, mode.name)
			b.att.splitOn = tc.split
			if s := a.checkGrouped(t, b, what).splits; tc.split != (s > 1) {
				t.Fatalf("%s: %d splits", what, s)
			}
			var got [2][]float32
			for i, on := range []bool{true, false} {
				b.att.q8On = on
				out := poisonedPair(t, b, "att", a.n, k)
				dst := poisonedPair(t, b, "o", a.n, m)
				must(t, what, b.MatMul(dst.g, out.g, w.g)) // the 8-bit path wanted, scratch grown
				must(t, what, b.Attention(out.g, a.q.g, a.gpool, a.pos, a.seqs, a.p))
				seq := b.opSeq
				emitted := b.q8.seq == seq && b.q8.src == out.g.Dev.(*devBuf).ptr
				if emitted != on {
					t.Errorf("%s, q8 on=%v: attention left q8 blocks %v", what, on, emitted)
				}
				must(t, what, b.MatMul(dst.g, out.g, w.g))
				must(t, what, compute.NewReference().Attention(out.r, a.q.r, a.rpool, a.pos, a.seqs, a.p))
				check(t, b, what+" attention", out, f32Tol)
				// The reference product over the GPU's attention output, so that
				// only the product's rounding is compared.
				out.r.F32 = read(t, b, out.g)
				q8Ref(t, dst.r, out.r, w.r)
				check(t, b, what+" product", dst, q8Tol)
				got[i] = read(t, b, dst.g)
			}
			for j := range got[0] {
				if math.Float32bits(got[0][j]) != math.Float32bits(got[1][j]) {
					t.Fatalf("%s: product element %d is %v with the attention's q8 blocks, %v with a quantize launch", what, j, got[0][j], got[1][j])
				}
			}
		}
	}
}

// TestAttentionGQA compares decode attention with the reference for query
// heads sharing KV heads (G = 2, 3, 4, 6, 8, 16 query heads a KV head, MQA
// among them; pool rows of whole Q8_0 blocks), with the grouped kernel
// forced on and off: odd row counts
// (plus two rows of no sequence), split and unsplit, F32, F16 and Q8_0
// pools, every head-dim path (64 and 128: a lane's vector; others: the
// generic path, head_dim_v up to 128), window and softcap, outputs
// poisoned. Under -test.short each case runs one pool type (in turn).
func TestAttentionGQA(t *testing.T) {
	b := testBackend(t)
	defer func(on bool) { b.att.splitOn = on }(b.att.splitOn)
	defer withAttGroup(b, b.att.groupMin)()
	rng := newRNG(t)
	types := []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0}
	for ci, tc := range []struct {
		name string
		p    compute.AttnParams
		bs   int
		seqs [][2]int // query rows, context length
	}{
		{"g2 hd64", compute.AttnParams{NHead: 4, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true}, 16, decodeRows(5, 97)},
		{"g8 hd64 tinyllama", compute.AttnParams{NHead: 32, NKVHead: 4, HeadDim: 64, HeadDimV: 64, Causal: true}, 16, decodeRows(7, 83)},
		{"g4 hd128 softcap", compute.AttnParams{NHead: 8, NKVHead: 2, HeadDim: 128, HeadDimV: 128, Causal: true, Softcap: 30}, 16, decodeRows(3, 211)},
		{"g8 hd128 window", compute.AttnParams{NHead: 16, NKVHead: 2, HeadDim: 128, HeadDimV: 128, Causal: true, Window: 40}, 8, decodeRows(5, 131)},
		{"mqa g6 hd64 window softcap", compute.AttnParams{NHead: 6, NKVHead: 1, HeadDim: 64, HeadDimV: 64, Causal: true, Window: 9, Softcap: 20}, 16, decodeRows(3, 173)},
		{"g16 hd40", compute.AttnParams{NHead: 64, NKVHead: 4, HeadDim: 40, HeadDimV: 40, Causal: true}, 5, decodeRows(3, 150)},
		{"g3 hd96 hdv64", compute.AttnParams{NHead: 6, NKVHead: 2, HeadDim: 96, HeadDimV: 64, Causal: true, Softcap: 30}, 16, decodeRows(5, 120)},
		{"g2 non-causal hd32 hdv48", compute.AttnParams{NHead: 4, NKVHead: 2, HeadDim: 32, HeadDimV: 48}, 4, [][2]int{{1, 13}, {1, 600}, {3, 40}}},
		{"g4 hd80 hdv128 prompt rows", compute.AttnParams{NHead: 8, NKVHead: 2, HeadDim: 80, HeadDimV: 128, Causal: true}, 16, [][2]int{{4, 30}, {1, 700}, {9, 9}}},
	} {
		p := tc.p
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		typs := types
		if testing.Short() {
			typs = types[ci%len(types) : ci%len(types)+1]
		}
		for _, typ := range typs {
			a := newAttnSetup(t, b, rng, p, typ, tc.bs, tc.seqs)
			// The grouped kernel's outputs by split setting: loading a
			// group ahead changes no arithmetic, so with and without it
			// the bits are the same.
			grouped := map[bool][]float32{}
			for _, mode := range attModes {
				b.att.groupMin, b.att.groupPF = mode.groupMin, mode.pf
				for _, on := range []bool{false, true} {
					b.att.splitOn = on
					what := fmt.Sprintf("%s/%s/%s/split=%v", tc.name, typ, mode.name, on)
					pl := a.checkGrouped(t, b, what)
					// Every case's grouped grid is small enough to split.
					if on && pl.grouped && attKeyRoom(a.seqs, tc.bs) >= attSplitMinRoom && pl.splits < 2 {
						t.Errorf("%s: %d rows, %d keys of room: no split", what, a.n, attKeyRoom(a.seqs, tc.bs))
					}
					got := a.run(t, b, fmt.Sprintf("%s (%d split(s), %d warps)", what, pl.splits, pl.warps))
					if mode.groupMin == 0 {
						continue
					}
					if prev, ok := grouped[on]; !ok {
						grouped[on] = got
					} else if i := firstBitDiff(prev, got); i >= 0 {
						t.Errorf("%s: output %d is %v, %v with the other grouped mode: not bit-identical", what, i, got[i], prev[i])
					}
				}
			}
		}
	}
}

// firstBitDiff is the first index where a and b differ in bits, or -1.
func firstBitDiff(a, b []float32) int {
	for i := range a {
		if i >= len(b) || math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	if len(b) > len(a) {
		return len(a)
	}
	return -1
}

// TestKVWriteAttentionGrouped runs TestKVWriteAttention (gpu_test.go) with
// the grouped decode kernel taking every call whose query heads share KV
// heads (its decode, GQA/MQA, 70-sequence and mixed prompt-and-decode
// cases), with and without its group-ahead loads.
func TestKVWriteAttentionGrouped(t *testing.T) {
	b := testBackend(t)
	defer withAttGroup(b, 1)()
	for _, pf := range []bool{true, false} {
		b.att.groupPF = pf
		t.Run(fmt.Sprintf("prefetch=%v", pf), TestKVWriteAttention)
	}
}

// TestAttDecPlan checks the decode launch plan without a GPU: the grouped
// kernel for GQA calls of groupMin rows or more (heads a block: the
// smallest size holding G, several blocks a KV head past 8), the per-head
// kernel for MHA, few rows, head_dim_v past the generic path, or the switch
// off; the split counting the grouped grid's blocks; warps within the
// grouped launch bound.
func TestAttDecPlan(t *testing.T) {
	b := &Backend{core: &core{sms: 132, warp: 32, attMaxWarps: attMaxWarps,
		att: attState{splitOn: true, perSM: attSplitBlocksPerSM, part: 1, groupMin: attGroupMinRows}}}
	tiny := compute.AttnParams{NHead: 32, NKVHead: 4, HeadDim: 64, HeadDimV: 64, Causal: true}
	b7 := compute.AttnParams{NHead: 32, NKVHead: 32, HeadDim: 128, HeadDimV: 128, Causal: true}
	g3 := compute.AttnParams{NHead: 6, NKVHead: 2, HeadDim: 96, HeadDimV: 64}
	g16 := compute.AttnParams{NHead: 16, NKVHead: 1, HeadDim: 128, HeadDimV: 128}
	wide := compute.AttnParams{NHead: 8, NKVHead: 2, HeadDim: 256, HeadDimV: 256}
	for _, tc := range []struct {
		name     string
		n        int
		p        compute.AttnParams
		keys     int
		slots    int // pool rows (0: 1 << 20)
		groupMin int
		grouped  bool
		gm       int
		grid     cuda.Dim3
		warps    int
	}{
		{"tiny 64 rows", 64, tiny, 256, 0, attGroupMinRows, true, 8, cuda.Dim3{X: 64, Y: 4, Z: 1}, 8},
		{"tiny 64 rows off", 64, tiny, 256, 0, 0, false, 0, cuda.Dim3{X: 64, Y: 32, Z: 1}, 4},
		{"tiny below groupMin", 7, tiny, 256, 0, 8, false, 0, cuda.Dim3{X: 7, Y: 32, Z: 1}, 16},
		{"tiny at groupMin", 8, tiny, 256, 0, 8, true, 8, cuda.Dim3{X: 8, Y: 4, Z: 1}, 8},
		{"tiny 16 rows long context", 16, tiny, 2048, 0, attGroupMinRows, true, 8, cuda.Dim3{X: 16, Y: 4, Z: 2}, 8},
		{"7b 64 rows", 64, b7, 256, 0, attGroupMinRows, false, 0, cuda.Dim3{X: 64, Y: 32, Z: 1}, 4},
		{"g3 forced", 3, g3, 256, 0, 1, true, 4, cuda.Dim3{X: 3, Y: 2, Z: 1}, 8},
		{"g16 two blocks a kv head", 20, g16, 256, 0, 1, true, 8, cuda.Dim3{X: 20, Y: 2, Z: 1}, 8},
		{"hdv 256 per-head", 64, wide, 256, 0, 1, false, 0, cuda.Dim3{X: 64, Y: 8, Z: 1}, 8},
		{"tiny 64 rows, pool of 2^31 slots", 64, tiny, 256, attGroupMaxSlots + 1, attGroupMinRows, false, 0, cuda.Dim3{X: 64, Y: 32, Z: 1}, 4},
		{"tiny 64 rows, pool of 2^31-1 slots", 64, tiny, 256, attGroupMaxSlots, attGroupMinRows, true, 8, cuda.Dim3{X: 64, Y: 4, Z: 1}, 8},
	} {
		b.att.groupMin = tc.groupMin
		slots := tc.slots
		if slots == 0 {
			slots = 1 << 20
		}
		pl := b.attDec("f16", tc.n, slots, tc.p, tc.keys, false)
		if pl.grouped != tc.grouped || pl.gm != tc.gm || pl.grid != tc.grid || pl.warps != tc.warps {
			t.Errorf("%s: grouped %v gm %d grid %v warps %d, want %v %d %v %d", tc.name, pl.grouped, pl.gm, pl.grid, pl.warps,
				tc.grouped, tc.gm, tc.grid, tc.warps)
		}
		if pl.grouped && (pl.warps*b.warp > attGroupThreads || pl.smem > attGroupSmem) {
			t.Errorf("%s: %d warps, %d bytes of shared memory: past the grouped kernel's bounds", tc.name, pl.warps, pl.smem)
		}
		if recs := tc.n * tc.p.NHead * int(pl.grid.Z); pl.grid.Z > 1 && recs > attPartials {
			t.Errorf("%s: %d partial records, scratch holds %d", tc.name, recs, attPartials)
		}
	}
}

// benchAttentionReplay captures one Attention call per pool (the layers of
// a step) into a graph and times its replays, reporting µs per call and
// the GB/s of bytesPerCall, the K/V bytes one call reads.
func benchAttentionReplay(bm *testing.B, b *Backend, pools []compute.KVPool, out, q *compute.Tensor,
	pos []int32, seqs []compute.SeqAttn, p compute.AttnParams, bytesPerCall int) {
	bm.Helper()
	if err := b.sync(); err != nil {
		bm.Fatal(err)
	}
	g, err := b.capture(func() error {
		for _, pool := range pools {
			if err := b.Attention(out, q, pool, pos, seqs, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		bm.Fatal(err)
	}
	defer b.destroy(g)
	timeGPU(bm, b, func() error { return b.replay(g) })
	calls := float64(bm.N * len(pools))
	sec := bm.Elapsed().Seconds()
	bm.ReportMetric(sec/calls*1e6, "µs/call")
	bm.ReportMetric(float64(bytesPerCall)*calls/sec/1e9, "GB/s")
}
