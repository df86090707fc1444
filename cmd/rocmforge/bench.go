package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/progress"
)

// benchReport is what `rocmforge bench --json` prints.
type benchReport struct {
	Model       string        `json:"model"` // the file
	Name        string        `json:"name"`  // general.name
	Arch        string        `json:"arch"`
	Type        string        `json:"type"`
	SizeBytes   int64         `json:"size_bytes"`   // the file
	WeightBytes int64         `json:"weight_bytes"` // all tensors
	Params      int64         `json:"params"`
	Backend     string        `json:"backend"`
	Threads     int           `json:"threads"`
	KVType      string        `json:"kv_type"` // of the KV cache
	Results     []benchResult `json:"results"`
}

// benchResult is one test (pp or tg) over its repetitions.
type benchResult struct {
	Test      string    `json:"test"` // "pp512", "tg128"
	NPrompt   int       `json:"n_prompt"`
	NGen      int       `json:"n_gen"`
	Reps      int       `json:"reps"`
	SamplesNS []int64   `json:"samples_ns"`
	SamplesTS []float64 `json:"samples_ts"`
	MedianTS  float64   `json:"median_ts"`
	AvgTS     float64   `json:"avg_ts"`
	StddevTS  float64   `json:"stddev_ts"`
	MinTS     float64   `json:"min_ts"`
	MaxTS     float64   `json:"max_ts"`
	// WeightGBps is weight_bytes × median_ts / 1e9 for tg: the weight-read
	// bandwidth decoding implies, each token reading every weight once.
	WeightGBps float64 `json:"weight_gbps,omitempty"`
}

func runBench(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelRef := fs.String("m", "", "model: `FILE.gguf` or hf:OWNER/REPO/PATH.gguf")
	nPrompt := fs.Int("p", 512, "prompt processing test: `N` tokens in one batch (0 = skip)")
	nGen := fs.Int("n", 128, "generation test: `N` tokens one at a time (0 = skip)")
	reps := fs.Int("r", 5, "`repetitions` of each test")
	backend := fs.String("backend", defaultBackend, backendUsage)
	threads := fs.Int("threads", 0, "compute `threads`; 0 = one per CPU")
	jsonOut := fs.Bool("json", false, "print JSON instead of a table")
	noWarmup := fs.Bool("no-warmup", false, "skip the untimed warm-up run")
	parallel := fs.String("parallel", "", "batched test instead: comma-separated `counts` of sequences submitted at once to the engine (-p default 128)")
	parSeed := fs.Uint64("seed", 0, "--parallel: `seed` of the random prompts (0: a random one, printed)")
	kvTypeName := fs.String("kv-type", "f16", kvTypeUsage)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rocmforge bench -m MODEL [-p 512] [-n 128] [-r 5] [--parallel 1,8,32,64] [--kv-type f16|q8_0|f32] [--backend auto|cuda|cpu|ref] [--threads N] [--json]")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("unexpected arguments %q", pos)
	case *nPrompt < 0:
		return fmt.Errorf("-p %d: want >= 0", *nPrompt)
	case *nGen < 0:
		return fmt.Errorf("-n %d: want >= 0", *nGen)
	case *nPrompt == 0 && *nGen == 0:
		return errors.New("-p 0 and -n 0: nothing to measure")
	case *reps < 1:
		return fmt.Errorf("-r %d: want >= 1", *reps)
	}
	kvType, err := parseKVType(*kvTypeName)
	if err != nil {
		return err
	}
	if *parallel != "" {
		return benchParallelFlags(ctx, fs, *parallel, *parSeed, parOptions{
			load:    loadOptions{ref: *modelRef, backend: *backend, threads: *threads, kvType: kvType},
			nPrompt: *nPrompt, nGen: *nGen, reps: *reps, warmup: !*noWarmup, asJSON: *jsonOut,
		}, stdout, stderr)
	}

	l, err := loadModel(ctx, loadOptions{ref: *modelRef, backend: *backend, threads: *threads,
		kvTokens: max(*nPrompt, *nGen), batch: max(*nPrompt, 1), kvType: kvType}, stderr)
	if err != nil {
		return err
	}
	defer l.Close()
	wBytes, params := weightStats(l.file)
	name, _ := l.file.GetStringOr("general.name", "")
	rep := benchReport{
		Model: l.path, Name: name, Arch: l.m.HParams.Arch, Type: modelType(l.file),
		SizeBytes: l.file.Size(), WeightBytes: wBytes, Params: params,
		Backend: l.be.Name(), Threads: backendThreads(l.be), KVType: kvType.String(),
	}
	_, hasArgmax := l.be.(compute.Argmaxer)
	b := &bencher{m: l.m, rng: rand.New(rand.NewPCG(1, 2)),
		deviceArgmax: hasArgmax && os.Getenv("ROCMFORGE_BENCH_HOST_ARGMAX") != "1"}
	if b.s, err = model.NewSessionType(l.m, max(*nPrompt, *nGen), kvType); err != nil {
		return err
	}
	defer b.s.Close()

	if !*noWarmup {
		// Untimed: the first pass faults the weights in and sizes the
		// scratch buffers, which is not what is being measured.
		if *nPrompt > 0 {
			if _, err := b.pp(*nPrompt); err != nil {
				return err
			}
		}
		if _, err := b.tg(1); err != nil {
			return err
		}
	}
	tests := []struct {
		name   string
		p, n   int
		tokens int
		run    func(int) (time.Duration, error)
	}{
		{fmt.Sprintf("pp%d", *nPrompt), *nPrompt, 0, *nPrompt, b.pp},
		{fmt.Sprintf("tg%d", *nGen), 0, *nGen, *nGen, b.tg},
	}
	for _, tc := range tests {
		if tc.tokens == 0 {
			continue
		}
		res := benchResult{Test: tc.name, NPrompt: tc.p, NGen: tc.n, Reps: *reps}
		stopProfile, err := tgProfile(tc.n > 0)
		if err != nil {
			return err
		}
		for range *reps {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := tc.run(tc.tokens)
			if err != nil {
				return fmt.Errorf("%s: %w", tc.name, err)
			}
			res.SamplesNS = append(res.SamplesNS, d.Nanoseconds())
			res.SamplesTS = append(res.SamplesTS, rate(tc.tokens, d))
		}
		stopProfile()
		res.summarize()
		if tc.n > 0 {
			res.WeightGBps = float64(wBytes) * res.MedianTS / 1e9
		}
		rep.Results = append(rep.Results, res)
	}

	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.writeTable(stdout)
}

// tgProfile starts a CPU profile of the tg repetitions into the file
// ROCMFORGE_BENCH_CPUPROFILE names (where the host time of a decode step
// goes), when on is set and the variable is; the returned func stops it.
func tgProfile(on bool) (func(), error) {
	path := os.Getenv("ROCMFORGE_BENCH_CPUPROFILE")
	if !on || path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("ROCMFORGE_BENCH_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("ROCMFORGE_BENCH_CPUPROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// bencher runs the timed passes on one session.
type bencher struct {
	m   *model.Model
	s   *model.Session
	rng *rand.Rand
	buf []int32
	// deviceArgmax: tg takes each step's token from the backend's argmax
	// (ROCMFORGE_BENCH_HOST_ARGMAX=1 copies the logits instead, for A/B).
	deviceArgmax bool
}

// pp times one batch of n random tokens on an empty cache.
func (b *bencher) pp(n int) (time.Duration, error) {
	b.s.Reset()
	b.buf = b.buf[:0]
	for range n {
		b.buf = append(b.buf, int32(b.rng.IntN(b.m.HParams.NVocab)))
	}
	t0 := time.Now()
	_, err := b.s.Eval(b.buf)
	return time.Since(t0), err
}

// tg times generating n tokens one at a time, greedily, from an empty cache.
// Where the backend finds the argmax itself (compute.Argmaxer), only the
// token id comes back each step; otherwise the logits are copied and
// searched on the host.
func (b *bencher) tg(n int) (time.Duration, error) {
	b.s.Reset()
	tok := []int32{1}
	t0 := time.Now()
	if b.deviceArgmax {
		for range n {
			id, err := b.s.EvalArgmax(tok)
			if err != nil {
				return 0, err
			}
			tok[0] = id
		}
		return time.Since(t0), nil
	}
	for range n {
		logits, err := b.s.Eval(tok)
		if err != nil {
			return 0, err
		}
		tok[0] = argmax(logits)
	}
	return time.Since(t0), nil
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// summarize fills the statistics from the samples.
func (r *benchResult) summarize() {
	ts := slices.Clone(r.SamplesTS)
	slices.Sort(ts)
	n := len(ts)
	r.MinTS, r.MaxTS = ts[0], ts[n-1]
	if n%2 == 1 {
		r.MedianTS = ts[n/2]
	} else {
		r.MedianTS = (ts[n/2-1] + ts[n/2]) / 2
	}
	var sum float64
	for _, v := range ts {
		sum += v
	}
	r.AvgTS = sum / float64(n)
	if n > 1 {
		var ss float64
		for _, v := range ts {
			ss += (v - r.AvgTS) * (v - r.AvgTS)
		}
		r.StddevTS = math.Sqrt(ss / float64(n-1))
	}
}

// writeTable prints the report as a markdown table like llama-bench's,
// with the spread and the implied bandwidth added.
func (rep *benchReport) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "model file %s: %s of weights (%d bytes), %s parameters\n\n",
		rep.Model, progress.FormatBytes(rep.WeightBytes), rep.WeightBytes, fmtCount(rep.Params))
	rows := [][]string{{"model", "type", "size", "backend", "threads", "test", "t/s (median ± sd)", "min … max", "weights GB/s"}}
	for _, r := range rep.Results {
		gbps := "-"
		if r.WeightGBps > 0 {
			gbps = fmt.Sprintf("%.2f", r.WeightGBps)
		}
		rows = append(rows, []string{rep.Arch + " " + fmtCount(rep.Params), rep.Type, progress.FormatBytes(rep.WeightBytes),
			rep.Backend, fmt.Sprint(rep.Threads), r.Test, fmt.Sprintf("%.2f ± %.2f", r.MedianTS, r.StddevTS),
			fmt.Sprintf("%.2f … %.2f", r.MinTS, r.MaxTS), gbps})
	}
	// Text columns (model, type, backend) are left-aligned, numbers right.
	left := map[int]bool{0: true, 1: true, 3: true}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for c, cell := range r {
			width[c] = max(width[c], utf8.RuneCountInString(cell))
		}
	}
	var sb strings.Builder
	line := func(cells []string) {
		for c, cell := range cells {
			pad := strings.Repeat(" ", width[c]-utf8.RuneCountInString(cell))
			if left[c] {
				fmt.Fprintf(&sb, "| %s%s ", cell, pad)
			} else {
				fmt.Fprintf(&sb, "| %s%s ", pad, cell)
			}
		}
		sb.WriteString("|\n")
	}
	line(rows[0])
	for c := range width {
		if left[c] {
			fmt.Fprintf(&sb, "| %s ", strings.Repeat("-", width[c]))
		} else {
			fmt.Fprintf(&sb, "| %s: ", strings.Repeat("-", width[c]-1))
		}
	}
	sb.WriteString("|\n")
	for _, r := range rows[1:] {
		line(r)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// fmtCount formats a parameter count: "292.4K", "1.10B".
func fmtCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
