// Package server is ROCmForge's OpenAI-compatible HTTP API: chat and text
// completions (streamed as server-sent events or whole), the model list,
// request status and cancellation, tokenize and detokenize, health and
// Prometheus metrics.
//
// The server never runs model code on a request goroutine: it validates and
// tokenizes, submits to the engine and relays the engine's events. A request
// goroutine's context is the engine request's, so a client that goes away
// cancels its generation.
//
// A Server starts without a model (health 503, other endpoints 503) so that it
// can listen while the model loads; SetModel makes it ready.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rocmforge/rocmforge/chat"
	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 8 << 20

// Engine is what the server needs of the engine; *engine.Engine has it.
type Engine interface {
	Submit(ctx context.Context, r engine.Request) (*engine.Handle, error)
	Cancel(id string) error
	Status(id string) (engine.Status, bool)
	Stats() engine.Stats
}

// Model is a loaded model as the server serves it.
type Model struct {
	// ID is the model's name in /v1/models and in requests.
	ID        string
	Engine    Engine
	Tokenizer *tokenizer.Tokenizer
	Template  *chat.Template
	// ContextLength bounds prompt plus completion tokens of a request.
	ContextLength int
	// Created is reported as the model's creation time.
	Created time.Time
}

// Config are the server's settings.
type Config struct {
	// APIKey, when set, must come as "Authorization: Bearer KEY" on every
	// request but /health.
	APIKey string
	// CORSOrigin, when set, allows browser requests from that origin ("*" for
	// any) and answers their preflight requests.
	CORSOrigin string
	// MaxBodyBytes limits request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// Logger gets one line per request (slog.Default() when nil).
	Logger *slog.Logger
	// RetainRequests is how many finished requests /v1/requests/{id} still
	// knows (1024 when 0).
	RetainRequests int
}

// Server is the HTTP API. Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	model    atomic.Pointer[Model]
	draining atomic.Bool
	metrics  *metrics
	requests *registry
	handler  http.Handler
}

// New returns a server without a model: it answers /health with 503 until
// SetModel.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RetainRequests <= 0 {
		cfg.RetainRequests = 1024
	}
	s := &Server{cfg: cfg, log: cfg.Logger, requests: newRegistry(cfg.RetainRequests)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.metrics = newMetrics(s)
	s.handler = s.routes()
	return s
}

// SetModel makes the server ready to serve m.
func (s *Server) SetModel(m *Model) { s.model.Store(m) }

// ObserveStep records an engine step in the batch and step-time
// histograms of /metrics. Pass it as the engine's Config.OnStep; it is
// cheap and safe for concurrent use.
func (s *Server) ObserveStep(st engine.StepStats) { s.metrics.step(st) }

// SetDraining marks the server as shutting down: /health answers 503 so that
// load balancers stop sending requests.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	route := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		// The same path with another method: a JSON 405 rather than the
		// mux's plain-text one.
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", method)
			writeError(w, newAPIError(http.StatusMethodNotAllowed, typeInvalidRequest, "", "method_not_allowed",
				"%s %s: method not allowed (want %s)", r.Method, r.URL.Path, method))
		})
	}
	route("POST", "/v1/chat/completions", s.withModel(s.handleChat))
	route("POST", "/v1/completions", s.withModel(s.handleCompletion))
	route("GET", "/v1/models", s.withModel(s.handleModels))
	route("GET", "/v1/models/{model}", s.withModel(s.handleModel))
	route("GET", "/v1/requests/{id}", s.withModel(s.handleStatus))
	route("POST", "/v1/requests/{id}/cancel", s.withModel(s.handleCancel))
	route("POST", "/tokenize", s.withModel(s.handleTokenize))
	route("POST", "/detokenize", s.withModel(s.handleDetokenize))
	route("GET", "/health", s.handleHealth)
	route("GET", "/metrics", s.metrics.handler().ServeHTTP)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newAPIError(http.StatusNotFound, typeNotFound, "", "not_found", "no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s.observe(s.cors(s.auth(s.limitBody(mux))))
}

// withModel answers 503 while the model loads, and otherwise hands the
// handler the model.
func (s *Server) withModel(h func(http.ResponseWriter, *http.Request, *Model)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := s.model.Load()
		if m == nil {
			e := newAPIError(http.StatusServiceUnavailable, typeUnavailable, "", "model_loading", "the model is still loading")
			e.retryAfter = 5
			writeError(w, e)
			return
		}
		h(w, r, m)
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	case s.model.Load() == nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// auth checks the API key, in constant time, on everything but /health and
// CORS preflight requests (which browsers send without credentials).
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.APIKey == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" || s.preflight(r) {
			next.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rocmforge"`)
			code := "invalid_api_key"
			if len(got) == 0 {
				code = "missing_api_key"
			}
			writeError(w, newAPIError(http.StatusUnauthorized, typeAuthentication, "", code,
				"missing or incorrect API key: send the header Authorization: Bearer KEY"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// preflight reports whether r is a CORS preflight request the server
// answers.
func (s *Server) preflight(r *http.Request) bool {
	return s.cfg.CORSOrigin != "" && r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// cors adds the CORS headers for the configured origin and answers
// preflight requests.
func (s *Server) cors(next http.Handler) http.Handler {
	if s.cfg.CORSOrigin == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (s.cfg.CORSOrigin == "*" || origin == s.cfg.CORSOrigin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", s.cfg.CORSOrigin)
			if s.cfg.CORSOrigin != "*" {
				h.Add("Vary", "Origin")
			}
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
			if s.preflight(r) {
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				allow := "Authorization, Content-Type"
				if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
					allow = req
				}
				h.Set("Access-Control-Allow-Headers", allow)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// newID returns a random request id with a prefix: 24 hex digits, enough
// that ids never collide in practice.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}

// idPrefixes are the id prefixes of the endpoints whose responses carry an
// id in the body, as OpenAI's do.
var idPrefixes = map[string]string{
	"/v1/chat/completions": "chatcmpl-",
	"/v1/completions":      "cmpl-",
}

// info is what the logging middleware learns about a request from its
// handler.
type info struct {
	id               string
	promptTokens     int
	completionTokens int
}

type infoKey struct{}

// requestInfo returns the request's info (set by observe).
func requestInfo(r *http.Request) *info {
	if in, ok := r.Context().Value(infoKey{}).(*info); ok {
		return in
	}
	return &info{id: newID("req-")}
}

// observe gives every request an id (the X-Request-Id header), counts it in
// the metrics and logs one line when it ends.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		prefix, ok := idPrefixes[r.URL.Path]
		if !ok {
			prefix = "req-"
		}
		in := &info{id: newID(prefix)}
		w.Header().Set("X-Request-Id", in.id)
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, in)))
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		dur := time.Since(start)
		s.metrics.httpRequest(r.URL.Path, status)
		attrs := []slog.Attr{
			slog.String("id", in.id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", dur),
		}
		if in.promptTokens > 0 || in.completionTokens > 0 {
			attrs = append(attrs, slog.Int("prompt_tokens", in.promptTokens), slog.Int("completion_tokens", in.completionTokens))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// recorder notes the status a handler sends and passes flushes on, for
// server-sent events.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
