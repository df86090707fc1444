package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rocmforge/rocmforge/engine"
)

// choiceEvent is an engine event of one choice of a request.
type choiceEvent struct {
	index int
	engine.Event
}

// run is one HTTP request's engine requests in flight: one per choice, their
// events merged into one channel.
type run struct {
	s       *Server
	m       *Model
	ctx     context.Context
	entry   *entry
	handles []*engine.Handle
	events  chan choiceEvent    // merged events of several choices
	direct  <-chan engine.Event // the one choice's events, when there is one
	stop    chan struct{}       // closed by close: the reader is gone
	wg      sync.WaitGroup
	done    []bool // per choice: its final event was read

	// Per-choice timing for the latency metrics.
	start     time.Time
	lastToken []time.Time
}

// submit sends reqs to the engine under r's context (a client that
// disconnects cancels them) and registers them under the request's id. If
// one is refused, the ones already submitted are cancelled.
func (s *Server) submit(r *http.Request, m *Model, kind string, reqs []engine.Request) (*run, error) {
	in := requestInfo(r)
	ctx := r.Context()
	rn := &run{
		s:         s,
		m:         m,
		ctx:       ctx,
		events:    make(chan choiceEvent),
		stop:      make(chan struct{}),
		done:      make([]bool, len(reqs)),
		start:     time.Now(),
		lastToken: make([]time.Time, len(reqs)),
	}
	for _, req := range reqs {
		h, err := m.Engine.Submit(ctx, req)
		if err != nil {
			rn.close()
			param := "prompt"
			if kind == "chat.completion" {
				param = "messages"
			}
			return nil, engineError(err, param)
		}
		rn.handles = append(rn.handles, h)
	}
	ids := make([]string, len(rn.handles))
	for i, h := range rn.handles {
		ids[i] = h.ID
	}
	rn.entry = s.requests.add(in.id, kind, m, ids)
	if len(rn.handles) == 1 {
		// One choice (the usual case): read its events straight from the
		// engine's channel, without a goroutine hop per token.
		rn.direct = rn.handles[0].Events
		return rn, nil
	}
	for i, h := range rn.handles {
		rn.wg.Add(1)
		go rn.forward(i, h)
	}
	return rn, nil
}

// forward passes one handle's events to the merged channel until its final
// event. Once the reader is gone it drops them, still waiting for the final
// one, so that close returns only when the engine is done with the request.
func (rn *run) forward(i int, h *engine.Handle) {
	defer rn.wg.Done()
	for ev := range h.Events {
		select {
		case rn.events <- choiceEvent{i, ev}:
		case <-rn.stop:
		}
		if ev.Done {
			return
		}
	}
	// Closed without a final event: make one, so that the reader's count of
	// finished choices still completes.
	select {
	case rn.events <- choiceEvent{i, closedEarly()}:
	case <-rn.stop:
	}
}

// next returns the next event of any choice; ok is false once every choice
// has had its final event.
func (rn *run) next() (choiceEvent, bool) {
	for _, d := range rn.done {
		if !d {
			var ev choiceEvent
			if rn.direct != nil {
				e, ok := <-rn.direct
				if !ok {
					e = closedEarly()
				}
				ev = choiceEvent{0, e}
			} else {
				ev = <-rn.events
			}
			rn.observe(ev)
			return ev, true
		}
	}
	return choiceEvent{}, false
}

// ready reports whether next would return at once with an event already
// generated, so that a stream can write it before flushing.
func (rn *run) ready() bool {
	if rn.direct != nil {
		return len(rn.direct) > 0
	}
	return false // merged choices: each goroutine hands over one event at a time
}

// closedEarly is the final event made for a channel closed without one, so
// that the count of finished choices still completes.
func closedEarly() engine.Event {
	return engine.Event{Done: true, FinishReason: "error", Err: errors.New("the engine ended the request without a final event")}
}

// observe updates the metrics and bookkeeping with one event.
func (rn *run) observe(ev choiceEvent) {
	now := time.Now()
	if ev.Done {
		rn.done[ev.index] = true
		rn.s.metrics.finished(ev.Usage, ev.FinishReason)
		return
	}
	if last := rn.lastToken[ev.index]; last.IsZero() {
		rn.s.metrics.ttft.Observe(now.Sub(rn.start).Seconds())
	} else {
		rn.s.metrics.itl.Observe(now.Sub(last).Seconds())
	}
	rn.lastToken[ev.index] = now
	rn.s.metrics.generated.Inc()
}

// close cancels what has not finished, waits for the forwarding goroutines
// and records the final states. It is safe to call more than once.
func (rn *run) close() {
	select {
	case <-rn.stop:
		return
	default:
	}
	close(rn.stop)
	for i, h := range rn.handles {
		if !rn.done[i] {
			_ = rn.m.Engine.Cancel(h.ID) // ErrNotFound: it finished meanwhile
		}
	}
	rn.wg.Wait()
	if rn.direct != nil && !rn.done[0] {
		// Wait for the engine to end the request, as forward does: the
		// engine never blocks on the channel, and closes it after Done.
		for range rn.direct {
		}
	}
	if rn.entry != nil {
		rn.s.requests.finish(rn.entry, rn.m.Engine)
	}
}

// usage sums the usage of a request's final events: prompt tokens once per
// prompt (the first of its n choices), completion tokens over all choices.
func usageOf(final []engine.Event, n int) usage {
	var u usage
	for i, ev := range final {
		if i%n == 0 {
			u.PromptTokens += ev.Usage.PromptTokens
			u.PromptTokensDetails.CachedTokens += ev.Usage.CachedTokens
		}
		u.CompletionTokens += ev.Usage.CompletionTokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// usage is OpenAI's usage object.
type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}
