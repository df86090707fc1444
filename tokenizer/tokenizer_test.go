package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// newRand returns a fresh generator and logs its seed.
func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// randomText builds valid UTF-8 from a mix of scripts, spaces, newlines,
// digits, punctuation, combining marks, emoji and arbitrary code points.
func randomText(rng *rand.Rand, n int) string {
	pools := []string{
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"     ", "\n\t\r\n  ", "0123456789", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
		"'s 're 've 'll 't 'd 'm",
		"äöüßÄÖÜéèêñçøåæœ", "нещонаБългарски", "我想在工作天～中文字", "กขคงจฉ", "កាន់តែពិសេស",
		"\u0301\u0308\u200d\ufe0f", "🦙🚀😁😶🌫✅", "\u00a0\u2003\u3000\u0085",
	}
	var b strings.Builder
	for b.Len() < n {
		if rng.IntN(8) == 0 {
			r := rune(rng.IntN(0x30000))
			if utf8.ValidRune(r) && r != 0x2581 {
				b.WriteRune(r)
			}
			continue
		}
		pool := []rune(pools[rng.IntN(len(pools))])
		for k := 1 + rng.IntN(6); k > 0; k-- {
			b.WriteRune(pool[rng.IntN(len(pool))])
		}
	}
	return b.String()
}

// TestRoundTrip checks Decode(Encode(s)) == s on random text for the
// SentencePiece and byte-level BPE vocabularies. SentencePiece adds one
// space in front when encoding and Decode removes it again; a text that
// itself starts with spaces keeps them.
func TestRoundTrip(t *testing.T) {
	rng := newRand(t)
	for _, v := range conformanceVocabs {
		if v.model == ModelWPM {
			continue // WordPiece lowercases and drops accents: not invertible
		}
		t.Run(v.name, func(t *testing.T) {
			tok := loadVocab(t, v.name)
			texts := []string{"", " ", "  leading spaces", "trailing spaces  ", "\n\n", "a\u2003b"}
			for range 60 {
				texts = append(texts, randomText(rng, 1+rng.IntN(200)))
			}
			for _, s := range texts {
				ids, err := tok.Encode(s, false, false)
				if err != nil {
					t.Fatalf("Encode(%q): %v", s, err)
				}
				if got := tok.Decode(ids); got != s {
					t.Fatalf("Decode(Encode(%q)) = %q\nids %s", s, got, describe(tok, ids))
				}
				// With BOS the prefix space is still removed.
				ids, err = tok.Encode(s, true, false)
				if err != nil {
					t.Fatalf("Encode(%q, addSpecial): %v", s, err)
				}
				if got := tok.Decode(ids); got != s {
					t.Fatalf("Decode(Encode(%q, addSpecial)) = %q\nids %s", s, got, describe(tok, ids))
				}
			}
		})
	}
}

func TestAddSpecialStories(t *testing.T) {
	tok := loadVocab(t, "stories260K")
	const text = "Once upon a time, there was a little"
	want := []int32{1, 403, 407, 261, 378, 432, 383, 286, 261, 376}
	got, err := tok.Encode(text, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if !equalIDs(got, want) {
		t.Fatalf("Encode(%q, addSpecial)\n got  %s\n want %s", text, describe(tok, got), describe(tok, want))
	}
	if tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() || tok.AddEOS() {
		t.Fatalf("BOS %d EOS %d AddBOS %v AddEOS %v, want 1 2 true false", tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS())
	}
	if !tok.IsEOG(2) || tok.IsEOG(1) || tok.IsEOG(403) {
		t.Fatalf("IsEOG(2, 1, 403) = %v %v %v, want true false false", tok.IsEOG(2), tok.IsEOG(1), tok.IsEOG(403))
	}
	if tok.NVocab() != 512 {
		t.Fatalf("NVocab = %d, want 512", tok.NVocab())
	}
	if got := tok.Decode(want); got != text {
		t.Fatalf("Decode = %q, want %q", got, text)
	}
	if got := tok.DecodeSpecial(want); got != "<s> "+text {
		t.Fatalf("DecodeSpecial = %q, want %q", got, "<s> "+text)
	}
	// Without addSpecial the same text has no BOS.
	got, _ = tok.Encode(text, false, false)
	if !equalIDs(got, want[1:]) {
		t.Fatalf("Encode(%q) = %s, want %s", text, describe(tok, got), describe(tok, want[1:]))
	}
}

func TestPieceAndToken(t *testing.T) {
	tok := loadVocab(t, "stories260K")
	for _, c := range []struct {
		id           int32
		piece, token string
	}{
		{1, "<s>", "<s>"},
		{0x41 + 3, "A", "<0x41>"}, // byte tokens follow the three specials
		{403, " Once", "▁Once"},
		{-1, "", ""},
		{512, "", ""},
	} {
		if got := tok.Piece(c.id); got != c.piece {
			t.Errorf("Piece(%d) = %q, want %q", c.id, got, c.piece)
		}
		if got := tok.Token(c.id); got != c.token {
			t.Errorf("Token(%d) = %q, want %q", c.id, got, c.token)
		}
	}
	gpt := loadVocab(t, "ggml-vocab-gpt-2")
	id, ok := gpt.TokenID("Ġworld")
	if !ok {
		t.Fatal(`gpt-2 has no "Ġworld"`)
	}
	if got := gpt.Piece(id); got != " world" {
		t.Errorf("gpt-2 Piece(%q) = %q, want %q", "Ġworld", got, " world")
	}
}

// TestParseSpecial: control-token text is plain text unless parseSpecial.
func TestParseSpecial(t *testing.T) {
	tok := loadVocab(t, "stories260K")
	const text = "<s>hello</s> world"
	plain, err := tok.Encode(text, false, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range plain {
		if tok.IsControl(id) {
			t.Fatalf("Encode(%q) without parseSpecial has control token: %s", text, describe(tok, plain))
		}
	}
	if got := tok.Decode(plain); got != text {
		t.Fatalf("Decode(plain) = %q, want %q", got, text)
	}
	special, err := tok.Encode(text, false, true)
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := tok.Encode("hello", false, false)
	world, _ := tok.Encode(" world", false, false) // a space goes after a special token too
	want := append(append(append([]int32{1}, hello...), 2), world...)
	if !equalIDs(special, want) {
		t.Fatalf("Encode(%q, parseSpecial)\n got  %s\n want %s", text, describe(tok, special), describe(tok, want))
	}
	if got, want := tok.DecodeSpecial(special), "<s> hello</s>  world"; got != want {
		t.Fatalf("DecodeSpecial = %q, want %q", got, want)
	}
	if got, want := tok.Decode(special), "hello  world"; got != want {
		t.Fatalf("Decode = %q, want %q", got, want)
	}
}

// TestUserDefinedAlwaysSplit: user-defined tokens are split out even
// without parseSpecial (mpt's runs of spaces), as llama.cpp does.
func TestUserDefinedAlwaysSplit(t *testing.T) {
	tok := loadVocab(t, "ggml-vocab-mpt")
	spaces, ok := tok.TokenID("    ")
	if !ok {
		t.Fatal("mpt has no four-space token")
	}
	ids, err := tok.Encode("a    b", false, false)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, id := range ids {
		found = found || id == spaces
	}
	if !found {
		t.Fatalf("Encode(%q) = %s, want the user-defined four-space token %d", "a    b", describe(tok, ids), spaces)
	}
}

// TestRStrip: Phi-3's special tokens swallow the whitespace after them.
func TestRStrip(t *testing.T) {
	tok := loadVocab(t, "ggml-vocab-phi-3")
	user, ok := tok.TokenID("<|user|>")
	if !ok {
		t.Fatal("phi-3 has no <|user|>")
	}
	got, err := tok.Encode("<|user|> \n hi", false, true)
	if err != nil {
		t.Fatal(err)
	}
	hi, _ := tok.Encode("hi", false, false)
	want := append([]int32{user}, hi...)
	if !equalIDs(got, want) {
		t.Fatalf("Encode(<|user|> \\n hi)\n got  %s\n want %s", describe(tok, got), describe(tok, want))
	}
}

func TestWordPiece(t *testing.T) {
	tok := loadVocab(t, "ggml-vocab-bert-bge")
	ids, err := tok.Encode("Hello, Wörld!", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 3 || ids[0] != 101 || ids[len(ids)-1] != 102 {
		t.Fatalf("Encode with addSpecial = %s, want [CLS] ... [SEP]", describe(tok, ids))
	}
	// Every word piece is stored as "▁word", so each word gets a space.
	if got, want := tok.Decode(ids), " hello , world !"; got != want {
		t.Fatalf("Decode = %q, want %q", got, want)
	}
	lower, _ := tok.Encode("hello, world!", false, false)
	if !equalIDs(ids[1:len(ids)-1], lower) {
		t.Fatalf("case and accents not normalized: %s vs %s", describe(tok, ids), describe(tok, lower))
	}
}

// TestConcurrentEncode: one Tokenizer used from several goroutines gives
// the same ids as sequential use.
func TestConcurrentEncode(t *testing.T) {
	rng := newRand(t)
	tok := loadVocab(t, "ggml-vocab-gpt-2")
	texts := make([]string, 64)
	want := make([][]int32, len(texts))
	for i := range texts {
		texts[i] = randomText(rng, 1+rng.IntN(300))
		want[i], _ = tok.Encode(texts[i], false, false)
	}
	errs := make(chan string, 4)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 4 * len(texts) {
				i := (k*7 + g) % len(texts)
				got, err := tok.Encode(texts[i], false, false)
				if err != nil || !equalIDs(got, want[i]) {
					errs <- fmt.Sprintf("goroutine %d: Encode(%q) = %v, %v; want %v", g, texts[i], got, err, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestNewErrors(t *testing.T) {
	base := func() *Vocab {
		return &Vocab{Model: ModelSPM, Tokens: []string{"<unk>", "<s>", "</s>", "a"}, BOS: 1, EOS: 2, EOT: -1, EOM: -1, UNK: 0, SEP: -1, PAD: -1}
	}
	for _, c := range []struct {
		name   string
		mutate func(v *Vocab)
		want   string
	}{
		{"no tokens", func(v *Vocab) { v.Tokens = nil }, "no tokens"},
		{"duplicate", func(v *Vocab) { v.Tokens[3] = "<s>" }, "duplicate token"},
		{"bad BOS", func(v *Vocab) { v.BOS = 9 }, "BOS token id 9"},
		{"short scores", func(v *Vocab) { v.Scores = []float32{0} }, "1 scores for 4 tokens"},
		{"add BOS without BOS", func(v *Vocab) { v.BOS, v.AddBOS = -1, true }, "add_bos_token"},
		{"unknown model", func(v *Vocab) { v.Model = "t5" }, `"t5"`},
		{"unknown pre", func(v *Vocab) { v.Model, v.Pre, v.Merges = ModelBPE, "nope", []string{"a b"} }, `"nope"`},
		{"bpe without merges", func(v *Vocab) { v.Model, v.Pre = ModelBPE, "gpt-2" }, "no merges"},
	} {
		v := base()
		c.mutate(v)
		_, err := New(v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := New(base()); err != nil {
		t.Fatalf("base vocabulary: %v", err)
	}
}
