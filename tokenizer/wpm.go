package tokenizer

import "unicode/utf8"

// WordPiece, as llama.cpp's llm_tokenizer_wpm. The text is normalized
// (optionally NFD with accents dropped, optionally lowercased), split at
// whitespace, and punctuation, ASCII symbols and CJK ideographs become words
// of their own. Each word, with a ▁ in front (llama.cpp's converter writes
// word-initial pieces as "▁piece" and "##piece" continuations as "piece"),
// is covered greedily by the longest tokens; a word that cannot be covered
// becomes the unknown token.

// wpmSession is the working memory of WordPiece tokenizing.
type wpmSession struct {
	t     *Tokenizer
	words []byte  // all normalized words back to back, each starting with ▁
	ends  []int32 // end offset of each word in words
}

func isChineseChar(r rune) bool {
	return (r >= 0x04E00 && r <= 0x09FFF) ||
		(r >= 0x03400 && r <= 0x04DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) || // upstream (HF) says 0x2B920, not 0x2B820
		(r >= 0x0F900 && r <= 0x0FAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// preprocess fills s.words / s.ends with the words of text.
func (s *wpmSession) preprocess(text string) {
	t := s.t
	words, ends := s.words[:0], s.ends[:0]
	wordStart := -1 // offset in words of the open word's ▁, -1 if none
	endWord := func() {
		if wordStart >= 0 {
			ends = append(ends, int32(len(words)))
			wordStart = -1
		}
	}
	for _, r := range text {
		if t.stripAccents {
			r = nfdFirst(r)
		}
		f := flagsOf(r)
		if f&flagWhitespace != 0 {
			endWord()
			continue
		}
		if r == 0 || r == utf8.RuneError || f&flagControl != 0 {
			continue
		}
		if t.stripAccents && f&flagMark != 0 {
			continue
		}
		single := f&flagPunct != 0 || (r < 0x7F && f&flagSymbol != 0) || isChineseChar(r)
		if t.lowercase {
			r = toLower(r)
		}
		if single {
			endWord()
		}
		if wordStart < 0 {
			wordStart = len(words)
			words = append(words, spaceMarker...)
		}
		words = utf8.AppendRune(words, r)
		if single {
			endWord()
		}
	}
	endWord()
	s.words, s.ends = words, ends
}

// encode appends the tokens of one raw-text fragment.
func (s *wpmSession) encode(out []int32, text string) []int32 {
	t := s.t
	s.preprocess(text)
	start := 0
	for _, e := range s.ends {
		word := s.words[start:e]
		start = int(e)
		n := len(word)
		mark := len(out)
		for i := 0; i < n; i++ {
			matched := false
			for j := min(n, i+t.maxTokenLen+1); j > i; j-- {
				if id, ok := t.index[string(word[i:j])]; ok {
					out = append(out, id)
					matched = true
					i = j - 1
					break
				}
			}
			if !matched {
				out = out[:mark] // the word cannot be covered: drop its pieces
				break
			}
		}
		if len(out) == mark && t.unk >= 0 {
			out = append(out, t.unk)
		}
	}
	return out
}
