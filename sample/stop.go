package sample

import (
	"bytes"
	"unicode/utf8"
)

// StopMatcher finds stop strings in text that arrives in pieces (the
// detokenized output of a request) and decides how much of it is safe to
// pass on: text that could be the beginning of a stop string is held back
// until it is known not to be one.
//
// When several stop strings occur, the one that ends first wins (on a tie,
// the longer one), which is what byte-by-byte streaming would see; so the
// result does not depend on how the text is split into pushes. Matching is on
// bytes, and emitted text never ends inside a UTF-8 sequence.
type StopMatcher struct {
	stops   [][]byte
	maxLen  int
	pending []byte
	stopped bool
	matched string
}

// NewStopMatcher returns a matcher for stops; empty strings are ignored.
// With no stop strings it only holds back incomplete UTF-8 sequences.
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s == "" {
			continue
		}
		m.stops = append(m.stops, []byte(s))
		m.maxLen = max(m.maxLen, len(s))
	}
	return m
}

// Push adds the next piece of text. It returns the text that can be emitted
// now and whether a stop string has completed; in that case emit ends just
// before the stop string, the rest is dropped, and later pushes return
// ("", true).
func (m *StopMatcher) Push(text string) (emit string, stopped bool) {
	if m.stopped {
		return "", true
	}
	m.pending = append(m.pending, text...)
	p := m.pending
	bestStart, bestEnd := -1, -1
	for _, s := range m.stops {
		i := bytes.Index(p, s)
		if i < 0 {
			continue
		}
		end := i + len(s)
		if bestEnd < 0 || end < bestEnd || (end == bestEnd && i < bestStart) {
			bestStart, bestEnd, m.matched = i, end, string(s)
		}
	}
	if bestStart >= 0 {
		emit = string(p[:bestStart])
		m.pending = p[:0]
		m.stopped = true
		return emit, true
	}
	cut := m.holdStart()
	for cut > 0 && cut < len(p) && !utf8.RuneStart(p[cut]) {
		cut--
	}
	if cut == len(p) {
		cut = incompleteTail(p)
	}
	emit = string(p[:cut])
	m.pending = p[:copy(p, p[cut:])]
	return emit, false
}

// holdStart returns the start of the longest suffix of the pending text that
// is a proper prefix of a stop string, or len(pending) if there is none.
func (m *StopMatcher) holdStart() int {
	p := m.pending
	for i := max(0, len(p)-m.maxLen+1); i < len(p); i++ {
		tail := p[i:]
		for _, s := range m.stops {
			if len(tail) < len(s) && bytes.HasPrefix(s, tail) {
				return i
			}
		}
	}
	return len(p)
}

// incompleteTail returns where a UTF-8 sequence cut short at the end of p
// starts, or len(p) if p ends on a whole character (or on invalid bytes,
// which are passed through).
func incompleteTail(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}

// Flush returns the text still held back, for the end of generation when no
// stop string completed; it returns "" after a stop.
func (m *StopMatcher) Flush() string {
	if m.stopped {
		return ""
	}
	s := string(m.pending)
	m.pending = m.pending[:0]
	return s
}

// Matched returns the stop string that ended the text, or "" if none has.
func (m *StopMatcher) Matched() string { return m.matched }
