// Package tokenizer turns text into token ids and back for the vocabularies
// stored in GGUF files: SentencePiece BPE ("llama"), byte-level BPE with
// the pre-tokenizers of tokenizer.ggml.pre ("gpt2") and WordPiece ("bert").
//
// The reference is llama.cpp (src/llama-vocab.cpp, src/unicode.cpp): the
// token ids match its llama_tokenize on the conformance vectors in
// ../shared/testdata/tokenizer, including its handling of special tokens
// (user-defined tokens are split out of the text even when parseSpecial is
// false; control tokens only when it is true).
//
// A Tokenizer is immutable and safe for concurrent use; each call takes its
// working memory from a pool, so steady-state encoding allocates little
// beyond the returned slice.
package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	model  string
	tokens []string
	scores []float32
	attrs  []tokenAttr
	index  map[string]int32 // token text -> id
	pieces []string         // decoded text of each token

	bos, eos, eot, eom, unk, sep, pad int32
	eog                               map[int32]bool

	addBOS, addEOS, addSEP, addSpacePrefix bool

	specialsText *specialMatcher // matched in any text: user-defined tokens
	specialsAll  *specialMatcher // matched with parseSpecial: plus control and unknown

	byteToken [256]int32          // SPM: the <0xNN> token of each byte, -1 if none
	spmPairs  map[uint64]struct{} // SPM: adjacent units that occur inside a token
	spmUnits  map[uint32]int32    // SPM: single-unit tokens by packed bytes
	spmMerge  map[uint64]int32    // SPM: token pair -> the token that is their concatenation

	linearMergeMax int // words up to this many symbols merge by scanning (tests vary it)

	bpe *bpeTables

	maxTokenLen             int // WPM
	lowercase, stripAccents bool

	sessions sync.Pool
}

// session is the working memory of one Encode call.
type session struct {
	part partitionState
	spm  spmSession
	bpe  bpeSession
	wpm  wpmSession
}

// New builds a tokenizer from a vocabulary. The Vocab's slices are kept,
// not copied; they must not change afterwards.
func New(v *Vocab) (*Tokenizer, error) {
	if err := v.validate(); err != nil {
		return nil, err
	}
	n := len(v.Tokens)
	t := &Tokenizer{
		model:  v.Model,
		tokens: make([]string, n),
		scores: v.Scores,
		index:  make(map[string]int32, n),
		bos:    v.BOS, eos: v.EOS, eom: v.EOM, unk: v.UNK, sep: v.SEP, pad: v.PAD,
		addBOS: v.AddBOS, addEOS: v.AddEOS, addSEP: v.AddSEP, addSpacePrefix: v.AddSpacePrefix,
		lowercase: v.Lowercase, stripAccents: v.StripAccents,
		linearMergeMax: linearMergeMax,
	}
	for i, tok := range v.Tokens {
		if tok == "" {
			tok = "[EMPTY_" + strconv.Itoa(i) + "]" // as llama.cpp, so that ids stay unique
		}
		if prev, dup := t.index[tok]; dup {
			return nil, fmt.Errorf("tokenizer: duplicate token %q has ids %d and %d", tok, prev, i)
		}
		t.index[tok] = int32(i)
		t.tokens[i] = tok
		t.maxTokenLen = max(t.maxTokenLen, len(tok))
	}
	t.attrs, t.eot, t.eog = buildAttrs(v, t.index)

	switch v.Model {
	case ModelSPM:
		t.spmPairs = spmPairSet(t.tokens)
		t.spmUnits, t.spmMerge = spmTables(t.tokens, t.index)
		for b := range 256 {
			t.byteToken[b] = noTokenID
			if id, ok := t.index[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteToken[b] = id
			} else if id, ok := t.index[string([]byte{byte(b)})]; ok {
				t.byteToken[b] = id
			}
		}
	case ModelBPE:
		pre, spec, err := newPreTokenizer(v.Pre)
		if err != nil {
			return nil, err
		}
		t.bpe, err = buildBPE(t.index, n, v.Merges, pre, spec.ignoreMerges)
		if err != nil {
			return nil, err
		}
	case ModelWPM:
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q (tokenizer.ggml.model); want llama, gpt2 or bert", v.Model)
	}

	var text, all []int32
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) == 0 {
			continue
		}
		all = append(all, int32(id))
		if a&(attrControl|attrUnknown) == 0 {
			text = append(text, int32(id))
		}
	}
	if len(text) > 0 {
		t.specialsText = newSpecialMatcher(t.tokens, text)
	}
	if len(all) > 0 {
		t.specialsAll = newSpecialMatcher(t.tokens, all)
	}

	t.pieces = make([]string, n)
	for id := range t.tokens {
		t.pieces[id] = t.computePiece(int32(id))
	}
	t.sessions.New = func() any {
		s := &session{}
		s.spm.t, s.bpe.t, s.wpm.t = t, t, t
		return s
	}
	return t, nil
}

// computePiece is llama.cpp's token_to_piece with special = true.
func (t *Tokenizer) computePiece(id int32) string {
	a := t.attrs[id]
	text := t.tokens[id]
	switch {
	case a&(attrControl|attrUnknown|attrUserDefined) != 0:
		return text
	case a&attrNormal != 0:
		if t.model == ModelBPE {
			return t.bpe.decodeText(text)
		}
		return strings.ReplaceAll(text, spaceMarker, " ")
	case a&attrByte != 0:
		if b, ok := parseByteToken(text); ok {
			return string([]byte{b})
		}
		return text
	}
	return "" // unused and undefined tokens stand for nothing
}

// parseByteToken reads "<0xNN>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(s[3:5], 16, 8)
	return byte(v), err == nil
}

// decodeText maps a byte-level BPE token back to its bytes. A character
// outside the byte alphabet is kept as it is (llama.cpp prints a marker).
func (b *bpeTables) decodeText(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if c, ok := b.byteDec[r]; ok {
			out = append(out, c)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return string(out)
}

func (t *Tokenizer) score(id int32) float32 {
	if t.scores == nil {
		return 0
	}
	return t.scores[id]
}

// Encode returns the token ids of text. With addSpecial, BOS/EOS (and for
// WordPiece CLS/SEP) are added as the vocabulary asks; with parseSpecial,
// the texts of control tokens in text become those tokens. The error is
// non-nil only if a pre-tokenizer expression fails to run.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	return t.AppendEncode(nil, text, addSpecial, parseSpecial)
}

// AppendEncode is Encode appending to dst.
func (t *Tokenizer) AppendEncode(dst []int32, text string, addSpecial, parseSpecial bool) ([]int32, error) {
	s := t.sessions.Get().(*session)
	defer t.sessions.Put(s)
	frags := t.partition(text, parseSpecial, &s.part)
	out := dst
	var err error
	switch t.model {
	case ModelSPM:
		if addSpecial && t.addBOS {
			out = append(out, t.bos)
		}
		prevSpecial := true // a space goes before the text and after every special token
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			out = s.spm.encode(out, text[f.start:f.end], t.addSpacePrefix && prevSpecial)
			prevSpecial = false
		}
		if addSpecial && t.addEOS {
			out = append(out, t.eos)
		}
	case ModelBPE:
		if addSpecial && t.addBOS {
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				continue
			}
			if out, err = s.bpe.encode(out, text[f.start:f.end]); err != nil {
				return dst, err
			}
		}
		if addSpecial && t.addEOS {
			out = append(out, t.eos)
		}
	case ModelWPM:
		if addSpecial && t.bos >= 0 {
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				continue
			}
			out = s.wpm.encode(out, text[f.start:f.end])
		}
		if addSpecial && t.sep >= 0 {
			out = append(out, t.sep)
		}
	}
	return out, nil
}

// Decode returns the text of ids. Control and unknown tokens are left out
// (DecodeSpecial keeps them), and for a vocabulary that prefixes a space
// when encoding (SentencePiece) the first space of the text is removed, so
// that Decode(Encode(s)) == s. Ids outside the vocabulary are skipped. The
// result is the tokens' bytes as they are; it can be invalid UTF-8 when ids
// end in the middle of a character (StreamDecoder never emits that).
func (t *Tokenizer) Decode(ids []int32) string {
	return string(t.appendDecode(nil, ids, false))
}

// DecodeSpecial is Decode with control and unknown tokens written as their
// text.
func (t *Tokenizer) DecodeSpecial(ids []int32) string {
	return string(t.appendDecode(nil, ids, true))
}

func (t *Tokenizer) appendDecode(dst []byte, ids []int32, special bool) []byte {
	removeSpace := t.addSpacePrefix
	for _, id := range ids {
		if !t.valid(id) || (!special && t.attrs[id]&(attrControl|attrUnknown) != 0) {
			continue
		}
		p := t.pieces[id]
		if removeSpace && p != "" {
			p = strings.TrimPrefix(p, " ")
		}
		removeSpace = false
		dst = append(dst, p...)
	}
	return dst
}

func (t *Tokenizer) valid(id int32) bool { return id >= 0 && int(id) < len(t.tokens) }

// Piece returns the text token id stands for: byte tokens as their byte,
// ▁ as a space, byte-level BPE characters as their bytes, and control and
// user-defined tokens as their text. It is "" for an id outside the
// vocabulary and for unused tokens.
func (t *Tokenizer) Piece(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.pieces[id]
}

// Token returns the vocabulary string of id ("" outside the vocabulary).
func (t *Tokenizer) Token(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.tokens[id]
}

// TokenID returns the id of a vocabulary string.
func (t *Tokenizer) TokenID(token string) (int32, bool) {
	id, ok := t.index[token]
	return id, ok
}

// NVocab returns the number of tokens.
func (t *Tokenizer) NVocab() int { return len(t.tokens) }

// Model returns the tokenizer kind (tokenizer.ggml.model).
func (t *Tokenizer) Model() string { return t.model }

// BOS returns the beginning-of-sequence token, -1 if none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token, -1 if none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT returns the end-of-turn token, -1 if none.
func (t *Tokenizer) EOT() int32 { return t.eot }

// AddBOS reports whether Encode with addSpecial puts BOS first.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial puts EOS last.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether id ends generation (EOS, EOT, EOM and tokens such
// as <|im_end|> that llama.cpp recognizes by their text).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// IsControl reports whether id is a control or unknown token, the ones
// Decode leaves out.
func (t *Tokenizer) IsControl(id int32) bool {
	return t.valid(id) && t.attrs[id]&(attrControl|attrUnknown) != 0
}

// validUTF8 is utf8.ValidString (named for the call sites).
func validUTF8(s string) bool { return utf8.ValidString(s) }

// appendReplacingInvalid appends s with each invalid byte replaced by
// U+FFFD, which is how llama.cpp's UTF-8 decoder reads it.
func appendReplacingInvalid(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}
