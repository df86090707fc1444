package model

import (
	"errors"
	"slices"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
)

// recordingGrapher is a reference backend with graph steps that run the
// step's ops once, on a view that records their sequence: what a graph
// would be captured from. The GPU backend relies on the same key giving the
// same ops.
type recordingGrapher struct {
	compute.Backend
	keys  []any
	steps map[any][][]string // op sequences seen per key
	drops int
}

func (g *recordingGrapher) GraphStep(key any, fn func(compute.Backend) error) error {
	rec := &opRecorder{Backend: g.Backend}
	if err := fn(rec); err != nil {
		return err
	}
	g.keys = append(g.keys, key)
	if g.steps == nil {
		g.steps = map[any][][]string{}
	}
	g.steps[key] = append(g.steps[key], rec.ops)
	return nil
}

func (g *recordingGrapher) DropGraphs() { g.drops++ }

// opRecorder forwards ops and records their names (with the weight for
// MatMul); Read and allocation are refused, as a recording backend would.
type opRecorder struct {
	compute.Backend
	ops []string
}

func (r *opRecorder) note(op string) { r.ops = append(r.ops, op) }

func (r *opRecorder) Embedding(dst, table *compute.Tensor, ids []int32) error {
	r.note("embedding " + table.Name)
	return r.Backend.Embedding(dst, table, ids)
}
func (r *opRecorder) MatMul(dst, x, w *compute.Tensor) error {
	r.note("matmul " + w.Name)
	return r.Backend.MatMul(dst, x, w)
}
func (r *opRecorder) RMSNorm(dst, x, w *compute.Tensor, eps float32) error {
	r.note("rmsnorm")
	return r.Backend.RMSNorm(dst, x, w, eps)
}
func (r *opRecorder) Add(dst, a, b *compute.Tensor) error {
	r.note("add")
	return r.Backend.Add(dst, a, b)
}
func (r *opRecorder) RoPE(x *compute.Tensor, pos []int32, p compute.RoPEParams) error {
	r.note("rope")
	return r.Backend.RoPE(x, pos, p)
}
func (r *opRecorder) KVWrite(pool compute.KVPool, k, v *compute.Tensor, slots []int32) error {
	r.note("kvwrite")
	return r.Backend.KVWrite(pool, k, v, slots)
}
func (r *opRecorder) Attention(out, q *compute.Tensor, pool compute.KVPool, pos []int32, seqs []compute.SeqAttn, p compute.AttnParams) error {
	r.note("attention")
	return r.Backend.Attention(out, q, pool, pos, seqs, p)
}
func (r *opRecorder) Read(*compute.Tensor, []float32) error {
	r.note("read")
	return errRecorderRead
}

var errRecorderRead = errors.New("opRecorder: Read inside a step")

// TestGraphSteps: small steps go through GraphStep with one key per batch
// shape and the same op sequence for the same key; large steps do not; the
// logits equal those of the plain backend; a growing scratch and Close drop
// the recorded steps.
func TestGraphSteps(t *testing.T) {
	rng := newRNG(t)
	g := newTinyLlama(rng)
	gr := &recordingGrapher{Backend: compute.NewReference()}
	mg := loadTiny(t, g, gr)
	mp := loadTiny(t, g, compute.NewReference())

	prompt := make([]int32, mg.graphTokens+4)
	for i := range prompt {
		prompt[i] = int32(rng.IntN(tinyVocab))
	}
	sg, err := NewSession(mg, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer sg.Close()
	sp, err := NewSession(mp, 128)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()

	steps := [][]int32{prompt, {5}, {9}, {11}, {3, 4, 7}, {2}}
	for i, toks := range steps {
		want, err := sp.Eval(toks)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sg.Eval(toks)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("step %d (%d tokens): logits differ from the plain backend (max rel %.3g)", i, len(toks), maxDiff(got, want))
		}
	}
	if len(gr.keys) != len(steps)-1 {
		t.Fatalf("%d graph steps for %d steps of which one has %d > %d tokens", len(gr.keys), len(steps), len(prompt), mg.graphTokens)
	}
	one, three := gr.keys[0].(stepKey), gr.keys[3].(stepKey)
	if one.n != 1 || one.nOut != 1 || one.nSeq != 1 || three.n != 3 {
		t.Errorf("keys %+v and %+v: want n 1 and 3, one output, one sequence", one, three)
	}
	for _, k := range gr.keys[1:3] {
		if k != gr.keys[0] {
			t.Errorf("decode steps of one shape have different keys %+v and %+v", k, gr.keys[0])
		}
	}
	for k, seqs := range gr.steps {
		for _, ops := range seqs[1:] {
			if !slices.Equal(ops, seqs[0]) {
				t.Errorf("key %+v: op sequences differ between steps:\n%v\n%v", k, ops, seqs[0])
			}
		}
		if slices.Contains(seqs[0], "read") {
			t.Errorf("key %+v: the step read a tensor inside GraphStep", k)
		}
	}

	// A batch larger than any before grows the scratch: recorded steps go.
	drops := gr.drops
	sg.Reset()
	if _, err := sg.EvalAll(make([]int32, len(prompt)+8)); err != nil {
		t.Fatal(err)
	}
	if gr.drops == drops {
		t.Error("growing the scratch did not drop the recorded steps")
	}
	if _, err := sg.Eval([]int32{1}); err != nil {
		t.Fatal(err)
	}
	if last := gr.keys[len(gr.keys)-1].(stepKey); last.gen == one.gen {
		t.Errorf("decode key after the scratch grew has the old generation %d", last.gen)
	}
	drops = gr.drops
	mg.Close()
	if gr.drops == drops {
		t.Error("Model.Close did not drop the recorded steps")
	}
}

// TestDecodeBuckets: decode batches on a backend with graph steps are padded
// to their bucket (17 sequences run as 24 rows, 13 and 15 as 16), the
// padding rows touch only the cache's spare block, and every real output's
// logits equal the unpadded plain backend's; prefill and mixed steps are not
// padded.
func TestDecodeBuckets(t *testing.T) {
	rng := newRNG(t)
	g := newTinyLlama(rng)
	gr := &recordingGrapher{Backend: compute.NewReference()}
	mg := loadTiny(t, g, gr)
	mp := loadTiny(t, g, compute.NewReference())
	const nSeq, bs, per = 17, 4, 3 // sequences, block size, blocks each
	cg, err := NewCache(gr, mg.HParams, nSeq*per, bs)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Free()
	cp, err := NewCache(mp.Backend(), mp.HParams, nSeq*per, bs)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Free()
	if !slices.Equal(cg.spareTables, []int32{nSeq * per, nSeq*per + 1}) || cp.spareTables != nil {
		t.Fatalf("spare blocks %v (graph backend) and %v (plain), want [%d %d] and none", cg.spareTables, cp.spareTables, nSeq*per, nSeq*per+1)
	}
	if got := cg.Layers[0].K.Rows(); got != (nSeq*per+2)*bs {
		t.Fatalf("graph cache pool has %d slots, want %d (two spare blocks of %d)", got, (nSeq*per+2)*bs, bs)
	}
	lens := make([]int, nSeq)
	table := func(si int) []int32 {
		tb := make([]int32, per)
		for j := range tb {
			tb[j] = int32(j*nSeq + si) // interleaved
		}
		return tb
	}
	// step runs counts[si] new tokens of sequence si (0 = not in the step)
	// on both models and compares the outputs' logits.
	step := func(name string, counts []int) stepKey {
		t.Helper()
		var b Batch
		for si, cnt := range counts {
			if cnt == 0 {
				continue
			}
			tb := table(si)
			q0 := len(b.Tokens)
			for range cnt {
				p := lens[si]
				b.Tokens = append(b.Tokens, int32(rng.IntN(tinyVocab)))
				b.Positions = append(b.Positions, int32(p))
				b.Slots = append(b.Slots, tb[p/bs]*bs+int32(p%bs))
				lens[si]++
			}
			b.Seqs = append(b.Seqs, compute.SeqAttn{QStart: q0, QLen: cnt, CtxLen: lens[si], Blocks: tb})
			b.Outputs = append(b.Outputs, len(b.Tokens)-1)
		}
		want := make([]float32, len(b.Outputs)*tinyVocab)
		got := make([]float32, len(want))
		if err := mp.Forward(&b, cp, want); err != nil {
			t.Fatalf("%s: plain: %v", name, err)
		}
		n := len(gr.keys)
		if err := mg.Forward(&b, cg, got); err != nil {
			t.Fatalf("%s: graph backend: %v", name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: logits differ from the plain backend (max rel %.3g)", name, maxDiff(got, want))
		}
		if len(gr.keys) != n+1 {
			t.Fatalf("%s: %d graph steps, want 1", name, len(gr.keys)-n)
		}
		ids := make([]int32, len(b.Outputs))
		if err := mg.ForwardArgmax(&b, cg, ids); err == nil {
			// The same batch again is not a valid next step for the caches
			// (its slots are rewritten with the same rows), but it is for the
			// argmax: the ids must be those of the logits just compared.
			for i := range ids {
				if w := compute.ArgmaxRow(want[i*tinyVocab : (i+1)*tinyVocab]); ids[i] != w {
					t.Errorf("%s: output %d argmax %d, want %d", name, i, ids[i], w)
				}
			}
		} else {
			t.Fatalf("%s: argmax: %v", name, err)
		}
		return gr.keys[len(gr.keys)-1].(stepKey)
	}
	counts := func(v ...int) []int {
		c := make([]int, nSeq)
		copy(c, v)
		return c
	}
	prefill := counts(3, 2, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1)
	if k := step("prefill", prefill); k.n != 23 || k.nSeq != nSeq {
		t.Errorf("prefill key %+v: want 23 rows of 17 sequences, unpadded", k)
	}
	all := make([]int, nSeq)
	for i := range all {
		all[i] = 1
	}
	// 7 padding rows: both spare blocks of 4 slots.
	if k := step("17 decoding", all); k.n != 24 || k.nOut != 24 || k.nSeq != 24 {
		t.Errorf("17 sequences decoding: key %+v, want 24 rows", k)
	}
	fifteen := slices.Clone(all)
	fifteen[2], fifteen[7] = 0, 0
	k15 := step("15 decoding", fifteen)
	thirteen := slices.Clone(fifteen)
	thirteen[0], thirteen[16] = 0, 0
	k13 := step("13 decoding", thirteen)
	if k15 != k13 || k15.n != 16 || k15.nOut != 16 || k15.nSeq != 16 {
		t.Errorf("decode keys %+v (15 sequences) and %+v (13): want both padded to 16 rows", k15, k13)
	}
	eight := counts(1, 1, 1, 1, 1, 1, 1, 1)
	if k := step("8 decoding", eight); k.n != 8 {
		t.Errorf("8 sequences decoding: key %+v, want 8 rows (its own bucket)", k)
	}
	mixed := slices.Clone(all)
	mixed[4] = 2
	if k := step("mixed", mixed); k.n != 18 || k.nSeq != 17 {
		t.Errorf("mixed step key %+v: want 18 real rows of 17 sequences, unpadded", k)
	}
}
