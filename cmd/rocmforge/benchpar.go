package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/progress"
	"github.com/rocmforge/rocmforge/sample"
)

// maxParallel bounds one --parallel level (each sequence is a request
// and a collector goroutine; the engine's KV pool is sized for the largest).
const maxParallel = 1024

// parReport is what `rocmforge bench --parallel ... --json` prints.
type parReport struct {
	Model       string      `json:"model"`
	Name        string      `json:"name"`
	Arch        string      `json:"arch"`
	Type        string      `json:"type"`
	SizeBytes   int64       `json:"size_bytes"`
	WeightBytes int64       `json:"weight_bytes"`
	Params      int64       `json:"params"`
	Backend     string      `json:"backend"`
	Threads     int         `json:"threads"`
	KVType      string      `json:"kv_type"`  // of the KV cache
	NPrompt     int         `json:"n_prompt"` // prompt tokens per sequence
	NGen        int         `json:"n_gen"`    // generated tokens per sequence (EOS ignored)
	Seed        uint64      `json:"seed"`
	Results     []parResult `json:"results"`
}

// parResult is one --parallel level over its repetitions. A repetition
// submits Parallel requests at once to a fresh-prompted engine and waits for
// all of them; its figures are:
//   - gen: all generated tokens over the whole time (prefill included),
//   - decode: the tokens generated after the last sequence's first token,
//     over the time from then to the end (every sequence decoding: what
//     llama-batched-bench's S_TG measures),
//   - prompt: all prompt tokens over the time to the last first token.
//
// The *_ts fields are medians over the repetitions.
type parResult struct {
	Test      string    `json:"test"` // "par8"
	Parallel  int       `json:"parallel"`
	Reps      int       `json:"reps"`
	SamplesNS []int64   `json:"samples_ns"` // total time of each repetition
	GenTS     []float64 `json:"samples_gen_ts"`
	MedianGen float64   `json:"gen_ts"`
	MinGen    float64   `json:"min_gen_ts"`
	MaxGen    float64   `json:"max_gen_ts"`
	DecodeTS  float64   `json:"decode_ts"`
	PromptTS  float64   `json:"prompt_ts"`
	TotalS    float64   `json:"total_s"`     // median total time
	FirstAllS float64   `json:"first_all_s"` // median time to the last first token
	Steps     float64   `json:"steps"`       // median engine steps (forward passes)
	StepMS    float64   `json:"step_ms"`     // median time per step
	// DecodeStepMS is the median duration (forward pass and sampling, on
	// the engine's clock) of the steps where all Parallel sequences
	// decoded and none prefilled; ArgmaxShare the share of those steps
	// whose tokens came from the backend's argmax.
	DecodeStepMS float64 `json:"decode_step_ms"`
	ArgmaxShare  float64 `json:"argmax_share"`
	Generated    int     `json:"generated"` // tokens of the last repetition
	PromptToks   int     `json:"prompt_tokens"`
}

// parOptions are the flags of a --parallel bench.
type parOptions struct {
	load           loadOptions
	levels         []int
	nPrompt, nGen  int
	reps           int
	seed           uint64
	warmup, asJSON bool
}

// parseParallel parses "1,8,32,64".
func parseParallel(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > maxParallel {
			return nil, fmt.Errorf("--parallel %q: %q is not a sequence count in 1..%d", s, f, maxParallel)
		}
		out = append(out, v)
	}
	return out, nil
}

// runBenchParallel loads the model, builds an engine sized for the largest
// level and times each level.
func runBenchParallel(ctx context.Context, o parOptions, stdout, stderr io.Writer) error {
	maxN := slices.Max(o.levels)
	perSeq := o.nPrompt + o.nGen
	o.load.tokenizer = true
	o.load.kvTokens = maxN * perSeq
	o.load.batch = engine.DefaultMaxBatchTokens
	l, err := loadModel(ctx, o.load, stderr)
	if err != nil {
		return err
	}
	defer l.Close()
	if c := l.m.HParams.NCtxTrain; c > 0 && perSeq > c {
		return fmt.Errorf("-p %d + -n %d = %d tokens per sequence, more than the model's context %d", o.nPrompt, o.nGen, perSeq, c)
	}
	// Whole blocks per sequence plus one spare each, so no level is ever
	// short of KV blocks (a preemption would distort the figures).
	blocks := (perSeq+engine.DefaultBlockSize-1)/engine.DefaultBlockSize + 1
	cfg := engine.Config{ // the zero Config: prefix cache off
		MaxSeqs:        maxN,
		MaxQueue:       maxN,
		MaxBatchTokens: max(engine.DefaultMaxBatchTokens, maxN),
		CtxLen:         perSeq,
		KVCacheTokens:  maxN * blocks * engine.DefaultBlockSize,
		KVType:         o.load.kvType,
		EventBuffer:    o.nGen + 2, // the collectors never make the engine wait
	}
	pb := &parBencher{nVocab: l.m.HParams.NVocab, bos: l.tok.BOS(), addBOS: l.tok.AddBOS(),
		rng: rand.New(rand.NewPCG(o.seed, 0x9e3779b97f4a7c15))}
	cfg.OnStep = pb.onStep
	eng, err := engine.New(l.m, l.tok, cfg)
	if err != nil {
		return err
	}
	eng.Start(ctx)
	defer eng.Close(context.Background())

	wBytes, params := weightStats(l.file)
	name, _ := l.file.GetStringOr("general.name", "")
	rep := parReport{
		Model: l.path, Name: name, Arch: l.m.HParams.Arch, Type: modelType(l.file),
		SizeBytes: l.file.Size(), WeightBytes: wBytes, Params: params,
		Backend: l.be.Name(), Threads: backendThreads(l.be), KVType: o.load.kvType.String(),
		NPrompt: o.nPrompt, NGen: o.nGen, Seed: o.seed,
	}
	fmt.Fprintf(stderr, "bench: %d-token prompts, %d new tokens each, greedy, EOS ignored, prompt seed %d\n", o.nPrompt, o.nGen, o.seed)
	pb.eng = eng
	for _, n := range o.levels {
		if o.warmup {
			// Untimed: the first steps of a batch shape capture its graphs
			// and size the scratch buffers.
			if _, err := pb.run(ctx, n, o.nPrompt, min(o.nGen, 8)); err != nil {
				return fmt.Errorf("par%d warm-up: %w", n, err)
			}
		}
		res := parResult{Test: fmt.Sprintf("par%d", n), Parallel: n, Reps: o.reps}
		var runs []parRun
		for range o.reps {
			r, err := pb.run(ctx, n, o.nPrompt, o.nGen)
			if err != nil {
				return fmt.Errorf("par%d: %w", n, err)
			}
			runs = append(runs, r)
			res.SamplesNS = append(res.SamplesNS, r.total.Nanoseconds())
			res.GenTS = append(res.GenTS, rate(r.generated, r.total))
		}
		res.summarize(runs)
		rep.Results = append(rep.Results, res)
		fmt.Fprintf(stderr, "bench: par%d: %.1f generated tok/s (decode %.1f, prompt %.1f)\n", n, res.MedianGen, res.DecodeTS, res.PromptTS)
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.writeTable(stdout)
}

// parBencher submits batches of requests to one engine.
type parBencher struct {
	eng    *engine.Engine
	nVocab int
	bos    int32
	addBOS bool
	rng    *rand.Rand

	mu    sync.Mutex
	steps []engine.StepStats // since the run began
}

// onStep is the engine's Config.OnStep: it only appends.
func (pb *parBencher) onStep(s engine.StepStats) {
	pb.mu.Lock()
	pb.steps = append(pb.steps, s)
	pb.mu.Unlock()
}

// parRun is one repetition's measurements.
type parRun struct {
	total, firstAll time.Duration
	decodeSteps     []engine.StepStats // steps with every sequence decoding, none prefilling
	generated       int                // tokens generated in all
	afterFirst      int                // tokens that arrived after the last first token
	prompt          int
	steps           int64
}

// run submits n requests of random pPrompt-token prompts at once, each
// generating exactly g tokens (EOS ignored), and waits for all.
func (pb *parBencher) run(ctx context.Context, n, pPrompt, g int) (parRun, error) {
	prompts := make([][]int32, n)
	for i := range prompts {
		p := make([]int32, pPrompt)
		for j := range p {
			// Ids 3 and up: no control tokens (unknown, BOS, EOS) in the body.
			p[j] = int32(3 + pb.rng.IntN(pb.nVocab-3))
		}
		if pb.addBOS && pb.bos >= 0 {
			p[0] = pb.bos
		}
		prompts[i] = p
	}
	params := sample.DefaultParams()
	params.Temperature = 0
	before := pb.eng.Stats()
	pb.mu.Lock()
	pb.steps = pb.steps[:0]
	pb.mu.Unlock()
	times := make([][]time.Time, n)
	errs := make(chan error, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	for i := range n {
		h, err := pb.eng.Submit(ctx, engine.Request{Prompt: prompts[i], MaxTokens: g, Params: params, IgnoreEOS: true})
		if err != nil {
			return parRun{}, err
		}
		go func() {
			ts := make([]time.Time, 0, g)
			for ev := range h.Events {
				now := time.Now()
				if !ev.Done {
					ts = append(ts, now)
					continue
				}
				switch {
				case ev.Err != nil:
					errs <- fmt.Errorf("request %d: %s: %w", i, ev.FinishReason, ev.Err)
					return
				case ev.FinishReason != engine.FinishLength || ev.Usage.CompletionTokens != g:
					errs <- fmt.Errorf("request %d ended %q after %d of %d tokens", i, ev.FinishReason, ev.Usage.CompletionTokens, g)
					return
				}
			}
			times[i] = ts
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			return parRun{}, err
		}
	}
	r := parRun{total: time.Since(t0), prompt: n * pPrompt, steps: pb.eng.Stats().Steps - before.Steps}
	pb.mu.Lock()
	for _, s := range pb.steps {
		if s.DecodeSeqs == n && s.PrefillTokens == 0 {
			r.decodeSteps = append(r.decodeSteps, s)
		}
	}
	pb.mu.Unlock()
	var lastFirst time.Time
	for _, ts := range times {
		r.generated += len(ts)
		if len(ts) > 0 && ts[0].After(lastFirst) {
			lastFirst = ts[0]
		}
	}
	for _, ts := range times {
		for _, t := range ts {
			if t.After(lastFirst) {
				r.afterFirst++
			}
		}
	}
	r.firstAll = lastFirst.Sub(t0)
	return r, nil
}

// summarize fills the medians from the repetitions.
func (res *parResult) summarize(runs []parRun) {
	med := func(f func(parRun) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		return median(v)
	}
	res.MedianGen = median(slices.Clone(res.GenTS))
	res.MinGen, res.MaxGen = slices.Min(res.GenTS), slices.Max(res.GenTS)
	res.DecodeTS = med(func(r parRun) float64 {
		if d := r.total - r.firstAll; d > 0 {
			return float64(r.afterFirst) / d.Seconds()
		}
		return 0
	})
	res.PromptTS = med(func(r parRun) float64 { return rate(r.prompt, r.firstAll) })
	res.TotalS = med(func(r parRun) float64 { return r.total.Seconds() })
	res.FirstAllS = med(func(r parRun) float64 { return r.firstAll.Seconds() })
	res.Steps = med(func(r parRun) float64 { return float64(r.steps) })
	res.StepMS = med(func(r parRun) float64 { return r.total.Seconds() * 1e3 / float64(max(r.steps, 1)) })
	var durs []float64
	argmax := 0
	for _, r := range runs {
		for _, s := range r.decodeSteps {
			durs = append(durs, s.Duration.Seconds()*1e3)
			if s.Argmax {
				argmax++
			}
		}
	}
	if len(durs) > 0 {
		res.ArgmaxShare = float64(argmax) / float64(len(durs))
		res.DecodeStepMS = median(durs)
	}
	last := runs[len(runs)-1]
	res.Generated, res.PromptToks = last.generated, last.prompt
}

// median of v (which it sorts).
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// writeTable prints the report as a markdown table.
func (rep *parReport) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "model file %s: %s of weights (%d bytes), %s parameters; %d-token prompts, %d new tokens per sequence\n\n",
		rep.Model, progress.FormatBytes(rep.WeightBytes), rep.WeightBytes, fmtCount(rep.Params), rep.NPrompt, rep.NGen)
	rows := [][]string{{"model", "type", "backend", "test", "gen t/s (median)", "min … max", "decode t/s", "prompt t/s", "total s", "steps", "ms/step", "decode step ms", "argmax"}}
	for _, r := range rep.Results {
		rows = append(rows, []string{rep.Arch + " " + fmtCount(rep.Params), rep.Type, rep.Backend, r.Test,
			fmt.Sprintf("%.2f", r.MedianGen), fmt.Sprintf("%.2f … %.2f", r.MinGen, r.MaxGen),
			fmt.Sprintf("%.2f", r.DecodeTS), fmt.Sprintf("%.2f", r.PromptTS), fmt.Sprintf("%.3f", r.TotalS),
			fmt.Sprintf("%.0f", r.Steps), fmt.Sprintf("%.2f", r.StepMS), fmt.Sprintf("%.2f", r.DecodeStepMS),
			fmt.Sprintf("%.0f%%", 100*r.ArgmaxShare)})
	}
	left := map[int]bool{0: true, 1: true, 2: true}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for c, cell := range r {
			width[c] = max(width[c], utf8.RuneCountInString(cell))
		}
	}
	var sb strings.Builder
	for i, r := range rows {
		for c, cell := range r {
			pad := strings.Repeat(" ", width[c]-utf8.RuneCountInString(cell))
			if left[c] {
				fmt.Fprintf(&sb, "| %s%s ", cell, pad)
			} else {
				fmt.Fprintf(&sb, "| %s%s ", pad, cell)
			}
		}
		sb.WriteString("|\n")
		if i == 0 {
			for c := range width {
				if left[c] {
					fmt.Fprintf(&sb, "| %s ", strings.Repeat("-", width[c]))
				} else {
					fmt.Fprintf(&sb, "| %s: ", strings.Repeat("-", width[c]-1))
				}
			}
			sb.WriteString("|\n")
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// benchParallelFlags completes the --parallel options from the flags (-p
// defaults to 128 here) and runs the batched bench.
func benchParallelFlags(ctx context.Context, fs *flag.FlagSet, levels string, seed uint64, o parOptions, stdout, stderr io.Writer) error {
	var err error
	if o.levels, err = parseParallel(levels); err != nil {
		return err
	}
	pSet := false
	fs.Visit(func(f *flag.Flag) { pSet = pSet || f.Name == "p" })
	if !pSet {
		o.nPrompt = 128
	}
	switch {
	case o.nPrompt == 0:
		return errors.New("--parallel needs prompts: -p 0")
	case o.nGen == 0:
		return errors.New("--parallel measures generation: -n 0")
	}
	if seed == 0 {
		// A fresh seed per run, printed, so a run can be repeated.
		seed = rand.Uint64() | 1
	}
	o.seed = seed
	return runBenchParallel(ctx, o, stdout, stderr)
}
