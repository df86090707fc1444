package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"time"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/progress"
	"github.com/rocmforge/rocmforge/sample"
)

// defaultMaxCtx caps the default context: a model trained on 128K positions
// would otherwise get a cache of that size for a one-line prompt.
const defaultMaxCtx = 4096

// runRun generates text from a prompt, streaming it to stdout as it comes;
// Ctrl-C stops generation early and still prints the timings.
func runRun(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return generate(ctx, args, stdout, stderr)
}

func generate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelRef := fs.String("m", "", "model: `FILE.gguf` or hf:OWNER/REPO/PATH.gguf")
	promptFlag := fs.String("p", "", "the `prompt` (or give it as the argument)")
	n := fs.Int("n", 128, "generate at most `N` tokens (fewer at an end-of-generation token or a full context)")
	temp := fs.Float64("temp", 0.8, "sampling temperature; 0 = greedy")
	topK := fs.Int("top-k", 40, "keep the `K` most likely tokens; 0 = off")
	topP := fs.Float64("top-p", 0.95, "keep the most likely tokens up to probability mass `P`; 1 = off")
	minP := fs.Float64("min-p", 0.05, "drop tokens below `P` times the top token's probability; 0 = off")
	repeatPenalty := fs.Float64("repeat-penalty", 1, "penalize repeats of the last --repeat-last-n tokens; 1 = off")
	repeatLastN := fs.Int("repeat-last-n", 64, "window of the repeat penalty in `tokens`; -1 = whole context")
	seed := fs.Int64("seed", -1, "random `seed`; -1 = a random one")
	backend := fs.String("backend", defaultBackend, backendUsage)
	threads := fs.Int("threads", 0, "compute `threads`; 0 = one per CPU")
	nCtx := fs.Int("ctx", 0, fmt.Sprintf("context size in `tokens`; 0 = the model's training context, at most %d", defaultMaxCtx))
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: rocmforge run -m MODEL [-n N] [--temp T --top-k K --top-p P --min-p M --repeat-penalty R --seed S] [--backend auto|cuda|cpu|ref] [--threads N] [--ctx N] "prompt"`)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	prompt, err := oneArg("prompt", pos)
	if err != nil {
		return err
	}
	if *promptFlag != "" {
		if prompt != "" {
			return errors.New("prompt given twice, with -p and as an argument")
		}
		prompt = *promptFlag
	}
	if *n < 0 {
		return fmt.Errorf("-n %d: want >= 0", *n)
	}
	if *nCtx < 0 {
		return fmt.Errorf("--ctx %d: want >= 0 (0 = the model's)", *nCtx)
	}
	sp := sample.DefaultParams()
	sp.Temperature, sp.TopK, sp.TopP, sp.MinP = float32(*temp), *topK, float32(*topP), float32(*minP)
	sp.RepeatPenalty, sp.PenaltyLastN = float32(*repeatPenalty), *repeatLastN
	if *seed < -1 {
		return fmt.Errorf("--seed %d: want >= 0, or -1 for a random seed", *seed)
	}
	sp.Seed = uint64(*seed)
	if *seed == -1 {
		sp.Seed = rand.Uint64()
	}
	// Check the sampling flags before the (slow) load; the vocabulary size
	// only matters to logit biases, which run does not set.
	if err := sp.Validate(math.MaxInt32); err != nil {
		return fmt.Errorf("bad sampling flags: %w", err)
	}

	l, err := loadModel(ctx, loadOptions{ref: *modelRef, backend: *backend, threads: *threads, tokenizer: true, kvTokens: *nCtx}, stderr)
	if err != nil {
		return err
	}
	defer l.Close()
	hp := &l.m.HParams
	ctxLen := *nCtx
	if ctxLen == 0 {
		ctxLen = hp.NCtxTrain
		if ctxLen <= 0 || ctxLen > defaultMaxCtx {
			ctxLen = defaultMaxCtx
		}
	}
	tokens, err := l.tok.Encode(prompt, true, true)
	if err != nil {
		return fmt.Errorf("tokenizing the prompt: %w", err)
	}
	if len(tokens) == 0 {
		return errors.New("empty prompt, and the model adds no BOS token: nothing to start from")
	}
	if len(tokens) > ctxLen {
		return fmt.Errorf("the prompt is %d tokens but the context is %d; shorten it or raise --ctx (the model was trained on %d)",
			len(tokens), ctxLen, hp.NCtxTrain)
	}
	smp, err := sample.New(sp, hp.NVocab)
	if err != nil {
		return fmt.Errorf("bad sampling flags: %w", err)
	}
	for _, t := range tokens {
		if err := smp.Accept(t); err != nil {
			return err
		}
	}
	s, err := model.NewSession(l.m, ctxLen)
	if err != nil {
		return err
	}
	defer s.Close()
	bytes, _ := weightStats(l.file)
	fmt.Fprintf(stderr, "%s: %s %s, %s; backend %s, %d threads; context %d; seed %d\n",
		l.path, hp.Arch, modelType(l.file), progress.FormatBytes(bytes), l.be.Name(), backendThreads(l.be), ctxLen, sp.Seed)

	if _, err := io.WriteString(stdout, prompt); err != nil {
		return err
	}
	// Plain greedy decoding (no penalties or biases) is the argmax of the
	// logits: a backend that finds it where the logits are (compute.Argmaxer)
	// saves copying them to the host every token.
	_, hasArgmax := l.be.(compute.Argmaxer)
	devGreedy := hasArgmax && sp.Temperature == 0 && sp.RepeatPenalty == 1 && sp.PresencePenalty == 0 &&
		sp.FrequencyPenalty == 0 && len(sp.LogitBias) == 0
	var logits []float32
	next := int32(-1)
	eval := func(toks []int32) (err error) {
		if devGreedy {
			next, err = s.EvalArgmax(toks)
		} else {
			logits, err = s.Eval(toks)
		}
		return err
	}
	t0 := time.Now()
	if err := eval(tokens); err != nil {
		return fmt.Errorf("evaluating the prompt: %w", err)
	}
	promptDur := time.Since(t0)

	dec := l.tok.NewStreamDecoder()
	t1 := time.Now()
	gen, note := 0, ""
	for gen < *n {
		if ctx.Err() != nil {
			note = "interrupted"
			break
		}
		var r sample.Result
		if devGreedy {
			if next < 0 {
				return sample.ErrNoCandidates
			}
			r.Token = next
		} else if r, err = smp.Sample(logits); err != nil {
			return err
		}
		if l.tok.IsEOG(r.Token) {
			break
		}
		gen++
		if err := smp.Accept(r.Token); err != nil {
			return err
		}
		if _, err := io.WriteString(stdout, dec.Add(r.Token)); err != nil {
			return err
		}
		if gen == *n {
			break
		}
		if s.Len() >= s.Ctx() {
			note = fmt.Sprintf("context of %d tokens full", s.Ctx())
			break
		}
		if err := eval([]int32{r.Token}); err != nil {
			return fmt.Errorf("evaluating generated token %d: %w", gen, err)
		}
	}
	genDur := time.Since(t1)
	if _, err := io.WriteString(stdout, dec.Flush()+"\n"); err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintf(stderr, "stopped: %s\n", note)
	}
	fmt.Fprintf(stderr, "prompt: %d tokens in %s (%.2f tok/s); generated: %d tokens in %s (%.2f tok/s)\n",
		len(tokens), fmtDur(promptDur), rate(len(tokens), promptDur), gen, fmtDur(genDur), rate(gen, genDur))
	return nil
}

// rate is n per second over d (0 when d is 0).
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// fmtDur formats a duration in milliseconds for short ones, else seconds.
func fmtDur(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
