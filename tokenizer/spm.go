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

func (s *spmSession) tryPair(l, r int32) {
	sl, sr := &s.syms[l], &s.syms[r]
	size := sl.n + sr.n
	// Adjacent symbols are contiguous in buf; the map lookup with a
	// converted byte slice does not allocate.
	id, ok := s.t.index[string(s.buf[sl.start:sl.start+size])]
	if !ok {
		return
	}
	s.q.push(candidate{prio: s.t.score(id), left: l, right: r, size: size, result: id})
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
	syms := s.syms[:0]
	for off := 0; off < len(buf); {
		n := min(utf8Len(buf[off]), len(buf)-off)
		id, ok := s.t.index[string(buf[off:off+n])]
		if !ok {
			id = noTokenID
		}
		i := int32(len(syms))
		syms = append(syms, symbol{start: int32(off), n: int32(n), prev: i - 1, next: i + 1, id: id})
		off += n
	}
	syms[len(syms)-1].next = -1
	s.syms = syms
	s.q.reset()
	for i := int32(1); i < int32(len(syms)); i++ {
		s.tryPair(i-1, i)
	}
	mergeAll(syms, &s.q, s)
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
