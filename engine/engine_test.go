package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
	"github.com/rocmforge/rocmforge/sample"
)

// TestGreedyMatchesSession: one greedy request through the engine gives the
// tokens of a plain model.Session, and its text is their decoding.
func TestGreedyMatchesSession(t *testing.T) {
	ref := loadStories(t, refBackend)
	s := loadStories(t, refBackend)
	e := startEngine(t, s, DefaultConfig())
	for _, text := range testPrompts[:4] {
		prompt := s.encode(t, text)
		n := 100 - len(prompt)
		want := sessionGreedy(t, ref, prompt, n, false)
		got := run(t, e, greedy(prompt, n))
		if !slices.Equal(got.tokens, want) {
			t.Fatalf("%q: engine tokens\n%v\nsession tokens\n%v", text, got.tokens, want)
		}
		if dec := s.tok.Decode(append(slices.Clone(prompt), got.tokens...)); !strings.HasSuffix(dec, got.text) || got.text == "" {
			t.Errorf("%q: streamed text %q is not the end of the decoded text %q", text, got.text, dec)
		}
		reason := FinishLength
		if len(want) < n {
			reason = FinishStop
		}
		u := got.done.Usage
		if got.done.FinishReason != reason || u.PromptTokens != len(prompt) || u.CompletionTokens != len(want) {
			t.Errorf("%q: finish %q usage %+v, want %q with %d prompt and %d completion tokens", text, got.done.FinishReason, u, reason, len(prompt), len(want))
		}
		t.Logf("%q: %d tokens, %s: %q", text, len(got.tokens), got.done.FinishReason, got.text)
	}
}

// invarianceRequests are 8 different requests: greedy with logprobs, and
// (when sampled) seeded sampling with penalties, to check that sequences
// do not disturb one another in a batch.
func invarianceRequests(t *testing.T, s *stories, sampled bool) []Request {
	var reqs []Request
	for i, text := range testPrompts {
		prompt := s.encode(t, text)
		r := greedy(prompt, 90-len(prompt))
		r.TopLogprobs = 3
		if sampled && i%2 == 1 {
			r.Params = sample.DefaultParams()
			r.Params.Temperature, r.Params.TopK, r.Params.TopP = 0.9, 40, 0.95
			r.Params.RepeatPenalty = 1.1
			r.Params.Seed = uint64(1000 + i)
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// runAll submits every request at once and collects the outputs.
func runAll(t *testing.T, e *Engine, reqs []Request) []output {
	t.Helper()
	hs := make([]*Handle, len(reqs))
	for i, r := range reqs {
		h, err := e.Submit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
	}
	outs := make([]output, len(reqs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() { outs[i] = collect(t, h) })
	}
	wg.Wait()
	return outs
}

// runEach runs the requests one after another, each alone in the engine.
func runEach(t *testing.T, e *Engine, reqs []Request) []output {
	t.Helper()
	outs := make([]output, len(reqs))
	for i, r := range reqs {
		outs[i] = run(t, e, r)
	}
	return outs
}

// testBackends are the backends the invariance tests run on: the reference
// and the CPU backend, both of which compute every row of a batch from that
// row alone, so results must agree bit for bit.
var testBackends = []struct {
	name string
	new  func() compute.Backend
}{
	{"reference", refBackend},
	{"cpu", func() compute.Backend { return cpu.New(2) }},
}

// TestBatchInvariance: 8 different prompts run concurrently give exactly
// the tokens, logprobs and text each gives alone.
func TestBatchInvariance(t *testing.T) {
	for _, be := range testBackends {
		t.Run(be.name, func(t *testing.T) {
			s := loadStories(t, be.new)
			reqs := invarianceRequests(t, s, true)
			e := startEngine(t, s, DefaultConfig())
			solo := runEach(t, e, reqs)
			// Without the prefix cache too, so that the batched run
			// computes every prompt itself.
			cfg := DefaultConfig()
			cfg.EnablePrefixCache = false
			e2 := startEngine(t, loadStories(t, be.new), cfg)
			batched := runAll(t, e2, reqs)
			for i := range reqs {
				if d := sameOutput(batched[i], solo[i]); d != "" {
					t.Errorf("request %d (%q): batched vs alone: %s\nbatched %v\nalone   %v", i, testPrompts[i], d, batched[i].tokens, solo[i].tokens)
				}
			}
			st := e2.Stats()
			t.Logf("batched: %d steps, %d rows computed, last batch %d rows", st.Steps, st.ComputedTokens, st.LastBatchTokens)
			if st.Steps >= int64(totalTokens(solo)) {
				t.Errorf("%d steps for %d generated tokens: the requests were not batched", st.Steps, totalTokens(solo))
			}
		})
	}
}

func totalTokens(outs []output) int {
	n := 0
	for _, o := range outs {
		n += len(o.tokens)
	}
	return n
}

// TestChunkedPrefill: with MaxBatchTokens 7 every prompt is computed in
// chunks spread over steps, and the outputs (logprobs included, so the
// logits) are those of whole-prompt prefill.
func TestChunkedPrefill(t *testing.T) {
	for _, be := range testBackends {
		t.Run(be.name, func(t *testing.T) {
			s := loadStories(t, be.new)
			var reqs []Request
			for i, text := range testPrompts {
				// Long prompts: two openings joined, 10 to 25 tokens.
				prompt := s.encode(t, text+" "+testPrompts[(i+3)%len(testPrompts)])
				r := greedy(prompt, 40)
				r.TopLogprobs = 2
				reqs = append(reqs, r)
			}
			whole := runAll(t, startEngine(t, s, DefaultConfig()), reqs)
			cfg := DefaultConfig()
			cfg.MaxBatchTokens = 7
			e := startEngine(t, loadStories(t, be.new), cfg)
			chunked := runAll(t, e, reqs)
			for i := range reqs {
				if d := sameOutput(chunked[i], whole[i]); d != "" {
					t.Errorf("request %d: chunked vs whole prefill: %s", i, d)
				}
			}
			if st := e.Stats(); st.LastBatchTokens > 7 || st.Steps == 0 {
				t.Errorf("stats %+v: want batches of at most 7 rows", st)
			}
			// One request alone with a 7-token budget also matches.
			if d := sameOutput(run(t, e, reqs[0]), whole[0]); d != "" {
				t.Errorf("single chunked request: %s", d)
			}
		})
	}
}

// TestPreemption: a KV pool far too small for the requests together forces
// preemptions, and every request still gives its solo output, with the
// prefix cache (preempted sequences get their full blocks back) and
// without (they recompute everything).
func TestPreemption(t *testing.T) {
	for _, be := range testBackends {
		t.Run(be.name, func(t *testing.T) {
			s := loadStories(t, be.new)
			reqs := invarianceRequests(t, s, true)
			for i := range reqs {
				reqs[i].IgnoreEOS = true // full length: every sequence keeps growing
				reqs[i].MaxTokens = 100 - len(reqs[i].Prompt)
			}
			solo := runEach(t, startEngine(t, s, DefaultConfig()), reqs)
			for _, prefix := range []bool{true, false} {
				cfg := Config{EnablePrefixCache: prefix, BlockSize: 8, KVCacheTokens: 8 * 20} // 160 slots for 8 × 100 tokens
				e := startEngine(t, loadStories(t, be.new), cfg)
				got := runAll(t, e, reqs)
				for i := range reqs {
					if d := sameOutput(got[i], solo[i]); d != "" {
						t.Errorf("prefix cache %v: request %d with preemption vs alone: %s", prefix, i, d)
					}
				}
				st := e.Stats()
				t.Logf("prefix cache %v: %d preemptions, %d steps, %d rows computed for %d prompt and %d generated tokens; prefix hits %d",
					prefix, st.Preemptions, st.Steps, st.ComputedTokens, st.PromptTokens, st.GeneratedTokens, st.PrefixHitTokens)
				if st.Preemptions == 0 {
					t.Errorf("prefix cache %v: no preemption with a pool of %d blocks", prefix, st.KVBlocksTotal)
				}
				if st.KVBlocksUsed != 0 {
					t.Errorf("prefix cache %v: %d blocks still used", prefix, st.KVBlocksUsed)
				}
			}
		})
	}
}

// TestPrefixCache: a second identical prompt reuses the first one's full
// blocks, reports them as cached and gives the same output.
func TestPrefixCache(t *testing.T) {
	s := loadStories(t, refBackend)
	e := startEngine(t, s, DefaultConfig())
	prompt := s.encode(t, "Once upon a time, there was a big dog named Max. Max loved to play with his toys and run around. One day")
	bs := e.Config().BlockSize
	if len(prompt) <= bs {
		t.Fatalf("prompt of %d tokens is too short for a %d-token block", len(prompt), bs)
	}
	r := greedy(prompt, 40)
	r.Logprobs = true
	first := run(t, e, r)
	second := run(t, e, r)
	wantCached := (len(prompt) - 1) / bs * bs
	if first.done.Usage.CachedTokens != 0 || second.done.Usage.CachedTokens != wantCached {
		t.Errorf("cached tokens %d then %d, want 0 then %d (prompt %d tokens)", first.done.Usage.CachedTokens, second.done.Usage.CachedTokens, wantCached, len(prompt))
	}
	if d := sameOutput(second, first); d != "" {
		t.Errorf("second run: %s", d)
	}
	st := e.Stats()
	if st.PrefixHitTokens != int64(wantCached) || st.KVBlocksCached == 0 || st.KVBlocksUsed != 0 {
		t.Errorf("stats %+v: want %d prefix hit tokens, cached blocks and none used", st, wantCached)
	}
	// A prompt sharing only the first block hits that block.
	other := slices.Clone(prompt)
	other[bs+1] = other[bs+1]%100 + 5
	third := run(t, e, greedy(other, 10))
	if third.done.Usage.CachedTokens != bs {
		t.Errorf("prompt sharing one block: %d cached tokens, want %d", third.done.Usage.CachedTokens, bs)
	}
	if id := third.done; id.FinishReason == "" {
		t.Error("no finish reason")
	}
}

// TestFinishReasons: max tokens, stop strings, stop tokens and
// end-of-generation tokens (and IgnoreEOS).
func TestFinishReasons(t *testing.T) {
	s := loadStories(t, refBackend)
	e := startEngine(t, s, DefaultConfig())
	prompt := s.encode(t, "Once upon a time")
	full := run(t, e, greedy(prompt, 60))
	t.Logf("greedy: %q", full.text)

	t.Run("length", func(t *testing.T) {
		o := run(t, e, greedy(prompt, 5))
		if o.done.FinishReason != FinishLength || len(o.tokens) != 5 || !slices.Equal(o.tokens, full.tokens[:5]) {
			t.Errorf("got %s with tokens %v, want length with %v", o.done.FinishReason, o.tokens, full.tokens[:5])
		}
	})
	t.Run("stop string", func(t *testing.T) {
		stop := "little girl" // in "there was a little girl named Lily"
		i := strings.Index(full.text, stop)
		if i < 0 {
			t.Fatalf("%q not in the greedy text", stop)
		}
		r := greedy(prompt, 60)
		r.Stop = []string{"no such text", stop}
		o := run(t, e, r)
		if o.done.FinishReason != FinishStop || o.text != full.text[:i] {
			t.Errorf("got %s with text %q, want stop with %q", o.done.FinishReason, o.text, full.text[:i])
		}
		if !slices.Equal(o.tokens, full.tokens[:len(o.tokens)]) || len(o.tokens) == len(full.tokens) {
			t.Errorf("tokens %v are not a proper prefix of %v", o.tokens, full.tokens)
		}
	})
	t.Run("stop token", func(t *testing.T) {
		r := greedy(prompt, 60)
		r.StopTokens = []int32{full.tokens[3]}
		o := run(t, e, r)
		k := slices.Index(full.tokens, full.tokens[3])
		if o.done.FinishReason != FinishStop || !slices.Equal(o.tokens, full.tokens[:k]) || o.done.Usage.CompletionTokens != k {
			t.Errorf("got %s with %v (usage %+v), want stop with %v", o.done.FinishReason, o.tokens, o.done.Usage, full.tokens[:k])
		}
	})
	t.Run("eos", func(t *testing.T) {
		// Greedy stories260K rarely ends a story within its 128-token
		// context, so a logit bias makes the end-of-sequence token win.
		eos := s.tok.EOS()
		r := greedy(prompt, 10)
		r.Params.LogitBias = map[int32]float32{eos: 100}
		o := run(t, e, r)
		if o.done.FinishReason != FinishStop || len(o.tokens) != 0 || o.done.Usage.CompletionTokens != 0 {
			t.Errorf("got %s with %v (usage %+v), want stop before any token", o.done.FinishReason, o.tokens, o.done.Usage)
		}
		r.IgnoreEOS = true
		o = run(t, e, r)
		if o.done.FinishReason != FinishLength || len(o.tokens) != 10 || o.tokens[0] != eos || o.text != "" {
			t.Errorf("IgnoreEOS: got %s with %v and text %q, want length with 10 end-of-sequence tokens and no text", o.done.FinishReason, o.tokens, o.text)
		}
	})
}

// TestSubmitErrors checks the up-front validation.
func TestSubmitErrors(t *testing.T) {
	s := loadStories(t, refBackend)
	cfg := DefaultConfig()
	cfg.KVCacheTokens = 96 // smaller than the context of 128
	e := startEngine(t, s, cfg)
	prompt := s.encode(t, "Once upon a time")
	long := make([]int32, 128)
	for i := range long {
		long[i] = 300
	}
	badParams := greedy(prompt, 5)
	badParams.Params.TopP = 0
	cases := []struct {
		name string
		r    Request
		want error
	}{
		{"empty prompt", greedy(nil, 5), ErrInvalid},
		{"token outside vocabulary", greedy([]int32{1, 512}, 5), ErrInvalid},
		{"negative max tokens", greedy(prompt, -1), ErrInvalid},
		{"bad sampling params", badParams, ErrInvalid},
		{"beyond context", greedy(prompt, 128), ErrTooLong},
		{"beyond pool", greedy(prompt, 100), ErrTooLong},
		{"no room for the default max tokens", greedy(long[:128], 0), ErrTooLong},
	}
	for _, c := range cases {
		_, err := e.Submit(context.Background(), c.r)
		isErr(t, c.name, err, c.want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Submit(ctx, greedy(prompt, 5)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	isErr(t, "cancel unknown id", e.Cancel("req-nope"), ErrNotFound)
	if _, ok := e.Status("req-nope"); ok {
		t.Error("status of an unknown id")
	}
}

// TestQueueFullAndClosed: an engine that is not started queues up to
// MaxQueue requests; Close cancels them and later Submits are ErrClosed.
func TestQueueFullAndClosed(t *testing.T) {
	s := loadStories(t, refBackend)
	e, err := New(s.m, s.tok, Config{MaxQueue: 2})
	if err != nil {
		t.Fatal(err)
	}
	prompt := s.encode(t, "Once upon a time")
	var hs []*Handle
	for range 2 {
		h, err := e.Submit(context.Background(), greedy(prompt, 5))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	_, err = e.Submit(context.Background(), greedy(prompt, 5))
	isErr(t, "third submit", err, ErrQueueFull)
	if st := e.Stats(); st.Waiting != 2 {
		t.Errorf("waiting %d, want 2", st.Waiting)
	}
	if st, ok := e.Status(hs[0].ID); !ok || st.State != StateQueued || st.PromptTokens != len(prompt) {
		t.Errorf("status %+v, want queued with %d prompt tokens", st, len(prompt))
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		o := collect(t, h)
		if o.done.FinishReason != FinishCancelled || !errors.Is(o.done.Err, ErrClosed) || len(o.tokens) != 0 {
			t.Errorf("after Close: %s %v with %d tokens, want cancelled by ErrClosed", o.done.FinishReason, o.done.Err, len(o.tokens))
		}
		if st, _ := e.Status(h.ID); st.State != StateCancelled {
			t.Errorf("status %+v, want cancelled", st)
		}
	}
	_, err = e.Submit(context.Background(), greedy(prompt, 5))
	isErr(t, "submit after close", err, ErrClosed)
	e.Start(context.Background()) // no effect on a closed engine
	if err := e.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConcurrentCancel runs 16 requests, some cancelled through their
// context and some through Cancel, at random points. Every request that
// finished gives its solo output and every cancelled one a prefix of it;
// afterwards no block is used and, after Close, no goroutine is left.
func TestConcurrentCancel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	sSolo := loadStories(t, refBackend)
	s := loadStories(t, refBackend)

	const n = 16
	reqs := make([]Request, n)
	for i := range reqs {
		prompt := sSolo.encode(t, testPrompts[i%len(testPrompts)])
		reqs[i] = greedy(prompt, 20+rng.IntN(60))
		if i%3 == 1 {
			reqs[i].Params = sample.DefaultParams()
			reqs[i].Params.Temperature = 0.8
			reqs[i].Params.Seed = rng.Uint64()
		}
		reqs[i].Logprobs = i%2 == 0
	}
	solo := runEach(t, startEngine(t, sSolo, DefaultConfig()), reqs)

	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.MaxSeqs = 6 // some requests wait in the queue
	cfg.KVCacheTokens = 400
	e, err := New(s.m, s.tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())

	type mode int
	const (
		keep mode = iota
		ctxLater
		cancelLater
		ctxAtOnce
		cancelAtOnce
	)
	outs := make([]output, n)
	modes := make([]mode, n)
	var wg sync.WaitGroup
	for i := range reqs {
		modes[i] = mode(rng.IntN(5))
		after := rng.IntN(15)
		ctx, cancel := context.WithCancel(context.Background())
		h, err := e.Submit(ctx, reqs[i])
		if err != nil {
			t.Fatal(err)
		}
		switch modes[i] {
		case ctxAtOnce:
			cancel()
		case cancelAtOnce:
			if err := e.Cancel(h.ID); err != nil {
				t.Error(err)
			}
		}
		wg.Go(func() {
			defer cancel()
			var o output
			for ev := range h.Events {
				o.events++
				o.text += ev.Text
				if ev.Done {
					o.done = ev
					continue
				}
				o.tokens = append(o.tokens, ev.Token)
				o.logprobs = append(o.logprobs, ev.Logprob)
				if len(o.tokens) == after {
					switch modes[i] {
					case ctxLater:
						cancel()
					case cancelLater:
						if err := e.Cancel(h.ID); err != nil {
							t.Error(err)
						}
					}
				}
			}
			outs[i] = o
		})
	}
	wg.Wait()

	cancelled := 0
	for i, o := range outs {
		w := solo[i]
		switch o.done.FinishReason {
		case FinishCancelled:
			cancelled++
			if modes[i] == keep {
				t.Errorf("request %d was not cancelled but finished %q", i, o.done.FinishReason)
			}
			if len(o.tokens) > len(w.tokens) || !slices.Equal(o.tokens, w.tokens[:len(o.tokens)]) {
				t.Errorf("cancelled request %d: tokens %v are not a prefix of the solo %v", i, o.tokens, w.tokens)
			}
		default:
			o.tops, w.tops = nil, nil
			if d := sameOutput(o, w); d != "" {
				t.Errorf("request %d (mode %d): %s\ngot  %v\nsolo %v", i, modes[i], d, o.tokens, w.tokens)
			}
		}
		if o.done.Usage.CompletionTokens != len(o.tokens) {
			t.Errorf("request %d: usage %+v but %d tokens", i, o.done.Usage, len(o.tokens))
		}
	}
	st := e.Stats()
	t.Logf("%d of %d cancelled; stats %+v", cancelled, n, st)
	if st.KVBlocksUsed != 0 || st.Running != 0 || st.Waiting != 0 {
		t.Errorf("after every request ended: %d blocks used, %d running, %d waiting", st.KVBlocksUsed, st.Running, st.Waiting)
	}
	if st.Finished+st.Cancelled != n || st.Cancelled != int64(cancelled) {
		t.Errorf("stats count %d finished + %d cancelled, want %d with %d cancelled", st.Finished, st.Cancelled, n, cancelled)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, before)
}

// TestCloseCancelsRunning: Close with a context that has ended cancels the
// running requests at once, reports it, and leaves no goroutine.
func TestCloseCancelsRunning(t *testing.T) {
	s := loadStories(t, refBackend)
	before := runtime.NumGoroutine()
	e, err := New(s.m, s.tok, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	prompt := s.encode(t, "Once upon a time")
	var hs []*Handle
	for range 4 {
		r := greedy(prompt, 100)
		r.IgnoreEOS = true
		h, err := e.Submit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	// Wait for the first token of the first request, so that requests run.
	first, ok := <-hs[0].Events
	if !ok || first.Done {
		t.Fatalf("first event %+v", first)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with an ended context: %v, want context.Canceled", err)
	}
	for i, h := range hs {
		o := collect(t, h)
		if o.done.FinishReason != FinishCancelled && o.done.FinishReason != FinishLength {
			t.Errorf("request %d: finish %q", i, o.done.FinishReason)
		}
	}
	waitGoroutines(t, before)
}

// TestStartContext: ending Start's context stops the engine like Close.
func TestStartContext(t *testing.T) {
	s := loadStories(t, refBackend)
	e, err := New(s.m, s.tok, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.Start(ctx)
	r := greedy(s.encode(t, "Once upon a time"), 100)
	r.IgnoreEOS = true
	h, err := e.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	<-h.Events
	cancel()
	o := collect(t, h)
	if o.done.FinishReason != FinishCancelled && o.done.FinishReason != FinishLength {
		t.Errorf("finish %q", o.done.FinishReason)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Errorf("Close after Start's context ended: %v", err)
	}
	_, err = e.Submit(context.Background(), r)
	isErr(t, "submit after Start's context ended", err, ErrClosed)
}

// TestSlowReader: a reader that takes nothing is cancelled with
// ErrSlowReader instead of holding up the engine, and still gets a Done
// event and a closed channel.
func TestSlowReader(t *testing.T) {
	s := loadStories(t, refBackend)
	cfg := DefaultConfig()
	cfg.EventBuffer = 1
	cfg.SlowReaderTimeout = 1 // nanosecond: the first full channel counts as stalled
	e := startEngine(t, s, cfg)
	prompt := s.encode(t, "Once upon a time")
	r := greedy(prompt, 80)
	r.IgnoreEOS = true
	stalled, err := e.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	// Close drains: it returns once the stalled request has been cancelled
	// and its Done event delivered.
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	so := collect(t, stalled)
	if so.done.FinishReason != FinishCancelled || !errors.Is(so.done.Err, ErrSlowReader) {
		t.Errorf("stalled reader: %s %v, want cancelled with ErrSlowReader", so.done.FinishReason, so.done.Err)
	}
	if st, _ := e.Status(stalled.ID); st.State != StateCancelled || !strings.Contains(st.Error, "too slow") {
		t.Errorf("status %+v", st)
	}
}

// TestStatusAndCancel follows one request through Status and Cancel.
func TestStatusAndCancel(t *testing.T) {
	s := loadStories(t, refBackend)
	e := startEngine(t, s, Config{StatusHistory: 2})
	prompt := s.encode(t, "Once upon a time")
	r := greedy(prompt, 100)
	r.IgnoreEOS = true
	h, err := e.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := <-h.Events; !ok {
		t.Fatal("no first event")
	}
	if st, ok := e.Status(h.ID); !ok || st.State == StateFinished || st.Created.IsZero() {
		t.Errorf("status while running: %+v", st)
	}
	if err := e.Cancel(h.ID); err != nil {
		t.Fatal(err)
	}
	o := collect(t, h)
	st, ok := e.Status(h.ID)
	if !ok || st.State != StateCancelled || st.FinishReason != FinishCancelled || st.Finished.IsZero() || st.FirstToken.IsZero() ||
		st.GeneratedTokens != o.done.Usage.CompletionTokens || st.PromptTokens != len(prompt) {
		t.Errorf("status after cancel: %+v (usage %+v)", st, o.done.Usage)
	}
	if err := e.Cancel(h.ID); err != nil {
		t.Errorf("cancelling a finished request: %v", err)
	}
	// The history keeps the last 2.
	var ids []string
	for range 3 {
		h, err := e.Submit(context.Background(), greedy(prompt, 2))
		if err != nil {
			t.Fatal(err)
		}
		collect(t, h)
		ids = append(ids, h.ID)
	}
	if _, ok := e.Status(h.ID); ok {
		t.Error("the oldest status was not forgotten")
	}
	for _, id := range ids[1:] {
		if st, ok := e.Status(id); !ok || st.State != StateFinished || st.GeneratedTokens != 2 {
			t.Errorf("status %s: %+v", id, st)
		}
	}
	isErr(t, "cancel a forgotten id", e.Cancel(h.ID), ErrNotFound)
}

// TestConfig checks defaults and rejected values.
func TestConfig(t *testing.T) {
	s := loadStories(t, refBackend)
	e, err := New(s.m, s.tok, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := e.Config()
	if c.MaxBatchTokens != DefaultMaxBatchTokens || c.MaxSeqs != DefaultMaxSeqs || c.CtxLen != s.m.HParams.NCtxTrain ||
		c.KVCacheTokens != c.CtxLen*c.MaxSeqs || !c.EnablePrefixCache {
		t.Errorf("defaults %+v", c)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A byte budget caps the default pool.
	perToken := int64(s.m.HParams.NLayer * (s.m.HParams.KDim() + s.m.HParams.VDim()) * 4)
	e, err = New(s.m, s.tok, Config{KVCacheBytes: 1000 * perToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Config().KVCacheTokens; got != 1000 {
		t.Errorf("KVCacheTokens %d under a 1000-token budget", got)
	}
	e.Close(context.Background())
	for _, bad := range []Config{{MaxSeqs: -1}, {BlockSize: -2}, {KVCacheBytes: -1}, {SlowReaderTimeout: -1}} {
		if _, err := New(s.m, s.tok, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		} else {
			t.Logf("%v", err)
		}
	}
}
