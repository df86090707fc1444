package tokenizer

import (
	"errors"
	"fmt"

	"github.com/rocmforge/rocmforge/gguf"
)

// GGUF metadata keys read here.
const (
	keyModel        = "tokenizer.ggml.model"
	keyPre          = "tokenizer.ggml.pre"
	keyTokens       = "tokenizer.ggml.tokens"
	keyScores       = "tokenizer.ggml.scores"
	keyTypes        = "tokenizer.ggml.token_type"
	keyMerges       = "tokenizer.ggml.merges"
	keyAddBOS       = "tokenizer.ggml.add_bos_token"
	keyAddEOS       = "tokenizer.ggml.add_eos_token"
	keyAddSEP       = "tokenizer.ggml.add_sep_token"
	keyAddPrefix    = "tokenizer.ggml.add_space_prefix"
	keyLowercase    = "tokenizer.ggml.normalizer.lowercase"
	keyStripAccents = "tokenizer.ggml.normalizer.strip_accents"
)

// VocabFromGGUF reads the tokenizer metadata of f, resolving defaults as
// llama.cpp's llama_vocab::load does: per-model default special tokens
// (llama: BOS 1, EOS 2, UNK 0; bert: CLS 101, UNK 100, SEP 102, PAD 0;
// gpt2: BOS = EOS = 11), add_bos_token true for llama and bert and for the
// Llama 3 family of pre-tokenizers, add_space_prefix true for llama. A
// special token id in the metadata that is outside the vocabulary is
// ignored (the default stays), as upstream does with a warning.
func VocabFromGGUF(f *gguf.File) (*Vocab, error) {
	v := &Vocab{BOS: -1, EOS: -1, EOT: -1, EOM: -1, UNK: -1, SEP: -1, PAD: -1}
	var err error
	if v.Model, err = f.GetString(keyModel); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Pre, err = f.GetStringOr(keyPre, ""); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	v.Name, _ = f.GetStringOr("general.name", "")
	v.Arch, _ = f.GetStringOr("general.architecture", "")
	if v.Tokens, err = f.GetStrings(keyTokens); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	n := len(v.Tokens)
	if _, ok := f.Lookup(keyScores); ok {
		v.Scores, err = f.GetFloat32s(keyScores)
		if errors.Is(err, gguf.ErrWrongType) { // llama.cpp also takes integer scores
			var is []int32
			if is, err = f.GetInt32s(keyScores); err == nil {
				v.Scores = make([]float32, len(is))
				for i, s := range is {
					v.Scores[i] = float32(s)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}
	if _, ok := f.Lookup(keyTypes); ok {
		if v.Types, err = f.GetInt32s(keyTypes); err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}

	switch v.Model {
	case ModelSPM:
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case ModelWPM:
		v.BOS, v.UNK, v.SEP, v.PAD = 101, 100, 102, 0
		v.AddBOS, v.AddSEP = true, true
	case ModelBPE:
		if v.Merges, err = f.GetStrings(keyMerges); err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		v.BOS, v.EOS = 11, 11
		spec, ok := preTokenizerSpecs[v.Pre]
		if !ok {
			return nil, fmt.Errorf("tokenizer: unknown pre-tokenizer %q (%s)", v.Pre, keyPre)
		}
		v.AddBOS = spec.addBOS
		if spec.noBOS {
			v.BOS = -1
		}
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q (%s); want llama, gpt2 or bert", v.Model, keyModel)
	}

	for _, s := range []struct {
		key string
		id  *int32
	}{
		{"tokenizer.ggml.bos_token_id", &v.BOS},
		{"tokenizer.ggml.eos_token_id", &v.EOS},
		{"tokenizer.ggml.eot_token_id", &v.EOT},
		{"tokenizer.ggml.eom_token_id", &v.EOM},
		{"tokenizer.ggml.unknown_token_id", &v.UNK},
		{"tokenizer.ggml.seperator_token_id", &v.SEP}, // sic, the GGUF key is misspelled
		{"tokenizer.ggml.padding_token_id", &v.PAD},
	} {
		if int(*s.id) >= n {
			*s.id = -1 // a default outside a small vocabulary
		}
		if _, ok := f.Lookup(s.key); !ok {
			continue
		}
		x, err := f.GetInt64(s.key)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if x >= 0 && x < int64(n) {
			*s.id = int32(x)
		}
	}

	for _, b := range []struct {
		key string
		val *bool
	}{
		{keyAddBOS, &v.AddBOS},
		{keyAddEOS, &v.AddEOS},
		{keyAddSEP, &v.AddSEP},
		{keyAddPrefix, &v.AddSpacePrefix},
	} {
		if *b.val, err = f.GetBoolOr(b.key, *b.val); err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}
	if v.Lowercase, err = f.GetBoolOr(keyLowercase, true); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.StripAccents, err = f.GetBoolOr(keyStripAccents, v.Lowercase); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return v, nil
}

// FromGGUF builds the tokenizer of a GGUF file.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	v, err := VocabFromGGUF(f)
	if err != nil {
		return nil, err
	}
	return New(v)
}
