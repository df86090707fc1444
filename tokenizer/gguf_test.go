package tokenizer

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/gguf"
)

// fileFrom writes kvs into an in-memory GGUF and parses it.
func fileFrom(t *testing.T, kvs map[string]any) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	for k, v := range kvs {
		if err := w.Set(k, v); err != nil {
			t.Fatalf("Set(%s): %v", k, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVocabFromGGUFDefaults(t *testing.T) {
	tokens := []string{"<unk>", "<s>", "</s>", "▁a", "a", "▁"}
	f := fileFrom(t, map[string]any{
		"tokenizer.ggml.model":                "llama",
		"tokenizer.ggml.tokens":               tokens,
		"tokenizer.ggml.scores":               []int32{0, 0, 0, -1, -2, -3}, // integer scores are accepted
		"tokenizer.ggml.token_type":           []int32{2, 3, 3, 1, 1, 1},
		"tokenizer.ggml.padding_token_id":     uint32(4294967295), // outside the vocabulary: ignored
		"tokenizer.ggml.eos_token_id":         uint32(2),
		"tokenizer.ggml.add_space_prefix":     false,
		"tokenizer.ggml.normalizer.lowercase": false,
	})
	v, err := VocabFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if v.BOS != 1 || v.EOS != 2 || v.UNK != 0 || v.PAD != -1 || v.SEP != -1 || v.EOT != -1 {
		t.Errorf("ids BOS %d EOS %d UNK %d PAD %d SEP %d EOT %d, want 1 2 0 -1 -1 -1", v.BOS, v.EOS, v.UNK, v.PAD, v.SEP, v.EOT)
	}
	if !v.AddBOS || v.AddEOS || v.AddSpacePrefix || v.Lowercase || v.StripAccents {
		t.Errorf("flags AddBOS %v AddEOS %v AddSpacePrefix %v Lowercase %v StripAccents %v, want true false false false false",
			v.AddBOS, v.AddEOS, v.AddSpacePrefix, v.Lowercase, v.StripAccents)
	}
	if len(v.Scores) != len(tokens) || v.Scores[4] != -2 {
		t.Errorf("scores %v", v.Scores)
	}
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	// No prefix space: "a" stays "a", then "▁a" after a space.
	ids, _ := tok.Encode("a a", true, false)
	if want := []int32{1, 4, 3}; !equalIDs(ids, want) {
		t.Errorf("Encode = %s, want %s", describe(tok, ids), describe(tok, want))
	}
}

func TestVocabFromGGUFBPEDefaults(t *testing.T) {
	tokens := []string{"a", "b", "ab", "<|endoftext|>", "Ġ", "Ġab"}
	base := map[string]any{
		"tokenizer.ggml.model":  "gpt2",
		"tokenizer.ggml.tokens": tokens,
		"tokenizer.ggml.merges": []string{"a b", "Ġ ab"},
	}
	for _, c := range []struct {
		pre     string
		addBOS  bool
		wantIDs []int32
	}{
		{"gpt-2", false, []int32{2, 5}},
		{"llama-bpe", true, []int32{2, 5}}, // the Llama 3 family adds BOS by default
	} {
		kvs := map[string]any{"tokenizer.ggml.pre": c.pre, "tokenizer.ggml.bos_token_id": uint32(3)}
		for k, v := range base {
			kvs[k] = v
		}
		v, err := VocabFromGGUF(fileFrom(t, kvs))
		if err != nil {
			t.Fatalf("%s: %v", c.pre, err)
		}
		if v.AddBOS != c.addBOS || v.BOS != 3 || v.EOS != -1 {
			t.Errorf("%s: AddBOS %v BOS %d EOS %d, want %v 3 -1 (default 11 is outside 6 tokens)", c.pre, v.AddBOS, v.BOS, v.EOS, c.addBOS)
		}
		tok, err := New(v)
		if err != nil {
			t.Fatalf("%s: %v", c.pre, err)
		}
		ids, _ := tok.Encode("ab ab", false, false)
		if !equalIDs(ids, c.wantIDs) {
			t.Errorf("%s: Encode(ab ab) = %s, want %s", c.pre, describe(tok, ids), describe(tok, c.wantIDs))
		}
		if got := tok.Decode(ids); got != "ab ab" {
			t.Errorf("%s: Decode = %q", c.pre, got)
		}
		if !tok.IsEOG(3) {
			t.Errorf("%s: <|endoftext|> is not end-of-generation", c.pre)
		}
	}
}

func TestVocabFromGGUFErrors(t *testing.T) {
	_, err := VocabFromGGUF(fileFrom(t, map[string]any{"tokenizer.ggml.tokens": []string{"a"}}))
	if !errors.Is(err, gguf.ErrKeyNotFound) {
		t.Errorf("missing model: %v, want ErrKeyNotFound", err)
	}
	_, err = VocabFromGGUF(fileFrom(t, map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": []string{"a"}}))
	if !errors.Is(err, gguf.ErrKeyNotFound) || !strings.Contains(err.Error(), "merges") {
		t.Errorf("gpt2 without merges: %v", err)
	}
	_, err = VocabFromGGUF(fileFrom(t, map[string]any{"tokenizer.ggml.model": "rwkv", "tokenizer.ggml.tokens": []string{"a"}}))
	if err == nil || !strings.Contains(err.Error(), `"rwkv"`) {
		t.Errorf("unsupported model: %v", err)
	}
	_, err = VocabFromGGUF(fileFrom(t, map[string]any{"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": []string{"a"}, "tokenizer.ggml.token_type": "x"}))
	if !errors.Is(err, gguf.ErrWrongType) {
		t.Errorf("token_type as a string: %v, want ErrWrongType", err)
	}
}
