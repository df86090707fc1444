package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runCmd runs a subcommand through the command table, as main does, and
// returns its outputs.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmds := commands()
	c, ok := cmds[args[0]]
	if !ok {
		t.Fatalf("command %q is not registered", args[0])
	}
	var out, errb bytes.Buffer
	err = c.run(args[1:], &out, &errb)
	return out.String(), errb.String(), err
}

const storiesGreedy = "Once upon a time, there was a little girl named Lily"

func TestRunStoriesGreedy(t *testing.T) {
	model := stories260K(t)
	for _, backend := range []string{"cpu", "ref"} {
		t.Run(backend, func(t *testing.T) {
			out, errOut, err := runCmd(t, "run", "-m", model, "--temp", "0", "-n", "40", "--backend", backend, "Once upon a time")
			if err != nil {
				t.Fatalf("run: %v (stderr %q)", err, errOut)
			}
			if !strings.HasPrefix(out, storiesGreedy) {
				t.Errorf("stdout = %q, want it to start %q", out, storiesGreedy)
			}
			if !strings.HasSuffix(out, "\n") {
				t.Errorf("stdout does not end with a newline: %q", out)
			}
			// The story does not reach </s> within 40 tokens, so all 40 are
			// generated; the prompt is BOS + 4 tokens.
			mustContain(t, errOut, "prompt: 5 tokens in ", "generated: 40 tokens in ", "tok/s")
		})
	}
}

func TestRunFlagsAfterPrompt(t *testing.T) {
	model := stories260K(t)
	out, errOut, err := runCmd(t, "run", "Once upon a time", "-m", model, "--temp", "0", "-n", "3")
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, errOut)
	}
	if want := "Once upon a time, there was"; !strings.HasPrefix(out, want) || len(out) > len(want)+2 {
		t.Errorf("stdout = %q, want %q and a newline (3 tokens)", out, want)
	}
	mustContain(t, errOut, "generated: 3 tokens")
}

func TestRunSampledIsSeeded(t *testing.T) {
	model := stories260K(t)
	args := []string{"run", "-m", model, "-n", "30", "--temp", "1", "--seed", "7", "--repeat-penalty", "1.1", "-p", "Once upon a time"}
	a, _, err := runCmd(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := runCmd(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("same seed, different text:\n%q\n%q", a, b)
	}
	if !strings.HasPrefix(a, "Once upon a time") || len(a) <= len("Once upon a time\n") {
		t.Errorf("sampled output %q should continue the prompt", a)
	}
}

func TestRunContextLimits(t *testing.T) {
	model := stories260K(t)
	// The prompt is 5 tokens (BOS included); a context of 8 leaves room for
	// 3 evaluations after it, so 4 tokens can be sampled.
	out, errOut, err := runCmd(t, "run", "-m", model, "--temp", "0", "-n", "40", "--ctx", "8", "Once upon a time")
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, errOut)
	}
	mustContain(t, errOut, "context of 8 tokens full", "generated: 4 tokens")
	if !strings.HasPrefix(out, "Once upon a time, there was a") {
		t.Errorf("stdout = %q", out)
	}
	_, _, err = runCmd(t, "run", "-m", model, "--ctx", "4", "Once upon a time")
	if err == nil || !strings.Contains(err.Error(), "the prompt is 5 tokens but the context is 4") {
		t.Errorf("prompt longer than the context: err = %v", err)
	}
}

func TestRunBadFlags(t *testing.T) {
	model := stories260K(t)
	missing := filepath.Join(t.TempDir(), "missing.gguf")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative n", []string{"-m", model, "-n", "-1", "hi"}, "-n -1: want >= 0"},
		{"negative temp", []string{"-m", model, "--temp", "-0.5", "hi"}, "temperature -0.5"},
		{"top-p zero", []string{"-m", model, "--top-p", "0", "hi"}, "top_p 0"},
		{"min-p above one", []string{"-m", model, "--min-p", "1.5", "hi"}, "min_p 1.5"},
		{"repeat penalty zero", []string{"-m", model, "--repeat-penalty", "0", "hi"}, "repeat_penalty 0"},
		{"negative top-k", []string{"-m", model, "--top-k", "-3", "hi"}, "top_k -3"},
		{"bad seed", []string{"-m", model, "--seed", "-2", "hi"}, "--seed -2"},
		{"negative ctx", []string{"-m", model, "--ctx", "-1", "hi"}, "--ctx -1"},
		{"negative threads", []string{"-m", model, "--threads", "-1", "hi"}, "--threads -1"},
		{"missing model file", []string{"-m", missing, "hi"}, "missing.gguf does not exist"},
		{"no model", []string{"hi"}, "no model"},
		{"unknown backend", []string{"-m", model, "--backend", "tpu", "hi"}, `--backend "tpu"`},
		{"two prompts", []string{"-m", model, "a", "b"}, "want one prompt argument"},
		{"prompt twice", []string{"-m", model, "-p", "a", "b"}, "prompt given twice"},
		{"not a number", []string{"-m", model, "-n", "many", "hi"}, "invalid value"},
		{"unknown flag", []string{"-m", model, "--tempo", "1", "hi"}, "not defined"},
		{"not gguf", []string{"-m", writeFile(t, "x.gguf", "not a model"), "hi"}, "x.gguf"},
		{"bad hf ref", []string{"-m", "hf:nobody", "hi"}, "want hf:OWNER/REPO/PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, append([]string{"run"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunHelp(t *testing.T) {
	_, errOut, err := runCmd(t, "run", "-h")
	if err != nil {
		t.Fatalf("-h: %v", err)
	}
	mustContain(t, errOut, "usage: rocmforge run", "-temp", "-top-k")
}

func TestMainErrExitCodes(t *testing.T) {
	if code := mainErr([]string{"run", "-n", "-1", "x"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("bad flag: exit code %d, want 1", code)
	}
	var errb bytes.Buffer
	mainErr([]string{"help"}, io.Discard, &errb)
	mustContain(t, errb.String(), "run ", "bench ", "synth ")
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantPos []string
		wantN   int
	}{
		{[]string{"-n", "3", "p"}, []string{"p"}, 3},
		{[]string{"p", "-n", "3"}, []string{"p"}, 3},
		{[]string{"a", "-n", "3", "b"}, []string{"a", "b"}, 3},
		{[]string{"-n", "3", "--", "-n", "x"}, []string{"-n", "x"}, 3},
		{[]string{"a", "--", "-n"}, []string{"a", "-n"}, 0},
		{nil, nil, 0},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		n := fs.Int("n", 0, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.wantPos) || *n != tc.wantN {
			t.Errorf("parseInterspersed(%q) = %q, n=%d, %v; want %q, n=%d", tc.args, pos, *n, err, tc.wantPos, tc.wantN)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	model := stories260K(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	err := generate(ctx, []string{"-m", model, "--temp", "0", "-n", "40", "Once upon a time"}, &out, &errb)
	if err != nil {
		t.Fatalf("a cancelled run should stop cleanly: %v", err)
	}
	mustContain(t, errb.String(), "stopped: interrupted", "generated: 0 tokens")
}

// TestRunHFReference resolves an hf: name through ROCMFORGE_MODELS, with the
// download endpoint pointing at nothing so that no network is used.
func TestRunHFReference(t *testing.T) {
	model := stories260K(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("ROCMFORGE_HF_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("ROCMFORGE_MODELS", filepath.Dir(model))
	out, errOut, err := runCmd(t, "run", "-m", "hf:ggml-org/models/tinyllamas/stories260K.gguf", "--temp", "0", "-n", "12", "Once upon a time")
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, errOut)
	}
	if !strings.HasPrefix(out, storiesGreedy) {
		t.Errorf("stdout = %q, want it to start %q", out, storiesGreedy)
	}

	t.Setenv("ROCMFORGE_MODELS", t.TempDir())
	_, _, err = runCmd(t, "run", "-m", "hf:ggml-org/models/tinyllamas/stories260K.gguf", "hi")
	if err == nil || !strings.Contains(err.Error(), "cannot download hf:ggml-org/models/tinyllamas/stories260K.gguf") ||
		!strings.Contains(err.Error(), "set ROCMFORGE_MODELS") {
		t.Errorf("offline, not found locally: err = %v", err)
	}
}
