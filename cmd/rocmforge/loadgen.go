package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rocmforge/rocmforge/loadgen"
)

// maxClients bounds --c: each client is a goroutine and a connection.
const maxClients = 1024

// loadgenReport is what `rocmforge loadgen --json` prints.
type loadgenReport struct {
	URL          string           `json:"url"`
	Model        string           `json:"model"`
	ContextLen   int              `json:"context_length"`
	PromptTokens int              `json:"prompt_tokens"`
	SharedPrefix int              `json:"shared_prefix"`
	MaxTokens    int              `json:"max_tokens"`
	Stream       bool             `json:"stream"`
	IgnoreEOS    bool             `json:"ignore_eos"`
	Seed         uint64           `json:"seed"`
	Results      []loadgen.Result `json:"results"`
}

func runLoadgen(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the server's base `URL`")
	apiKey := fs.String("api-key", os.Getenv("ROCMFORGE_API_KEY"), "send `KEY` as a bearer token (default $ROCMFORGE_API_KEY)")
	levels := fs.String("c", "1,8,32,64", "concurrency levels: comma-separated `counts` of parallel clients")
	perClient := fs.Int("requests-per-client", 0, "each client sends `N` requests per level (default 4 unless --duration)")
	duration := fs.Duration("duration", 0, "each level starts requests for this `long`; those in flight then finish")
	promptTokens := fs.Int("prompt-tokens", 128, "prompt length in `tokens` (exact, via the server's /tokenize)")
	shared := fs.Int("shared-prefix", 0, "the first `N` prompt tokens are the same in every request (tests the prefix cache)")
	maxTokens := fs.Int("max-tokens", 128, "max_tokens of each request")
	stream := fs.Bool("stream", true, "stream the responses (needed for TTFT and inter-token latency)")
	noIgnoreEOS := fs.Bool("no-ignore-eos", false, "let requests stop at end-of-generation tokens (default: ignore_eos)")
	timeout := fs.Duration("timeout", loadgen.DefaultRequestTimeout, "give up on a request after this `long`")
	seed := fs.Uint64("seed", 0, "`seed` of the prompt texts (0: a random one, printed; the same seed repeats the prompts, which then hit the prefix cache)")
	modelName := fs.String("model", "", "model field of the requests (default the server's first model)")
	jsonOut := fs.Bool("json", false, "print JSON instead of a table")
	temperature := fs.Float64("temperature", 0, "`temperature` of the requests (0: greedy; 1: OpenAI's default, sampled on the server's host)")
	topK := fs.Int("top-k", 0, "top_k of the requests (`K` best tokens; 0: not sent, the server's default, off)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rocmforge loadgen [--url http://127.0.0.1:8080] [--api-key K] [-c 1,8,32,64] [--requests-per-client N | --duration D] [--prompt-tokens 128] [--max-tokens 128] [--shared-prefix N] [--temperature T] [--top-k K] [--stream] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: loadgen takes only flags", fs.Args())
	}
	counts, err := parseLevels(*levels)
	if err != nil {
		return err
	}
	if *perClient < 0 {
		return fmt.Errorf("--requests-per-client %d: want >= 0", *perClient)
	}
	if *duration < 0 {
		return fmt.Errorf("--duration %v: want >= 0", *duration)
	}
	if *seed == 0 {
		// A fresh seed per run: a second run against the same server would
		// otherwise find its first prompts in the prefix cache.
		*seed = rand.Uint64() | 1
	}
	if *temperature < 0 {
		return fmt.Errorf("--temperature %v: want >= 0", *temperature)
	}
	if *topK < 0 {
		return fmt.Errorf("--top-k %d: want >= 0", *topK)
	}
	if *perClient == 0 && *duration == 0 {
		*perClient = 4
	}
	cfg := loadgen.Config{
		URL: *url, APIKey: *apiKey, Model: *modelName,
		PromptTokens: *promptTokens, SharedPrefix: *shared, MaxTokens: *maxTokens,
		Stream: *stream, NoIgnoreEOS: *noIgnoreEOS, Temperature: *temperature, TopK: *topK, RequestTimeout: *timeout, Seed: *seed,
		HTTPClient: loadgen.NewHTTPClient(slices.Max(counts)),
	}
	g, err := loadgen.New(ctx, cfg)
	if err != nil {
		return err
	}
	m := g.Model()
	// Progress goes to stderr in both modes: a level can take minutes.
	fmt.Fprintf(stderr, "loadgen: %s model %s (context %d), prompts %d tokens (%d shared), max_tokens %d, stream %v, ignore_eos %v, seed %d\n",
		*url, m.ID, m.ContextLength, *promptTokens, *shared, *maxTokens, *stream, !*noIgnoreEOS, *seed)
	rep := loadgenReport{URL: *url, Model: m.ID, ContextLen: m.ContextLength, PromptTokens: *promptTokens,
		SharedPrefix: *shared, MaxTokens: *maxTokens, Stream: *stream, IgnoreEOS: !*noIgnoreEOS, Seed: *seed}
	for _, c := range counts {
		start := time.Now()
		r, err := g.Run(ctx, loadgen.Level{Concurrency: c, RequestsPerClient: *perClient, Duration: *duration})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "loadgen: %d clients: %d requests, %d errors in %v\n", c, r.Requests, r.Errors, time.Since(start).Round(time.Millisecond))
		rep.Results = append(rep.Results, r)
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return loadgen.WriteTable(stdout, rep.Results)
}

// parseLevels reads a comma-separated list of client counts.
func parseLevels(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxClients {
			return nil, fmt.Errorf("-c %q: %q is not a client count from 1 to %d", s, f, maxClients)
		}
		out = append(out, n)
	}
	return out, nil
}
