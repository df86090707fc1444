package tokenizer

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/gguf"
)

// referenceTokenizer builds vocab's tokenizer the literal llama.cpp way: one
// heap per word (no linear scan), SPM text merged as a single chain and
// every SPM candidate looked up by its text.
func referenceTokenizer(t *testing.T, vocab string) *Tokenizer {
	t.Helper()
	loadVocab(t, vocab) // skips when the vocabulary is missing
	f, err := gguf.Open(filepath.Join(vectorDir(t), vocab+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tok.linearMergeMax = 0
	tok.spmPairs, tok.spmUnits, tok.spmMerge = nil, nil, nil
	return tok
}

// TestMergeShortcutsAreExact: the linear scan for short words and the SPM
// cut at unmergeable unit pairs give exactly the ids of the plain algorithm.
func TestMergeShortcutsAreExact(t *testing.T) {
	rng := newRand(t)
	for _, name := range []string{"stories260K", "ggml-vocab-llama-spm", "ggml-vocab-phi-3", "ggml-vocab-gpt-2", "ggml-vocab-deepseek-llm"} {
		t.Run(name, func(t *testing.T) {
			fast := loadVocab(t, name)
			ref := referenceTokenizer(t, name)
			var texts []string
			for _, c := range readVectors(t, "ggml-vocab-llama-spm") {
				texts = append(texts, c.text)
			}
			texts = append(texts, strings.Repeat("ab", 50), strings.Repeat(" ", 70), strings.Repeat("3", 40), strings.Repeat("!", 33))
			for range 40 {
				texts = append(texts, randomText(rng, 1+rng.IntN(400)))
			}
			for _, s := range texts {
				a, err := fast.Encode(s, false, false)
				if err != nil {
					t.Fatal(err)
				}
				b, err := ref.Encode(s, false, false)
				if err != nil {
					t.Fatal(err)
				}
				if !equalIDs(a, b) {
					t.Fatalf("Encode(%q)\n fast      %s\n reference %s", s, describe(fast, a), describe(ref, b))
				}
			}
		})
	}
}
