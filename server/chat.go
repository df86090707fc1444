package server

import (
	"net/http"

	"github.com/rocmforge/rocmforge/sample"
)

// OpenAI's chat completion objects, as far as this server fills them.
type (
	chatCompletion struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		SystemFingerprint string       `json:"system_fingerprint"`
		Choices           []chatChoice `json:"choices"`
		Usage             usage        `json:"usage"`
	}
	chatChoice struct {
		Index        int           `json:"index"`
		Message      chatOut       `json:"message"`
		Logprobs     *chatLogprobs `json:"logprobs"`
		FinishReason string        `json:"finish_reason"`
	}
	chatOut struct {
		Role    string  `json:"role"`
		Content string  `json:"content"`
		Refusal *string `json:"refusal"`
	}
	chatLogprobs struct {
		Content []tokenLogprob `json:"content"`
		Refusal []tokenLogprob `json:"refusal"`
	}
	tokenLogprob struct {
		Token       string       `json:"token"`
		Logprob     float64      `json:"logprob"`
		Bytes       []int        `json:"bytes"`
		TopLogprobs []topLogprob `json:"top_logprobs"`
	}
	topLogprob struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
		Bytes   []int   `json:"bytes"`
	}

	chatChunk struct {
		ID                string        `json:"id"`
		Object            string        `json:"object"`
		Created           int64         `json:"created"`
		Model             string        `json:"model"`
		SystemFingerprint string        `json:"system_fingerprint"`
		Choices           []chunkChoice `json:"choices"`
		Usage             *usage        `json:"usage,omitempty"`
	}
	chunkChoice struct {
		Index        int           `json:"index"`
		Delta        chatDelta     `json:"delta"`
		Logprobs     *chatLogprobs `json:"logprobs"`
		FinishReason *string       `json:"finish_reason"`
	}
	chatDelta struct {
		Role    string  `json:"role,omitempty"`
		Content *string `json:"content,omitempty"`
	}
)

// systemFingerprint identifies the serving configuration, as OpenAI's does.
const systemFingerprint = "rocmforge"

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request, m *Model) {
	var req chatRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	g, err := s.chatGeneration(&req, m)
	if err != nil {
		writeError(w, err)
		return
	}
	s.generate(w, r, m, g, "chat.completion", &chatFormat{m: m, id: requestInfo(r).id, created: created(), g: g})
}

// chatFormat writes chat completions.
type chatFormat struct {
	m       *Model
	id      string
	created int64
	g       *generation
	fast    fastChunk
}

func (f *chatFormat) chunk(choices ...chunkChoice) *chatChunk {
	return &chatChunk{ID: f.id, Object: "chat.completion.chunk", Created: f.created, Model: f.m.ID,
		SystemFingerprint: systemFingerprint, Choices: choices}
}

func (f *chatFormat) streamStart(i int) any {
	empty := ""
	return f.chunk(chunkChoice{Index: i, Delta: chatDelta{Role: "assistant", Content: &empty}})
}

func (f *chatFormat) streamToken(ev choiceEvent) any {
	c := chunkChoice{Index: ev.index}
	if f.g.logprobs {
		c.Logprobs = &chatLogprobs{Content: []tokenLogprob{f.logprob(ev.Token, ev.Logprob, ev.Top)}}
	} else if ev.Text == "" {
		return nil // text held back (a possible stop string): nothing to say yet
	}
	if !f.g.logprobs {
		if tc := f.fast.get(func() any {
			marker := "\x01"
			return f.chunk(chunkChoice{Delta: chatDelta{Content: &marker}})
		}); tc != nil {
			return tc.encode(ev.index, ev.Text)
		}
	}
	text := ev.Text
	c.Delta.Content = &text
	return f.chunk(c)
}

func (f *chatFormat) streamFinal(ev choiceEvent) any {
	reason := ev.FinishReason
	c := chunkChoice{Index: ev.index, FinishReason: &reason}
	if ev.Text != "" {
		text := ev.Text
		c.Delta.Content = &text
	}
	return f.chunk(c)
}

func (f *chatFormat) streamUsage(u usage) any {
	c := f.chunk()
	c.Choices = []chunkChoice{}
	c.Usage = &u
	return c
}

func (f *chatFormat) response(choices []*choiceResult, u usage) any {
	resp := &chatCompletion{ID: f.id, Object: "chat.completion", Created: f.created, Model: f.m.ID,
		SystemFingerprint: systemFingerprint, Usage: u, Choices: make([]chatChoice, len(choices))}
	for i, c := range choices {
		cc := chatChoice{Index: i, FinishReason: c.final.FinishReason,
			Message: chatOut{Role: "assistant", Content: c.text.String()}}
		if f.g.logprobs {
			cc.Logprobs = &chatLogprobs{Content: make([]tokenLogprob, len(c.tokens))}
			for j, t := range c.tokens {
				cc.Logprobs.Content[j] = f.logprob(t, c.logprobs[j], c.tops[j])
			}
		}
		resp.Choices[i] = cc
	}
	return resp
}

// logprob is the chat logprobs entry of one token.
func (f *chatFormat) logprob(tok int32, lp float32, top []sample.TokenLogprob) tokenLogprob {
	piece := f.m.Tokenizer.Piece(tok)
	e := tokenLogprob{Token: piece, Logprob: finiteLogprob(lp), Bytes: tokenBytes(piece), TopLogprobs: []topLogprob{}}
	for _, t := range top[:min(len(top), f.g.topLogprobs)] {
		p := f.m.Tokenizer.Piece(t.Token)
		e.TopLogprobs = append(e.TopLogprobs, topLogprob{Token: p, Logprob: finiteLogprob(t.Logprob), Bytes: tokenBytes(p)})
	}
	return e
}
