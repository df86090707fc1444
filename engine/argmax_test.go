package engine

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/sample"
)

// argmaxModel stands in for a model with the greedy capability: its
// ForwardArgmax runs the forward pass and asks the backend's Argmaxer for
// the ids of the output rows. It records which path each step took.
type argmaxModel struct {
	m  *model.Model
	be compute.Argmaxer

	mu              sync.Mutex
	logitSteps      int // Forward with output rows: the logits were read
	argmaxSteps     int
	failRow, failAt int // when failAt > 0: the failAt-th argmax step gives -1 for row failRow
	buf             []float32
}

func (a *argmaxModel) Forward(b *model.Batch, c *model.Cache, logits []float32) error {
	a.mu.Lock()
	if len(b.Outputs) > 0 {
		a.logitSteps++
	}
	a.mu.Unlock()
	return a.m.Forward(b, c, logits)
}

func (a *argmaxModel) ForwardArgmax(b *model.Batch, c *model.Cache, ids []int32) error {
	a.mu.Lock()
	a.argmaxSteps++
	n := a.argmaxSteps
	a.mu.Unlock()
	nv := a.m.HParams.NVocab
	if cap(a.buf) < len(ids)*nv {
		a.buf = make([]float32, len(ids)*nv)
	}
	buf := a.buf[:len(ids)*nv]
	if err := a.m.Forward(b, c, buf); err != nil {
		return err
	}
	x := &compute.Tensor{Type: ggml.F32, Shape: []int{len(ids), nv}, F32: buf}
	if err := a.be.ArgmaxRows(x, ids); err != nil {
		return err
	}
	if n == a.failAt {
		ids[a.failRow] = -1
	}
	return nil
}

// startArgmaxEngine starts an engine on stories260K and the CPU backend
// whose model has the greedy capability.
func startArgmaxEngine(t *testing.T, cfg Config) (*Engine, *argmaxModel) {
	t.Helper()
	be := cpu.New(2)
	s := loadStories(t, func() compute.Backend { return be })
	am := &argmaxModel{m: s.m, be: be}
	e, err := New(s.m, s.tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.fwd, e.argmax = am, am
	e.Start(context.Background())
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e, am
}

// startLogitsEngine starts an engine that always samples from the logit
// rows (the sampler's path), the reference of the argmax path.
func startLogitsEngine(t *testing.T, s *stories, cfg Config) *Engine {
	t.Helper()
	e, err := New(s.m, s.tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.argmax = nil
	e.Start(context.Background())
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// TestModelArgmaxPath: with the real model (model.Model.ForwardArgmax) on
// the CPU backend, pure greedy steps take the argmax path and give the
// tokens of the logits path, alone and batched.
func TestModelArgmaxPath(t *testing.T) {
	s := loadStories(t, func() compute.Backend { return cpu.New(2) })
	var reqs []Request
	for _, text := range testPrompts {
		r := greedy(s.encode(t, text), 50)
		r.IgnoreEOS = true
		reqs = append(reqs, r)
	}
	want := runEach(t, startLogitsEngine(t, s, DefaultConfig()), reqs)
	cfg := DefaultConfig()
	var mu sync.Mutex
	argmaxSteps, steps := 0, 0
	cfg.OnStep = func(st StepStats) {
		mu.Lock()
		defer mu.Unlock()
		steps++
		if st.Argmax {
			argmaxSteps++
		}
	}
	e := startEngine(t, loadStories(t, func() compute.Backend { return cpu.New(2) }), cfg)
	if e.argmax == nil {
		t.Skip("model.Model has no ForwardArgmax: nothing to compare")
	}
	got := runAll(t, e, reqs)
	alone := runEach(t, e, reqs)
	for i := range reqs {
		if d := sameOutput(got[i], want[i]); d != "" {
			t.Errorf("request %d batched: argmax path vs logits path: %s", i, d)
		}
		if d := sameOutput(alone[i], want[i]); d != "" {
			t.Errorf("request %d alone: argmax path vs logits path: %s", i, d)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d of %d steps through the model's argmax", argmaxSteps, steps)
	if argmaxSteps == 0 {
		t.Error("no step took the model's argmax path")
	}
}

// TestGreedyArgmaxPath: steps whose sampled sequences are all pure greedy
// take the argmax path, others read the logits, and the outputs are those
// of the plain engine (which always samples from the logit rows), batched
// or alone.
func TestGreedyArgmaxPath(t *testing.T) {
	s := loadStories(t, func() compute.Backend { return cpu.New(2) })
	plain := startLogitsEngine(t, s, DefaultConfig())

	pure := make([]Request, 0, len(testPrompts))
	for _, text := range testPrompts {
		r := greedy(s.encode(t, text), 40)
		r.IgnoreEOS = true
		pure = append(pure, r)
	}
	withLogprobs := greedy(s.encode(t, "The dog ran"), 40)
	withLogprobs.Logprobs = true
	withPenalty := greedy(s.encode(t, "The bird sang"), 40)
	withPenalty.Params.RepeatPenalty = 1.3
	sampled := pure[0]
	sampled.Params = sample.DefaultParams()
	sampled.Params.Seed = 7
	// Penalty settings that change nothing keep a request pure greedy.
	inert := pure[1]
	inert.Params.PresencePenalty = 2
	inert.Params.PenaltyLastN = 0

	for _, tc := range []struct {
		name   string
		reqs   []Request
		argmax bool // some step takes the argmax path
		logits bool // some step reads the logits
	}{
		{"pure greedy", pure, true, false},
		{"inert penalty", []Request{inert, pure[2]}, true, false},
		// Alone, the pure greedy ones take the argmax path.
		{"greedy with logprobs", append([]Request{withLogprobs}, pure[:3]...), true, true},
		{"repeat penalty", []Request{withPenalty}, false, true},
		{"sampled", []Request{sampled}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := runEach(t, plain, tc.reqs)
			e, am := startArgmaxEngine(t, DefaultConfig())
			var mu sync.Mutex
			argmaxFlags := 0
			e.cfg.OnStep = func(st StepStats) {
				mu.Lock()
				if st.Argmax {
					argmaxFlags++
				}
				mu.Unlock()
			}
			got := runAll(t, e, tc.reqs)
			alone := runEach(t, e, tc.reqs)
			for i := range tc.reqs {
				if d := sameOutput(got[i], want[i]); d != "" {
					t.Errorf("request %d batched: argmax engine vs plain: %s\n%v\n%v", i, d, got[i].tokens, want[i].tokens)
				}
				if d := sameOutput(alone[i], want[i]); d != "" {
					t.Errorf("request %d alone: argmax engine vs plain: %s", i, d)
				}
			}
			e.Close(context.Background())
			am.mu.Lock()
			defer am.mu.Unlock()
			t.Logf("%d argmax steps, %d logit steps", am.argmaxSteps, am.logitSteps)
			if (am.argmaxSteps > 0) != tc.argmax || (am.logitSteps > 0) != tc.logits {
				t.Errorf("%d argmax steps and %d logit steps: want argmax %v, logits %v", am.argmaxSteps, am.logitSteps, tc.argmax, tc.logits)
			}
			if argmaxFlags != am.argmaxSteps {
				t.Errorf("StepStats.Argmax in %d steps, but %d argmax steps ran", argmaxFlags, am.argmaxSteps)
			}
		})
	}

	// A mixed batch: the steps in which the logprobs request samples read
	// the logits; once it has finished, the rest go through argmax.
	t.Run("mixed", func(t *testing.T) {
		short := withLogprobs
		short.MaxTokens = 5
		reqs := append([]Request{short}, pure[:3]...)
		want := runEach(t, plain, reqs)
		e, am := startArgmaxEngine(t, DefaultConfig())
		got := runAll(t, e, reqs)
		for i := range reqs {
			if d := sameOutput(got[i], want[i]); d != "" {
				t.Errorf("request %d: %s", i, d)
			}
		}
		e.Close(context.Background())
		t.Logf("%d argmax steps, %d logit steps", am.argmaxSteps, am.logitSteps)
		if am.argmaxSteps == 0 || am.logitSteps == 0 {
			t.Errorf("%d argmax and %d logit steps: want both paths", am.argmaxSteps, am.logitSteps)
		}
	})
}

// TestGreedyArgmaxNoCandidates: a row the argmax finds nothing in (-1)
// fails that request as the sampler fails one whose logits are all -Inf,
// and leaves the others of the step alone.
func TestGreedyArgmaxNoCandidates(t *testing.T) {
	e, am := startArgmaxEngine(t, DefaultConfig())
	s := &stories{tok: e.tok}
	am.failAt, am.failRow = 3, 0
	reqs := []Request{greedy(s.encode(t, testPrompts[0]), 10), greedy(s.encode(t, testPrompts[1]), 10)}
	for i := range reqs {
		reqs[i].IgnoreEOS = true
	}
	// Submitted one by one so that request 0 is row 0 of every step.
	h0, err := e.Submit(context.Background(), reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	first := <-h0.Events
	h1, err := e.Submit(context.Background(), reqs[1])
	if err != nil {
		t.Fatal(err)
	}
	out0, out1 := collect(t, h0), collect(t, h1)
	if first.Done || out0.done.FinishReason != FinishError || !errors.Is(out0.done.Err, sample.ErrNoCandidates) {
		t.Errorf("request 0 ended %q with %v, want %q wrapping sample.ErrNoCandidates", out0.done.FinishReason, out0.done.Err, FinishError)
	}
	if out1.done.FinishReason != FinishLength || len(out1.tokens) != 10 {
		t.Errorf("request 1 ended %q after %d tokens, want length after 10", out1.done.FinishReason, len(out1.tokens))
	}

	// The sampler's greedy path on an all -Inf row fails the same way.
	smp, err := sample.New(reqs[0].Params, 5)
	if err != nil {
		t.Fatal(err)
	}
	inf := float32(math.Inf(-1))
	if _, err := smp.Sample([]float32{inf, inf, inf, inf, inf}); !errors.Is(err, sample.ErrNoCandidates) {
		t.Errorf("sampler on an all -Inf row: %v, want sample.ErrNoCandidates", err)
	}
}

// TestGreedyArgmaxAgreesWithSampler compares the sampler's greedy choice
// with compute.ArgmaxRow (the Argmaxer contract) on awkward rows: ties
// (lowest index), -Inf, -MaxFloat32, signed zeros, all banned, and random
// rows with fresh seeds. Rows with NaN or +Inf are where the two part: the
// sampler refuses them.
func TestGreedyArgmaxAgreesWithSampler(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	ninf, max32 := float32(math.Inf(-1)), float32(math.MaxFloat32)
	negZero := float32(math.Copysign(0, -1))
	rows := [][]float32{
		{1, 3, 3, 2},
		{3, 3, 3},
		{ninf, 2, ninf, 2},
		{ninf, ninf, ninf},
		{ninf, -max32, -max32},
		{-max32, ninf},
		{negZero, 0, negZero},
		{0, negZero},
		{max32, max32},
		{-1, -2, -0.5, -0.5},
	}
	for range 50 {
		row := make([]float32, 1+rng.IntN(97))
		for i := range row {
			switch rng.IntN(8) {
			case 0:
				row[i] = ninf
			case 1:
				row[i] = float32(rng.IntN(3)) // ties
			default:
				row[i] = float32(rng.NormFloat64() * 4)
			}
		}
		rows = append(rows, row)
	}
	p := sample.DefaultParams()
	p.Temperature = 0
	for i, row := range rows {
		smp, err := sample.New(p, len(row))
		if err != nil {
			t.Fatal(err)
		}
		res, err := smp.Sample(row)
		got := compute.ArgmaxRow(row)
		switch {
		case errors.Is(err, sample.ErrNoCandidates):
			if got != -1 {
				t.Errorf("row %d %v: sampler finds no candidate, ArgmaxRow %d", i, row, got)
			}
		case err != nil:
			t.Errorf("row %d %v: sampler: %v", i, row, err)
		case res.Token != got:
			t.Errorf("row %d %v: sampler picks %d, ArgmaxRow %d", i, row, res.Token, got)
		}
	}
	for _, row := range [][]float32{{1, float32(math.NaN()), 2}, {1, float32(math.Inf(1))}} {
		smp, _ := sample.New(p, len(row))
		if _, err := smp.Sample(row); err == nil {
			t.Errorf("sampler accepted %v; the argmax path's documented difference is gone, update nextGreedy's comment", row)
		}
	}
}
