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
