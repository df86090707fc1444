package tokenizer

import (
	"flag"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzVocab = flag.String("fuzzvocab", "", "vocabulary for FuzzEncodeDecode (stories260K or ggml-vocab-gpt-2; empty: both)")

// FuzzEncodeDecode: Encode never fails or panics, on any input, and for
// valid UTF-8 Decode(Encode(s)) gives s back (for SentencePiece, with ▁ in
// the input read as the space it stands for). Run one vocabulary at a time
// with -fuzzvocab.
func FuzzEncodeDecode(f *testing.F) {
	names := []string{"stories260K", "ggml-vocab-gpt-2"}
	if *fuzzVocab != "" {
		names = []string{*fuzzVocab}
	}
	var toks []*Tokenizer
	for _, n := range names {
		toks = append(toks, loadVocab(f, n))
	}
	for _, seed := range []string{
		"", " ", "Hello world", "  two leading", "tab\tand\nnewline\r\n", "Äpfel 🦙 我想在apple工作",
		"<s>not special</s>", "I'm 'RE 3333333", "\u2581\u2581", "\xff\xfe invalid", "\u00a0\u3000",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			for _, special := range []bool{false, true} {
				ids, err := tok.Encode(s, special, special)
				if err != nil {
					t.Fatalf("Encode(%q, %v): %v", s, special, err)
				}
				for _, id := range ids {
					if id < 0 || int(id) >= tok.NVocab() {
						t.Fatalf("Encode(%q) gave id %d outside the vocabulary", s, id)
					}
				}
				if special || !utf8.ValidString(s) {
					continue
				}
				want := s
				if tok.Model() == ModelSPM {
					want = strings.ReplaceAll(s, spaceMarker, " ")
				}
				if got := tok.Decode(ids); got != want {
					t.Fatalf("Decode(Encode(%q)) = %q, ids %s", s, got, describe(tok, ids))
				}
			}
		}
	})
}
