package tokenizer

import (
	"fmt"
	"strings"

	"github.com/dlclark/regexp2"
)

// A byte-level BPE vocabulary first splits text into words with a list of
// regular expressions chosen by tokenizer.ggml.pre. The lists below are
// llama.cpp's (src/llama-vocab.cpp, llm_tokenizer_bpe), and so is the way
// they are applied (src/unicode.cpp, unicode_regex_split):
//
//   - The text is a sequence of code points cut into fragments, at first one
//     fragment for the whole text. Each expression in turn is run over every
//     fragment separately; its matches and the text between them both become
//     fragments. Nothing is dropped, so the words always cover the text.
//   - The two most common expressions, GPT-2's and Llama 3's, are not run as
//     regular expressions at all: llama.cpp has hand-written splitters for
//     them, ported below (splitGPT2, splitLlama3), which are also much faster.
//     Qwen2's (Llama 3's with single digits) and the simple class runs
//     (runsplit.go) get hand-written splitters here too, each cross-checked
//     against regexp2 running the expression in the tests.
//   - Every other expression runs on github.com/dlclark/regexp2, a
//     backtracking engine (.NET syntax) with lookahead, which Go's regexp
//     lacks (\s+(?!\S)). Its leftmost-first alternation and greedy
//     backtracking are the same as the ECMAScript std::regex llama.cpp uses.
//   - Unicode classes are NOT evaluated by the regex engine. llama.cpp
//     "collapses" the text first: ASCII stays as it is, every other code
//     point becomes one placeholder per category (letter, number,
//     punctuation, mark, symbol, other) and non-ASCII whitespace becomes
//     \v; \p{L} in the expression becomes [<letter placeholder>A-Za-z] and
//     so on. We do the same with private-use placeholders, so \p{..} means
//     exactly llama.cpp's category table (Go's Unicode 15 tables here), not
//     regexp2's, and \s matches exactly ASCII whitespace plus White_Space.
//     Consequences inherited from upstream: \p{Lu} and \p{Ll} both mean any
//     letter, and an expression that names a category cannot also contain
//     non-ASCII literals.
//   - Expressions without \p{..} run on the original code points, except that
//     non-ASCII whitespace again becomes \v (std::wregex's \s is ASCII only).
//   - $ is rewritten to \z: .NET's $ also matches before a final newline,
//     ECMAScript's only at the end.

// Placeholders for the collapsed text (private use area, so that \s, \w and
// literal classes in the expressions never match them by accident).
const (
	phOther  = '\uE0D0'
	phNumber = '\uE0D1'
	phLetter = '\uE0D2'
	phPunct  = '\uE0D3'
	phMark   = '\uE0D4'
	phSymbol = '\uE0D5'
)

// collapseClass is what each \p{..} becomes: its placeholder plus the ASCII
// members of the category.
var collapseClass = map[string]string{
	`\p{N}`:  string(phNumber) + `0-9`,
	`\p{L}`:  string(phLetter) + `A-Za-z`,
	`\p{Lu}`: string(phLetter) + `A-Za-z`,
	`\p{Ll}`: string(phLetter) + `A-Za-z`,
	`\p{Lt}`: string(phLetter) + `A-Za-z`,
	`\p{Lm}`: string(phLetter) + `A-Za-z`,
	`\p{Lo}`: string(phLetter) + `A-Za-z`,
	`\p{P}`:  string(phPunct) + `!-#%-*,-/:-;?-@\[-\]_\{\}`,
	`\p{M}`:  string(phMark),
	`\p{S}`:  string(phSymbol) + `\$\+<=>\^` + "`" + `\|`,
}

// collapsedRune maps one code point of the text to the collapsed alphabet.
func collapsedRune(r rune, f cptFlags) rune {
	if r < 0x80 {
		return r
	}
	if f&flagWhitespace != 0 {
		return '\v'
	}
	switch f & categoryMask {
	case flagNumber:
		return phNumber
	case flagLetter:
		return phLetter
	case flagPunct:
		return phPunct
	case flagMark:
		return phMark
	case flagSymbol:
		return phSymbol
	}
	return phOther
}

// splitKind says how a stage splits fragments.
type splitKind uint8

const (
	splitRegex splitKind = iota
	splitGPT2Kind
	splitLlama3Kind
	splitQwen2Kind
	splitRunKind
)

// preStage is one expression of a pre-tokenizer.
type preStage struct {
	kind      splitKind
	re        *regexp2.Regexp
	run       *runSpec
	collapsed bool // run on the collapsed text (the expression names a \p{..} class)
	expr      string
}

// preTokenizer is the list of expressions for one tokenizer.ggml.pre value.
type preTokenizer struct {
	name          string
	stages        []preStage
	needCollapsed bool
	needWide      bool
}

// llama.cpp's expressions, verbatim (as Go raw strings where they had C
// escapes; "[\r\n]" with real control characters stays interpreted).
const (
	reGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	reLlama3 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reQwen2  = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	rePoro   = ` ?[^(\s|.,!?…。，、।۔،)]+`
)

// preTokenizerSpec is the expression list and vocabulary flags of one
// pre-tokenizer family.
type preTokenizerSpec struct {
	exprs        []string
	ignoreMerges bool // a word that is itself a token is emitted whole (llama3)
	addBOS       bool // llama.cpp's default for add_bos_token
	noBOS        bool // the family has no BOS token (chatglm)
}

var (
	specDefault = preTokenizerSpec{exprs: []string{
		`[\p{P}\$\+<=>\^~\|]+`,
		reGPT2,
		`\p{N}+`,
		`[0-9][0-9][0-9]`,
	}}
	specGPT2   = preTokenizerSpec{exprs: []string{reGPT2}}
	specLlama3 = preTokenizerSpec{exprs: []string{reLlama3}, ignoreMerges: true, addBOS: true}
	specDBRX   = preTokenizerSpec{exprs: []string{reLlama3}}
	specDSLLM  = preTokenizerSpec{exprs: []string{
		"[\r\n]",
		// Six endpoints are singleton-decomposable letters (U+1F7D, U+1FBE, U+1FD3,
		// U+1FDB, U+2126, U+212A); they are escaped so that no NFC pass over this
		// file can turn them into other code points.
		"\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
		`\s?[!-/:-~！-／：-～‘-‟　-。]+`,
		`\s+$`,
		`[一-龥ࠀ-一가-퟿]+`,
		`\p{N}+`,
	}}
	specDSCoder = preTokenizerSpec{exprs: []string{
		"[\r\n]",
		`\s?\p{L}+`,
		`\s?\p{P}+`,
		`[一-龥ࠀ-一가-퟿]+`,
		`\p{N}`,
	}}
	specFalcon = preTokenizerSpec{exprs: []string{
		`[\p{P}\$\+<=>\^~\|` + "`" + `]+`,
		reGPT2,
		`[0-9][0-9][0-9]`,
	}}
	specStarcoder = preTokenizerSpec{exprs: []string{`\p{N}`, reGPT2}}
	specQwen2     = preTokenizerSpec{exprs: []string{reQwen2}}
	specPoro      = preTokenizerSpec{exprs: []string{rePoro}}
	specViking    = preTokenizerSpec{exprs: []string{rePoro, `\p{N}`}}
	specChatGLM4  = preTokenizerSpec{exprs: []string{reLlama3}, noBOS: true}
)

// preTokenizerSpecs maps tokenizer.ggml.pre values to their families, as
// llama.cpp's llama_vocab::impl::load does.
var preTokenizerSpecs = map[string]preTokenizerSpec{
	"":        specDefault,
	"default": specDefault,

	"llama3": specLlama3, "llama-v3": specLlama3, "llama-bpe": specLlama3, "falcon3": specLlama3,
	"falcon-h1": specLlama3, "pixtral": specLlama3, "midm-2.0": specLlama3, "lfm2": specLlama3,
	"jina-v5-nano": specLlama3,
	"dbrx":         specDBRX, "smaug-bpe": specDBRX,

	"deepseek-llm":   specDSLLM,
	"deepseek-coder": specDSCoder,
	"falcon":         specFalcon,

	"gpt-2": specGPT2, "mpt": specGPT2, "olmo": specGPT2, "jais": specGPT2, "phi-2": specGPT2,
	"jina-es": specGPT2, "jina-de": specGPT2, "gigachat": specGPT2, "jina-v2-es": specGPT2,
	"jina-v2-de": specGPT2, "a.x-4.0": specGPT2, "mellum": specGPT2, "modern-bert": specGPT2,
	"exaone4": specGPT2, "trillion": specGPT2, "granite-docling": specGPT2,
	"jina-v1-en": specGPT2, "jina-v2-code": specGPT2, "roberta-bpe": specGPT2,

	"starcoder": specStarcoder, "refact": specStarcoder, "command-r": specStarcoder,
	"smollm": specStarcoder, "codeshell": specStarcoder, "exaone": specStarcoder,
	"minerva-7b": specStarcoder, "mellum2": specStarcoder,

	"qwen2": specQwen2, "deepseek-r1-qwen": specQwen2, "kormo": specQwen2, "f2llmv2": specQwen2,
	"stablelm2": specQwen2, "hunyuan": specQwen2, "solar-open": specQwen2, "megrez": specQwen2,

	"poro-chat": specPoro, "bloom": specPoro, "gpt3-finnish": specPoro,
	"viking":      specViking,
	"chatglm-bpe": specChatGLM4, "glm4": specChatGLM4,
}

// newPreTokenizer compiles the expressions of pre.
func newPreTokenizer(pre string) (*preTokenizer, preTokenizerSpec, error) {
	spec, ok := preTokenizerSpecs[pre]
	if !ok {
		return nil, spec, fmt.Errorf("tokenizer: unknown pre-tokenizer %q (tokenizer.ggml.pre)", pre)
	}
	p := &preTokenizer{name: pre}
	for _, expr := range spec.exprs {
		st, err := compileStage(expr)
		if err != nil {
			return nil, spec, fmt.Errorf("tokenizer: pre-tokenizer %q: %w", pre, err)
		}
		p.needCollapsed = p.needCollapsed || (st.kind == splitRegex && st.collapsed)
		p.needWide = p.needWide || (st.kind == splitRegex && !st.collapsed)
		p.stages = append(p.stages, st)
	}
	return p, spec, nil
}

func compileStage(expr string) (preStage, error) {
	switch expr {
	case reGPT2:
		return preStage{kind: splitGPT2Kind, expr: expr}, nil
	case reLlama3:
		return preStage{kind: splitLlama3Kind, expr: expr}, nil
	case reQwen2:
		// llama.cpp runs this one as a regex; it is Llama 3's with single
		// digits, so the same hand-written splitter serves (cross-checked
		// against regexp2 in the tests).
		return preStage{kind: splitQwen2Kind, expr: expr}, nil
	}
	if spec, ok := runSpecFor(expr); ok {
		return preStage{kind: splitRunKind, run: &spec, expr: expr}, nil
	}
	return compileRegexStage(expr)
}

// compileRegexStage compiles expr for regexp2.
func compileRegexStage(expr string) (preStage, error) {
	translated, collapsed, err := translateRegex(expr)
	if err != nil {
		return preStage{}, err
	}
	// ExplicitCapture: groups do not capture, as std::regex::nosubs.
	re, err := regexp2.Compile(translated, regexp2.ExplicitCapture)
	if err != nil {
		return preStage{}, fmt.Errorf("compile %q: %w", expr, err)
	}
	return preStage{kind: splitRegex, re: re, collapsed: collapsed, expr: expr}, nil
}

// translateRegex rewrites \p{..} classes to the collapsed alphabet and $ to
// \z, tracking [..] like llama.cpp does (no nested classes).
func translateRegex(expr string) (string, bool, error) {
	collapsed := false
	for rest := expr; ; {
		i := strings.Index(rest, `\p{`)
		if i < 0 {
			break
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return "", false, fmt.Errorf("expression %q: unterminated \\p{", expr)
		}
		if _, ok := collapseClass[rest[i:i+end+1]]; !ok {
			return "", false, fmt.Errorf("expression %q: unsupported class %s", expr, rest[i:i+end+1])
		}
		collapsed = true
		rest = rest[i+end+1:]
	}
	if collapsed {
		for _, r := range expr {
			if r >= 0x80 {
				return "", false, fmt.Errorf("expression %q names a unicode class and has non-ASCII characters", expr)
			}
		}
	}
	var b strings.Builder
	inside := false
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case c == '\\' && i+1 < len(expr) && expr[i+1] == 'p' && collapsed:
			end := strings.IndexByte(expr[i:], '}')
			if end < 0 {
				return "", false, fmt.Errorf("expression %q: unterminated \\p{", expr)
			}
			cls, ok := collapseClass[expr[i:i+end+1]]
			if !ok {
				return "", false, fmt.Errorf("expression %q: unsupported class %s", expr, expr[i:i+end+1])
			}
			if !inside {
				b.WriteByte('[')
			}
			b.WriteString(cls)
			if !inside {
				b.WriteByte(']')
			}
			i += end
			continue
		case c == '\\' && i+1 < len(expr):
			// Copy escapes whole so that \\ and \[ are not read as syntax.
			b.WriteByte(c)
			b.WriteByte(expr[i+1])
			i++
			continue
		case c == '[':
			inside = true
		case c == ']' && inside:
			inside = false
		case c == '$' && !inside:
			b.WriteString(`\z`)
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), collapsed, nil
}

// splitState is the per-call working memory of a pre-tokenizer.
type splitState struct {
	cpts      []rune
	flags     []cptFlags
	collapsed []rune
	wide      []rune
	lens      []int32
	lens2     []int32
}

// split cuts cpts into words and returns their lengths in code points.
func (p *preTokenizer) split(st *splitState) ([]int32, error) {
	n := len(st.cpts)
	st.flags = st.flags[:0]
	for _, r := range st.cpts {
		st.flags = append(st.flags, flagsOf(r))
	}
	if p.needCollapsed {
		st.collapsed = st.collapsed[:0]
		for i, r := range st.cpts {
			st.collapsed = append(st.collapsed, collapsedRune(r, st.flags[i]))
		}
	}
	if p.needWide {
		st.wide = st.wide[:0]
		for i, r := range st.cpts {
			if r >= 0x80 && st.flags[i]&flagWhitespace != 0 {
				r = '\v'
			}
			st.wide = append(st.wide, r)
		}
	}
	lens := append(st.lens[:0], int32(n))
	out := st.lens2[:0]
	for i := range p.stages {
		stage := &p.stages[i]
		var err error
		switch stage.kind {
		case splitGPT2Kind:
			out = splitGPT2(st.cpts, st.flags, lens, out[:0])
		case splitLlama3Kind:
			out = splitLlama3(st.cpts, st.flags, lens, out[:0], 3)
		case splitQwen2Kind:
			out = splitLlama3(st.cpts, st.flags, lens, out[:0], 1)
		case splitRunKind:
			out = splitRun(stage.run, st.cpts, st.flags, lens, out[:0])
		default:
			src := st.wide
			if stage.collapsed {
				src = st.collapsed
			}
			out, err = splitRegexStage(stage.re, src, lens, out[:0])
			if err != nil {
				return nil, fmt.Errorf("tokenizer: pre-tokenizer %q, expression %q: %w", p.name, stage.expr, err)
			}
		}
		lens, out = out, lens
	}
	st.lens, st.lens2 = lens, out
	return lens, nil
}

// splitRegexStage runs re over each fragment; matches and the gaps between
// them become fragments.
func splitRegexStage(re *regexp2.Regexp, src []rune, lens []int32, out []int32) ([]int32, error) {
	start := 0
	for _, l := range lens {
		frag := src[start : start+int(l)]
		start += int(l)
		last := 0
		m, err := re.FindRunesMatch(frag)
		for ; err == nil && m != nil; m, err = re.FindNextMatch(m) {
			if m.Index > last {
				out = append(out, int32(m.Index-last))
			}
			if m.Length > 0 {
				out = append(out, int32(m.Length))
			}
			last = m.Index + m.Length
		}
		if err != nil {
			return nil, err
		}
		if last < len(frag) {
			out = append(out, int32(len(frag)-last))
		}
	}
	return out, nil
}

// outOfRange stands for "past the fragment" in the hand-written splitters.
const outOfRange = rune(-1)

// fragCursor gives the splitters llama.cpp's bounds-checked accessors.
type fragCursor struct {
	cpts     []rune
	flags    []cptFlags
	ini, end int
	prev     int
	out      []int32
}

func (c *fragCursor) cpt(p int) rune {
	if p >= c.ini && p < c.end {
		return c.cpts[p]
	}
	return outOfRange
}

func (c *fragCursor) flg(p int) cptFlags {
	if p >= c.ini && p < c.end {
		return c.flags[p]
	}
	return 0
}

// add ends a word at end and returns its length.
func (c *fragCursor) add(end int) int {
	n := end - c.prev
	if n > 0 {
		c.out = append(c.out, int32(n))
	}
	c.prev = end
	return n
}

// splitGPT2 is llama.cpp's unicode_regex_split_custom_gpt2, the hand-written
// form of 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S).
func splitGPT2(cpts []rune, flags []cptFlags, lens []int32, out []int32) []int32 {
	c := fragCursor{cpts: cpts, flags: flags, out: out}
	start := 0
	for _, l := range lens {
		c.ini, c.end = start, start+int(l)
		c.prev = c.ini
		start = c.end
		for pos := c.ini; pos < c.end; {
			cpt := cpts[pos]
			f := flags[pos]
			// 's|'t|'re|'ve|'m|'ll|'d
			if cpt == '\'' && pos+1 < c.end {
				next := cpts[pos+1]
				if next == 's' || next == 't' || next == 'm' || next == 'd' {
					pos += c.add(pos + 2)
					continue
				}
				if pos+2 < c.end {
					nn := cpts[pos+2]
					if (next == 'r' && nn == 'e') || (next == 'v' && nn == 'e') || (next == 'l' && nn == 'l') {
						pos += c.add(pos + 3)
						continue
					}
				}
			}
			f2 := f
			if cpt == ' ' {
				f2 = c.flg(pos + 1)
			}
			//  ?\p{L}+
			if f2&flagLetter != 0 {
				if cpt == ' ' {
					pos++
				}
				for f2&flagLetter != 0 {
					pos++
					f2 = c.flg(pos)
				}
				c.add(pos)
				continue
			}
			//  ?\p{N}+
			if f2&flagNumber != 0 {
				if cpt == ' ' {
					pos++
				}
				for f2&flagNumber != 0 {
					pos++
					f2 = c.flg(pos)
				}
				c.add(pos)
				continue
			}
			//  ?[^\s\p{L}\p{N}]+
			if f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f2 != 0 {
				if cpt == ' ' {
					pos++
				}
				for f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f2 != 0 {
					pos++
					f2 = c.flg(pos)
				}
				c.add(pos)
				continue
			}
			nws := 0
			for c.flg(pos+nws)&flagWhitespace != 0 {
				nws++
			}
			// \s+(?!\S)
			if nws > 1 && c.cpt(pos+nws) != outOfRange {
				pos += nws - 1
				c.add(pos)
				continue
			}
			// \s+
			if nws > 0 {
				pos += nws
				c.add(pos)
				continue
			}
			// no match
			pos++
			c.add(pos)
		}
	}
	return c.out
}

// splitLlama3 is llama.cpp's unicode_regex_split_custom_llama3, the
// hand-written form of
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with digit groups of up to maxDigits (3; 1 gives Qwen2's expression).
func splitLlama3(cpts []rune, flags []cptFlags, lens []int32, out []int32, maxDigits int) []int32 {
	c := fragCursor{cpts: cpts, flags: flags, out: out}
	start := 0
	for _, l := range lens {
		c.ini, c.end = start, start+int(l)
		c.prev = c.ini
		start = c.end
		for pos := c.ini; pos < c.end; {
			cpt := cpts[pos]
			f := flags[pos]
			// (?i:'s|'t|'re|'ve|'m|'ll|'d)
			if cpt == '\'' && pos+1 < c.end {
				next := toLower(cpts[pos+1])
				if next == 's' || next == 't' || next == 'm' || next == 'd' {
					pos += c.add(pos + 2)
					continue
				}
				if pos+2 < c.end {
					nn := toLower(cpts[pos+2])
					if (next == 'r' && nn == 'e') || (next == 'v' && nn == 'e') || (next == 'l' && nn == 'l') {
						pos += c.add(pos + 3)
						continue
					}
				}
			}
			// [^\r\n\p{L}\p{N}]?\p{L}+
			if !(cpt == '\r' || cpt == '\n' || f&flagNumber != 0) {
				if f&flagLetter != 0 || c.flg(pos+1)&flagLetter != 0 {
					pos++
					for c.flg(pos)&flagLetter != 0 {
						pos++
					}
					c.add(pos)
					continue
				}
			}
			// \p{N}{1,3} (\p{N} for Qwen2)
			if f&flagNumber != 0 {
				ini := pos
				for c.flg(pos)&flagNumber != 0 {
					pos++
					if pos-ini >= maxDigits {
						c.add(pos)
						ini = pos
					}
				}
				c.add(pos)
				continue
			}
			//  ?[^\s\p{L}\p{N}]+[\r\n]*
			f2 := f
			if cpt == ' ' {
				f2 = c.flg(pos + 1)
			}
			if f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f != 0 {
				if cpt == ' ' {
					pos++
				}
				for f2&(flagWhitespace|flagLetter|flagNumber) == 0 && f2 != 0 {
					pos++
					f2 = c.flg(pos)
				}
				for c2 := c.cpt(pos); c2 == '\r' || c2 == '\n'; c2 = c.cpt(pos) {
					pos++
				}
				c.add(pos)
				continue
			}
			nws := 0
			lastRN := 0
			for c.flg(pos+nws)&flagWhitespace != 0 {
				if c2 := c.cpt(pos + nws); c2 == '\r' || c2 == '\n' {
					lastRN = pos + nws + 1
				}
				nws++
			}
			// \s*[\r\n]+
			if lastRN > 0 {
				pos = lastRN
				c.add(pos)
				continue
			}
			// \s+(?!\S)
			if nws > 1 && c.cpt(pos+nws) != outOfRange {
				pos += nws - 1
				c.add(pos)
				continue
			}
			// \s+
			if nws > 0 {
				pos += nws
				c.add(pos)
				continue
			}
			pos++
			c.add(pos)
		}
	}
	return c.out
}
