package tokenizer

import (
	"cmp"
	"slices"
)

// Special-token partitioning, as llama.cpp's tokenizer_st_partition. Before
// the model tokenizer runs, the text is cut at occurrences of special
// tokens: user-defined tokens always, control and unknown tokens only when
// parseSpecial is set. Upstream takes the special tokens longest first and,
// for each, splits every remaining text fragment at its occurrences from
// left to right; tokens with the lstrip/rstrip attribute also swallow the
// whitespace next to them.
//
// Doing that literally costs one substring search per special token over the
// whole text (deepseek-llm has 2400 user-defined tokens). Here a trie finds
// all occurrences of all special tokens in one pass, and the upstream order
// is then replayed on those occurrences: an occurrence is taken when none of
// its bytes has been taken or stripped before, which is exactly when
// upstream's search would have found it inside a remaining fragment. Tokens
// of equal length are taken in id order (upstream's std::sort leaves it
// unspecified).

// fragment is a piece of partitioned text: a special token, or raw text
// when tok < 0.
type fragment struct {
	tok        int32
	start, end int32
}

type trieEdge struct {
	b    byte
	next int32
}

type trieNode struct {
	order int32 // index in specialMatcher.tokens of the token ending here, -1 if none
	edges []trieEdge
}

// specialMatcher finds occurrences of a set of special tokens.
type specialMatcher struct {
	tokens []int32 // token ids, longest first, then by id
	lens   []int32
	nodes  []trieNode
	root   [256]int32 // the root's edges as a table: most text bytes start no token
}

func newSpecialMatcher(tokens []string, ids []int32) *specialMatcher {
	ids = slices.Clone(ids)
	slices.SortStableFunc(ids, func(a, b int32) int {
		if c := cmp.Compare(len(tokens[b]), len(tokens[a])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	m := &specialMatcher{tokens: ids, nodes: []trieNode{{order: -1}}}
	for order, id := range ids {
		text := tokens[id]
		m.lens = append(m.lens, int32(len(text)))
		n := int32(0)
		for i := 0; i < len(text); i++ {
			n = m.child(n, text[i], true)
		}
		m.nodes[n].order = int32(order)
	}
	for b := range 256 {
		m.root[b] = m.child(0, byte(b), false)
	}
	return m
}

// child follows (or, with create, adds) the edge for b.
func (m *specialMatcher) child(n int32, b byte, create bool) int32 {
	for _, e := range m.nodes[n].edges {
		if e.b == b {
			return e.next
		}
	}
	if !create {
		return -1
	}
	next := int32(len(m.nodes))
	m.nodes = append(m.nodes, trieNode{order: -1})
	m.nodes[n].edges = append(m.nodes[n].edges, trieEdge{b, next})
	return next
}

// occurrence is a special token found at start.
type occurrence struct {
	order int32
	start int32
}

// partitionState is the working memory of partitioning.
type partitionState struct {
	occ   []occurrence
	taken []occurrence
	state []uint8 // per byte: 0 free, 1 in a taken token, 2 stripped
	frags []fragment
}

func isCSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r')
}

// partition cuts text into raw and special-token fragments.
func (t *Tokenizer) partition(text string, parseSpecial bool, ps *partitionState) []fragment {
	frags := t.appendFragments(ps.frags[:0], text, parseSpecial, ps)
	ps.frags = frags
	return frags
}

func (t *Tokenizer) appendFragments(frags []fragment, text string, parseSpecial bool, ps *partitionState) []fragment {
	if len(text) == 0 {
		return frags
	}
	m := t.specialsText
	if parseSpecial {
		m = t.specialsAll
	}
	if m == nil || len(m.tokens) == 0 {
		return append(frags, fragment{tok: -1, start: 0, end: int32(len(text))})
	}
	occ := ps.occ[:0]
	for pos := 0; pos < len(text); pos++ {
		for n, i := m.root[text[pos]], pos+1; n >= 0; i++ {
			if o := m.nodes[n].order; o >= 0 {
				occ = append(occ, occurrence{order: o, start: int32(pos)})
			}
			if i == len(text) {
				break
			}
			n = m.child(n, text[i], false)
		}
	}
	ps.occ = occ
	if len(occ) == 0 {
		return append(frags, fragment{tok: -1, start: 0, end: int32(len(text))})
	}
	slices.SortFunc(occ, func(a, b occurrence) int {
		if a.order != b.order {
			return cmp.Compare(a.order, b.order)
		}
		return cmp.Compare(a.start, b.start)
	})
	state := ps.state
	if cap(state) < len(text) {
		state = make([]uint8, len(text))
	} else {
		state = state[:len(text)]
		clear(state)
	}
	ps.state = state
	taken := ps.taken[:0]
	for _, o := range occ {
		s, e := o.start, o.start+m.lens[o.order]
		free := true
		for i := s; i < e; i++ {
			if state[i] != 0 {
				free = false
				break
			}
		}
		if !free {
			continue
		}
		for i := s; i < e; i++ {
			state[i] = 1
		}
		attr := t.attrs[m.tokens[o.order]]
		if attr&attrLStrip != 0 {
			for i := s - 1; i >= 0 && state[i] == 0 && isCSpace(text[i]); i-- {
				state[i] = 2
			}
		}
		if attr&attrRStrip != 0 {
			for i := e; i < int32(len(text)) && state[i] == 0 && isCSpace(text[i]); i++ {
				state[i] = 2
			}
		}
		taken = append(taken, o)
	}
	ps.taken = taken
	slices.SortFunc(taken, func(a, b occurrence) int { return cmp.Compare(a.start, b.start) })
	pos := int32(0)
	emitRaw := func(end int32) {
		// The raw text before a token, minus what was stripped.
		for pos < end {
			for pos < end && state[pos] != 0 {
				pos++
			}
			s := pos
			for pos < end && state[pos] == 0 {
				pos++
			}
			if pos > s {
				frags = append(frags, fragment{tok: -1, start: s, end: pos})
			}
		}
	}
	for _, o := range taken {
		emitRaw(o.start)
		frags = append(frags, fragment{tok: m.tokens[o.order], start: o.start, end: o.start + m.lens[o.order]})
		pos = o.start + m.lens[o.order]
	}
	emitRaw(int32(len(text)))
	return frags
}
