package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/chat"
	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// gatedBackend is the reference backend with a gate on Embedding, which
// every forward pass calls first: while the gate is shut, the engine's
// step waits, so that a test can act on a request that has certainly not
// finished.
type gatedBackend struct {
	compute.Backend
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	entered chan struct{} // gets a value when a step waits at the gate
}

func (g *gatedBackend) Embedding(dst, table *compute.Tensor, ids []int32) error {
	g.mu.Lock()
	gate, entered := g.gate, g.entered
	g.mu.Unlock()
	if gate != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-gate
	}
	return g.Backend.Embedding(dst, table, ids)
}

// shut makes the next steps wait; the returned channel gets a value when
// one does.
func (g *gatedBackend) shut() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
	g.entered = make(chan struct{}, 1)
	return g.entered
}

// open lets the waiting step and all later ones through.
func (g *gatedBackend) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

// realServer is stories260K on the real engine behind a real listener.
type realServer struct {
	s    *Server
	ts   *httptest.Server
	eng  *engine.Engine
	be   *gatedBackend
	tok  *tokenizer.Tokenizer
	url  string // base URL of the API (…/v1)
	root string // the server's root URL
}

// newRealServer starts the engine with cfg (zero fields: engine defaults,
// with the prefix cache on) and a server with scfg.
func newRealServer(t testing.TB, cfg engine.Config, scfg Config) *realServer {
	t.Helper()
	f, err := gguf.Open(shareddata.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	tmpl, err := chat.FromGGUF(f, tok)
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	be := &gatedBackend{Backend: compute.NewReference()}
	m, err := model.Load(f, be)
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	if !cfg.EnablePrefixCache {
		def := engine.DefaultConfig()
		cfg.EnablePrefixCache = def.EnablePrefixCache
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if scfg.Logger == nil {
		scfg.Logger = discardLogger()
	}
	s := New(scfg)
	cfg.OnStep = s.ObserveStep
	eng, err := engine.New(m, tok, cfg)
	if err != nil {
		m.Close()
		f.Close()
		t.Fatal(err)
	}
	eng.Start(context.Background())
	s.SetModel(&Model{ID: "stories260K", Engine: eng, Tokenizer: tok, Template: tmpl, ContextLength: eng.Config().CtxLen, Created: time.Now()})
	ts := httptest.NewServer(s.Handler())
	rs := &realServer{s: s, ts: ts, eng: eng, be: be, tok: tok, url: ts.URL + "/v1", root: ts.URL}
	t.Cleanup(func() {
		be.open()
		ts.Close()
		if err := eng.Close(context.Background()); err != nil {
			t.Errorf("engine close: %v", err)
		}
		m.Close()
		f.Close()
	})
	return rs
}

// close stops the HTTP server (waiting for its handlers) and the engine, for
// tests that check what is left afterwards.
func (rs *realServer) close(t testing.TB) {
	t.Helper()
	rs.be.open()
	rs.ts.Close()
	if err := rs.eng.Close(context.Background()); err != nil {
		t.Errorf("engine close: %v", err)
	}
}

// ourGoroutines lists the goroutines, other than the caller's, running code
// of the server or engine packages.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // the caller
		}
		if strings.Contains(g, "rocmforge/rocmforge/server.") || strings.Contains(g, "rocmforge/rocmforge/engine.") {
			out = append(out, g)
		}
	}
	return out
}

// newClient returns an HTTP client of its own, whose idle connections the
// test can close.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
