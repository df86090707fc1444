package engine

import (
	"context"
	"errors"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/sample"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// sharedDir locates ../shared next to the repository root (the directory
// holding go.mod), or ROCMFORGE_SHARED, or skips.
func sharedDir(t testing.TB) string {
	t.Helper()
	return shareddata.Dir(t)
}

// stories is the stories260K model loaded on one backend.
type stories struct {
	m   *model.Model
	tok *tokenizer.Tokenizer
}

func refBackend() compute.Backend { return compute.NewReference() }

// loadStories loads stories260K on a fresh backend from newBackend. Each
// call gives an independent Model (a Model runs one forward pass at a time,
// so an engine and a reference Session need one each).
func loadStories(t testing.TB, newBackend func() compute.Backend) *stories {
	t.Helper()
	path := filepath.Join(sharedDir(t), "models", "stories260K.gguf")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("model missing: %s", path)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	be := newBackend()
	if c, ok := be.(interface{ Close() }); ok {
		t.Cleanup(c.Close) // after the model's cleanup: cleanups run last first
	}
	m, err := model.Load(f, be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &stories{m: m, tok: tok}
}

func (s *stories) encode(t testing.TB, text string) []int32 {
	t.Helper()
	ids, err := s.tok.Encode(text, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// startEngine makes and starts an engine; it is closed at the end of the
// test (and must close cleanly).
func startEngine(t testing.TB, s *stories, cfg Config) *Engine {
	t.Helper()
	e, err := New(s.m, s.tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// output is everything a request produced.
type output struct {
	tokens   []int32
	logprobs []float32
	tops     [][]sample.TokenLogprob
	text     string
	done     Event
	events   int
}

// collect reads a handle's events to the end.
func collect(t testing.TB, h *Handle) output {
	t.Helper()
	var o output
	for ev := range h.Events {
		o.events++
		o.text += ev.Text
		if ev.Done {
			if ev.Token != -1 {
				t.Errorf("request %s: Done event has token %d, want -1", h.ID, ev.Token)
			}
			o.done = ev
			continue
		}
		if o.done.Done {
			t.Errorf("request %s: event after Done", h.ID)
		}
		o.tokens = append(o.tokens, ev.Token)
		o.logprobs = append(o.logprobs, ev.Logprob)
		o.tops = append(o.tops, ev.Top)
	}
	if !o.done.Done {
		t.Errorf("request %s: channel closed without a Done event", h.ID)
	}
	return o
}

// run submits one request and waits for its output.
func run(t testing.TB, e *Engine, r Request) output {
	t.Helper()
	h, err := e.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, h)
}

// greedy returns a request for greedy decoding of prompt.
func greedy(prompt []int32, maxTokens int) Request {
	p := sample.DefaultParams()
	p.Temperature = 0
	return Request{Prompt: prompt, MaxTokens: maxTokens, Params: p}
}

// sessionGreedy decodes greedily with a model.Session, the single-sequence
// path the engine must agree with: at most n tokens, stopping before an
// end-of-generation token unless ignoreEOS.
func sessionGreedy(t testing.TB, s *stories, prompt []int32, n int, ignoreEOS bool) []int32 {
	t.Helper()
	sess, err := model.NewSession(s.m, len(prompt)+n)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	logits, err := sess.Eval(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var out []int32
	for len(out) < n {
		tok := int32(0)
		for i, l := range logits {
			if l > logits[tok] {
				tok = int32(i)
			}
		}
		if !ignoreEOS && s.tok.IsEOG(tok) {
			break
		}
		out = append(out, tok)
		if len(out) == n {
			break
		}
		if logits, err = sess.Eval([]int32{tok}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// sameOutput reports how two outputs of one request differ, "" if they do
// not: tokens, logprobs, top logprobs, text and finish reason, exactly.
func sameOutput(got, want output) string {
	switch {
	case !slices.Equal(got.tokens, want.tokens):
		return "tokens differ"
	case !slices.Equal(got.logprobs, want.logprobs):
		return "logprobs differ"
	case !slices.EqualFunc(got.tops, want.tops, slices.Equal[[]sample.TokenLogprob]):
		return "top logprobs differ"
	case got.text != want.text:
		return "text differs"
	case got.done.FinishReason != want.done.FinishReason:
		return "finish reasons differ: " + got.done.FinishReason + " vs " + want.done.FinishReason
	}
	return ""
}

// waitGoroutines waits until no more than n goroutines run: goroutines that
// have been told to stop (context.AfterFunc callbacks, test readers) may
// take a moment to exit. It yields rather than sleeps at first.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; runtime.NumGoroutine() > n; i++ {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		if i < 1000 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// isErr fails the test unless err matches target.
func isErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	} else {
		t.Logf("%s: %v", what, err)
	}
}

// testPrompts are eight different story openings.
var testPrompts = []string{
	"Once upon a time",
	"The cat sat",
	"Lily and Ben",
	"One day, a little boy named Tim",
	"The sun was",
	"Mom said",
	"Sara had a red ball",
	"Once upon a time, there was a big dog",
}
