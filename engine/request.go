package engine

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/rocmforge/rocmforge/kvcache"
	"github.com/rocmforge/rocmforge/sample"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// request is the engine's state of one submitted request.
type request struct {
	id  string
	seq kvcache.SeqID

	// Set from any goroutine (Cancel, the Submit context); read by the
	// scheduler between steps.
	cancelled atomic.Bool
	stopCtx   func() bool // stops the Submit context's AfterFunc

	st Status // guarded by Engine.mu

	// The rest belongs to the scheduler goroutine.
	nPrompt    int
	maxTokens  int
	ignoreEOS  bool
	pureGreedy bool // the next token is the argmax of the logits: no other use of the row
	stopToks   []int32
	tokens     []int32 // prompt, then generated tokens
	computed   int     // tokens whose K/V is in the cache (the kvcache sequence's length)
	generated  int
	cached     int  // prompt tokens matched in the prefix cache at the first admission
	admitted   bool // admitted at least once
	hasSeq     bool // holds a kvcache sequence
	stepNo     int64
	ended      bool
	firstToken time.Time
	cancelErr  error // why the engine itself cancelled it (slow reader)

	sampler *sample.Sampler
	dec     *tokenizer.StreamDecoder
	stop    *sample.StopMatcher

	events     chan Event
	out        []Event // events waiting for room in the channel
	outSince   time.Time
	inBacklog  bool
	chanClosed bool
}

// isPureGreedy reports whether sampling with p picks the argmax of the
// logit row and needs nothing else from it: greedy, no logit bias, no
// penalty that can change a logit, no logprobs.
func isPureGreedy(p sample.Params) bool {
	noPenalty := p.PenaltyLastN == 0 || (p.RepeatPenalty == 1 && p.PresencePenalty == 0 && p.FrequencyPenalty == 0)
	return p.Temperature == 0 && len(p.LogitBias) == 0 && noPenalty && !p.Logprobs && p.TopLogprobs == 0
}

// isStopToken reports whether tok ends generation.
func (r *request) isStopToken(isEOG bool, tok int32) bool {
	return (isEOG && !r.ignoreEOS) || slices.Contains(r.stopToks, tok)
}

func (r *request) usage() Usage {
	return Usage{PromptTokens: r.nPrompt, CompletionTokens: r.generated, CachedTokens: r.cached}
}

// emit queues ev for the reader without blocking: straight into the channel
// when nothing is waiting before it and there is room, else at the end of
// the backlog.
func (s *scheduler) emit(r *request, ev Event) {
	if r.chanClosed {
		return
	}
	if len(r.out) == 0 {
		select {
		case r.events <- ev:
			if ev.Done {
				close(r.events)
				r.chanClosed = true
			}
			return
		default:
		}
		r.outSince = time.Now()
	}
	r.out = append(r.out, ev)
	if !r.inBacklog {
		r.inBacklog = true
		s.backlog = append(s.backlog, r)
	}
}

// flush moves backlogged events into the channel while there is room and
// reports whether any moved.
func (r *request) flush() (moved bool) {
	for len(r.out) > 0 {
		select {
		case r.events <- r.out[0]:
			moved = true
			done := r.out[0].Done
			r.out[0] = Event{}
			r.out = r.out[1:]
			if done {
				close(r.events)
				r.chanClosed = true
				r.out = nil
			}
		default:
			return moved
		}
	}
	return moved
}

// sent records that the backlog's first event was delivered by a select.
func (r *request) sent() {
	done := r.out[0].Done
	r.out[0] = Event{}
	r.out = r.out[1:]
	if done {
		close(r.events)
		r.chanClosed = true
		r.out = nil
	}
}

// force delivers the Done event to a reader that is not reading: the
// undelivered token events are dropped, and one buffered event is taken
// back if the channel is full, so that the Done event always fits.
func (r *request) force() {
	if r.chanClosed {
		return
	}
	var done Event
	if n := len(r.out); n > 0 && r.out[n-1].Done {
		done = r.out[n-1]
	} else {
		return // not finished: the caller cancels it first
	}
	r.out = nil
	select {
	case r.events <- done:
	default:
		select {
		case <-r.events: // the reader is stuck; make room
		default:
		}
		select {
		case r.events <- done:
		default: // cannot happen: the scheduler is the only sender
		}
	}
	close(r.events)
	r.chanClosed = true
}
