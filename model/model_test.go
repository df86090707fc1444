package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
)

// tinyGGUF is a small synthetic model, editable before it is written.
type tinyGGUF struct {
	keys    map[string]any
	tensors map[string]tinyTensor
	order   []string
}

type tinyTensor struct {
	typ  ggml.Type
	dims []uint64 // GGUF order, ne0 first
	data []byte
}

// Sizes of the tiny llama: awkward on purpose (n_ff 12, vocab 37).
const (
	tinyEmbd  = 16
	tinyHead  = 4
	tinyKV    = 2
	tinyFF    = 12
	tinyLayer = 2
	tinyVocab = 37
	tinyCtx   = 24
)

func f32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// newTinyLlama makes a 2-layer llama with GQA and random F32 weights.
func newTinyLlama(rng *rand.Rand) *tinyGGUF {
	g := &tinyGGUF{keys: map[string]any{}, tensors: map[string]tinyTensor{}}
	g.keys["general.architecture"] = "llama"
	g.keys["llama.context_length"] = uint32(tinyCtx)
	g.keys["llama.embedding_length"] = uint32(tinyEmbd)
	g.keys["llama.block_count"] = uint32(tinyLayer)
	g.keys["llama.feed_forward_length"] = uint32(tinyFF)
	g.keys["llama.attention.head_count"] = uint32(tinyHead)
	g.keys["llama.attention.head_count_kv"] = uint32(tinyKV)
	g.keys["llama.attention.layer_norm_rms_epsilon"] = float32(1e-5)
	g.keys["llama.vocab_size"] = uint32(tinyVocab)

	hd := tinyEmbd / tinyHead
	mat := func(name string, in, out int) {
		x := make([]float32, in*out)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 0.3)
		}
		g.add(name, ggml.F32, []uint64{uint64(in), uint64(out)}, f32Bytes(x))
	}
	vec := func(name string, n int) {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(1 + rng.NormFloat64()*0.1)
		}
		g.add(name, ggml.F32, []uint64{uint64(n)}, f32Bytes(x))
	}
	mat("token_embd.weight", tinyEmbd, tinyVocab)
	for il := range tinyLayer {
		p := fmt.Sprintf("blk.%d.", il)
		vec(p+"attn_norm.weight", tinyEmbd)
		mat(p+"attn_q.weight", tinyEmbd, tinyHead*hd)
		mat(p+"attn_k.weight", tinyEmbd, tinyKV*hd)
		mat(p+"attn_v.weight", tinyEmbd, tinyKV*hd)
		mat(p+"attn_output.weight", tinyHead*hd, tinyEmbd)
		vec(p+"ffn_norm.weight", tinyEmbd)
		mat(p+"ffn_gate.weight", tinyEmbd, tinyFF)
		mat(p+"ffn_up.weight", tinyEmbd, tinyFF)
		mat(p+"ffn_down.weight", tinyFF, tinyEmbd)
	}
	vec("output_norm.weight", tinyEmbd)
	mat("output.weight", tinyEmbd, tinyVocab)
	return g
}

func (g *tinyGGUF) add(name string, typ ggml.Type, dims []uint64, data []byte) {
	if _, ok := g.tensors[name]; !ok {
		g.order = append(g.order, name)
	}
	g.tensors[name] = tinyTensor{typ, dims, data}
}

func (g *tinyGGUF) drop(name string) { delete(g.tensors, name) }

// open writes the model to a temporary file and opens it.
func (g *tinyGGUF) open(t *testing.T) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	for k, v := range g.keys {
		if err := w.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range g.order {
		tt, ok := g.tensors[name]
		if !ok {
			continue
		}
		if err := w.AddTensor(name, tt.typ, tt.dims, tt.data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func newRNG(t *testing.T) *rand.Rand {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func loadTiny(t *testing.T, g *tinyGGUF, b compute.Backend) *Model {
	t.Helper()
	m, err := Load(g.open(t), b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestLoadErrors(t *testing.T) {
	rng := newRNG(t)
	tests := []struct {
		name   string
		edit   func(g *tinyGGUF)
		substr []string // every one must appear in the error
	}{
		{"unknown arch", func(g *tinyGGUF) { g.keys["general.architecture"] = "mamba9" }, []string{"unknown architecture", `"mamba9"`}},
		{"no arch", func(g *tinyGGUF) { delete(g.keys, "general.architecture") }, []string{"general.architecture"}},
		{"missing key", func(g *tinyGGUF) { delete(g.keys, "llama.block_count") }, []string{"llama.block_count"}},
		{"missing eps", func(g *tinyGGUF) { delete(g.keys, "llama.attention.layer_norm_rms_epsilon") }, []string{"llama.attention.layer_norm_rms_epsilon"}},
		{"heads not a multiple", func(g *tinyGGUF) { g.keys["llama.attention.head_count_kv"] = uint32(3) }, []string{"llama.attention.head_count", "head_count_kv = 3"}},
		{"partial rotary on llama", func(g *tinyGGUF) { g.keys["llama.rope.dimension_count"] = uint32(2) }, []string{"llama.rope.dimension_count"}},
		{"unknown rope scaling", func(g *tinyGGUF) { g.keys["llama.rope.scaling.type"] = "longrope" }, []string{"llama.rope.scaling.type", "longrope"}},
		{"missing tensor", func(g *tinyGGUF) { g.drop("blk.1.attn_k.weight") }, []string{"tensor blk.1.attn_k.weight", "missing"}},
		{"missing output norm", func(g *tinyGGUF) { g.drop("output_norm.weight") }, []string{"tensor output_norm.weight", "missing"}},
		{"wrong shape", func(g *tinyGGUF) {
			tt := g.tensors["blk.0.attn_q.weight"]
			g.add("blk.0.attn_q.weight", ggml.F32, []uint64{tinyEmbd, tinyEmbd / 2}, tt.data[:len(tt.data)/2])
		}, []string{"tensor blk.0.attn_q.weight", "shape [16 8]", "[16 16]", "n_head=4"}},
		{"wrong output shape", func(g *tinyGGUF) {
			tt := g.tensors["output.weight"]
			g.add("output.weight", ggml.F32, []uint64{tinyVocab, tinyEmbd}, tt.data)
		}, []string{"tensor output.weight", "n_vocab=37"}},
		{"unsupported type", func(g *tinyGGUF) {
			g.add("blk.1.ffn_norm.weight", ggml.F64, []uint64{tinyEmbd}, make([]byte, 8*tinyEmbd))
		}, []string{"tensor blk.1.ffn_norm.weight", "F64", "not supported"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTinyLlama(rng)
			tc.edit(g)
			m, err := Load(g.open(t), compute.NewReference())
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded, want an error")
			}
			t.Log(err)
			for _, s := range tc.substr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestHParamsDefaults(t *testing.T) {
	g := newTinyLlama(newRNG(t))
	hp, err := ReadHParams(g.open(t))
	if err != nil {
		t.Fatal(err)
	}
	want := HParams{
		Arch: "llama", NVocab: tinyVocab, NCtxTrain: tinyCtx, NEmbd: tinyEmbd, NLayer: tinyLayer, NFF: tinyFF,
		NHead: tinyHead, NHeadKV: tinyKV, HeadDimK: 4, HeadDimV: 4, NormEps: 1e-5,
		NRot: 4, FreqBase: 10000, FreqBaseSWA: 10000, FreqScale: 1, FreqScaleSWA: 1, RopeScaling: "none",
		RopeOrigCtx: tinyCtx, YarnAttnFactor: 1, YarnBetaFast: 32, YarnBetaSlow: 1, AttnScale: 0.5,
	}
	if hp != want {
		t.Errorf("hparams\n got %+v\nwant %+v", hp, want)
	}
}

func TestHParamsVocabFromEmbedding(t *testing.T) {
	g := newTinyLlama(newRNG(t))
	delete(g.keys, "llama.vocab_size")
	hp, err := ReadHParams(g.open(t))
	if err != nil {
		t.Fatal(err)
	}
	if hp.NVocab != tinyVocab {
		t.Errorf("n_vocab %d from token_embd, want %d", hp.NVocab, tinyVocab)
	}
}

// TestSWALayers checks the sliding-window rule il % pattern < pattern-1 and
// the per-layer RoPE of gemma3 (local layers unscaled, with their own base).
func TestSWALayers(t *testing.T) {
	hp := HParams{SlidingWindow: 8, SWAPattern: 6, FreqBase: 1e6, FreqScale: 0.125, FreqBaseSWA: 1e4, FreqScaleSWA: 1, NRot: 64}
	for il := range 12 {
		wantSWA := il%6 != 5
		if hp.IsSWA(il) != wantSWA {
			t.Errorf("layer %d: IsSWA %v, want %v", il, hp.IsSWA(il), wantSWA)
		}
		p := hp.RoPE(il, compute.RoPENeoX)
		if wantSWA && (p.FreqBase != 1e4 || p.FreqScale != 1 || hp.Window(il) != 8) {
			t.Errorf("local layer %d: base %g scale %g window %d", il, p.FreqBase, p.FreqScale, hp.Window(il))
		}
		if !wantSWA && (p.FreqBase != 1e6 || p.FreqScale != 0.125 || hp.Window(il) != 0) {
			t.Errorf("global layer %d: base %g scale %g window %d", il, p.FreqBase, p.FreqScale, hp.Window(il))
		}
	}
	if (&HParams{SWAPattern: 2}).IsSWA(0) {
		t.Error("a model without a sliding window has a SWA layer")
	}
}

func TestSessionContext(t *testing.T) {
	m := loadTiny(t, newTinyLlama(newRNG(t)), compute.NewReference())
	s, err := NewSession(m, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Eval(make([]int32, 9)); err == nil || !strings.Contains(err.Error(), "context of 8") {
		t.Errorf("a 9-token prompt in an 8-token context: error %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("failed Eval moved the session to %d", s.Len())
	}
	if _, err := s.Eval(make([]int32, 6)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Eval([]int32{1, 2, 3}); err == nil {
		t.Error("6+3 tokens in an 8-token context: no error")
	}
	if _, err := s.Eval([]int32{1, 2}); err != nil {
		t.Errorf("6+2 tokens in an 8-token context: %v", err)
	}
	if _, err := s.Eval(nil); err == nil {
		t.Error("empty Eval: no error")
	}
	if _, err := s.Eval([]int32{tinyVocab}); err == nil {
		t.Error("token id n_vocab: no error")
	}
}

// maxDiff is the largest |a-b| relative to max(1, |b|).
func maxDiff(a, b []float32) float64 {
	var worst float64
	for i := range a {
		d := math.Abs(float64(a[i])-float64(b[i])) / math.Max(1, math.Abs(float64(b[i])))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d)
	}
	return worst
}

// TestIncrementalMatchesBatch: a prompt fed one token at a time gives the
// logits of the same prompt in one batch (both use the cache; only the
// summation grouping may differ).
func TestIncrementalMatchesBatch(t *testing.T) {
	rng := newRNG(t)
	m := loadTiny(t, newTinyLlama(rng), compute.NewReference())
	prompt := make([]int32, 11)
	for i := range prompt {
		prompt[i] = int32(rng.IntN(tinyVocab))
	}
	s, err := NewSession(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := s.EvalAll(prompt)
	if err != nil {
		t.Fatal(err)
	}
	all = append([]float32(nil), all...)
	s.Reset()
	for i, tok := range prompt {
		got, err := s.Eval([]int32{tok})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, all[i*tinyVocab:(i+1)*tinyVocab]); d > 1e-5 {
			t.Errorf("position %d: one-at-a-time logits differ from the batch by %.3g (relative), want ≤ 1e-5", i, d)
		}
	}
}

// TestMultiSequenceBatch runs two sequences with interleaved, out-of-order
// cache blocks in one batch (a prefill chunk and a decode step), asking for
// a subset of rows, and compares with each sequence run alone.
func TestMultiSequenceBatch(t *testing.T) {
	rng := newRNG(t)
	m := loadTiny(t, newTinyLlama(rng), compute.NewReference())
	const bs = 4
	c, err := NewCache(m.Backend(), m.HParams, 8, bs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	tokA := []int32{5, 9, 1, 30, 2, 7, 7} // 7 tokens
	tokB := []int32{3, 36, 0, 11, 4}      // 5 tokens
	blocksA := []int32{6, 1}              // positions 0..7
	blocksB := []int32{3, 0}

	slot := func(blocks []int32, p int) int32 { return blocks[p/bs]*bs + int32(p%bs) }
	step := func(rows []struct {
		seq int
		tok int32
		pos int
	}, seqs []compute.SeqAttn, outputs []int) []float32 {
		t.Helper()
		var b Batch
		for _, r := range rows {
			blocks := blocksA
			if r.seq == 1 {
				blocks = blocksB
			}
			b.Tokens = append(b.Tokens, r.tok)
			b.Positions = append(b.Positions, int32(r.pos))
			b.Slots = append(b.Slots, slot(blocks, r.pos))
		}
		b.Seqs, b.Outputs = seqs, outputs
		logits := make([]float32, len(outputs)*tinyVocab)
		if err := m.Forward(&b, c, logits); err != nil {
			t.Fatal(err)
		}
		return logits
	}
	type row = struct {
		seq int
		tok int32
		pos int
	}
	// Step 1: A's first 6 tokens and B's first 4 tokens; want A's row 5 and B's row 3 (rows 5 and 9).
	var rows []row
	for p := range 6 {
		rows = append(rows, row{0, tokA[p], p})
	}
	for p := range 4 {
		rows = append(rows, row{1, tokB[p], p})
	}
	got1 := step(rows, []compute.SeqAttn{
		{QStart: 0, QLen: 6, CtxLen: 6, Blocks: blocksA},
		{QStart: 6, QLen: 4, CtxLen: 4, Blocks: blocksB},
	}, []int{9, 5})
	// Step 2: one decode token each, B first this time.
	got2 := step([]row{{1, tokB[4], 4}, {0, tokA[6], 6}}, []compute.SeqAttn{
		{QStart: 0, QLen: 1, CtxLen: 5, Blocks: blocksB},
		{QStart: 1, QLen: 1, CtxLen: 7, Blocks: blocksA},
	}, []int{1, 0})

	alone := func(toks []int32) []float32 {
		s, err := NewSession(m, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l, err := s.EvalAll(toks)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), l...)
	}
	refA, refB := alone(tokA), alone(tokB)
	row5 := func(ref []float32, p int) []float32 { return ref[p*tinyVocab : (p+1)*tinyVocab] }
	checks := []struct {
		name      string
		got, want []float32
	}{
		{"step 1 B pos 3", got1[:tinyVocab], row5(refB, 3)},
		{"step 1 A pos 5", got1[tinyVocab:], row5(refA, 5)},
		{"step 2 A pos 6", got2[:tinyVocab], row5(refA, 6)},
		{"step 2 B pos 4", got2[tinyVocab:], row5(refB, 4)},
	}
	for _, ch := range checks {
		if d := maxDiff(ch.got, ch.want); d > 1e-5 {
			t.Errorf("%s: batched logits differ from the sequence alone by %.3g (relative), want ≤ 1e-5", ch.name, d)
		}
	}
}

func TestForwardRejectsBadBatches(t *testing.T) {
	m := loadTiny(t, newTinyLlama(newRNG(t)), compute.NewReference())
	c, err := NewCache(m.Backend(), m.HParams, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	good := func() *Batch {
		return &Batch{
			Tokens: []int32{1, 2, 3}, Positions: []int32{0, 1, 2}, Slots: []int32{4, 5, 6},
			Seqs:    []compute.SeqAttn{{QStart: 0, QLen: 3, CtxLen: 3, Blocks: []int32{1}}},
			Outputs: []int{2},
		}
	}
	if err := m.Forward(good(), c, make([]float32, tinyVocab)); err != nil {
		t.Fatalf("good batch: %v", err)
	}
	tests := []struct {
		name   string
		edit   func(b *Batch)
		logits int
		substr string
	}{
		{"token out of range", func(b *Batch) { b.Tokens[1] = tinyVocab }, tinyVocab, "token 37 at row 1"},
		{"negative token", func(b *Batch) { b.Tokens[0] = -1 }, tinyVocab, "token -1"},
		{"short positions", func(b *Batch) { b.Positions = b.Positions[:2] }, tinyVocab, "2 positions"},
		{"wrong slot", func(b *Batch) { b.Slots[2] = 0 }, tinyVocab, "slot 0"},
		{"block out of range", func(b *Batch) { b.Seqs[0].Blocks[0] = 2 }, tinyVocab, "block 2"},
		{"rows not covered", func(b *Batch) { b.Seqs[0].QLen = 2; b.Seqs[0].CtxLen = 2 }, tinyVocab, "cover 2 of 3"},
		{"position beyond context", func(b *Batch) { b.Seqs[0].CtxLen = 2 }, tinyVocab, "position 2"},
		{"output row out of range", func(b *Batch) { b.Outputs[0] = 3 }, tinyVocab, "row 3"},
		{"logits too short", func(b *Batch) {}, tinyVocab - 1, "36 floats"},
		{"empty batch", func(b *Batch) { *b = Batch{} }, 0, "empty batch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := good()
			tc.edit(b)
			err := m.Forward(b, c, make([]float32, tc.logits))
			if err == nil || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %v, want one mentioning %q", err, tc.substr)
			}
		})
	}
}

// countingBackend counts tensor allocations of the backend it wraps.
type countingBackend struct {
	compute.Backend
	newTensors int
}

func (c *countingBackend) NewTensor(name string, t ggml.Type, shape ...int) (*compute.Tensor, error) {
	c.newTensors++
	return c.Backend.NewTensor(name, t, shape...)
}

// TestScratchReuse: once a batch of n rows has run, smaller batches and
// decode steps allocate no tensors.
func TestScratchReuse(t *testing.T) {
	cb := &countingBackend{Backend: compute.NewReference()}
	m := loadTiny(t, newTinyLlama(newRNG(t)), cb)
	s, err := NewSession(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.EvalAll([]int32{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	before := cb.newTensors
	for _, toks := range [][]int32{{7}, {8, 9}, {10}, {11, 12, 13}} {
		if _, err := s.Eval(toks); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.EvalAll([]int32{14, 15}); err != nil {
		t.Fatal(err)
	}
	if n := cb.newTensors - before; n != 0 {
		t.Errorf("%d tensors allocated by steps no larger than the first", n)
	}
	if _, err := s.EvalAll(make([]int32, 8)); err != nil {
		t.Fatal(err)
	}
	if cb.newTensors == before {
		t.Error("a larger batch allocated nothing: the scratch did not grow")
	}
}
