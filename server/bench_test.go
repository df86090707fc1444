package server

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/engine"
)

// pacedEngine answers each request with n token events sent one at a time
// through an unbuffered channel: the stream never finds a second event
// ready, as at high concurrency where each step gives a stream one token.
type pacedEngine struct {
	fakeEngine
	n int
}

func (p *pacedEngine) Submit(ctx context.Context, r engine.Request) (*engine.Handle, error) {
	ch := make(chan engine.Event)
	go func() {
		defer close(ch)
		for range p.n {
			select {
			case ch <- engine.Event{Token: 5, Text: " tok"}:
			case <-ctx.Done():
				return
			}
		}
		ch <- engine.Event{Done: true, FinishReason: "length", Usage: engine.Usage{PromptTokens: len(r.Prompt), CompletionTokens: p.n}}
	}()
	return &engine.Handle{ID: "paced", Events: ch}, nil
}

// BenchmarkStreamTokens is the server's cost per streamed token, HTTP
// client included: one streamed completion of 64 tokens per op, from an
// engine that has all its events ready ("ready") or hands them over one at
// a time ("paced").
func BenchmarkStreamTokens(b *testing.B) {
	const tokens = 64
	for _, mode := range []string{"ready", "paced"} {
		b.Run(mode, func(b *testing.B) {
			tok, tmpl := testTokenizer(b)
			var eng Engine = &fakeEngine{t: b}
			prompt := strings.TrimSpace(strings.Repeat(" x", tokens))
			if mode == "paced" {
				eng = &pacedEngine{n: tokens}
				prompt = "Once"
			}
			s := New(Config{Logger: discardLogger()})
			s.SetModel(&Model{ID: "m", Engine: eng, Tokenizer: tok, Template: tmpl, ContextLength: 4096})
			ts := httptest.NewServer(s.Handler())
			b.Cleanup(ts.Close)
			url := ts.URL + "/v1/completions"
			body := `{"prompt":"` + prompt + `","max_tokens":` + "64" + `,"stream":true}`
			b.ReportAllocs()
			for b.Loop() {
				resp, err := http.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				sc := bufio.NewScanner(resp.Body)
				n := 0
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "data: {") {
						n++
					}
				}
				resp.Body.Close()
				if n < tokens {
					b.Fatalf("%d chunks, want at least %d", n, tokens)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
		})
	}
}
