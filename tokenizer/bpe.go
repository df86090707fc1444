package tokenizer

import (
	"fmt"
	"strings"
)

// Byte-level BPE, as llama.cpp's llm_tokenizer_bpe: the pre-tokenizer cuts
// the text into words; each byte of a word becomes a symbol (its GPT-2
// byte-to-Unicode character), and adjacent symbols are merged by merge rank,
// lowest first. Symbols that end up not being tokens are dropped byte by
// byte unless a byte is itself a token, as upstream does.
//
// Instead of concatenating strings, every string that can occur as a symbol
// (each token, and each side and result of a merge) gets an integer id, so a
// merge is a lookup of an (id, id) pair and no text is built while merging.

// mergeRule is the rank of a merge and the id of its result.
type mergeRule struct {
	rank   int32
	result int32
}

// bpeTables are the BPE-only parts of a Tokenizer.
type bpeTables struct {
	pre          *preTokenizer
	ignoreMerges bool
	merges       map[uint64]mergeRule
	byteSym      [256]int32  // symbol id of each byte's character, -1 if none
	byteEnc      [256]string // GPT-2 character of each byte, UTF-8
	byteDec      map[rune]byte
	fallback     [256][]int32 // tokens for a byte of a symbol that is not a token
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// buildBPE interns the merge strings and builds the pair table.
func buildBPE(index map[string]int32, nVocab int, merges []string, pre *preTokenizer, ignoreMerges bool) (*bpeTables, error) {
	if len(merges) == 0 {
		return nil, fmt.Errorf("tokenizer: gpt2 vocabulary has no merges (tokenizer.ggml.merges)")
	}
	b := &bpeTables{pre: pre, ignoreMerges: ignoreMerges, merges: make(map[uint64]mergeRule, len(merges))}
	extra := make(map[string]int32)
	lookup := func(s string) (int32, bool) {
		if id, ok := index[s]; ok {
			return id, true
		}
		id, ok := extra[s]
		return id, ok
	}
	intern := func(s string) int32 {
		if id, ok := lookup(s); ok {
			return id
		}
		id := int32(nVocab + len(extra))
		extra[s] = id
		return id
	}
	for rank, m := range merges {
		// Split at the first space after the first byte, as llama.cpp does
		// (a merge side may itself start with a space).
		if len(m) < 2 {
			continue
		}
		sp := strings.IndexByte(m[1:], ' ')
		if sp < 0 {
			continue
		}
		left, right := m[:sp+1], m[sp+2:]
		key := pairKey(intern(left), intern(right))
		if _, dup := b.merges[key]; dup {
			continue // the first (lowest) rank wins
		}
		b.merges[key] = mergeRule{rank: int32(rank), result: intern(left + right)}
	}
	enc := newByteEncoder()
	b.byteDec = enc.dec
	for c := range 256 {
		b.byteEnc[c] = string(enc.enc[c])
		if id, ok := lookup(b.byteEnc[c]); ok {
			b.byteSym[c] = id
		} else {
			b.byteSym[c] = noTokenID
		}
		for i := 0; i < len(b.byteEnc[c]); i++ {
			if id, ok := index[b.byteEnc[c][i:i+1]]; ok {
				b.fallback[c] = append(b.fallback[c], id)
			}
		}
	}
	return b, nil
}

// bpeSession is the working memory of BPE tokenizing.
type bpeSession struct {
	t     *Tokenizer
	split splitState
	offs  []int32 // byte offset of each code point, plus the end
	valid []byte  // the text with invalid UTF-8 replaced, when it had any
	buf   []byte
	syms  []symbol
	q     mergeQueue
}

func (s *bpeSession) pair(l, r int32) (candidate, bool) {
	sl, sr := &s.syms[l], &s.syms[r]
	if sl.id < 0 || sr.id < 0 {
		return candidate{}, false
	}
	m, ok := s.t.bpe.merges[pairKey(sl.id, sr.id)]
	if !ok {
		return candidate{}, false
	}
	return candidate{prio: -float32(m.rank), left: l, right: r, size: sl.n + sr.n, result: m.result}, true
}

// encode appends the tokens of one raw-text fragment.
func (s *bpeSession) encode(out []int32, text string) ([]int32, error) {
	// llama.cpp decodes to code points and re-encodes words from them, so
	// each invalid byte becomes U+FFFD; doing that up front keeps the words
	// slices of one valid string.
	if !validUTF8(text) {
		s.valid = appendReplacingInvalid(s.valid[:0], text)
		text = string(s.valid)
	}
	cpts, offs := s.split.cpts[:0], s.offs[:0]
	for i, r := range text {
		cpts = append(cpts, r)
		offs = append(offs, int32(i))
	}
	offs = append(offs, int32(len(text)))
	s.split.cpts, s.offs = cpts, offs
	lens, err := s.t.bpe.pre.split(&s.split)
	if err != nil {
		return out, err
	}
	start := 0
	for _, l := range lens {
		word := text[offs[start]:offs[start+int(l)]]
		start += int(l)
		out = s.encodeWord(out, word)
	}
	return out, nil
}

func (s *bpeSession) encodeWord(out []int32, word string) []int32 {
	b := s.t.bpe
	if b.ignoreMerges {
		buf := s.buf[:0]
		for i := 0; i < len(word); i++ {
			buf = append(buf, b.byteEnc[word[i]]...)
		}
		s.buf = buf
		if id, ok := s.t.index[string(buf)]; ok {
			return append(out, id)
		}
	}
	syms := s.syms[:0]
	for i := 0; i < len(word); i++ {
		syms = append(syms, symbol{start: int32(i), n: 1, prev: int32(i - 1), next: int32(i + 1), id: b.byteSym[word[i]]})
	}
	syms[len(syms)-1].next = -1
	s.syms = syms
	mergeSymbols(syms, &s.q, s, s.t.linearMergeMax)
	nVocab := int32(len(s.t.tokens))
	for i := int32(0); i != -1; i = syms[i].next {
		sym := &syms[i]
		if sym.id >= 0 && sym.id < nVocab {
			out = append(out, sym.id)
			continue
		}
		for j := sym.start; j < sym.start+sym.n; j++ {
			out = append(out, b.fallback[word[j]]...)
		}
	}
	return out
}
