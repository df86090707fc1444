package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/model"
)

// logitsOutput is what `rocmforge logits` prints.
type logitsOutput struct {
	Tokens []int32     `json:"tokens"`
	Logits [][]float32 `json:"logits"`
}

// runLogits evaluates token ids in one batch and prints the logits of the
// last position (or of every position with --all) as JSON: a debugging and
// conformance tool that needs no tokenizer.
func runLogits(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logits", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("m", "", "model `FILE.gguf`")
	tokenList := fs.String("tokens", "", "comma-separated token `ids`, e.g. 1,403,407")
	all := fs.Bool("all", false, "print the logits of every position, not only the last")
	backendName := fs.String("backend", defaultBackend, backendUsage)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rocmforge logits -m MODEL.gguf --tokens 1,2,3 [--all] [--backend auto|cuda|cpu|ref]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *path == "" {
		return errors.New("no model: give -m MODEL.gguf")
	}
	tokens, err := parseTokens(*tokenList)
	if err != nil {
		return err
	}
	b, err := newBackend(*backendName)
	if err != nil {
		return err
	}
	defer closeBackend(b)

	f, err := gguf.Open(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := model.Load(f, b)
	if err != nil {
		return err
	}
	defer m.Close()
	s, err := model.NewSession(m, len(tokens))
	if err != nil {
		return err
	}
	defer s.Close()
	var logits []float32
	if *all {
		logits, err = s.EvalAll(tokens)
	} else {
		logits, err = s.Eval(tokens)
	}
	if err != nil {
		return err
	}

	nv := m.HParams.NVocab
	out := logitsOutput{Tokens: tokens}
	for i := 0; i < len(logits); i += nv {
		out.Logits = append(out.Logits, logits[i:i+nv])
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// parseTokens parses "1,2,3" into token ids.
func parseTokens(s string) ([]int32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no tokens: give --tokens 1,2,3")
	}
	var ids []int32
	for i, part := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(part), 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("--tokens: item %d %q is not a token id", i+1, part)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}

// newBackend makes the compute backend a --backend flag names (see
// openBackend, the one place backends are chosen).
func newBackend(name string) (compute.Backend, error) {
	return openBackend(name, 0)
}
