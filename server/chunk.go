package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// tokenChunk writes the streamed chunk of one token's text without
// reflection: the chunk's JSON is encoded once per request, split around
// the choice index and the text, and each token appends an integer and a
// string between the parts. The bytes are those json.Marshal gives for the
// same chunk.
type tokenChunk struct {
	head, mid, tail []byte // head + index + mid + text as a JSON string + tail
	buf             []byte
}

// Markers of the template: the choice index 0 and a text no chunk field
// otherwise holds in its encoded form.
const (
	indexMarker = `"index":0`
	textMarker  = `"\u0001"`
)

// newTokenChunk splits the encoding of template, a chunk with choice index
// 0 and text "\x01".
func newTokenChunk(template any) (*tokenChunk, error) {
	b, err := json.Marshal(template)
	if err != nil {
		return nil, err
	}
	if bytes.Count(b, []byte(indexMarker)) != 1 || bytes.Count(b, []byte(textMarker)) != 1 {
		return nil, fmt.Errorf("chunk template %s: want one %s and one %s", b, indexMarker, textMarker)
	}
	i := bytes.Index(b, []byte(indexMarker))
	rest := b[i+len(indexMarker):]
	j := bytes.Index(rest, []byte(textMarker))
	if j < 0 {
		return nil, fmt.Errorf("chunk template %s: the text comes before the index", b)
	}
	return &tokenChunk{
		head: b[:i+len(indexMarker)-1],
		mid:  rest[:j],
		tail: rest[j+len(textMarker):],
	}, nil
}

// encode encodes the chunk of choice index with text into c.buf and
// returns c, which sse.write takes as the chunk (a pointer: no allocation
// to put it in an interface). It is valid until the next call.
func (c *tokenChunk) encode(index int, text string) *tokenChunk {
	b := append(c.buf[:0], c.head...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, c.mid...)
	b = appendJSONString(b, text)
	b = append(b, c.tail...)
	c.buf = b
	return c
}

// appendJSONString appends s as a JSON string the way encoding/json does
// (HTML characters escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped), so that the fast chunks equal the reflective ones byte for
// byte.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// fastChunk is a format's token chunk, made at the first token.
type fastChunk struct {
	c      *tokenChunk
	failed bool
}

// get returns the token chunk made from template(), or nil when the
// template cannot be split (the format then marshals each chunk).
func (f *fastChunk) get(template func() any) *tokenChunk {
	if f.c == nil && !f.failed {
		c, err := newTokenChunk(template())
		f.c, f.failed = c, err != nil
	}
	return f.c
}
