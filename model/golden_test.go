package model

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// The golden conformance tests: llama.cpp's logits and greedy continuations
// for small GGUF models (../shared/testdata/golden, see its README).

// goldenCtx is the n_ctx the goldens were produced with.
const goldenCtx = 256

type goldenIndex struct {
	Cases []goldenCase `json:"cases"`
}

type goldenCase struct {
	Case       string   `json:"case"`
	Arch       string   `json:"arch"`
	WeightType string   `json:"weight_type"`
	ModelFile  string   `json:"model_file"`
	Files      []string `json:"files"`
}

type goldenPrompt struct {
	Case       string  `json:"case"`
	PromptID   string  `json:"prompt_id"`
	NVocab     int     `json:"n_vocab"`
	PromptText *string `json:"prompt_text"`
	Tokens     []int32 `json:"tokens"`
	LogitsB64  []string
	Greedy     struct {
		N      int       `json:"n"`
		Tokens []int32   `json:"tokens"`
		Margin []float64 `json:"margin"`
		Text   string    `json:"text"`
	} `json:"greedy"`
}

// UnmarshalJSON is plain decoding; logits_b64 needs its own tag because
// encoding/json does not match the underscore-free field name.
func (g *goldenPrompt) UnmarshalJSON(data []byte) error {
	type plain goldenPrompt
	var aux struct {
		plain
		LogitsB64 []string `json:"logits_b64"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*g = goldenPrompt(aux.plain)
	g.LogitsB64 = aux.LogitsB64
	return nil
}

// logits decodes the golden logits of prompt position i.
func (g *goldenPrompt) logits(t *testing.T, i int) []float32 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(g.LogitsB64[i])
	if err != nil {
		t.Fatalf("%s/%s: logits_b64[%d]: %v", g.Case, g.PromptID, i, err)
	}
	if len(raw) != 4*g.NVocab {
		t.Fatalf("%s/%s: logits_b64[%d] has %d bytes, want %d", g.Case, g.PromptID, i, len(raw), 4*g.NVocab)
	}
	out := make([]float32, g.NVocab)
	for j := range out {
		out[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
	}
	return out
}

// tolerance is the README's "suggested thresholds" for a case.
type tolerance struct {
	maxAbs, rms float64 // rms 0: not checked
	// margin: a greedy difference at a step whose golden margin is below
	// this is a legitimate fork (comparison stops); above it, a failure.
	margin float64
}

func toleranceFor(c goldenCase) tolerance {
	switch c.WeightType {
	case "F32":
		if c.Case == "llama-f32" {
			return tolerance{maxAbs: 1e-4, margin: 0.01}
		}
		return tolerance{maxAbs: 1e-3, margin: 0.01} // stories260k: logit std 6.7
	case "F16":
		return tolerance{maxAbs: 5e-3, margin: 0.01}
	case "BF16":
		return tolerance{maxAbs: 3e-2, margin: 0.05}
	default: // quantized
		return tolerance{maxAbs: 0.25, rms: 0.05, margin: 0.25}
	}
}

// sharedDir finds ../shared next to the repository root (the directory
// holding go.mod), or skips the test.
func sharedDir(t *testing.T) string {
	t.Helper()
	return sharedDirTB(t)
}

func sharedDirTB(t testing.TB) string {
	t.Helper()
	return shareddata.Dir(t)
}

func goldenDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(sharedDir(t), "testdata", "golden")
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Skipf("golden vectors missing: %s", filepath.Join(dir, "index.json"))
	}
	return dir
}

// modelPath resolves a golden model file. stories260k/model.gguf is a
// symlink in the original tree, but copies of ../shared may turn it into a
// small text file holding the relative target; follow that too.
func modelPath(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("model file: %v", err)
	}
	if len(data) < 1024 && !bytes.HasPrefix(data, []byte("GGUF")) {
		target := strings.TrimSpace(string(data))
		return filepath.Join(filepath.Dir(path), target)
	}
	return path
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// loadGolden opens and loads a case's model on a fresh backend.
func loadGolden(t *testing.T, dir string, c goldenCase, newBackend func() compute.Backend) *Model {
	t.Helper()
	f, err := gguf.Open(modelPath(t, filepath.Join(dir, c.ModelFile)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := Load(f, newBackend())
	if err != nil {
		t.Fatalf("load %s: %v", c.Case, err)
	}
	t.Cleanup(m.Close)
	return m
}

// argmax returns the index of the largest value, the lowest on ties (as
// llama.cpp's greedy sampler does).
func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// runGolden checks every golden case and prompt on backends made by
// newBackend: logits at every prompt position from one batch, then greedy
// decoding one token per step.
func runGolden(t *testing.T, newBackend func() compute.Backend) {
	dir := goldenDir(t)
	var idx goldenIndex
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	if len(idx.Cases) == 0 {
		t.Fatal("index.json lists no cases")
	}
	for _, c := range idx.Cases {
		t.Run(c.Case, func(t *testing.T) {
			t.Parallel()
			m := loadGolden(t, dir, c, newBackend)
			if m.HParams.Arch != c.Arch {
				t.Errorf("arch %q, index says %q", m.HParams.Arch, c.Arch)
			}
			for _, file := range c.Files {
				var g goldenPrompt
				readJSON(t, filepath.Join(dir, file), &g)
				checkPrompt(t, m, c, &g)
			}
		})
	}
}

func checkPrompt(t *testing.T, m *Model, c goldenCase, g *goldenPrompt) {
	t.Helper()
	tol := toleranceFor(c)
	nv := m.HParams.NVocab
	if nv != g.NVocab {
		t.Fatalf("%s: n_vocab %d, golden %d", g.PromptID, nv, g.NVocab)
	}
	s, err := NewSession(m, goldenCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The whole prompt in one batch, logits at every position.
	logits, err := s.EvalAll(g.Tokens)
	if err != nil {
		t.Fatalf("%s: %v", g.PromptID, err)
	}
	var maxAbs, sumSq float64
	worst := [2]int{}
	for i := range g.Tokens {
		want := g.logits(t, i)
		got := logits[i*nv : (i+1)*nv]
		for j := range want {
			d := math.Abs(float64(got[j]) - float64(want[j]))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			sumSq += d * d
			if d > maxAbs {
				maxAbs, worst = d, [2]int{i, j}
			}
		}
	}
	rms := math.Sqrt(sumSq / float64(len(g.Tokens)*nv))
	t.Logf("%s/%s: %d prompt tokens: max|Δ| %.3g (position %d, token %d), rms %.3g", c.Case, g.PromptID, len(g.Tokens), maxAbs, worst[0], worst[1], rms)
	if maxAbs > tol.maxAbs {
		t.Errorf("%s/%s: max|Δ| %.3g at position %d token %d exceeds %.3g", c.Case, g.PromptID, maxAbs, worst[0], worst[1], tol.maxAbs)
	}
	if tol.rms > 0 && rms > tol.rms {
		t.Errorf("%s/%s: rms %.3g exceeds %.3g", c.Case, g.PromptID, rms, tol.rms)
	}

	// Greedy decoding, one token per step, reusing the cache.
	last := logits[(len(g.Tokens)-1)*nv:]
	for step, want := range g.Greedy.Tokens {
		got := argmax(last)
		if got != want {
			margin := g.Greedy.Margin[step]
			if margin < tol.margin {
				t.Logf("%s/%s: greedy step %d: token %d, golden %d; golden margin %.3g < %.3g, a legitimate fork: stop comparing", c.Case, g.PromptID, step, got, want, margin, tol.margin)
				return
			}
			t.Errorf("%s/%s: greedy step %d: token %d, golden %d (golden margin %.3g ≥ %.3g)", c.Case, g.PromptID, step, got, want, margin, tol.margin)
			return
		}
		if step+1 == len(g.Greedy.Tokens) {
			break
		}
		if last, err = s.Eval([]int32{got}); err != nil {
			t.Fatalf("%s/%s: greedy step %d: %v", c.Case, g.PromptID, step+1, err)
		}
	}
	t.Logf("%s/%s: greedy: all %d tokens match", c.Case, g.PromptID, len(g.Greedy.Tokens))
}

func newReference() compute.Backend { return compute.NewReference() }

// TestGoldenReference runs the golden set on the reference backend
// (golden_cpu_test.go and golden_gpu_test.go run it on the others).
func TestGoldenReference(t *testing.T) {
	runGolden(t, newReference)
}

// runStory checks the real stories260K model end to end: the tokenizer's
// ids for the golden prompt, a 200-token greedy continuation identical to
// llama.cpp's, and the text Karpathy's model is known for.
func runStory(t *testing.T, newBackend func() compute.Backend) {
	dir := goldenDir(t)
	var g goldenPrompt
	readJSON(t, filepath.Join(dir, "stories260k", "once_upon.json"), &g)
	f, err := gguf.Open(modelPath(t, filepath.Join(dir, "stories260k", "model.gguf")))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(f, newBackend())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// The golden prompt is "Once upon a time, there was a little" with BOS.
	if g.PromptText == nil {
		t.Fatal("golden stories260k prompt has no text")
	}
	prompt, err := tok.Encode(*g.PromptText, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prompt, g.Tokens) {
		t.Fatalf("tokenizer: %q gives %v, llama.cpp %v", *g.PromptText, prompt, g.Tokens)
	}
	short, err := tok.Encode("Once upon a time", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(short, g.Tokens[:5]) {
		t.Errorf(`tokenizer: "Once upon a time" gives %v, want BOS and the golden prompt's first words %v`, short, g.Tokens[:5])
	}

	// 210 positions: more than the model's training context of 128, as in
	// llama.cpp's run (n_ctx 256).
	s, err := NewSession(m, goldenCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logits, err := s.Eval(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var gen []int32
	for len(gen) < len(g.Greedy.Tokens) {
		next := argmax(logits)
		gen = append(gen, next)
		if len(gen) == len(g.Greedy.Tokens) {
			break
		}
		if logits, err = s.Eval([]int32{next}); err != nil {
			t.Fatalf("step %d: %v", len(gen), err)
		}
	}
	for i := range gen {
		if gen[i] != g.Greedy.Tokens[i] {
			t.Fatalf("greedy token %d: %d, llama.cpp %d (golden margin %.3g)", i, gen[i], g.Greedy.Tokens[i], g.Greedy.Margin[i])
		}
	}
	text := tok.Decode(append(slices.Clone(prompt), gen...))
	t.Logf("story: %.120q…", text)
	const want = "Once upon a time, there was a little girl named Lily"
	if !strings.HasPrefix(text, want) {
		t.Errorf("story starts %.80q, want %q", text, want)
	}
	// llama.cpp's golden text is the continuation's pieces; decoding strips
	// only the leading space of the whole text, which the prompt carries.
	if wantText := tok.Decode(prompt) + g.Greedy.Text; text != wantText {
		t.Errorf("story decodes to\n%q\nllama.cpp prompt+continuation\n%q", text, wantText)
	}
}

// TestStoriesStory runs the stories260K story on the reference backend.
func TestStoriesStory(t *testing.T) {
	runStory(t, newReference)
}
