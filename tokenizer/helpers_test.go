package tokenizer

import (
	"fmt"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rocmforge/rocmforge/gguf"
)

// sharedDir returns ../shared next to the module root (the directory with
// go.mod), found by walking up from the package directory.
func sharedDir(tb testing.TB) string {
	tb.Helper()
	return shareddata.Dir(tb)
}

// vectorDir returns the conformance vector directory or skips the test.
func vectorDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(sharedDir(tb), "testdata", "tokenizer")
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("tokenizer vectors not available: %s missing", dir)
	}
	return dir
}

// The vocabularies of the conformance vectors, with their expected model.
var conformanceVocabs = []struct{ name, model string }{
	{"ggml-vocab-llama-spm", ModelSPM},
	{"ggml-vocab-phi-3", ModelSPM},
	{"ggml-vocab-bert-bge", ModelWPM},
	{"ggml-vocab-gpt-2", ModelBPE},
	{"ggml-vocab-deepseek-coder", ModelBPE},
	{"ggml-vocab-deepseek-llm", ModelBPE},
	{"ggml-vocab-falcon", ModelBPE},
	{"ggml-vocab-mpt", ModelBPE},
	{"ggml-vocab-refact", ModelBPE},
	{"ggml-vocab-starcoder", ModelBPE},
	{"stories260K", ModelSPM},
}

// loaded tokenizers are shared between tests of one run (loading the large
// BPE vocabularies takes a noticeable fraction of a second each).
var (
	loadMu sync.Mutex
	loaded = map[string]*Tokenizer{}
)

// loadVocab opens <vocab>.gguf from the vector directory (or skips).
func loadVocab(tb testing.TB, vocab string) *Tokenizer {
	tb.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	if tok, ok := loaded[vocab]; ok {
		return tok
	}
	path := filepath.Join(vectorDir(tb), vocab+".gguf")
	if _, err := os.Stat(path); err != nil {
		tb.Skipf("vocabulary not available: %s missing", path)
	}
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		tb.Fatalf("tokenizer from %s: %v", path, err)
	}
	loaded[vocab] = tok
	return tok
}

// vectorCase is one text with its expected ids.
type vectorCase struct {
	text string
	ids  []int32
}

const vectorSeparator = "\n__ggml_vocab_test__\n"

// readVectors reads <vocab>.gguf.inp / .out.
func readVectors(tb testing.TB, vocab string) []vectorCase {
	tb.Helper()
	dir := vectorDir(tb)
	inp, err := os.ReadFile(filepath.Join(dir, vocab+".gguf.inp"))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join(dir, vocab+".gguf.out"))
	if err != nil {
		tb.Fatal(err)
	}
	texts := strings.Split(string(inp), vectorSeparator)
	if len(texts) == 0 || texts[len(texts)-1] != "" {
		tb.Fatalf("%s.gguf.inp does not end with the separator", vocab)
	}
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		tb.Fatalf("%s: %d inputs but %d output lines", vocab, len(texts), len(lines))
	}
	cases := make([]vectorCase, len(texts))
	for i, text := range texts {
		cases[i].text = text
		for _, f := range strings.Fields(lines[i]) {
			id, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				tb.Fatalf("%s.gguf.out line %d: %v", vocab, i+1, err)
			}
			cases[i].ids = append(cases[i].ids, int32(id))
		}
	}
	return cases
}

// describe formats ids with their vocabulary strings for failure messages.
func describe(tok *Tokenizer, ids []int32) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%q", id, tok.Token(id))
	}
	b.WriteByte(']')
	return b.String()
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
