package tokenizer

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Most of the remaining pre-tokenizer expressions are runs of one character
// class: "\p{N}", "\p{N}+", "[0-9][0-9][0-9]", "\s?\p{L}+", "[一-龥...]+",
// "\s+$". Running them on regexp2 costs an allocation per match; runSpec
// matches them directly, with the same semantics as the regex on the
// collapsed (or, for literal classes, the whitespace-mapped) text. Each one
// is cross-checked against regexp2 in the tests. Expressions not of this
// shape keep using regexp2.

// runSpec is an expression of the form \s?C+, C+, C{k} or \s+$.
type runSpec struct {
	leadSpace     bool // optional whitespace in front (\s?)
	exact         int  // 0: one or more (C+); k: exactly k (C{k} written out)
	trailingSpace bool // \s+$: the whitespace at the end of the fragment
	in            func(r rune, f cptFlags) bool
}

func isSpaceFlag(f cptFlags) bool { return f&flagWhitespace != 0 }

// category tests on the collapsed text: non-ASCII whitespace is \v there,
// in no category.
func inCategory(cat cptFlags) func(rune, cptFlags) bool {
	return func(_ rune, f cptFlags) bool { return f&flagWhitespace == 0 && f&categoryMask == cat }
}

// inPunctOr is [\p{P}<extra ASCII>] on the collapsed text.
func inPunctOr(extra string) func(rune, cptFlags) bool {
	return func(r rune, f cptFlags) bool {
		if f&flagWhitespace != 0 {
			return false
		}
		return f&categoryMask == flagPunct || (r < 0x80 && strings.ContainsRune(extra, r))
	}
}

// runeRanges is a literal character class.
type runeRanges [][2]rune

// parseClass reads the body of a literal class: characters and a-b ranges,
// no escapes.
func parseClass(body string) runeRanges {
	rs := []rune(body)
	var out runeRanges
	for i := 0; i < len(rs); i++ {
		if i+2 < len(rs) && rs[i+1] == '-' {
			out = append(out, [2]rune{rs[i], rs[i+2]})
			i += 2
		} else {
			out = append(out, [2]rune{rs[i], rs[i]})
		}
	}
	return out
}

// inLiteral tests a literal class on the whitespace-mapped text, where
// non-ASCII whitespace reads as \v.
func inLiteral(cls runeRanges) func(rune, cptFlags) bool {
	return func(r rune, f cptFlags) bool {
		if r >= 0x80 && f&flagWhitespace != 0 {
			r = '\v'
		}
		for _, rg := range cls {
			if r >= rg[0] && r <= rg[1] {
				return true
			}
		}
		return false
	}
}

// runSpecFor returns the run matcher for expr, if it has that shape.
func runSpecFor(expr string) (runSpec, bool) {
	switch expr {
	case `\p{N}`:
		return runSpec{exact: 1, in: inCategory(flagNumber)}, true
	case `\p{N}+`:
		return runSpec{in: inCategory(flagNumber)}, true
	case `\s?\p{L}+`:
		return runSpec{leadSpace: true, in: inCategory(flagLetter)}, true
	case `\s?\p{P}+`:
		return runSpec{leadSpace: true, in: inCategory(flagPunct)}, true
	case `[0-9][0-9][0-9]`:
		return runSpec{exact: 3, in: inLiteral(runeRanges{{'0', '9'}})}, true
	case "[\r\n]":
		return runSpec{exact: 1, in: inLiteral(runeRanges{{'\r', '\r'}, {'\n', '\n'}})}, true
	case `[\p{P}\$\+<=>\^~\|]+`:
		return runSpec{in: inPunctOr(`$+<=>^~|`)}, true
	case `[\p{P}\$\+<=>\^~\|` + "`" + `]+`:
		return runSpec{in: inPunctOr("$+<=>^~|`")}, true
	case `\s+$`:
		return runSpec{trailingSpace: true}, true
	}
	// [literal]+ and \s?[literal]+ with no escapes or special characters in
	// the class.
	body, lead := expr, false
	if b, ok := strings.CutPrefix(body, `\s?`); ok {
		body, lead = b, true
	}
	if !strings.HasPrefix(body, "[") || !strings.HasSuffix(body, "]+") {
		return runSpec{}, false
	}
	body = body[1 : len(body)-2]
	if body == "" || strings.ContainsAny(body, `\[]^`) || !utf8.ValidString(body) || strings.HasPrefix(body, "-") || strings.HasSuffix(body, "-") {
		return runSpec{}, false
	}
	cls := parseClass(body)
	if slices.ContainsFunc(cls, func(rg [2]rune) bool { return rg[0] > rg[1] }) {
		return runSpec{}, false
	}
	return runSpec{leadSpace: lead, in: inLiteral(cls)}, true
}

// splitRun applies a run matcher to each fragment: matches and the gaps
// between them become fragments, as for a regex.
func splitRun(spec *runSpec, cpts []rune, flags []cptFlags, lens []int32, out []int32) []int32 {
	start := 0
	for _, l := range lens {
		ini, end := start, start+int(l)
		start = end
		last := ini
		emit := func(s, e int) {
			if s > last {
				out = append(out, int32(s-last))
			}
			out = append(out, int32(e-s))
			last = e
		}
		if spec.trailingSpace {
			s := end
			for s > ini && isSpaceFlag(flags[s-1]) {
				s--
			}
			if s < end {
				emit(s, end)
			}
		} else {
			in := func(i int) bool { return i < end && spec.in(cpts[i], flags[i]) }
			for i := ini; i < end; {
				switch {
				case spec.exact > 0:
					k := 0
					for k < spec.exact && in(i+k) {
						k++
					}
					if k == spec.exact {
						emit(i, i+k)
						i += k
						continue
					}
				case spec.leadSpace && isSpaceFlag(flags[i]) && in(i+1):
					e := i + 1
					for in(e) {
						e++
					}
					emit(i, e)
					i = e
					continue
				case in(i):
					e := i
					for in(e) {
						e++
					}
					emit(i, e)
					i = e
					continue
				}
				i++
			}
		}
		if last < end {
			out = append(out, int32(end-last))
		}
	}
	return out
}
