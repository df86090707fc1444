package tokenizer

// SentencePiece BPE, as llama.cpp's llm_tokenizer_spm: spaces become ▁, the
// text is cut into UTF-8 characters, and adjacent symbols are merged while
// their concatenation is a token, best score first. Symbols left that are
// not tokens fall back to <0xNN> byte tokens.

const spaceMarker = "\u2581" // ▁

// spmSession is the working memory of one SPM fragment.
type spmSession struct {
	t    *Tokenizer
	buf  []byte
	syms []symbol
	q    mergeQueue
}

func (s *spmSession) pair(l, r int32) (candidate, bool) {
	sl, sr := &s.syms[l], &s.syms[r]
	size := sl.n + sr.n
	var id int32
	var ok bool
	if sl.id >= 0 && sr.id >= 0 && s.t.spmMerge != nil {
		id, ok = s.t.spmMerge[pairKey(sl.id, sr.id)]
	} else {
		// Adjacent symbols are contiguous in buf; the map lookup with a
		// converted byte slice does not allocate.
		id, ok = s.t.index[string(s.buf[sl.start:sl.start+size])]
	}
	if !ok {
		return candidate{}, false
	}
	return candidate{prio: s.t.score(id), left: l, right: r, size: size, result: id}, true
}

// spmTables precomputes what SPM merging looks up: the token of each
// single-unit token, keyed by its packed bytes, and for every token that
// splits at a unit boundary into two tokens, that pair. With them a merge
// candidate between two symbols that are tokens (nearly always) is one
// integer-keyed lookup instead of hashing the concatenated text; the answer
// is the same, because the concatenation of two tokens is a token exactly
// when some split of that token gives the pair.
func spmTables(tokens []string, index map[string]int32) (units map[uint32]int32, merges map[uint64]int32) {
	units = make(map[uint32]int32)
	merges = make(map[uint64]int32)
	for id, tok := range tokens {
		if n := utf8Len(tok[0]); n == len(tok) {
			units[unitKey([]byte(tok))] = int32(id)
		}
		for off := utf8Len(tok[0]); off < len(tok); off += utf8Len(tok[off]) {
			a, okA := index[tok[:off]]
			b, okB := index[tok[off:]]
			if okA && okB {
				merges[pairKey(a, b)] = int32(id)
			}
		}
	}
	return units, merges
}

// unitToken returns the token of one unit, or -1.
func (s *spmSession) unitToken(u []byte) int32 {
	if s.t.spmUnits != nil && len(u) == utf8Len(u[0]) {
		if id, ok := s.t.spmUnits[unitKey(u)]; ok {
			return id
		}
		return noTokenID
	}
	if id, ok := s.t.index[string(u)]; ok { // a unit cut short by the end of the text
		return id
	}
	return noTokenID
}

// unitKey packs one SPM unit (at most 4 bytes) for the pair set.
func unitKey(u []byte) uint32 {
	var k uint32
	for i, b := range u {
		k |= uint32(b) << (8 * i)
	}
	return k
}

// spmPairSet collects every pair of adjacent units that occurs inside some
// token. Merged symbols are always tokens, so no merge can ever join two
// units that are not such a pair: the text can be cut there and each piece
// merged on its own, with the same result as merging the whole text at
// once (llama.cpp's way), but with short chains instead of one heap over
// the whole text. Packing ambiguities only add pairs, which keeps the cut
// conservative.
func spmPairSet(tokens []string) map[uint64]struct{} {
	set := make(map[uint64]struct{})
	for _, tok := range tokens {
		prev := uint32(0)
		for off := 0; off < len(tok); {
			n := min(utf8Len(tok[off]), len(tok)-off)
			k := unitKey([]byte(tok[off : off+n]))
			if off > 0 {
				set[uint64(prev)<<32|uint64(k)] = struct{}{}
			}
			prev = k
			off += n
		}
	}
	return set
}

// encode appends the tokens of text, with a leading space when prefix.
func (s *spmSession) encode(out []int32, text string, prefix bool) []int32 {
	buf := s.buf[:0]
	if prefix {
		buf = append(buf, spaceMarker...)
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' {
			buf = append(buf, spaceMarker...)
		} else {
			buf = append(buf, text[i])
		}
	}
	s.buf = buf
	if len(buf) == 0 {
		return out
	}
	if s.t.spmPairs == nil { // tests: merge the whole text as one chain
		return s.encodePiece(out, 0, len(buf))
	}
	// Cut into pieces that merges cannot cross; merge and emit each.
	prevKey := uint32(0)
	pieceStart := 0
	for off := 0; off < len(buf); {
		n := min(utf8Len(buf[off]), len(buf)-off)
		k := unitKey(buf[off : off+n])
		if off > 0 {
			if _, joinable := s.t.spmPairs[uint64(prevKey)<<32|uint64(k)]; !joinable {
				out = s.encodePiece(out, pieceStart, off)
				pieceStart = off
			}
		}
		prevKey = k
		off += n
	}
	return s.encodePiece(out, pieceStart, len(buf))
}

// encodePiece merges and emits buf[start:end].
func (s *spmSession) encodePiece(out []int32, start, end int) []int32 {
	buf := s.buf
	syms := s.syms[:0]
	for off := start; off < end; {
		n := min(utf8Len(buf[off]), end-off)
		i := int32(len(syms))
		syms = append(syms, symbol{start: int32(off), n: int32(n), prev: i - 1, next: i + 1, id: s.unitToken(buf[off : off+n])})
		off += n
	}
	syms[len(syms)-1].next = -1
	s.syms = syms
	mergeSymbols(syms, &s.q, s, s.t.linearMergeMax)
	for i := int32(0); i != -1; i = syms[i].next {
		sym := &syms[i]
		if sym.id >= 0 {
			out = append(out, sym.id)
			continue
		}
		for _, b := range buf[sym.start : sym.start+sym.n] {
			if id := s.t.byteToken[b]; id >= 0 {
				out = append(out, id)
			} else if s.t.unk >= 0 {
				out = append(out, s.t.unk)
			}
		}
	}
	return out
}
