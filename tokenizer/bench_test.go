package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/gguf"
)

// benchText is about 100 KB: the conformance inputs repeated.
func benchText(b *testing.B) string {
	b.Helper()
	inp, err := os.ReadFile(filepath.Join(vectorDir(b), "ggml-vocab-llama-spm.gguf.inp"))
	if err != nil {
		b.Fatal(err)
	}
	one := strings.ReplaceAll(string(inp), vectorSeparator, "\n")
	var sb strings.Builder
	for sb.Len() < 100_000 {
		sb.WriteString(one)
	}
	return sb.String()
}

// loadWithPre builds a tokenizer from a vocabulary with another
// pre-tokenizer, to time pre-tokenizers whose vocabularies are not here
// (Llama 3 and Qwen2 GGUFs are over the size limit of the test data).
func loadWithPre(b *testing.B, vocab, pre string) *Tokenizer {
	b.Helper()
	f, err := gguf.Open(filepath.Join(vectorDir(b), vocab+".gguf"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	v, err := VocabFromGGUF(f)
	if err != nil {
		b.Fatal(err)
	}
	v.Pre = pre
	tok, err := New(v)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// BenchmarkEncode reports MB/s of text for each tokenizer family.
func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	for _, c := range []struct{ name, vocab, pre string }{
		{"llama-spm", "ggml-vocab-llama-spm", ""},
		{"stories260K", "stories260K", ""},
		{"gpt-2", "ggml-vocab-gpt-2", ""},
		{"gpt-2-vocab-llama-bpe-pre", "ggml-vocab-gpt-2", "llama-bpe"},
		{"gpt-2-vocab-qwen2-pre", "ggml-vocab-gpt-2", "qwen2"},
		{"deepseek-llm", "ggml-vocab-deepseek-llm", ""},
		{"starcoder", "ggml-vocab-starcoder", ""},
		{"bert-bge", "ggml-vocab-bert-bge", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			var tok *Tokenizer
			if c.pre != "" {
				tok = loadWithPre(b, c.vocab, c.pre)
			} else {
				tok = loadVocab(b, c.vocab)
			}
			ids, err := tok.Encode(text, false, false)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			buf := make([]int32, 0, len(ids))
			for b.Loop() {
				if buf, err = tok.AppendEncode(buf[:0], text, false, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(text))/float64(len(ids)), "bytes/token")
		})
	}
}
