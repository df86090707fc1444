package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// cptFlags classifies a code point the way llama.cpp's unicode tables do:
// one general-category bit (L, N, P, S, M, Z, C, or "undefined" for Cn) plus
// a separate whitespace bit (the Unicode White_Space property). The
// pre-tokenizers and the WordPiece normalizer are defined in these terms, so
// every splitter here uses this one function rather than mixing in
// unicode.IsSpace and friends, whose sets differ slightly.
type cptFlags uint16

const (
	flagUndefined  cptFlags = 1 << iota // Cn: unassigned
	flagNumber                          // \p{N}
	flagLetter                          // \p{L}
	flagSeparator                       // \p{Z}
	flagMark                            // \p{M}
	flagPunct                           // \p{P}
	flagSymbol                          // \p{S}
	flagControl                         // \p{C} without Cn
	flagWhitespace                      // White_Space property
)

const categoryMask = flagUndefined | flagNumber | flagLetter | flagSeparator | flagMark | flagPunct | flagSymbol | flagControl

// bmpFlags caches the flags of the Basic Multilingual Plane; it is built on
// first use and never written afterwards.
var bmpFlags = sync.OnceValue(func() *[0x10000]cptFlags {
	var t [0x10000]cptFlags
	for r := range rune(len(t)) {
		t[r] = computeFlags(r)
	}
	return &t
})

// flagsOf returns the flags of r. Values outside Unicode count as undefined.
func flagsOf(r rune) cptFlags {
	if r >= 0 && r < 0x10000 {
		return bmpFlags()[r]
	}
	return computeFlags(r)
}

func computeFlags(r rune) cptFlags {
	if r < 0 || r > unicode.MaxRune {
		return flagUndefined
	}
	var f cptFlags
	switch {
	case unicode.IsLetter(r):
		f = flagLetter
	case unicode.IsNumber(r):
		f = flagNumber
	case unicode.IsPunct(r):
		f = flagPunct
	case unicode.IsSymbol(r):
		f = flagSymbol
	case unicode.IsMark(r):
		f = flagMark
	case unicode.Is(unicode.Z, r):
		f = flagSeparator
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs): // unicode.C would include Cn
		f = flagControl
	default:
		f = flagUndefined
	}
	if unicode.Is(unicode.White_Space, r) {
		f |= flagWhitespace
	}
	return f
}

// toLower is the simple lowercase mapping (llama.cpp uses the first code
// point of Python's str.lower, which agrees with it).
func toLower(r rune) rune { return unicode.ToLower(r) }

// nfdFirst returns the first code point of r's canonical decomposition (r
// itself when it has none). llama.cpp's WordPiece normalizer keeps only that
// code point, which drops the accents of precomposed letters.
func nfdFirst(r rune) rune {
	if r < 0xC0 {
		return r // nothing below U+00C0 decomposes
	}
	const sBase, sCount, lBase, nCount = 0xAC00, 11172, 0x1100, 588
	if r >= sBase && r < sBase+sCount { // Hangul syllables decompose algorithmically
		return lBase + (r-sBase)/nCount
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	d := norm.NFD.Properties(buf[:n]).Decomposition()
	if len(d) == 0 {
		return r
	}
	first, _ := utf8.DecodeRune(d)
	return first
}

// utf8Len is the sequence length announced by a UTF-8 lead byte, as
// llama.cpp's unicode_len_utf8 computes it: continuation and invalid bytes
// count as 1. The SPM and BPE symbol splitters use it so that invalid input
// is cut into the same pieces as upstream.
func utf8Len(b byte) int {
	return int(utf8LenTable[b>>4])
}

var utf8LenTable = [16]uint8{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}

// byteEncoder is GPT-2's reversible byte-to-Unicode mapping: printable
// Latin-1 bytes map to themselves, the rest to U+0100 upwards in byte order.
type byteEncoder struct {
	enc [256]rune
	dec map[rune]byte
}

func newByteEncoder() *byteEncoder {
	be := &byteEncoder{dec: make(map[rune]byte, 256)}
	printable := func(b int) bool {
		return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := range 256 {
		if printable(b) {
			be.enc[b] = rune(b)
		} else {
			be.enc[b] = rune(256 + n)
			n++
		}
		be.dec[be.enc[b]] = byte(b)
	}
	return be
}
