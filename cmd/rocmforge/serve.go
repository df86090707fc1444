package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rocmforge/rocmforge/chat"
	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/server"
)

// runServe serves a model over the OpenAI-compatible HTTP API until SIGINT
// or SIGTERM.
func runServe(args []string, _, stderr io.Writer) error {
	return serveUntilSignal(args, stderr, serveHooks{})
}

// serveUntilSignal is serve until SIGINT or SIGTERM.
func serveUntilSignal(args []string, stderr io.Writer, hooks serveHooks) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, stderr, hooks)
}

// serveHooks let tests follow serve: listening is called with the address
// once the listener is open and before the model loads; ready once the
// model is served.
type serveHooks struct {
	listening func(addr string)
	ready     func()
}

func serve(ctx context.Context, args []string, stderr io.Writer, hooks serveHooks) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelRef := fs.String("m", "", "model: `FILE.gguf` or hf:OWNER/REPO/PATH.gguf")
	host := fs.String("host", "127.0.0.1", "listen on this `address`")
	port := fs.Int("port", 8080, "listen on this `port` (0: any free one)")
	apiKey := fs.String("api-key", os.Getenv("ROCMFORGE_API_KEY"), "require `KEY` as a bearer token (default $ROCMFORGE_API_KEY)")
	corsOrigin := fs.String("cors-origin", "", "allow browser requests from `ORIGIN` (* for any); off by default")
	modelName := fs.String("model-name", "", "the model's `name` in the API (default the file name without .gguf)")
	maxBatch := fs.Int("max-batch-tokens", engine.DefaultMaxBatchTokens, "token budget of one engine step, in `tokens`")
	maxPrefill := fs.Int("max-prefill-tokens", 0, "while sequences decode, a step computes at most `N` prompt tokens besides them (0: adaptive, see --target-step-latency)")
	targetStep := fs.Duration("target-step-latency", engine.DefaultTargetStepLatency, "adaptive prefill cap: while sequences decode, a step takes the prompt tokens that a cost model measured on recent steps predicts to fit in this `duration`, but at least as many as it has decoding sequences and at least 64 (0: off, prompts fill --max-batch-tokens)")
	maxSeqs := fs.Int("max-seqs", engine.DefaultMaxSeqs, "at most `N` sequences generate at once")
	maxQueue := fs.Int("max-queue", engine.DefaultMaxQueue, "at most `N` requests wait; more get 503")
	kvTokens := fs.Int("kv-cache-tokens", 0, "KV cache size in `tokens` (0: context x max-seqs, within 4 GiB)")
	kvTypeName := fs.String("kv-type", "f16", kvTypeUsage)
	nCtx := fs.Int("ctx", 0, fmt.Sprintf("context length per request in `tokens` (0: the model's training context, at most %d)", defaultMaxCtx))
	noPrefix := fs.Bool("no-prefix-cache", false, "do not reuse the KV blocks of shared prompt prefixes")
	backend := fs.String("backend", defaultBackend, backendUsage)
	threads := fs.Int("threads", 0, "compute `threads`; 0 = one per CPU")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, wait this long for requests in flight before cancelling them")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to `FILE`, ended at shutdown")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rocmforge serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--cors-origin ORIGIN] [--max-batch-tokens N] [--max-prefill-tokens N] [--target-step-latency D] [--max-seqs N] [--max-queue N] [--kv-cache-tokens N] [--kv-type f16|q8_0|f32] [--ctx N] [--backend auto|cuda|hip|cpu|ref] [--threads N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: serve takes only flags", fs.Args())
	}
	if *modelRef == "" {
		return errors.New("no model: give -m MODEL.gguf or -m hf:OWNER/REPO/FILE.gguf")
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("--port %d: want 0 to 65535", *port)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"--max-batch-tokens", *maxBatch}, {"--max-seqs", *maxSeqs}, {"--max-queue", *maxQueue}} {
		if f.v < 1 {
			return fmt.Errorf("%s %d: want >= 1", f.name, f.v)
		}
	}
	if *maxPrefill < 0 {
		return fmt.Errorf("--max-prefill-tokens %d: want >= 0 (0 = adaptive)", *maxPrefill)
	}
	if *targetStep < 0 {
		return fmt.Errorf("--target-step-latency %v: want >= 0 (0 = off)", *targetStep)
	}
	if *kvTokens < 0 {
		return fmt.Errorf("--kv-cache-tokens %d: want >= 0 (0 = default)", *kvTokens)
	}
	kvType, err := parseKVType(*kvTypeName)
	if err != nil {
		return err
	}
	if *nCtx < 0 {
		return fmt.Errorf("--ctx %d: want >= 0 (0 = the model's)", *nCtx)
	}
	if *shutdownTimeout < 0 {
		return fmt.Errorf("--shutdown-timeout %v: want >= 0", *shutdownTimeout)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}

	// Listen first, so that /health answers 503 while the model loads.
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	srv := server.New(server.Config{APIKey: *apiKey, CORSOrigin: *corsOrigin, Logger: log})
	// Request contexts derive from base: cancelling it cancels every
	// request still running when the shutdown timeout is up.
	base, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "auth", *apiKey != "", "cors", *corsOrigin)
	if hooks.listening != nil {
		hooks.listening(ln.Addr().String())
	}

	eng, closeModel, err := loadServed(ctx, srv, serveModel{
		ref: *modelRef, name: *modelName, backend: *backend, threads: *threads, nCtx: *nCtx,
		cfg: engine.Config{MaxBatchTokens: *maxBatch, MaxPrefillTokens: *maxPrefill, TargetStepLatency: stepTarget(*targetStep),
			MaxSeqs: *maxSeqs, MaxQueue: *maxQueue, KVCacheTokens: *kvTokens, KVType: kvType, EnablePrefixCache: !*noPrefix,
			Logger: log, OnStep: srv.ObserveStep},
	}, stderr, log)
	if err != nil {
		shutdownHTTP(hs, cancelRequests, 0, log)
		return err
	}
	defer closeModel()
	if hooks.ready != nil {
		hooks.ready()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", shutdownTimeout.String())
	case err := <-served:
		eng.Close(context.Background())
		return fmt.Errorf("http server: %w", err)
	}
	srv.SetDraining()
	shutdownHTTP(hs, cancelRequests, *shutdownTimeout, log)
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eng.Close(closeCtx); err != nil {
		log.Warn("engine close", "err", err)
	}
	log.Info("stopped")
	return nil
}

// shutdownHTTP stops accepting connections and waits up to timeout for the
// requests in flight; then it cancels those left (which cancels their
// generation) and waits for their handlers to return.
func shutdownHTTP(hs *http.Server, cancelRequests context.CancelFunc, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(ctx); err == nil {
		return
	}
	log.Warn("shutdown timeout: cancelling the requests still running")
	cancelRequests()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := hs.Shutdown(ctx2); err != nil {
		log.Warn("closing connections that did not finish", "err", err)
		hs.Close()
	}
}

// serveModel says which model to serve and how.
type serveModel struct {
	ref, name, backend string
	threads, nCtx      int
	cfg                engine.Config
}

// loadServed loads the model, starts its engine and hands both to srv. The
// returned function stops the engine's model and frees the model.
func loadServed(ctx context.Context, srv *server.Server, o serveModel, stderr io.Writer, log *slog.Logger) (*engine.Engine, func(), error) {
	start := time.Now()
	budget := o.cfg.KVCacheBytes
	if budget == 0 {
		budget = engine.DefaultKVCacheBytes
	}
	l, err := loadModel(ctx, loadOptions{ref: o.ref, backend: o.backend, threads: o.threads, tokenizer: true,
		kvTokens: o.cfg.KVCacheTokens, kvType: o.cfg.KVType, kvBudget: budget}, stderr)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := chat.FromGGUF(l.file, l.tok)
	if err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("%s: %w", l.path, err)
	}
	ctxLen := o.nCtx
	if ctxLen == 0 {
		ctxLen = l.m.HParams.NCtxTrain
		if ctxLen <= 0 || ctxLen > defaultMaxCtx {
			ctxLen = defaultMaxCtx
		}
	}
	o.cfg.CtxLen = ctxLen
	eng, err := engine.New(l.m, l.tok, o.cfg)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	eng.Start(context.Background())
	name := o.name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(l.path), ".gguf")
	}
	srv.SetModel(&server.Model{ID: name, Engine: eng, Tokenizer: l.tok, Template: tmpl, ContextLength: ctxLen, Created: time.Now()})
	log.Info("model ready", "model", name, "path", l.path, "arch", l.m.HParams.Arch, "backend", l.be.Name(),
		"threads", backendThreads(l.be), "ctx", ctxLen, "kv_cache_tokens", eng.Config().KVCacheTokens, "kv_type", eng.Config().KVType.String(),
		"chat_template", templateKind(tmpl), "load_time", time.Since(start).Round(time.Millisecond).String())
	return eng, l.Close, nil
}

// stepTarget maps --target-step-latency to engine.Config.TargetStepLatency,
// where 0 is the default and negative is off.
func stepTarget(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// startCPUProfile starts a CPU profile into path; the returned function
// ends it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func templateKind(t *chat.Template) string {
	if t.Fallback() {
		return "chatml (fallback)"
	}
	return "model"
}
