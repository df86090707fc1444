package server

import (
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/sample"
)

// choiceResult is one choice of a whole (non-streamed) response.
type choiceResult struct {
	text     strings.Builder
	tokens   []int32
	logprobs []float32
	tops     [][]sample.TokenLogprob
	final    engine.Event
}

// format is how an endpoint writes its responses: chunks of a stream, or a
// whole body.
type format interface {
	// streamStart is the chunk that opens choice i's stream (nil: none).
	streamStart(i int) any
	// streamToken is the chunk of a token event (nil: nothing to send).
	streamToken(ev choiceEvent) any
	// streamFinal is the chunk of a choice's final event.
	streamFinal(ev choiceEvent) any
	// streamUsage is the usage chunk of stream_options.include_usage.
	streamUsage(u usage) any
	// response is the body of a whole response.
	response(choices []*choiceResult, u usage) any
}

// generate runs g on the engine and answers with f, streamed or whole.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, m *Model, g *generation, kind string, f format) {
	in := requestInfo(r)
	reqs := g.requests()
	for _, p := range g.prompts {
		in.promptTokens += len(p)
	}
	rn, err := s.submit(r, m, kind, reqs)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rn.close()
	final := make([]engine.Event, len(reqs))
	if g.stream {
		s.stream(w, rn, g, f, final)
	} else {
		s.whole(w, rn, g, f, final)
	}
	u := usageOf(final, g.n)
	in.promptTokens, in.completionTokens = u.PromptTokens, u.CompletionTokens
}

func (s *Server) whole(w http.ResponseWriter, rn *run, g *generation, f format, final []engine.Event) {
	res := make([]*choiceResult, len(final))
	for i := range res {
		res[i] = &choiceResult{}
		if g.echo {
			res[i].text.WriteString(g.promptTexts[i/g.n])
		}
	}
	for {
		ev, ok := rn.next()
		if !ok {
			break
		}
		c := res[ev.index]
		c.text.WriteString(ev.Text)
		if ev.Done {
			c.final = ev.Event
			final[ev.index] = ev.Event
			continue
		}
		if g.logprobs {
			c.tokens = append(c.tokens, ev.Token)
			c.logprobs = append(c.logprobs, ev.Logprob)
			c.tops = append(c.tops, ev.Top)
		}
	}
	if rn.ctx.Err() != nil {
		return // the client disconnected: no one to answer
	}
	for _, ev := range final {
		if failed(ev) {
			writeError(w, newAPIError(http.StatusInternalServerError, typeServer, "", "", "generation failed: %v", ev.Err))
			return
		}
	}
	writeJSON(w, http.StatusOK, f.response(res, usageOf(final, g.n)))
}

func (s *Server) stream(w http.ResponseWriter, rn *run, g *generation, f format, final []engine.Event) {
	out := newSSE(w)
	for i := range final {
		if c := f.streamStart(i); c != nil {
			if out.send(c) != nil {
				return
			}
		}
	}
	for {
		ev, ok := rn.next()
		if !ok {
			break
		}
		var chunk any
		if ev.Done {
			final[ev.index] = ev.Event
			if failed(ev.Event) {
				out.fail(newAPIError(http.StatusInternalServerError, typeServer, "", "", "generation failed: %v", ev.Err))
				return
			}
			chunk = f.streamFinal(ev)
		} else {
			chunk = f.streamToken(ev)
		}
		if chunk != nil && out.write(chunk) != nil {
			return // the client is gone; close cancels the rest
		}
		// Events already generated go out with this one, in one flush
		// (one write to the connection) instead of one each.
		if !rn.ready() && out.flush() != nil {
			return
		}
	}
	if g.usageChunk {
		if out.send(f.streamUsage(usageOf(final, g.n))) != nil {
			return
		}
	}
	_ = out.done()
}

// failed reports whether a final event ends its request in an error. A
// cancelled request is not one: it answers with what it generated.
func failed(ev engine.Event) bool {
	return ev.FinishReason == "error" || (ev.Err != nil && ev.FinishReason != "cancelled")
}

// created is a response's creation time as OpenAI reports it.
func created() int64 { return time.Now().Unix() }

// finiteLogprob keeps logprobs JSON-encodable: -Inf (a banned token) goes out
// as -9999, OpenAI's floor.
func finiteLogprob(lp float32) float64 {
	if math.IsInf(float64(lp), -1) || lp < -9999 {
		return -9999
	}
	return float64(lp)
}

// tokenBytes is OpenAI's bytes of a token: its text as a list of byte values.
func tokenBytes(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}
