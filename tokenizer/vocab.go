package tokenizer

import (
	"fmt"
	"strings"
)

// Token types as stored in tokenizer.ggml.token_type.
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Tokenizer kinds (tokenizer.ggml.model values) this package implements.
const (
	ModelSPM  = "llama" // SentencePiece BPE with byte fallback
	ModelBPE  = "gpt2"  // byte-level BPE with a regex pre-tokenizer
	ModelWPM  = "bert"  // WordPiece
	noTokenID = -1
)

// Vocab is everything a tokenizer is built from: the token table and the
// tokenizer settings, with defaults already resolved. VocabFromGGUF fills it
// from GGUF metadata the way llama.cpp does; tests and tools may also build
// one by hand. Special token ids are -1 when absent.
type Vocab struct {
	Model string // tokenizer.ggml.model: "llama", "gpt2" or "bert"
	Pre   string // tokenizer.ggml.pre: the pre-tokenizer of a gpt2 vocabulary ("" means "default")

	// Name and Arch are general.name and general.architecture. llama.cpp
	// keys a few per-token attributes on them (Phi-3's right-stripping
	// special tokens, jina's left-stripping <mask>).
	Name, Arch string

	Tokens []string
	Scores []float32 // nil: all zero
	Types  []int32   // nil: all TypeNormal
	Merges []string  // "left right", in rank order (gpt2 only)

	BOS, EOS, EOT, EOM, UNK, SEP, PAD int32

	AddBOS, AddEOS, AddSEP bool
	AddSpacePrefix         bool // SPM: prepend a space to text (default true for llama)

	// WordPiece normalizer (tokenizer.ggml.normalizer.*; both default true).
	Lowercase, StripAccents bool
}

// token attributes, as llama.cpp's llama_token_attr; a token can carry
// several (a user-defined token may be promoted to control, or be stripped).
type tokenAttr uint16

const (
	attrUndefined   tokenAttr = 0
	attrUnknown     tokenAttr = 1 << 0
	attrUnused      tokenAttr = 1 << 1
	attrNormal      tokenAttr = 1 << 2
	attrControl     tokenAttr = 1 << 3
	attrUserDefined tokenAttr = 1 << 4
	attrByte        tokenAttr = 1 << 5
	attrLStrip      tokenAttr = 1 << 7
	attrRStrip      tokenAttr = 1 << 8
)

func attrFromType(t int32) tokenAttr {
	switch t {
	case TypeNormal:
		return attrNormal
	case TypeUnknown:
		return attrUnknown
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeUnused:
		return attrUnused
	case TypeByte:
		return attrByte
	default:
		return attrUndefined
	}
}

// validate checks the table sizes and the special ids.
func (v *Vocab) validate() error {
	n := len(v.Tokens)
	if n == 0 {
		return fmt.Errorf("tokenizer: vocabulary has no tokens")
	}
	if v.Scores != nil && len(v.Scores) < n {
		return fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) < n {
		return fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int32
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"EOT", v.EOT}, {"EOM", v.EOM}, {"UNK", v.UNK}, {"SEP", v.SEP}, {"PAD", v.PAD}} {
		if s.id < -1 || int(s.id) >= n {
			return fmt.Errorf("tokenizer: %s token id %d outside vocabulary of %d tokens", s.name, s.id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return fmt.Errorf("tokenizer: add_bos_token is true but there is no BOS token")
	}
	if v.AddEOS && v.EOS < 0 {
		return fmt.Errorf("tokenizer: add_eos_token is true but there is no EOS token")
	}
	if v.Model == ModelWPM && v.AddSEP && v.SEP < 0 {
		return fmt.Errorf("tokenizer: add_sep_token is true but there is no SEP token")
	}
	return nil
}

// Texts that llama.cpp treats as end-of-generation tokens whatever their
// metadata says (it also forces them to control type).
var eogTexts = map[string]bool{
	"<|eot_id|>": true, "<|im_end|>": true, "<|end|>": true, "<|return|>": true, "<|call|>": true,
	"<|flush|>": true, "<|calls|>": true, "<end_of_turn>": true, "<|endoftext|>": true, "</s>": true,
	"<|eom_id|>": true, "<EOT>": true, "_<EOT>": true, "[EOT]": true, "[EOS]": true,
	"<|end_of_text|>": true, "<end_of_utterance>": true, "<eos>": true, "<turn|>": true,
	"<|tool_response>": true, "<｜end▁of▁sentence｜>": true, "[e~[": true,
	// FIM pad / repo / file-separator tokens end generation too.
	"<|fim_pad|>": true, "<fim-pad>": true, "<fim_pad>": true, "<PAD>": true, "[PAD]": true,
	"<|fim_repo|>": true, "<|repo_name|>": true, "<fim-repo>": true, "<REPO>": true, "<reponame>": true,
	"<|file_sep|>": true,
}

// Texts llama.cpp picks the EOT token from when the metadata names none.
var eotTexts = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
	"<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
}

// buildAttrs derives per-token attributes from the token types plus the
// fix-ups llama.cpp applies by token text and model name, and the set of
// end-of-generation tokens.
func buildAttrs(v *Vocab, index map[string]int32) (attrs []tokenAttr, eot int32, eog map[int32]bool) {
	n := len(v.Tokens)
	attrs = make([]tokenAttr, n)
	for i := range attrs {
		if v.Types == nil {
			attrs[i] = attrNormal
		} else {
			attrs[i] = attrFromType(v.Types[i])
		}
	}
	eot = v.EOT
	if eot < 0 {
		for _, t := range eotTexts {
			if id, ok := index[t]; ok {
				eot = id
				attrs[id] |= attrControl
				break
			}
		}
	}
	eog = make(map[int32]bool)
	for id, t := range v.Tokens {
		if eogTexts[t] {
			eog[int32(id)] = true
			attrs[id] |= attrControl
		}
	}
	// gpt-oss renders these as text.
	for _, t := range []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"} {
		if id, ok := index[t]; ok {
			attrs[id] = attrUserDefined
		}
	}
	for _, id := range []int32{v.EOS, eot, v.EOM} {
		if id >= 0 {
			eog[id] = true
		}
	}
	// o200k_harmony / solar-open: <|end|> is not end-of-generation there.
	has := func(t string) bool { id, ok := index[t]; return ok && eog[id] }
	if id, ok := index["<|end|>"]; ok && eog[id] &&
		((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>"))) {
		delete(eog, id)
		attrs[id] = attrUserDefined
	}
	// gemma4 / paddleocr: </s> is a plain token when <|tool_response> exists.
	if id, ok := index["</s>"]; ok && eog[id] && has("<|tool_response>") {
		delete(eog, id)
		attrs[id] = attrNormal
	}

	// Per-model strip attributes (llama.cpp keys them on names).
	name := strings.ToLower(v.Name)
	switch {
	case containsAny(v.Pre, "jina-v2-de", "jina-v2-es", "jina-v2-code") || containsAny(v.Arch, "nomic-bert-moe", "jina-bert-v3"):
		if id, ok := index["<mask>"]; ok {
			attrs[id] |= attrLStrip
		}
	case containsAny(name, "phi-3", "phi3"):
		for id, a := range attrs {
			if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
				attrs[id] |= attrRStrip
			}
		}
		if id, ok := index["</s>"]; ok {
			attrs[id] |= attrRStrip
		}
		for _, t := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			if id, ok := index[t]; ok {
				attrs[id] &^= attrRStrip
			}
		}
	case containsAny(name, "modern-bert"):
		if id, ok := index["[MASK]"]; ok {
			attrs[id] |= attrLStrip
		}
	}
	return attrs, eot, eog
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
