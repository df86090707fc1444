// Package loadgen measures an OpenAI-compatible server under load: it runs
// a number of clients in parallel, each sending /v1/completions requests one
// after another (a closed loop), and reports the requests per second, the
// aggregate generation throughput and the time-to-first-token and
// inter-token latency percentiles.
//
// Requests decode greedily (temperature 0, unless Config.Temperature says
// otherwise) with ignore_eos, so that each
// generates max_tokens tokens where the server honours it; the token
// counts come from the responses' usage in any case. Prompts are exactly
// PromptTokens token ids, sized with the server's /tokenize endpoint and
// made of different texts per request, so that the prefix cache does not
// skip their computation (unless SharedPrefix asks for a common prefix).
//
// A Generator talks only to the server at its base URL: it follows no
// redirects and uses no proxy.
package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says where to send load and what requests to send.
type Config struct {
	// URL is the server's base URL (http://HOST:PORT).
	URL string
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// Model is the model field of requests; empty: the server's first
	// model.
	Model string
	// PromptTokens is the length of every prompt, in tokens (>= 1).
	PromptTokens int
	// SharedPrefix is how many of the prompt tokens are the same in every
	// request (0: none; less than PromptTokens).
	SharedPrefix int
	// MaxTokens is max_tokens of every request (>= 1).
	MaxTokens int
	// Stream asks for server-sent events; without it there is no TTFT or
	// inter-token latency, only whole-request latency.
	Stream bool
	// NoIgnoreEOS leaves out ignore_eos, so that requests may stop early.
	NoIgnoreEOS bool
	// Temperature of every request (0, the default: greedy; 1 is
	// OpenAI's default and makes the server sample every token on the
	// host).
	Temperature float64
	// TopK is top_k of every request (0, the default: not sent, the
	// server's default, off). With a temperature, a top_k lets a server
	// with a device top-k sample from each row's best tokens.
	TopK int
	// RequestTimeout bounds one request (0: 10 minutes).
	RequestTimeout time.Duration
	// Seed makes the prompt texts (the same seed gives the same prompts).
	Seed uint64
	// HTTPClient is the client to use; nil: one made for the purpose.
	HTTPClient *http.Client
	// Now is the clock (nil: time.Now); tests inject a fake one.
	Now func() time.Time
}

// Level is one measurement: Concurrency clients each send requests one
// after another until each has sent RequestsPerClient (when > 0) or
// Duration has passed since the start (when > 0), whichever comes first.
// Requests in flight when Duration is up finish and count.
type Level struct {
	Concurrency       int
	RequestsPerClient int
	Duration          time.Duration
}

// Generator sends load to one server.
type Generator struct {
	cfg     Config
	c       *client
	model   ModelInfo
	prompts *prompts
	next    atomic.Uint64 // request counter across levels: every prompt differs
}

// DefaultRequestTimeout bounds a request when Config.RequestTimeout is 0.
const DefaultRequestTimeout = 10 * time.Minute

// New checks cfg, asks the server for its model and makes the shared prompt
// prefix. It fails when the prompt and completion cannot fit the model's
// context.
func New(ctx context.Context, cfg Config) (*Generator, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("loadgen: URL %q: want http://HOST:PORT", cfg.URL)
	}
	switch {
	case cfg.PromptTokens < 1:
		return nil, fmt.Errorf("loadgen: PromptTokens %d: want >= 1", cfg.PromptTokens)
	case cfg.MaxTokens < 1:
		return nil, fmt.Errorf("loadgen: MaxTokens %d: want >= 1", cfg.MaxTokens)
	case cfg.SharedPrefix < 0 || cfg.SharedPrefix >= cfg.PromptTokens:
		return nil, fmt.Errorf("loadgen: SharedPrefix %d: want 0 to PromptTokens-1 (%d)", cfg.SharedPrefix, cfg.PromptTokens-1)
	case cfg.RequestTimeout < 0:
		return nil, fmt.Errorf("loadgen: RequestTimeout %v: want >= 0", cfg.RequestTimeout)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = NewHTTPClient(0)
	}
	g := &Generator{cfg: cfg, c: &client{base: strings.TrimRight(cfg.URL, "/"), apiKey: cfg.APIKey, http: hc, now: cfg.Now}}
	if g.model, err = g.c.models(ctx); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if cfg.Model != "" {
		g.model.ID = cfg.Model
	}
	if n := g.model.ContextLength; n > 0 && cfg.PromptTokens+cfg.MaxTokens > n {
		return nil, fmt.Errorf("loadgen: %d prompt tokens + %d max tokens = %d, more than the model's context of %d tokens",
			cfg.PromptTokens, cfg.MaxTokens, cfg.PromptTokens+cfg.MaxTokens, n)
	}
	if g.prompts, err = newPrompts(ctx, g.c, cfg.Seed, cfg.PromptTokens, cfg.SharedPrefix); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return g, nil
}

// NewHTTPClient returns a client for loadgen's use: keeps up to conns
// connections open (so that clients do not reconnect between requests),
// uses no proxy and follows no redirect.
func NewHTTPClient(conns int) *http.Client {
	if conns < 64 {
		conns = 64
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Model is the served model as the server described it.
func (g *Generator) Model() ModelInfo { return g.model }

// Run measures one level. It returns an error only for a level it could
// not run (bad arguments, a prompt the server would not tokenize); failed
// requests are counted in the result.
func (g *Generator) Run(ctx context.Context, lv Level) (Result, error) {
	if lv.Concurrency < 1 {
		return Result{}, fmt.Errorf("loadgen: concurrency %d: want >= 1", lv.Concurrency)
	}
	if lv.RequestsPerClient < 0 || lv.Duration < 0 {
		return Result{}, fmt.Errorf("loadgen: requests per client %d and duration %v: want >= 0", lv.RequestsPerClient, lv.Duration)
	}
	if lv.RequestsPerClient == 0 && lv.Duration == 0 {
		return Result{}, errors.New("loadgen: a level needs a number of requests per client or a duration")
	}
	// With a known count, make every prompt first, so that tokenizing
	// adds no load while the level runs.
	var ready [][]int32
	first := g.next.Load()
	if lv.RequestsPerClient > 0 {
		n := lv.Concurrency * lv.RequestsPerClient
		ready = make([][]int32, n)
		for i := range ready {
			p, err := g.prompts.get(ctx, first+uint64(i))
			if err != nil {
				return Result{}, fmt.Errorf("loadgen: prompt %d: %w", i, err)
			}
			ready[i] = p
		}
		g.next.Add(uint64(n))
	}

	var (
		mu       sync.Mutex
		records  []Record
		firstErr error
		wg       sync.WaitGroup
	)
	start := g.cfg.Now()
	var deadline time.Time
	if lv.Duration > 0 {
		deadline = start.Add(lv.Duration)
	}
	for client := range lv.Concurrency {
		wg.Go(func() {
			for k := 0; lv.RequestsPerClient == 0 || k < lv.RequestsPerClient; k++ {
				if ctx.Err() != nil || (!deadline.IsZero() && !g.cfg.Now().Before(deadline)) {
					return
				}
				var prompt []int32
				if ready != nil {
					prompt = ready[client*lv.RequestsPerClient+k]
				} else {
					p, err := g.prompts.get(ctx, g.next.Add(1)-1)
					if err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
						return
					}
					prompt = p
				}
				rec := g.one(ctx, prompt)
				mu.Lock()
				records = append(records, rec)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := g.cfg.Now().Sub(start)
	if firstErr != nil {
		return Result{}, fmt.Errorf("loadgen: making a prompt: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	return Summarize(lv.Concurrency, records, elapsed, g.cfg.MaxTokens), nil
}

// one sends one request with prompt.
func (g *Generator) one(ctx context.Context, prompt []int32) Record {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	body := completionRequest{
		Model:       g.model.ID,
		Prompt:      prompt,
		MaxTokens:   g.cfg.MaxTokens,
		Temperature: g.cfg.Temperature,
		TopK:        g.cfg.TopK,
		IgnoreEOS:   !g.cfg.NoIgnoreEOS,
		Stream:      g.cfg.Stream,
	}
	if g.cfg.Stream {
		body.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return g.c.complete(ctx, body)
}
