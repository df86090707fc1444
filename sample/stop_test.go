package sample

import (
	"strings"
	"testing"
	"unicode/utf8"
)

type pushOut struct {
	emit    string
	stopped bool
}

func TestStopMatcher(t *testing.T) {
	cases := []struct {
		name   string
		stops  []string
		pushes []string
		want   []pushOut // one per push
		flush  string
		match  string
	}{
		{
			name:   "split across pushes",
			stops:  []string{"lo w"},
			pushes: []string{"Hel", "lo wo", "rld"},
			want:   []pushOut{{"He", false}, {"l", true}, {"", true}},
			match:  "lo w",
		},
		{
			name:   "no stop strings",
			pushes: []string{"Hel", "lo"},
			want:   []pushOut{{"Hel", false}, {"lo", false}},
		},
		{
			name:   "held back then released",
			stops:  []string{"</s>"},
			pushes: []string{"a <", "/", "x> b"},
			want:   []pushOut{{"a ", false}, {"", false}, {"</x> b", false}},
		},
		{
			name:   "held back at the end goes to Flush",
			stops:  []string{"STOP"},
			pushes: []string{"the ST", "O"},
			want:   []pushOut{{"the ", false}, {"", false}},
			flush:  "STO",
		},
		{
			name:   "several stop strings, the first to complete wins",
			stops:  []string{"\n\n", "User:", "###"},
			pushes: []string{"answer", " is 4.\nUs", "er: next"},
			want:   []pushOut{{"answer", false}, {" is 4.\n", false}, {"", true}},
			match:  "User:",
		},
		{
			name:   "a stop string that is a prefix of another",
			stops:  []string{"endgame", "end"},
			pushes: []string{"the en", "dgame"},
			want:   []pushOut{{"the ", false}, {"", true}},
			match:  "end",
		},
		{
			name:   "the longer one ending first wins",
			stops:  []string{"abcdef", "cdefgh"},
			pushes: []string{"xxabcdefgh"},
			want:   []pushOut{{"xx", true}},
			match:  "abcdef",
		},
		{
			name:   "earlier end beats earlier start",
			stops:  []string{"abcdef", "cd"},
			pushes: []string{"xxabcdef"},
			want:   []pushOut{{"xxab", true}},
			match:  "cd",
		},
		{
			name:   "the whole push is a stop string",
			stops:  []string{"<|im_end|>"},
			pushes: []string{"Hi.", "<|im_end|>"},
			want:   []pushOut{{"Hi.", false}, {"", true}},
			match:  "<|im_end|>",
		},
		{
			name:   "a stop in the first push",
			stops:  []string{"x"},
			pushes: []string{"x"},
			want:   []pushOut{{"", true}},
			match:  "x",
		},
		{
			name:   "empty stop strings are ignored",
			stops:  []string{"", "zz"},
			pushes: []string{"abc"},
			want:   []pushOut{{"abc", false}},
		},
		{
			name:   "overlapping partial matches",
			stops:  []string{"aab"},
			pushes: []string{"a", "a", "a", "b"},
			want:   []pushOut{{"", false}, {"", false}, {"a", false}, {"", true}},
			match:  "aab",
		},
		{
			name:   "unicode stop string",
			stops:  []string{"世界"},
			pushes: []string{"你好世", "界!"},
			want:   []pushOut{{"你好", false}, {"", true}},
			match:  "世界",
		},
		{
			name:   "unicode partial is released whole",
			stops:  []string{"éa"},
			pushes: []string{"caf\u00e9", " ok"},
			want:   []pushOut{{"caf", false}, {"é ok", false}},
		},
		{
			name:   "incomplete UTF-8 sequence is held back",
			stops:  []string{"zz"},
			pushes: []string{"ab\xf0\x9f", "\x99\x82c"},
			want:   []pushOut{{"ab", false}, {"🙂c", false}},
		},
		{
			name:   "stop string sharing a UTF-8 lead byte",
			stops:  []string{"🙃"},
			pushes: []string{"ok \xf0\x9f\x99", "\x82"},
			want:   []pushOut{{"ok ", false}, {"🙂", false}},
		},
	}
	for _, tc := range cases {
		m := NewStopMatcher(tc.stops)
		for i, p := range tc.pushes {
			emit, stopped := m.Push(p)
			if w := tc.want[i]; emit != w.emit || stopped != w.stopped {
				t.Errorf("%s: push %d %q: got (%q, %v), want (%q, %v)", tc.name, i, p, emit, stopped, w.emit, w.stopped)
			}
		}
		if f := m.Flush(); f != tc.flush {
			t.Errorf("%s: Flush %q, want %q", tc.name, f, tc.flush)
		}
		if m.Matched() != tc.match {
			t.Errorf("%s: Matched %q, want %q", tc.name, m.Matched(), tc.match)
		}
	}
}

// TestStopMatcherSplitIndependent pushes the same text in every two-way and
// a byte-by-byte split and checks that the emitted text is always the same:
// everything before the first stop string to complete, never a broken UTF-8
// sequence in any single emit.
func TestStopMatcherSplitIndependent(t *testing.T) {
	stops := []string{"<|end|>", "end", "ünd", "\n\nQ:"}
	texts := []struct{ text, want string }{
		{"Grüße, the ünder wörld <|end|> tail", "Grüße, the "},
		{"no stop here, 🙂 just <|en text", "no stop here, 🙂 just <|en text"},
		{"A: 4\n\nQ: next", "A: 4"},
		{"trailing <|end", "trailing <|"},
	}
	for _, tc := range texts {
		splits := [][]string{{tc.text}}
		for i := 1; i < len(tc.text); i++ {
			splits = append(splits, []string{tc.text[:i], tc.text[i:]})
		}
		var bytewise []string
		for i := range len(tc.text) {
			bytewise = append(bytewise, tc.text[i:i+1])
		}
		splits = append(splits, bytewise)
		for _, pieces := range splits {
			m := NewStopMatcher(stops)
			var out strings.Builder
			for _, p := range pieces {
				emit, stopped := m.Push(p)
				if !utf8.ValidString(emit) {
					t.Fatalf("%q split %q: emitted invalid UTF-8 %q", tc.text, pieces, emit)
				}
				out.WriteString(emit)
				if stopped {
					break
				}
			}
			out.WriteString(m.Flush())
			if out.String() != tc.want {
				t.Fatalf("%q split %q: emitted %q, want %q", tc.text, pieces, out.String(), tc.want)
			}
		}
	}
}
