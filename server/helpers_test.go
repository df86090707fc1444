package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/chat"
	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// testTokenizer returns stories260K's tokenizer and chat template.
func testTokenizer(t testing.TB) (*tokenizer.Tokenizer, *chat.Template) {
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
	return tok, tmpl
}

// fakeEngine stands in for the engine where a test is about the HTTP layer:
// it answers each request with the tokens of its prompt, one per event, up
// to MaxTokens. Submit fails with err when set; when refuse is set, any
// Submit fails the test (the request should never have reached the engine).
type fakeEngine struct {
	t      testing.TB
	err    error
	refuse bool

	mu      sync.Mutex
	submits int
}

func (f *fakeEngine) Submit(ctx context.Context, r engine.Request) (*engine.Handle, error) {
	f.mu.Lock()
	f.submits++
	f.mu.Unlock()
	if f.refuse {
		f.t.Errorf("the engine got a request: %+v", r)
	}
	if f.err != nil {
		return nil, f.err
	}
	ch := make(chan engine.Event, len(r.Prompt)+1)
	n := 0
	for _, tok := range r.Prompt {
		if n == r.MaxTokens {
			break
		}
		ch <- engine.Event{Token: tok, Text: "x"}
		n++
	}
	reason := "stop"
	if n == r.MaxTokens {
		reason = "length"
	}
	ch <- engine.Event{Done: true, FinishReason: reason, Usage: engine.Usage{PromptTokens: len(r.Prompt), CompletionTokens: n}}
	close(ch)
	return &engine.Handle{ID: "fake", Events: ch}, nil
}

func (f *fakeEngine) Cancel(string) error                 { return engine.ErrNotFound }
func (f *fakeEngine) Status(string) (engine.Status, bool) { return engine.Status{}, false }
func (f *fakeEngine) Stats() engine.Stats                 { return engine.Stats{} }

// discardLogger keeps request logs out of test output.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newFakeServer serves stories260K's tokenizer over a fake engine.
func newFakeServer(t *testing.T, cfg Config, eng *fakeEngine) (*Server, *httptest.Server) {
	t.Helper()
	tok, tmpl := testTokenizer(t)
	eng.t = t
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	s := New(cfg)
	s.SetModel(&Model{ID: "stories260K", Engine: eng, Tokenizer: tok, Template: tmpl, ContextLength: 128, Created: time.Unix(1700000000, 0)})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

// post sends body (a string or a value to encode) as JSON and returns the
// response with its body read.
func post(t *testing.T, url string, body any, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(http.MethodPost, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// errorBody is an OpenAI error response.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// wantError checks that a response is an OpenAI error with the given status,
// type and (when not "") code.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, typ, code string) errorBody {
	t.Helper()
	var e errorBody
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Error.Type != typ {
		t.Errorf("error type %q, want %q (message %q)", e.Error.Type, typ, e.Error.Message)
	}
	if code != "" && (e.Error.Code == nil || *e.Error.Code != code) {
		t.Errorf("error code %v, want %q (message %q)", e.Error.Code, code, e.Error.Message)
	}
	if e.Error.Message == "" {
		t.Error("error without a message")
	}
	return e
}

// newHTTPTest serves h on a real listener for the test and returns its URL.
func newHTTPTest(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// strp prints an optional string.
func strp(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}
