package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// streamAll feeds ids one at a time and returns every non-empty output
// followed by the flush.
func streamAll(t *testing.T, tok *Tokenizer, ids []int32) []string {
	t.Helper()
	d := tok.NewStreamDecoder()
	var outs []string
	for _, id := range ids {
		if s := d.Add(id); s != "" {
			if !utf8.ValidString(s) {
				t.Fatalf("Add(%d) returned invalid UTF-8 %q", id, s)
			}
			outs = append(outs, s)
		}
	}
	if s := d.Flush(); s != "" {
		outs = append(outs, s)
	}
	return outs
}

// TestStreamSplitCharacter: a character spelled with byte tokens comes out
// whole, once its last byte arrives.
func TestStreamSplitCharacter(t *testing.T) {
	tok := loadVocab(t, "stories260K")
	byteTok := func(b byte) int32 { return int32(b) + 3 } // <0x00> is id 3
	llama := "🦙"                                          // F0 9F A6 99
	ids, err := tok.Encode(llama, false, false)
	if err != nil {
		t.Fatal(err)
	}
	// ▁ plus the four byte tokens: the vocabulary has no token for it.
	want := []int32{tok.index[spaceMarker], byteTok(0xF0), byteTok(0x9F), byteTok(0xA6), byteTok(0x99)}
	if !equalIDs(ids, want) {
		t.Fatalf("Encode(%q) = %s, want %s", llama, describe(tok, ids), describe(tok, want))
	}
	d := tok.NewStreamDecoder()
	if got := d.Add(ids[0]); got != " " {
		t.Fatalf("Add(▁) = %q, want a space", got)
	}
	for i, id := range ids[1:4] {
		if got := d.Add(id); got != "" {
			t.Fatalf("Add(byte %d of 4) = %q, want nothing yet", i+1, got)
		}
	}
	if got := d.Add(ids[4]); got != llama {
		t.Fatalf("Add(last byte) = %q, want %q", got, llama)
	}
	if got := d.Flush(); got != "" {
		t.Fatalf("Flush = %q, want nothing", got)
	}
}

func TestStreamInvalid(t *testing.T) {
	tok := loadVocab(t, "stories260K")
	b := func(x byte) int32 { return int32(x) + 3 }
	a, _ := tok.TokenID("a")
	for _, c := range []struct {
		name string
		ids  []int32
		want string
	}{
		{"cut by ASCII", []int32{b(0xE2), b(0x96), a}, "\uFFFDa"},             // maximal subpart E2 96: one U+FFFD
		{"bad lead", []int32{b(0xFF), a}, "\uFFFDa"},                          // cannot start anything
		{"stray continuation", []int32{b(0x80), b(0x80), a}, "\uFFFD\uFFFDa"}, // one each
		{"incomplete at flush", []int32{a, b(0xF0), b(0x9F)}, "a\uFFFD"},
		{"surrogate", []int32{b(0xED), b(0xA0), b(0x80)}, "\uFFFD\uFFFD\uFFFD"},
		{"valid two-byte", []int32{b(0xC3), b(0xA4)}, "ä"},
		{"control omitted", []int32{1, a, 2}, "a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := strings.Join(streamAll(t, tok, c.ids), ""); got != c.want {
				t.Fatalf("stream %v = %q, want %q", c.ids, got, c.want)
			}
		})
	}
	// The decoder is reusable after Flush.
	d := tok.NewStreamDecoder()
	d.Add(b(0xE2))
	d.Flush()
	if got := d.Add(a); got != "a" {
		t.Fatalf("Add after Flush = %q, want %q", got, "a")
	}
}

// TestStreamMatchesDecode: on random text the streamed pieces join to the
// decoded text (plus SentencePiece's prefix space, which a stream keeps),
// and no piece is invalid UTF-8.
func TestStreamMatchesDecode(t *testing.T) {
	rng := newRand(t)
	for _, name := range []string{"stories260K", "ggml-vocab-llama-spm", "ggml-vocab-gpt-2", "ggml-vocab-deepseek-llm"} {
		t.Run(name, func(t *testing.T) {
			tok := loadVocab(t, name)
			for range 40 {
				s := randomText(rng, 1+rng.IntN(120))
				ids, err := tok.Encode(s, false, false)
				if err != nil {
					t.Fatal(err)
				}
				want := s
				if tok.addSpacePrefix {
					want = " " + s
				}
				if got := strings.Join(streamAll(t, tok, ids), ""); got != want {
					t.Fatalf("stream of %q = %q", want, got)
				}
			}
		})
	}
}

func TestValidPrefixLen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"\xC3", 1}, {"\xE2\x96", 2}, {"\xE2\x96A", 2}, {"\xF0\x9F\xA6", 3}, {"\xF0\x8F", 1},
		{"\xED\xA0", 1}, {"\xF4\x90", 1}, {"\x80", 0}, {"\xC0\x80", 0}, {"\xF5", 0},
	} {
		if got := validPrefixLen([]byte(c.in)); got != c.want {
			t.Errorf("validPrefixLen(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
