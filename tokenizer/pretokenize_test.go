package tokenizer

import (
	"slices"
	"testing"
)

// words splits text with the given splitter stages and returns the words.
func splitWords(t *testing.T, p *preTokenizer, text string) []string {
	t.Helper()
	var st splitState
	for _, r := range text {
		st.cpts = append(st.cpts, r)
	}
	lens, err := p.split(&st)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	start := 0
	for _, l := range lens {
		out = append(out, string(st.cpts[start:start+int(l)]))
		start += int(l)
	}
	if start != len(st.cpts) {
		t.Fatalf("words cover %d of %d code points", start, len(st.cpts))
	}
	return out
}

// TestCustomSplittersMatchRegex checks every expression that has a
// hand-written splitter (GPT-2, Llama 3, Qwen2, the class runs) against the
// same expression run by regexp2, on random text.
func TestCustomSplittersMatchRegex(t *testing.T) {
	rng := newRand(t)
	texts := []string{"Hello world", "  x", "a  \n\n b", "I'm 'S OK'll 1234567", "🦙🦙 3..3\t\n", " !!!\r\n\r\n",
		"世界 가나 ½² x+=1  ", "$+<=>^~|` ", " \u3000\u00a0 a", "ΐΊώ\u1f7d\u212a K"}
	for range 200 {
		texts = append(texts, randomText(rng, 1+rng.IntN(80)))
	}
	seen := map[string]bool{}
	checked := 0
	for pre, spec := range preTokenizerSpecs {
		for _, expr := range spec.exprs {
			if seen[expr] {
				continue
			}
			seen[expr] = true
			custom, err := compileStage(expr)
			if err != nil {
				t.Fatalf("%s: %v", pre, err)
			}
			if custom.kind == splitRegex {
				continue
			}
			checked++
			ref, err := compileRegexStage(expr)
			if err != nil {
				t.Fatalf("%s: %v", pre, err)
			}
			viaCustom := &preTokenizer{name: "custom", stages: []preStage{custom}}
			viaRegex := &preTokenizer{name: "regex", stages: []preStage{ref}, needCollapsed: ref.collapsed, needWide: !ref.collapsed}
			for _, s := range texts {
				a, b := splitWords(t, viaCustom, s), splitWords(t, viaRegex, s)
				if !slices.Equal(a, b) {
					t.Fatalf("%s on %q:\n custom %q\n regex  %q", expr, s, a, b)
				}
			}
		}
	}
	t.Logf("%d expressions, %d with hand-written splitters checked", len(seen), checked)
	if checked < 14 {
		t.Fatalf("only %d hand-written splitters checked, want 14", checked)
	}
}

func TestPreTokenizerStages(t *testing.T) {
	for _, c := range []struct {
		pre, text string
		want      []string
	}{
		{"gpt-2", "Hello world's 123  end", []string{"Hello", " world", "'s", " 123", " ", " end"}},
		{"llama-bpe", "Hello 12345!!\n\n x", []string{"Hello", " ", "123", "45", "!!\n\n", " x"}},
		{"starcoder", "a 123", []string{"a", " ", "1", "2", "3"}},
		{"falcon", "x+=1234", []string{"x", "+=", "123", "4"}},
		{"deepseek-coder", "foo(bar) 42\n", []string{"foo", "(", "bar", ")", " ", "4", "2", "\n"}},
		{"deepseek-llm", "Hi 世界 99  ", []string{"Hi", " ", "世界", " ", "99", "  "}},
		{"qwen2", "Hi 123", []string{"Hi", " ", "1", "2", "3"}},
	} {
		p, _, err := newPreTokenizer(c.pre)
		if err != nil {
			t.Fatal(err)
		}
		if got := splitWords(t, p, c.text); !slices.Equal(got, c.want) {
			t.Errorf("%s: split(%q) = %q, want %q", c.pre, c.text, got, c.want)
		}
	}
}

func TestTranslateRegex(t *testing.T) {
	for _, c := range []struct {
		in, want  string
		collapsed bool
	}{
		{`\p{N}+`, "[" + string(phNumber) + "0-9]+", true},
		{`[^\s\p{L}]`, `[^\s` + string(phLetter) + `A-Za-z]`, true},
		{`\s+$`, `\s+\z`, false},
		{`[$]\$`, `[$]\$`, false},
	} {
		got, collapsed, err := translateRegex(c.in)
		if err != nil || got != c.want || collapsed != c.collapsed {
			t.Errorf("translateRegex(%q) = %q, %v, %v; want %q, %v", c.in, got, collapsed, err, c.want, c.collapsed)
		}
	}
	if _, _, err := translateRegex(`\p{L}é`); err == nil {
		t.Error("a class with non-ASCII text was accepted")
	}
	if _, _, err := translateRegex(`\p{Han}`); err == nil {
		t.Error("an unsupported class was accepted")
	}
}

func TestUnicodeHelpers(t *testing.T) {
	for _, c := range []struct{ in, want rune }{
		{'Ä', 'A'}, {'ử', 'u'}, {'ệ', 'e'}, {'a', 'a'}, {'가', 'ᄀ'}, {'ﬁ', 'ﬁ'}, {'\u212B', 'A'},
	} {
		if got := nfdFirst(c.in); got != c.want {
			t.Errorf("nfdFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		r    rune
		want cptFlags
	}{
		{'a', flagLetter}, {'5', flagNumber}, {'!', flagPunct}, {'$', flagSymbol}, {' ', flagSeparator | flagWhitespace},
		{'\n', flagControl | flagWhitespace}, {'\u0301', flagMark}, {'\u3000', flagSeparator | flagWhitespace},
		{0x1C, flagControl}, {0x0378, flagUndefined}, {'🦙', flagSymbol}, {0xE000, flagControl}, {-5, flagUndefined},
	} {
		if got := flagsOf(c.r); got != c.want {
			t.Errorf("flagsOf(%U) = %#x, want %#x", c.r, got, c.want)
		}
	}
	be := newByteEncoder()
	if be.enc[' '] != 'Ġ' || be.enc['a'] != 'a' || be.enc[0] != 'Ā' || len(be.dec) != 256 {
		t.Errorf("byte encoder: ' '→%q 'a'→%q 0→%q, %d distinct", be.enc[' '], be.enc['a'], be.enc[0], len(be.dec))
	}
}
