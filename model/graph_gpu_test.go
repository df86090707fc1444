package model

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu"
	"github.com/rocmforge/rocmforge/gguf"
)

// TestGraphStepsMatchEagerGPU: a scripted run of prefill and decode steps
// (one sequence, then two sequences decoding together, their contexts
// outgrowing the block-table room a graph is captured with) gives the same
// logits with graph steps as op by op, and the graphs were really replayed.
func TestGraphStepsMatchEagerGPU(t *testing.T) {
	if err := gpu.Available(); err != nil {
		t.Skipf("no usable CUDA GPU, GPU graph test skipped: %v", err)
	}
	dir := goldenDir(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	for _, name := range []string{"stories260k", "llama256-q4_0", "gpt2-f16", "gemma2-f16"} {
		t.Run(name, func(t *testing.T) {
			be, err := gpu.New()
			if err != nil {
				t.Fatalf("gpu.New: %v", err)
			}
			defer be.Close()
			f, err := gguf.Open(modelPath(t, filepath.Join(dir, name, "model.gguf")))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := Load(f, be)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()

			be.EnableGraphs(false)
			want := runScript(t, m, seed)
			be.EnableGraphs(true)
			before := be.GraphStats()
			got := runScript(t, m, seed)
			st := be.GraphStats()
			t.Logf("graph steps: %d op by op, %d captures, %d replays", st.Eager-before.Eager, st.Captures-before.Captures, st.Replays-before.Replays)
			if st.Replays-before.Replays < 20 || st.Captures-before.Captures < 2 {
				t.Errorf("graph stats %+v (from %+v): want at least 2 captures and 20 replays", st, before)
			}
			exact := 0
			for i := range want {
				d := maxDiff(got[i], want[i])
				if d == 0 {
					exact++
				}
				if d > 1e-6 {
					t.Errorf("step %d: logits with graphs differ from op by op by %.3g (relative), want ≤ 1e-6", i, d)
				}
			}
			t.Logf("%d of %d steps bit-identical", exact, len(want))
		})
	}
}

// runScript runs a fixed sequence of batches with fresh caches and returns
// every step's logits: a 7-token prompt and 12 greedy-free decode steps of
// one sequence, then two sequences (interleaved blocks of 2 slots) prefilled
// in one batch and decoded together for 40 steps, so their block tables
// outgrow 16 entries; then 21 sequences prefilled together and decoded
// together for 6 steps. Tokens come from seed, not from the logits, so both
// runs see the same inputs.
func runScript(t *testing.T, m *Model, seed uint64) [][]float32 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	nv := m.HParams.NVocab
	tok := func() int32 { return int32(rng.IntN(nv)) }
	var out [][]float32

	s, err := NewSession(m, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prompt := []int32{tok(), tok(), tok(), tok(), tok(), tok(), tok()}
	steps := [][]int32{prompt}
	for range 12 {
		steps = append(steps, []int32{tok()})
	}
	for _, toks := range steps {
		l, err := s.Eval(toks)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]float32(nil), l...))
	}

	const bs, perSeq = 2, 32
	c, err := NewCache(m.Backend(), m.HParams, 2*perSeq, bs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	tables := [2][]int32{}
	for i := range perSeq {
		tables[0] = append(tables[0], int32(2*i+1))
		tables[1] = append(tables[1], int32(2*i))
	}
	lens := [2]int{0, 0}
	step := func(counts [2]int) {
		var b Batch
		for si := range 2 {
			q0 := len(b.Tokens)
			for range counts[si] {
				p := lens[si]
				b.Tokens = append(b.Tokens, tok())
				b.Positions = append(b.Positions, int32(p))
				b.Slots = append(b.Slots, tables[si][p/bs]*bs+int32(p%bs))
				lens[si]++
			}
			b.Seqs = append(b.Seqs, compute.SeqAttn{QStart: q0, QLen: counts[si], CtxLen: lens[si], Blocks: tables[si]})
			b.Outputs = append(b.Outputs, len(b.Tokens)-1)
		}
		logits := make([]float32, 2*nv)
		if err := m.Forward(&b, c, logits); err != nil {
			t.Fatal(err)
		}
		out = append(out, logits)
	}
	step([2]int{5, 3})
	for range 40 {
		step([2]int{1, 1})
	}

	// Then 21 sequences decoding together (padded to 24-row steps: the batched
	// matrix kernels, captured like decode), after a 63-row prefill.
	const many, room = 21, 8 // blocks of bs slots per sequence
	c2, err := NewCache(m.Backend(), m.HParams, many*room, bs)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Free()
	mlens := make([]int, many)
	mstep := func(rows int) {
		var b Batch
		for si := range many {
			table := make([]int32, room)
			for j := range table {
				table[j] = int32(j*many + si) // interleaved, so tables differ
			}
			q0 := len(b.Tokens)
			for range rows {
				p := mlens[si]
				b.Tokens = append(b.Tokens, tok())
				b.Positions = append(b.Positions, int32(p))
				b.Slots = append(b.Slots, table[p/bs]*bs+int32(p%bs))
				mlens[si]++
			}
			b.Seqs = append(b.Seqs, compute.SeqAttn{QStart: q0, QLen: rows, CtxLen: mlens[si], Blocks: table})
			b.Outputs = append(b.Outputs, len(b.Tokens)-1)
		}
		logits := make([]float32, many*nv)
		if err := m.Forward(&b, c2, logits); err != nil {
			t.Fatal(err)
		}
		out = append(out, logits)
	}
	mstep(3)
	for range 6 {
		mstep(1)
	}
	return out
}
