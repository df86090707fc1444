package loadgen

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/chat"
	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/server"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// startStories serves stories260K (reference backend, default engine
// settings with the prefix cache on) on a loopback listener and returns its
// URL.
func startStories(t *testing.T) string {
	t.Helper()
	f, err := gguf.Open(shareddata.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := chat.FromGGUF(f, tok)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(f, compute.NewReference())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := engine.DefaultConfig()
	cfg.Logger = quiet
	eng, err := engine.New(m, tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	eng.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	s := server.New(server.Config{APIKey: "loadgen-test", Logger: quiet})
	s.SetModel(&server.Model{ID: "stories260K", Engine: eng, Tokenizer: tok, Template: tmpl,
		ContextLength: eng.Config().CtxLen, Created: time.Now()})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close) // runs before the engine's close: handlers are done
	return ts.URL
}

// TestStories260K runs two short levels against the real server: every
// request succeeds with exactly the tokens asked for (ignore_eos), and the
// rates are positive.
func TestStories260K(t *testing.T) {
	url := startStories(t)
	ctx := context.Background()
	const prompt, gen = 32, 16
	g, err := New(ctx, Config{URL: url, APIKey: "loadgen-test", PromptTokens: prompt, MaxTokens: gen, Stream: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if m := g.Model(); m.ID != "stories260K" || m.ContextLength != 128 {
		t.Errorf("model %+v: want stories260K with context 128", m)
	}
	for _, c := range []int{1, 4} {
		r, err := g.Run(ctx, Level{Concurrency: c, RequestsPerClient: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("c=%d: %.1f req/s, %.0f gen tok/s, TTFT p50 %.2f ms, ITL p50 %.2f ms", c, r.RequestsPerSec, r.GenTokensPerSec, r.TTFT.P50, r.ITL.P50)
		n := 2 * c
		if r.Requests != n || r.Errors != 0 {
			t.Errorf("c=%d: %d requests, %d errors %q: want %d and none", c, r.Requests, r.Errors, r.ErrorSamples, n)
		}
		if r.PromptTokens != n*prompt || r.CompletionTokens != n*gen || r.ShortRequests != 0 {
			t.Errorf("c=%d: %d prompt and %d completion tokens, %d short: want %d, %d and 0",
				c, r.PromptTokens, r.CompletionTokens, r.ShortRequests, n*prompt, n*gen)
		}
		if r.CachedTokens != 0 {
			t.Errorf("c=%d: %d prompt tokens came from the prefix cache: the prompts should share no block", c, r.CachedTokens)
		}
		if r.GenTokensPerSec <= 0 || r.RequestsPerSec <= 0 || r.TTFT.N != n || r.ITL.N == 0 {
			t.Errorf("c=%d: %v req/s, %v tok/s, %d TTFT and %d ITL samples: want positive rates and samples", c, r.RequestsPerSec, r.GenTokensPerSec, r.TTFT.N, r.ITL.N)
		}
	}

	// A shared prefix of two 16-token blocks: after the first request, each
	// finds them in the prefix cache.
	g, err = New(ctx, Config{URL: url, APIKey: "loadgen-test", PromptTokens: prompt + 8, SharedPrefix: prompt, MaxTokens: 4, Stream: true, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Run(ctx, Level{Concurrency: 1, RequestsPerClient: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.CachedTokens != 2*prompt {
		t.Errorf("shared prefix: %d errors, %d cached tokens: want none and %d (2 requests x %d)", r.Errors, r.CachedTokens, 2*prompt, prompt)
	}
}
