package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/progress"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// synthArgs are the flags of a small model of awkward sizes: 3 heads of 32,
// one KV head, ff 160, a vocabulary that is not a round number.
func synthArgs(out, typ string) []string {
	return []string{"synth", "--layers", "2", "--embd", "96", "--heads", "3", "--kv-heads", "1", "--ff", "160",
		"--vocab", "777", "--ctx", "64", "--type", typ, "--seed", "5", "-o", out}
}

func TestSynthRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		typ   string
		ftype uint32
	}{{"F16", 1}, {"Q8_0", 7}, {"Q4_0", 2}, {"F32", 0}} {
		t.Run(tc.typ, func(t *testing.T) {
			out := filepath.Join(dir, tc.typ+".gguf")
			stdout, _, err := runCmd(t, synthArgs(out, tc.typ)...)
			if err != nil {
				t.Fatalf("synth: %v", err)
			}
			mustContain(t, stdout, "wrote "+out, "21 tensors")
			f, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for key, want := range map[string]any{
				"general.architecture": "llama", "general.file_type": tc.ftype,
				"llama.embedding_length": uint32(96), "llama.block_count": uint32(2),
				"llama.attention.head_count": uint32(3), "llama.attention.head_count_kv": uint32(1),
				"llama.feed_forward_length": uint32(160), "llama.context_length": uint32(64),
				"llama.vocab_size": uint32(777), "llama.rope.dimension_count": uint32(32),
				"tokenizer.ggml.model": "llama",
			} {
				v, ok := f.Lookup(key)
				if !ok || v.V != want {
					t.Errorf("%s = %v (present %v), want %v", key, v.V, ok, want)
				}
			}
			if len(f.Tensors) != 2*9+3 {
				t.Errorf("%d tensors, want 21", len(f.Tensors))
			}
			q, _ := f.Tensor("blk.1.attn_k.weight")
			if q == nil || q.Type.String() != tc.typ || fmt.Sprint(q.Dims) != "[96 32]" {
				t.Errorf("blk.1.attn_k.weight = %+v, want %s [96 32]", q, tc.typ)
			}
			checkStats(t, f, "blk.0.ffn_down.weight", 0, synthStd)
			checkStats(t, f, "blk.1.attn_norm.weight", 1, synthStd)

			// inspect reads it, model.Load binds it, run generates from it.
			insp, _, err := runCmd(t, "inspect", out)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			mustContain(t, insp, "token_embd.weight", "output.weight", "blk.1.ffn_gate.weight")
			m, err := model.Load(f, compute.NewReference())
			if err != nil {
				t.Fatalf("model.Load: %v", err)
			}
			m.Close()
			gen, errOut, err := runCmd(t, "run", "-m", out, "--temp", "0", "-n", "6", "--backend", "ref", "the cat")
			if err != nil {
				t.Fatalf("run: %v (stderr %q)", err, errOut)
			}
			if !strings.HasPrefix(gen, "the cat") {
				t.Errorf("run stdout %q does not start with the prompt", gen)
			}
			mustContain(t, errOut, "generated: ")
		})
	}
}

// checkStats checks that a tensor's values have about the given mean and
// standard deviation: within 5 standard errors of each (std/sqrt(n) for the
// mean, about std/sqrt(2n) for the deviation), which quantization noise does
// not approach.
func checkStats(t *testing.T, f *gguf.File, name string, mean, std float64) {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	data, err := f.TensorData(ti)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]float32, ti.Elems())
	if err := ggml.Dequantize(ti.Type, data, vals); err != nil {
		t.Fatal(err)
	}
	var s, ss float64
	for _, v := range vals {
		s += float64(v)
	}
	m := s / float64(len(vals))
	for _, v := range vals {
		ss += (float64(v) - m) * (float64(v) - m)
	}
	sd := math.Sqrt(ss / float64(len(vals)-1))
	n := float64(len(vals))
	if math.Abs(m-mean) > 5*std/math.Sqrt(n) || math.Abs(sd-std) > 5*std/math.Sqrt(2*n) {
		t.Errorf("%s (%s, %d values): mean %.5f sd %.5f, want about %g and %g", name, ti.Type, len(vals), m, sd, mean, std)
	}
}

func TestSynthTokenizer(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	if _, _, err := runCmd(t, synthArgs(out, "Q8_0")...); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatalf("tokenizer.FromGGUF: %v", err)
	}
	if tok.NVocab() != 777 || tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() {
		t.Errorf("vocab %d, BOS %d, EOS %d, AddBOS %v", tok.NVocab(), tok.BOS(), tok.EOS(), tok.AddBOS())
	}
	for _, text := range []string{"the quick brown fox", "Hello, World! 42", "naïve café ✓"} {
		ids, err := tok.Encode(text, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if ids[0] != 1 {
			t.Errorf("%q: first token %d, want BOS", text, ids[0])
		}
		if got := tok.Decode(ids); got != text {
			t.Errorf("Decode(Encode(%q)) = %q", text, got)
		}
	}
	// Two-letter words are single tokens: the merges reach them.
	if ids, _ := tok.Encode("ab", false, false); len(ids) != 1 || tok.Token(ids[0]) != "▁ab" {
		t.Errorf("Encode(\"ab\") = %v, want the single token ▁ab", ids)
	}
}

func TestSynthVocab(t *testing.T) {
	for _, n := range []int{260, 300, 777, 32000} {
		toks, scores, types, err := synthVocab(n)
		if err != nil {
			t.Fatalf("synthVocab(%d): %v", n, err)
		}
		if len(toks) != n || len(scores) != n || len(types) != n {
			t.Fatalf("synthVocab(%d): %d tokens, %d scores, %d types", n, len(toks), len(scores), len(types))
		}
		seen := map[string]bool{}
		for i, tk := range toks {
			if seen[tk] {
				t.Fatalf("synthVocab(%d): token %q twice", n, tk)
			}
			seen[tk] = true
			if i >= 259 && (types[i] != tokenizer.TypeNormal || i > 259 && scores[i] >= scores[i-1]) {
				t.Fatalf("synthVocab(%d): token %d %q type %d score %v", n, i, tk, types[i], scores[i])
			}
		}
		if toks[3] != "<0x00>" || toks[258] != "<0xFF>" || types[100] != tokenizer.TypeByte || types[1] != tokenizer.TypeControl {
			t.Errorf("synthVocab(%d): special/byte layout wrong: %q %q", n, toks[3], toks[258])
		}
	}
	if _, _, _, err := synthVocab(259); err == nil {
		t.Error("synthVocab(259): no error for a vocabulary without room for ▁")
	}
}

// TestSynthDeterministic checks that the bytes depend on the seed only, not
// on how many workers wrote them.
func TestSynthDeterministic(t *testing.T) {
	dir := t.TempDir()
	spec := synthSpec{Arch: "llama", Layers: 1, Embd: 64, Heads: 2, KVHeads: 2, FF: 96, Vocab: 300, Ctx: 32,
		Type: ggml.Q4_0, OutputType: ggml.Q8_0, Seed: 9}
	var files [][]byte
	for i, workers := range []int{1, 3} {
		w, ts, err := synthLayout(spec)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprint(i, ".gguf"))
		if err := writeSynth(context.Background(), w, ts, spec.Seed, p, workers, progress.New(nil, "", 0)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("1 and 3 workers wrote different files")
	}
	spec.Seed = 10
	w, ts, _ := synthLayout(spec)
	p := filepath.Join(dir, "other.gguf")
	if err := writeSynth(context.Background(), w, ts, spec.Seed, p, 2, progress.New(nil, "", 0)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); bytes.Equal(b, files[0]) {
		t.Error("seeds 9 and 10 wrote the same file")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

func TestSynthOutputType(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	args := []string{"synth", "--layers", "1", "--embd", "256", "--heads", "4", "--ff", "512", "--vocab", "300",
		"--type", "q4_0", "--output-type", "Q6_K", "-o", out}
	if _, _, err := runCmd(t, args...); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, want := range map[string]string{"output.weight": "Q6_K", "token_embd.weight": "Q4_0", "blk.0.ffn_down.weight": "Q4_0", "output_norm.weight": "F32"} {
		if ti, ok := f.Tensor(name); !ok || ti.Type.String() != want {
			t.Errorf("%s: type %v, want %s", name, ti, want)
		}
	}
	if v, _ := f.Lookup("llama.attention.head_count_kv"); v.V != uint32(4) {
		t.Errorf("--kv-heads should default to --heads: %v", v.V)
	}
}

func TestSynthBadFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	base := func(extra ...string) []string {
		a := []string{"synth", "--layers", "1", "--embd", "64", "--heads", "4", "--ff", "96", "--vocab", "300", "-o", out}
		return append(a, extra...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{base("--type", "Q4_K"), "rows of 64 elements are not a whole number of Q4_K blocks of 256"},
		{base("--type", "Q9_9"), `--type "Q9_9": unknown type`},
		{base("--output-type", "nope"), "--output-type"},
		{base("--heads", "5"), "--embd 64 is not a multiple of --heads 5"},
		{base("--kv-heads", "3"), "--heads 4 is not a multiple of --kv-heads 3"},
		{base("--vocab", "100"), "--vocab 100: want at least 260"},
		{base("--layers", "0"), "--layers 0: want > 0"},
		{base("--arch", "gpt2"), "only llama"},
		{[]string{"synth", "--layers", "1", "--embd", "64", "--heads", "4", "--ff", "96"}, "no output file"},
		{base("--embd", "60", "--heads", "4", "--type", "F16"), "head size 15"},
	} {
		_, _, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one containing %q", tc.args[1:], err, tc.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed synth left an output file")
	}
}
