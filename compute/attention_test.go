package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// Tolerance for attention: the op and the naive test implementation both
// work in float64 from the same float32 inputs; only summation order and the
// float32 output rounding differ.
const attnTol = 1e-6

// seqData is one sequence's logical keys and values (position j is row j)
// and its new query rows.
type seqData struct {
	k, v   [][]float32 // [CtxLen][NKVHead*HeadDim], [CtxLen][NKVHead*HeadDimV]
	qStart int
	pos    []int32 // positions of the query rows
}

// naiveAttention is the textbook computation for one sequence: it builds the
// full [QLen, CtxLen] mask and score matrices and reads K and V from their
// logical (unpaged) rows.
func naiveAttention(q []float32, qCols int, sd seqData, p AttnParams) [][]float64 {
	qLen, ctx := len(sd.pos), len(sd.k)
	mask := make([][]float64, qLen)
	for i := range mask {
		mask[i] = make([]float64, ctx)
		for j := range ctx {
			qp := int(sd.pos[i])
			if (p.Causal && j > qp) || (p.Window > 0 && qp-j >= p.Window) {
				mask[i][j] = math.Inf(-1)
			}
		}
	}
	out := make([][]float64, qLen)
	group := p.NHead / p.NKVHead
	for i := range qLen {
		out[i] = make([]float64, p.NHead*p.HeadDimV)
		row := q[(sd.qStart+i)*qCols:]
		for h := range p.NHead {
			g := h / group
			scores := make([]float64, ctx)
			for j := range ctx {
				var dot float64
				for d := range p.HeadDim {
					dot += float64(row[h*p.HeadDim+d]) * float64(sd.k[j][g*p.HeadDim+d])
				}
				s := float64(p.Scale) * dot
				if p.Softcap > 0 {
					s = float64(p.Softcap) * math.Tanh(s/float64(p.Softcap))
				}
				scores[j] = s + mask[i][j]
			}
			m := math.Inf(-1)
			for _, s := range scores {
				m = max(m, s)
			}
			if math.IsInf(m, -1) {
				continue // fully masked: zeros
			}
			var sum float64
			for j := range scores {
				scores[j] = math.Exp(scores[j] - m)
				sum += scores[j]
			}
			for j := range ctx {
				for d := range p.HeadDimV {
					out[i][h*p.HeadDimV+d] += scores[j] / sum * float64(sd.v[j][g*p.HeadDimV+d])
				}
			}
		}
	}
	return out
}

// attnCase is a batch of sequences ready to run through Attention.
type attnCase struct {
	p    AttnParams
	n    int
	q    *Tensor
	pos  []int32
	data []seqData
}

// newAttnCase makes random queries and keys/values for sequences given as
// (new tokens, cached tokens before them); they are laid out one after
// another in the batch.
func newAttnCase(rng *rand.Rand, p AttnParams, seqs [][2]int) *attnCase {
	c := &attnCase{p: p}
	for _, s := range seqs {
		qLen, cached := s[0], s[1]
		sd := seqData{qStart: c.n}
		for j := range cached + qLen {
			sd.k = append(sd.k, randVec(rng, p.NKVHead*p.HeadDim, 1))
			sd.v = append(sd.v, randVec(rng, p.NKVHead*p.HeadDimV, 1))
			if j >= cached {
				sd.pos = append(sd.pos, int32(j))
			}
		}
		c.pos = append(c.pos, sd.pos...)
		c.n += qLen
		c.data = append(c.data, sd)
	}
	c.q = f32("q", randVec(rng, c.n*p.NHead*p.HeadDim, 1.5), c.n, p.NHead*p.HeadDim)
	return c
}

// pool writes every sequence's keys and values into a fresh pool of block
// size bs through KVWrite, with blocks handed out in a shuffled order (so
// block tables are non-contiguous and interleaved between sequences) and a
// few spare blocks. It returns the pool and the per-sequence SeqAttn.
func (c *attnCase) pool(t testing.TB, rng *rand.Rand, bs int) (KVPool, []SeqAttn) {
	t.Helper()
	return c.poolOf(t, rng, bs, ggml.F32)
}

// poolOf is pool with a pool of KV type typ.
func (c *attnCase) poolOf(t testing.TB, rng *rand.Rand, bs int, typ ggml.Type) (KVPool, []SeqAttn) {
	t.Helper()
	need := 0
	for _, sd := range c.data {
		need += (len(sd.k) + bs - 1) / bs
	}
	nBlocks := need + 3
	order := rng.Perm(nBlocks)
	r := NewReference()
	pk, err := r.NewTensor("pool.k", typ, nBlocks*bs, c.p.NKVHead*c.p.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := r.NewTensor("pool.v", typ, nBlocks*bs, c.p.NKVHead*c.p.HeadDimV)
	if err != nil {
		t.Fatal(err)
	}
	pool := KVPool{K: pk, V: pv, BlockSize: bs}
	var seqs []SeqAttn
	next := 0
	for _, sd := range c.data {
		ctx := len(sd.k)
		s := SeqAttn{QStart: sd.qStart, QLen: len(sd.pos), CtxLen: ctx}
		for range (ctx + bs - 1) / bs {
			s.Blocks = append(s.Blocks, int32(order[next]))
			next++
		}
		kRows := f32("k", nil, ctx, c.p.NKVHead*c.p.HeadDim)
		vRows := f32("v", nil, ctx, c.p.NKVHead*c.p.HeadDimV)
		slots := make([]int32, ctx)
		for j := range ctx {
			kRows.F32 = append(kRows.F32, sd.k[j]...)
			vRows.F32 = append(vRows.F32, sd.v[j]...)
			slots[j] = s.Blocks[j/bs]*int32(bs) + int32(j%bs)
		}
		if err := r.KVWrite(pool, kRows, vRows, slots); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	return pool, seqs
}

// run runs Attention on a NaN-poisoned output.
func (c *attnCase) run(t testing.TB, pool KVPool, seqs []SeqAttn) *Tensor {
	t.Helper()
	out := poisoned("out", c.n, c.p.NHead*c.p.HeadDimV)
	if err := NewReference().Attention(out, c.q, pool, c.pos, seqs, c.p); err != nil {
		t.Fatal(err)
	}
	return out
}

func (c *attnCase) want() []float64 {
	var w []float64
	for _, sd := range c.data {
		for _, row := range naiveAttention(c.q.F32, c.q.Cols(), sd, c.p) {
			w = append(w, row...)
		}
	}
	return w
}

func TestAttentionAgainstNaive(t *testing.T) {
	rng := newRNG(t)
	// Two sequences: 5 new tokens after 4 cached ones, and a fresh 3-token prompt.
	twoSeqs := [][2]int{{5, 4}, {3, 0}}
	for _, tc := range []struct {
		name string
		p    AttnParams
	}{
		{"MHA causal", AttnParams{NHead: 4, NKVHead: 4, HeadDim: 13, HeadDimV: 13, Causal: true}},
		{"GQA causal", AttnParams{NHead: 6, NKVHead: 2, HeadDim: 16, HeadDimV: 16, Causal: true}},
		{"MQA causal", AttnParams{NHead: 5, NKVHead: 1, HeadDim: 8, HeadDimV: 8, Causal: true}},
		{"GQA non-causal", AttnParams{NHead: 6, NKVHead: 2, HeadDim: 16, HeadDimV: 16}},
		{"MHA non-causal", AttnParams{NHead: 3, NKVHead: 3, HeadDim: 9, HeadDimV: 9}},
		{"sliding window 3", AttnParams{NHead: 6, NKVHead: 2, HeadDim: 16, HeadDimV: 16, Causal: true, Window: 3}},
		{"window 1 sees itself only", AttnParams{NHead: 2, NKVHead: 1, HeadDim: 8, HeadDimV: 8, Causal: true, Window: 1}},
		{"softcap", AttnParams{NHead: 4, NKVHead: 2, HeadDim: 32, HeadDimV: 32, Causal: true, Softcap: 1.5}},
		{"softcap and window", AttnParams{NHead: 4, NKVHead: 2, HeadDim: 32, HeadDimV: 32, Causal: true, Softcap: 2, Window: 4}},
		{"value dim differs", AttnParams{NHead: 6, NKVHead: 3, HeadDim: 12, HeadDimV: 7, Causal: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
			c := newAttnCase(rng, p, twoSeqs)
			want := c.want()
			for _, bs := range []int{4, 16} {
				pool, seqs := c.pool(t, rng, bs)
				got := c.run(t, pool, seqs)
				checkClose(t, fmt.Sprintf("%s bs=%d", tc.name, bs), got.F32, want, attnTol)
			}
		})
	}
}

func TestAttentionBlockSizeIndependent(t *testing.T) {
	// The same two sequences (different context lengths) laid out with block
	// size 16 and block size 1, each with a shuffled block table, give
	// bit-identical outputs; so does listing the sequences in another order.
	rng := newRNG(t)
	p := AttnParams{NHead: 6, NKVHead: 2, HeadDim: 16, HeadDimV: 16, Scale: 0.25, Causal: true}
	c := newAttnCase(rng, p, [][2]int{{4, 19}, {6, 2}})
	pool16, seqs16 := c.pool(t, rng, 16)
	pool1, seqs1 := c.pool(t, rng, 1)
	a := c.run(t, pool16, seqs16)
	b := c.run(t, pool1, seqs1)
	rev := c.run(t, pool1, []SeqAttn{seqs1[1], seqs1[0]})
	for i := range a.F32 {
		if a.F32[i] != b.F32[i] || a.F32[i] != rev.F32[i] {
			t.Fatalf("out[%d]: block size 16 gives %v, block size 1 gives %v, reversed sequences %v", i, a.F32[i], b.F32[i], rev.F32[i])
		}
	}
	checkClose(t, "bs 16", a.F32, c.want(), attnTol)
}

func TestAttentionDecodeMatchesPrefill(t *testing.T) {
	// Decoding the last token (QLen 1 at position CtxLen-1) equals the last
	// row of the prefill over the whole context.
	rng := newRNG(t)
	for _, p := range []AttnParams{
		{NHead: 6, NKVHead: 2, HeadDim: 16, HeadDimV: 16, Scale: 0.25, Causal: true},
		{NHead: 4, NKVHead: 1, HeadDim: 8, HeadDimV: 8, Scale: 0.3, Causal: true, Window: 5, Softcap: 3},
	} {
		const ctx = 11
		c := newAttnCase(rng, p, [][2]int{{ctx, 0}})
		pool, seqs := c.pool(t, rng, 4)
		prefill := c.run(t, pool, seqs)

		cols := p.NHead * p.HeadDim
		dec := &attnCase{p: p, n: 1, pos: []int32{ctx - 1},
			q: f32("q", append([]float32(nil), c.q.F32[(ctx-1)*cols:]...), 1, cols)}
		s := seqs[0]
		s.QStart, s.QLen = 0, 1
		got := dec.run(t, pool, []SeqAttn{s})
		oc := p.NHead * p.HeadDimV
		last := prefill.F32[(ctx-1)*oc:]
		for i := range got.F32 {
			if got.F32[i] != last[i] {
				t.Fatalf("%+v: decode out[%d] = %v, prefill's last row has %v", p, i, got.F32[i], last[i])
			}
		}
	}
}

func TestAttentionZeroRows(t *testing.T) {
	// Rows no sequence covers, and rows whose every key is masked, are zeros.
	rng := newRNG(t)
	p := AttnParams{NHead: 2, NKVHead: 1, HeadDim: 8, HeadDimV: 8, Scale: 0.3, Window: 2}
	c := newAttnCase(rng, p, [][2]int{{2, 3}})
	pool, seqs := c.pool(t, rng, 4)
	// Three batch rows: row 0 uncovered, rows 1-2 the sequence, row 2 at
	// position 12 (non-causal, window 2): keys 0..4 are all too far back.
	q := f32("q", append(randVec(rng, 16, 1), c.q.F32...), 3, 16)
	seqs[0].QStart = 1
	out := poisoned("out", 3, 16)
	pos := []int32{0, 4, 12}
	if err := NewReference().Attention(out, q, pool, pos, seqs, p); err != nil {
		t.Fatal(err)
	}
	for i, v := range out.F32 {
		row := i / 16
		if (row == 0 || row == 2) && v != 0 {
			t.Fatalf("out[%d] (row %d) = %v, want 0", i, row, v)
		}
		if row == 1 && (v == 0 || math.IsNaN(float64(v))) {
			t.Fatalf("out[%d] (row 1, visible keys) = %v", i, v)
		}
	}
}

func TestKVWrite(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const slotsN, kc, vc = 12, 6, 5
	pool := KVPool{K: f32("k", make([]float32, slotsN*kc), slotsN, kc), V: f32("v", make([]float32, slotsN*vc), slotsN, vc), BlockSize: 4}
	k := f32("knew", randVec(rng, 3*kc, 1), 3, kc)
	v := f32("vnew", randVec(rng, 3*vc, 1), 3, vc)
	slots := []int32{9, 2, 11}
	if err := r.KVWrite(pool, k, v, slots); err != nil {
		t.Fatal(err)
	}
	for s := range slotsN {
		i := -1
		for j, x := range slots {
			if int(x) == s {
				i = j
			}
		}
		for d := range kc {
			want := float32(0)
			if i >= 0 {
				want = k.F32[i*kc+d]
			}
			if pool.K.F32[s*kc+d] != want {
				t.Fatalf("K slot %d col %d = %v, want %v", s, d, pool.K.F32[s*kc+d], want)
			}
		}
		for d := range vc {
			want := float32(0)
			if i >= 0 {
				want = v.F32[i*vc+d]
			}
			if pool.V.F32[s*vc+d] != want {
				t.Fatalf("V slot %d col %d = %v, want %v", s, d, pool.V.F32[s*vc+d], want)
			}
		}
	}

	wantErr(t, r.KVWrite(pool, k, v, []int32{9, 12, 0}), "kvwrite", "slot 12", "12 slots")
	wantErr(t, r.KVWrite(pool, k, v, []int32{9, -1, 0}), "slot -1")
	wantErr(t, r.KVWrite(pool, k, v, []int32{3, 4, 3}), "slot 3 written twice")
	// Past 64 rows the check sorts a copy instead of comparing pairs.
	for _, n := range []int{64, 65, 70} {
		big := make([]int32, n)
		for i := range big {
			big[i] = int32(i)
		}
		big[n-1] = 5
		z := func(name string, rows, cols int) *Tensor { return f32(name, make([]float32, rows*cols), rows, cols) }
		wantErr(t, CheckKVWrite(KVPool{K: z("kb", 80, kc), V: z("vb", 80, vc), BlockSize: 4},
			z("k", n, kc), z("v", n, vc), big), "slot 5 written twice")
	}
	wantErr(t, r.KVWrite(pool, k, v, []int32{1, 2}), "2 slots", "knew F32[3 6]")
	wantErr(t, r.KVWrite(pool, f32("k5", make([]float32, 15), 3, 5), v, slots), "k5 F32[3 5]", "want [3 6]")
	wantErr(t, r.KVWrite(pool, k, f32("v6", make([]float32, 18), 3, 6), slots), "v6 F32[3 6]", "want [3 5]")
	bad := pool
	bad.BlockSize = 5
	wantErr(t, r.KVWrite(bad, k, v, slots), "5-slot blocks")
	bad.BlockSize = 0
	wantErr(t, r.KVWrite(bad, k, v, slots), "0-slot blocks")
	bad = pool
	bad.V = f32("v", make([]float32, 8*vc), 8, vc)
	wantErr(t, r.KVWrite(bad, k, v, slots), "equal row counts")
}

func TestAttentionErrors(t *testing.T) {
	rng := newRNG(t)
	p := AttnParams{NHead: 6, NKVHead: 2, HeadDim: 8, HeadDimV: 8, Scale: 0.35, Causal: true}
	c := newAttnCase(rng, p, [][2]int{{3, 2}, {2, 0}})
	pool, seqs := c.pool(t, rng, 4)
	r := NewReference()
	nBlocks := pool.K.Shape[0] / 4
	okOut := func() *Tensor { return poisoned("out", c.n, 48) }
	if err := r.Attention(okOut(), c.q, pool, c.pos, seqs, p); err != nil {
		t.Fatal(err)
	}
	with := func(f func(s []SeqAttn)) []SeqAttn {
		s := make([]SeqAttn, len(seqs))
		for i := range seqs {
			s[i] = seqs[i]
			s[i].Blocks = append([]int32(nil), seqs[i].Blocks...)
		}
		f(s)
		return s
	}
	params := func(f func(p *AttnParams)) AttnParams { q := p; f(&q); return q }
	for _, tc := range []struct {
		name  string
		out   *Tensor
		q     *Tensor
		pool  KVPool
		pos   []int32
		seqs  []SeqAttn
		p     AttnParams
		frags []string
	}{
		{"q columns", okOut(), f32("q", make([]float32, c.n*40), c.n, 40), pool, c.pos, seqs, p, []string{"q F32[5 40]", "want [n 48]"}},
		{"out columns", poisoned("out", c.n, 47), c.q, pool, c.pos, seqs, p, []string{"out F32[5 47]"}},
		{"out rows", poisoned("out", c.n+1, 48), c.q, pool, c.pos, seqs, p, []string{"out F32[6 48]"}},
		{"positions", okOut(), c.q, pool, c.pos[:4], seqs, p, []string{"4 positions"}},
		{"heads", okOut(), c.q, pool, c.pos, seqs, params(func(p *AttnParams) { p.NKVHead = 4 }), []string{"NHead 6", "NKVHead 4"}},
		{"zero kv heads", okOut(), c.q, pool, c.pos, seqs, params(func(p *AttnParams) { p.NKVHead = 0 }), []string{"NKVHead 0"}},
		{"head dim", okOut(), c.q, pool, c.pos, seqs, params(func(p *AttnParams) { p.HeadDimV = 0 }), []string{"HeadDimV 0"}},
		{"window", okOut(), c.q, pool, c.pos, seqs, params(func(p *AttnParams) { p.Window = -1 }), []string{"Window -1"}},
		{"softcap", okOut(), c.q, pool, c.pos, seqs, params(func(p *AttnParams) { p.Softcap = -2 }), []string{"Softcap -2"}},
		{"pool K columns", okOut(), c.q, KVPool{K: f32("pk", make([]float32, 8*12), 8, 12), V: pool.V, BlockSize: 4}, c.pos, seqs, p, []string{"equal row counts"}},
		{"pool K width", okOut(), c.q, KVPool{K: f32("pk", make([]float32, pool.K.Shape[0]*12), pool.K.Shape[0], 12), V: pool.V, BlockSize: 4}, c.pos, seqs, p, []string{"pk F32", "NKVHead 2 × HeadDim 8"}},
		{"block id too large", okOut(), c.q, pool, c.pos, with(func(s []SeqAttn) { s[1].Blocks[0] = int32(nBlocks) }), p, []string{fmt.Sprintf("id %d outside the pool's %d blocks", nBlocks, nBlocks)}},
		{"negative block id", okOut(), c.q, pool, c.pos, with(func(s []SeqAttn) { s[0].Blocks[1] = -1 }), p, []string{"id -1"}},
		{"context beyond blocks", okOut(), c.q, pool, c.pos, with(func(s []SeqAttn) { s[0].CtxLen = 9 }), p, []string{"CtxLen 9", "2 blocks of 4"}},
		{"query rows outside batch", okOut(), c.q, pool, c.pos, with(func(s []SeqAttn) { s[1].QLen = 3 }), p, []string{"[3, 6) outside the batch's 5 rows"}},
		{"negative QStart", okOut(), c.q, pool, c.pos, with(func(s []SeqAttn) { s[0].QStart = -1 }), p, []string{"[-1, 2)"}},
		{"overlapping sequences", okOut(), c.q, pool, c.pos, with(func(s []SeqAttn) { s[1].QStart = 2 }), p, []string{"row 2 belongs to sequences 0 and 1"}},
		{"causal query beyond context", okOut(), c.q, pool, c.pos, with(func(s []SeqAttn) { s[0].CtxLen = 4 }), p, []string{"position 4 but CtxLen 4"}},
		{"negative position", okOut(), c.q, pool, []int32{2, 3, 4, 0, -1}, seqs, p, []string{"negative position -1"}},
		{"out is q", c.q, c.q, pool, c.pos, seqs, params(func(p *AttnParams) { p.HeadDimV = 8 }), []string{"share storage"}},
		{"mixed pool types", okOut(), c.q, KVPool{K: &Tensor{Name: "pk16", Type: ggml.F16, Shape: pool.K.Shape, Raw: make([]byte, 2*len(pool.K.F32))}, V: pool.V, BlockSize: 4}, c.pos, seqs, p, []string{"pk16 F16", "same type"}},
		{"Q4_0 pool", okOut(), c.q, KVPool{K: &Tensor{Name: "pk4", Type: ggml.Q4_0, Shape: []int{pool.K.Shape[0], 32}, Raw: make([]byte, 18*pool.K.Shape[0])}, V: pool.V, BlockSize: 4}, c.pos, seqs, p, []string{"pk4 Q4_0", "F32, F16 or Q8_0"}},
		{"Q8_0 pool of 16-wide rows", okOut(), c.q, KVPool{K: &Tensor{Name: "pk8", Type: ggml.Q8_0, Shape: []int{pool.K.Shape[0], 16}}, V: pool.V, BlockSize: 4}, c.pos, seqs, p, []string{"pk8 Q8_0", "multiple of 32 wide, not 16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Attention(tc.out, tc.q, tc.pool, tc.pos, tc.seqs, tc.p)
			wantErr(t, err, append([]string{"attention"}, tc.frags...)...)
		})
	}
}

func BenchmarkAttention(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, bc := range []struct {
		name        string
		qLen, cache int
	}{{"prefill64", 64, 0}, {"decode512", 1, 511}} {
		b.Run(bc.name, func(b *testing.B) {
			p := AttnParams{NHead: 8, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Scale: 0.125, Causal: true}
			c := newAttnCase(rng, p, [][2]int{{bc.qLen, bc.cache}})
			pool, seqs := c.pool(b, rng, 16)
			out := poisoned("out", c.n, p.NHead*p.HeadDimV)
			r := NewReference()
			for b.Loop() {
				if err := r.Attention(out, c.q, pool, c.pos, seqs, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// dequantRows is what a pool of type typ holds for F32 rows: each row
// encoded (EncodeKVRow) and decoded (ggml.Dequantize).
func dequantRows(t testing.TB, typ ggml.Type, rows [][]float32) [][]float32 {
	t.Helper()
	out := make([][]float32, len(rows))
	for i, r := range rows {
		rb, err := typ.RowSize(int64(len(r)))
		if err != nil {
			t.Fatal(err)
		}
		enc := make([]byte, rb)
		if err := EncodeKVRow(typ, enc, r); err != nil {
			t.Fatal(err)
		}
		out[i] = make([]float32, len(r))
		if err := ggml.Dequantize(typ, enc, out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// maxAbs is the largest |x| over rows.
func maxAbs(rows [][]float32) float64 {
	var m float64
	for _, r := range rows {
		for _, x := range r {
			m = max(m, math.Abs(float64(x)))
		}
	}
	return m
}

func TestKVWriteTypes(t *testing.T) {
	// KVWrite stores EncodeKVRow's bytes (F16 rounding, ggml's Q8_0
	// quantizer) and KVRow reads back exactly ggml.Dequantize's values,
	// whole rows and ranges that start and end inside a Q8_0 block.
	rng := newRNG(t)
	r := NewReference()
	for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
		const slotsN, kc, vc = 12, 96, 64
		pk, _ := r.NewTensor("k", typ, slotsN, kc)
		pv, _ := r.NewTensor("v", typ, slotsN, vc)
		pool := KVPool{K: pk, V: pv, BlockSize: 4}
		k := f32("knew", randVec(rng, 3*kc, 2), 3, kc)
		v := f32("vnew", randVec(rng, 3*vc, 2), 3, vc)
		k.F32[5], k.F32[40] = 0, 1e-9 // a zero and a value far below the block's scale
		slots := []int32{9, 2, 11}
		if err := r.KVWrite(pool, k, v, slots); err != nil {
			t.Fatal(err)
		}
		for i, s := range slots {
			for _, x := range []struct {
				pool, rows *Tensor
			}{{pk, k}, {pv, v}} {
				c := x.rows.Cols()
				src := x.rows.F32[i*c : (i+1)*c]
				want := dequantRows(t, typ, [][]float32{src})[0]
				if typ != ggml.F32 {
					rb, _ := typ.RowSize(int64(c))
					enc := make([]byte, rb)
					if err := EncodeKVRow(typ, enc, src); err != nil {
						t.Fatal(err)
					}
					q, _ := ggml.Quantize(typ, src)
					if got := x.pool.Raw[int(s)*int(rb) : (int(s)+1)*int(rb)]; string(got) != string(enc) || string(enc) != string(q) {
						t.Fatalf("%s: slot %d bytes differ from ggml.Quantize", typ, s)
					}
				}
				for _, rg := range [][2]int{{0, c}, {7, 41}, {32, 64}, {c - 3, c}} {
					got := make([]float32, rg[1]-rg[0])
					KVRow(x.pool, int(s), rg[0], got)
					for j, g := range got {
						if g != want[rg[0]+j] {
							t.Fatalf("%s: slot %d col %d reads %v, want %v (ggml round trip of %v)", typ, s, rg[0]+j, g, want[rg[0]+j], src[rg[0]+j])
						}
					}
				}
			}
		}
	}
	wantErr(t, EncodeKVRow(ggml.Q4_0, make([]byte, 18), make([]float32, 32)), "Q4_0", "not a KV pool type")
}

// kvTypeTol are the bounds of attention over an F16 or Q8_0 pool against
// the same attention over the F32 rows that were written, |Δ| ≤ tol·max|v|:
// the pool's rounding (F16: 2⁻¹¹ relative per element; Q8_0: half a step
// of amax/127 per 32-element block) moves the scores and the V rows.
var kvTypeTol = map[ggml.Type]float64{ggml.F32: attnTol, ggml.F16: 2e-3, ggml.Q8_0: 2e-2}

func TestAttentionKVTypes(t *testing.T) {
	// Over an F16 or Q8_0 pool, Attention is the textbook computation on the
	// dequantized rows (attnTol: the pool is read exactly), and within
	// kvTypeTol of the computation on the F32 rows that were written.
	// Sequences start mid-block (cached tokens not a multiple of the block
	// size) and head dims are not multiples of 32 (a head's Q8_0 row runs
	// across block boundaries).
	rng := newRNG(t)
	seqs := [][2]int{{5, 11}, {3, 0}, {1, 30}}
	for _, tc := range []struct {
		name string
		p    AttnParams
	}{
		{"GQA", AttnParams{NHead: 8, NKVHead: 2, HeadDim: 64, HeadDimV: 64, Causal: true}},
		{"MHA heads across Q8_0 blocks", AttnParams{NHead: 4, NKVHead: 4, HeadDim: 40, HeadDimV: 24, Causal: true}},
		{"MQA window softcap", AttnParams{NHead: 6, NKVHead: 1, HeadDim: 32, HeadDimV: 32, Causal: true, Window: 7, Softcap: 2}},
		{"non-causal", AttnParams{NHead: 4, NKVHead: 2, HeadDim: 48, HeadDimV: 80}},
	} {
		for _, typ := range []ggml.Type{ggml.F16, ggml.Q8_0} {
			t.Run(fmt.Sprintf("%s/%s", tc.name, typ), func(t *testing.T) {
				p := tc.p
				p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
				c := newAttnCase(rng, p, seqs)
				exact := c.want()
				deq := *c
				deq.data = nil
				vmax := 0.0
				for _, sd := range c.data {
					sd.k, sd.v = dequantRows(t, typ, sd.k), dequantRows(t, typ, sd.v)
					deq.data = append(deq.data, sd)
					vmax = max(vmax, maxAbs(sd.v))
				}
				want := deq.want()
				for _, bs := range []int{4, 16} {
					pool, ss := c.poolOf(t, rng, bs, typ)
					got := c.run(t, pool, ss)
					checkClose(t, fmt.Sprintf("bs=%d vs dequantized rows", bs), got.F32, want, attnTol)
					var worst float64
					for i, w := range exact {
						worst = max(worst, math.Abs(float64(got.F32[i])-w))
					}
					if worst > kvTypeTol[typ]*vmax {
						t.Errorf("bs=%d: max |Δ| %.3g from attention over the F32 rows, above %g·max|v| = %.3g", bs, worst, kvTypeTol[typ], kvTypeTol[typ]*vmax)
					}
					t.Logf("bs=%d: max |Δ| from the F32 rows %.3g (%.2g·max|v|)", bs, worst, worst/vmax)
				}
			})
		}
	}
}
