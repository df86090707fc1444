package tokenizer

import "unicode/utf8"

// StreamDecoder turns generated tokens into text as they arrive. A UTF-8
// character whose bytes are spread over several byte tokens is held back
// until it is complete, so every string it returns is valid UTF-8. Bytes
// that can no longer become a valid character are replaced by U+FFFD, one
// per maximal invalid subsequence (as Python's and the WHATWG decoders do).
//
// It decodes a continuation: control tokens are left out as in Decode, but
// no leading space is removed, because the first generated token follows
// the prompt. A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
	out     []byte
}

// NewStreamDecoder returns a decoder for one stream of tokens.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Add appends the token id and returns the text that became complete.
func (d *StreamDecoder) Add(id int32) string {
	t := d.t
	if !t.valid(id) || t.attrs[id]&(attrControl|attrUnknown) != 0 {
		return ""
	}
	d.pending = append(d.pending, t.pieces[id]...)
	return d.drain(false)
}

// Flush returns what is still held back, with an incomplete character
// replaced by U+FFFD, and resets the decoder.
func (d *StreamDecoder) Flush() string {
	return d.drain(true)
}

// drain moves the complete part of pending to the result; unless final, an
// incomplete but still valid sequence at the end stays pending.
func (d *StreamDecoder) drain(final bool) string {
	p := d.pending
	out := d.out[:0]
	i := 0
	for i < len(p) {
		if p[i] < utf8.RuneSelf {
			out = append(out, p[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, p[i:i+n]...)
			i += n
			continue
		}
		k := validPrefixLen(p[i:])
		if k > 0 && i+k == len(p) && !final {
			break // may still complete
		}
		out = append(out, "\uFFFD"...)
		i += max(k, 1)
	}
	d.pending = append(p[:0], p[i:]...)
	d.out = out
	if len(out) == 0 {
		return ""
	}
	return string(out)
}

// validPrefixLen returns how many bytes at the start of b form a proper
// prefix of some UTF-8 encoding (the lead byte plus the continuation bytes
// that fit it), or 0 when b[0] cannot start a character.
func validPrefixLen(b []byte) int {
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range of the first continuation byte
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 0
	}
	k := 1
	for k <= need && k < len(b) {
		c := b[k]
		if k == 1 && (c < lo || c > hi) || k > 1 && (c < 0x80 || c > 0xBF) {
			break
		}
		k++
	}
	return k
}
