package server

import (
	"net/http"

	"github.com/rocmforge/rocmforge/sample"
)

// OpenAI's (legacy) text completion objects.
type (
	textCompletion struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		SystemFingerprint string       `json:"system_fingerprint"`
		Choices           []textChoice `json:"choices"`
		Usage             *usage       `json:"usage,omitempty"`
	}
	textChoice struct {
		Index        int           `json:"index"`
		Text         string        `json:"text"`
		Logprobs     *textLogprobs `json:"logprobs"`
		FinishReason *string       `json:"finish_reason"`
	}
	textLogprobs struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []float64            `json:"token_logprobs"`
		TopLogprobs   []map[string]float64 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}
)

func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request, m *Model) {
	var req completionRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	g, err := s.completionGeneration(&req, m)
	if err != nil {
		writeError(w, err)
		return
	}
	f := &textFormat{m: m, id: requestInfo(r).id, created: created(), g: g, offset: make([]int, len(g.prompts)*g.n)}
	s.generate(w, r, m, g, "text_completion", f)
}

// textFormat writes text completions.
type textFormat struct {
	m       *Model
	id      string
	created int64
	g       *generation
	offset  []int // per choice: the text offset of the next token (streaming logprobs)
	fast    fastChunk
}

func (f *textFormat) body(choices ...textChoice) *textCompletion {
	return &textCompletion{ID: f.id, Object: "text_completion", Created: f.created, Model: f.m.ID,
		SystemFingerprint: systemFingerprint, Choices: choices}
}

func (f *textFormat) streamStart(i int) any {
	if !f.g.echo {
		return nil
	}
	text := f.g.promptTexts[i/f.g.n]
	f.offset[i] = len(text)
	return f.body(textChoice{Index: i, Text: text})
}

func (f *textFormat) streamToken(ev choiceEvent) any {
	c := textChoice{Index: ev.index, Text: ev.Text}
	if f.g.logprobs {
		c.Logprobs = &textLogprobs{}
		f.offset[ev.index] = f.addLogprob(c.Logprobs, ev.Token, ev.Logprob, ev.Top, f.offset[ev.index])
	} else if ev.Text == "" {
		return nil
	} else if tc := f.fast.get(func() any { return f.body(textChoice{Text: "\x01"}) }); tc != nil {
		return tc.encode(ev.index, ev.Text)
	}
	return f.body(c)
}

func (f *textFormat) streamFinal(ev choiceEvent) any {
	reason := ev.FinishReason
	return f.body(textChoice{Index: ev.index, Text: ev.Text, FinishReason: &reason})
}

func (f *textFormat) streamUsage(u usage) any {
	c := f.body()
	c.Choices = []textChoice{}
	c.Usage = &u
	return c
}

func (f *textFormat) response(choices []*choiceResult, u usage) any {
	resp := f.body(make([]textChoice, len(choices))...)
	resp.Usage = &u
	for i, c := range choices {
		reason := c.final.FinishReason
		tc := textChoice{Index: i, Text: c.text.String(), FinishReason: &reason}
		if f.g.logprobs {
			tc.Logprobs = &textLogprobs{}
			off := 0
			if f.g.echo {
				off = len(f.g.promptTexts[i/f.g.n])
			}
			for j, t := range c.tokens {
				off = f.addLogprob(tc.Logprobs, t, c.logprobs[j], c.tops[j], off)
			}
		}
		resp.Choices[i] = tc
	}
	return resp
}

// addLogprob appends one token's logprobs at text offset off and returns the
// offset after it.
func (f *textFormat) addLogprob(l *textLogprobs, tok int32, lp float32, top []sample.TokenLogprob, off int) int {
	piece := f.m.Tokenizer.Piece(tok)
	l.Tokens = append(l.Tokens, piece)
	l.TokenLogprobs = append(l.TokenLogprobs, finiteLogprob(lp))
	l.TextOffset = append(l.TextOffset, off)
	tm := make(map[string]float64, f.g.topLogprobs)
	for _, t := range top[:min(len(top), f.g.topLogprobs)] {
		p := f.m.Tokenizer.Piece(t.Token)
		if _, dup := tm[p]; !dup { // two tokens with one text: keep the likelier
			tm[p] = finiteLogprob(t.Logprob)
		}
	}
	l.TopLogprobs = append(l.TopLogprobs, tm)
	return off + len(piece)
}
