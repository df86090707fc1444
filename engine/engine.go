package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rocmforge/rocmforge/kvcache"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/sample"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// Errors returned by Submit and Cancel, wrapped with the values involved;
// test for them with errors.Is.
var (
	// ErrTooLong means the prompt plus MaxTokens exceeds the context
	// length or the whole KV pool.
	ErrTooLong = errors.New("engine: request too long")
	// ErrQueueFull means Config.MaxQueue requests are already waiting.
	ErrQueueFull = errors.New("engine: queue full")
	// ErrClosed means the engine is closed (or its Start context ended).
	ErrClosed = errors.New("engine: closed")
	// ErrNotFound means no request has that id (or it was forgotten).
	ErrNotFound = errors.New("engine: request not found")
	// ErrInvalid means the request is malformed: empty prompt, token id
	// outside the vocabulary, negative MaxTokens, bad sampling parameters.
	ErrInvalid = errors.New("engine: invalid request")
	// ErrSlowReader is the Err of a request cancelled because its event
	// channel was left full for Config.SlowReaderTimeout.
	ErrSlowReader = errors.New("engine: event reader too slow")
)

// Finish reasons of the Done event.
const (
	FinishStop      = "stop"      // end-of-generation token, stop token or stop string
	FinishLength    = "length"    // MaxTokens generated
	FinishCancelled = "cancelled" // Cancel, the Submit context, a slow reader or Close
	FinishError     = "error"     // the forward pass or sampling failed; see Err
)

// Request states reported by Status.
const (
	StateQueued    = "queued" // waiting for admission (again, after a preemption)
	StateRunning   = "running"
	StateFinished  = "finished"
	StateCancelled = "cancelled"
	StateFailed    = "failed"
)

// Request is one generation request.
type Request struct {
	Prompt []int32 // token ids, BOS included when the model wants one
	// MaxTokens bounds the generated tokens; 0 means up to the context
	// length.
	MaxTokens int
	Params    sample.Params // start from sample.DefaultParams
	// Stop strings end generation; the text from the stop string on is not
	// emitted.
	Stop []string
	// StopTokens end generation like the model's end-of-generation tokens
	// (neither is emitted or counted).
	StopTokens []int32
	// IgnoreEOS treats end-of-generation tokens as ordinary tokens.
	IgnoreEOS bool
	// Logprobs and TopLogprobs ask for Event.Logprob and Event.Top (they
	// are or-ed with the same settings in Params).
	Logprobs    bool
	TopLogprobs int
}

// Event is one step of a request's output: a generated token, or the final
// Done event.
type Event struct {
	// Token is the generated token, -1 in the Done event.
	Token int32
	// Text is the new text safe to emit: stop strings and what could be
	// their beginning are held back, and it never ends inside a UTF-8
	// character.
	Text string
	// Logprob and Top are filled when the request asked for logprobs.
	Logprob float32
	Top     []sample.TokenLogprob
	// Done marks the last event; the channel is closed after it.
	Done         bool
	FinishReason string // Done only: FinishStop, FinishLength, FinishCancelled or FinishError
	// Err (Done only) says why the request failed, or why the engine
	// cancelled it (ErrClosed, ErrSlowReader); nil when the caller did.
	Err   error
	Usage Usage // Done only
}

// Usage counts a request's tokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int // generated tokens, end-of-generation and stop tokens not counted
	CachedTokens     int // prompt tokens taken from the prefix cache at admission
}

// Status is a snapshot of one request.
type Status struct {
	ID                                          string
	State                                       string // StateQueued, StateRunning, StateFinished, StateCancelled or StateFailed
	PromptTokens, GeneratedTokens, CachedTokens int
	Created, FirstToken, Finished               time.Time
	FinishReason                                string
	Error                                       string
}

// Stats is a snapshot of the engine.
type Stats struct {
	Running int // sequences admitted and not finished
	Waiting int // requests queued, never admitted or preempted

	KVBlocksTotal  int
	KVBlocksUsed   int // referenced by running sequences
	KVBlocksCached int // unreferenced, kept for the prefix cache (evictable)
	KVBlocksFree   int
	BlockSize      int

	// Prefix cache, in prompt tokens over every admission (re-admissions
	// after preemption included; an admission backed out for want of KV
	// blocks, retried later, counts once).
	PrefixHitTokens, PrefixMissTokens int64

	Steps           int64 // forward passes
	LastBatchTokens int   // rows of the last forward pass
	LastBatchSeqs   int   // sequences in it
	PromptTokens    int64 // prompt tokens of the requests admitted
	GeneratedTokens int64 // tokens generated
	ComputedTokens  int64 // rows computed: prefill (recomputation included) and decode
	Preemptions     int64

	Finished, Cancelled, Failed int64 // requests ended, by outcome
}

// Handle is a submitted request: its id (for Cancel and Status) and its
// event stream.
type Handle struct {
	ID string
	// Events delivers the request's events; it is closed after the Done
	// event. It is buffered, and the engine never waits for the reader.
	Events <-chan Event
}

// Engine schedules requests on one model. Its methods are safe for
// concurrent use.
type Engine struct {
	m         *model.Model
	fwd       forwarder       // m, or a test double
	argmax    argmaxForwarder // m's greedy capability, nil without one
	topk      topkForwarder   // m's device top-k for sampled steps, nil without one (sampling.go)
	tok       *tokenizer.Tokenizer
	cfg       Config
	nVocab    int
	poolToks  int
	cache     *model.Cache
	kv        *kvcache.Manager
	wake      chan struct{} // capacity 1: a pending wake-up for the scheduler
	loopDone  chan struct{} // closed when the scheduler has stopped
	abort     atomic.Bool   // Close's context ended: cancel everything now
	closeOnce sync.Once

	mu      sync.Mutex
	started bool
	closed  bool
	inbox   []*request // submitted, not yet seen by the scheduler
	queued  int        // submitted, neither admitted once nor ended
	active  map[string]*request
	history statusLRU
	snap    Stats // published by the scheduler
	nextSeq kvcache.SeqID

	s scheduler // owned by the scheduler goroutine
}

// forwarder is the model as the scheduler runs it: *model.Model, or a test
// double wrapping one.
type forwarder interface {
	Forward(b *model.Batch, c *model.Cache, logits []float32) error
}

// argmaxForwarder is the optional model capability of greedy steps: a
// forward pass that writes, for each output row, the index of its largest
// logit (compute.Argmaxer's rule: the lowest such index, NaN and -Inf never
// chosen, -1 for a row with nothing else) to ids instead of copying the
// logit rows out. The engine uses it for steps whose sampled sequences are
// all pure greedy (temperature 0, no penalties, no logit bias, no
// logprobs), when the model has it.
type argmaxForwarder interface {
	ForwardArgmax(b *model.Batch, c *model.Cache, ids []int32) error
}

// New makes an engine for m with tokenizer tok (which must have m's
// vocabulary). It allocates the KV cache on m's backend. The engine is the
// only user of m until it is closed.
func New(m *model.Model, tok *tokenizer.Tokenizer, cfg Config) (*Engine, error) {
	if m == nil || tok == nil {
		return nil, fmt.Errorf("engine: new: model and tokenizer are required")
	}
	hp := &m.HParams
	if tok.NVocab() != hp.NVocab {
		return nil, fmt.Errorf("engine: the tokenizer has %d tokens but the model's vocabulary is %d", tok.NVocab(), hp.NVocab)
	}
	cfg, err := cfg.resolve(hp)
	if err != nil {
		return nil, err
	}
	nBlocks := cfg.blocks()
	kv, err := kvcache.New(kvcache.Config{Blocks: nBlocks, BlockSize: cfg.BlockSize, EnablePrefixCache: cfg.EnablePrefixCache})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	cache, err := model.NewCacheType(m.Backend(), *hp, nBlocks, cfg.BlockSize, cfg.KVType)
	if err != nil {
		return nil, fmt.Errorf("engine: KV cache of %d tokens: %w", nBlocks*cfg.BlockSize, err)
	}
	e := &Engine{
		m: m, fwd: m, tok: tok, cfg: cfg, nVocab: hp.NVocab,
		poolToks: nBlocks * cfg.BlockSize,
		cache:    cache, kv: kv,
		wake:     make(chan struct{}, 1),
		loopDone: make(chan struct{}),
		active:   make(map[string]*request),
		history:  newStatusLRU(cfg.StatusHistory),
	}
	e.argmax, _ = any(m).(argmaxForwarder)
	e.topk = deviceTopK(m)
	e.s.init(e)
	e.mu.Lock()
	e.snapshotLocked()
	e.mu.Unlock()
	return e, nil
}

// Config is the engine's configuration with the defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Start starts the scheduler goroutine and returns at once. When ctx ends,
// the scheduler cancels every request and stops, and the engine is closed.
// Starting a started or closed engine does nothing.
func (e *Engine) Start(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return
	}
	e.started = true
	go e.s.loop(ctx)
}

// Close stops accepting requests, lets the queued and running ones finish
// while ctx allows, then cancels what is left, stops the scheduler and frees
// the KV cache. When it returns no goroutine of the engine is left and
// every Events channel is closed. It returns an error wrapping ctx.Err() if
// requests had to be cancelled. The model is the caller's to close.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	started := e.started
	e.mu.Unlock()
	if !started {
		e.closeOnce.Do(func() {
			e.s.shutdown()
			close(e.loopDone)
		})
		return nil
	}
	e.wakeup()
	select {
	case <-e.loopDone:
		return nil
	case <-ctx.Done():
	}
	e.abort.Store(true)
	e.wakeup()
	<-e.loopDone
	return fmt.Errorf("engine: close: unfinished requests were cancelled: %w", ctx.Err())
}

// wakeup tells the scheduler that there is something new, without
// blocking.
func (e *Engine) wakeup() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Submit validates r and queues it. The request is cancelled when ctx ends
// (a client that went away), within one step, and its blocks are freed.
func (e *Engine) Submit(ctx context.Context, r Request) (*Handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req, err := e.newRequest(r)
	if err != nil {
		return nil, err
	}
	req.stopCtx = context.AfterFunc(ctx, func() {
		req.cancelled.Store(true)
		e.wakeup()
	})
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		req.stopCtx()
		return nil, ErrClosed
	}
	if e.queued >= e.cfg.MaxQueue {
		e.mu.Unlock()
		req.stopCtx()
		return nil, fmt.Errorf("%w: %d requests waiting (MaxQueue %d)", ErrQueueFull, e.queued, e.cfg.MaxQueue)
	}
	for {
		req.id = newID()
		if _, dup := e.active[req.id]; !dup {
			break
		}
	}
	e.nextSeq++
	req.seq = e.nextSeq
	req.st.ID = req.id
	e.active[req.id] = req
	e.inbox = append(e.inbox, req)
	e.queued++
	e.snap.Waiting++
	e.mu.Unlock()
	e.wakeup()
	return &Handle{ID: req.id, Events: req.events}, nil
}

// newRequest checks r and builds its scheduler state.
func (e *Engine) newRequest(r Request) (*request, error) {
	n := len(r.Prompt)
	if n == 0 {
		return nil, fmt.Errorf("%w: empty prompt", ErrInvalid)
	}
	for i, t := range r.Prompt {
		if t < 0 || int(t) >= e.nVocab {
			return nil, fmt.Errorf("%w: prompt token %d at position %d is outside the vocabulary [0, %d)", ErrInvalid, t, i, e.nVocab)
		}
	}
	for _, t := range r.StopTokens {
		if t < 0 || int(t) >= e.nVocab {
			return nil, fmt.Errorf("%w: stop token %d is outside the vocabulary [0, %d)", ErrInvalid, t, e.nVocab)
		}
	}
	if r.MaxTokens < 0 {
		return nil, fmt.Errorf("%w: max_tokens %d, want >= 0 (0 = up to the context length)", ErrInvalid, r.MaxTokens)
	}
	maxTok := r.MaxTokens
	if maxTok == 0 {
		maxTok = e.cfg.CtxLen - n
		if maxTok <= 0 {
			return nil, fmt.Errorf("%w: prompt of %d tokens leaves no room in the context of %d", ErrTooLong, n, e.cfg.CtxLen)
		}
	}
	if n+maxTok > e.cfg.CtxLen {
		return nil, fmt.Errorf("%w: prompt %d + max_tokens %d = %d tokens exceed the context length %d", ErrTooLong, n, maxTok, n+maxTok, e.cfg.CtxLen)
	}
	if n+maxTok > e.poolToks {
		return nil, fmt.Errorf("%w: prompt %d + max_tokens %d = %d tokens exceed the KV cache of %d tokens", ErrTooLong, n, maxTok, n+maxTok, e.poolToks)
	}
	p := r.Params
	p.Logprobs = p.Logprobs || r.Logprobs
	p.TopLogprobs = max(p.TopLogprobs, r.TopLogprobs)
	smp, err := sample.New(p, e.nVocab)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for _, t := range r.Prompt {
		if err := smp.Accept(t); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	req := &request{
		nPrompt:    n,
		maxTokens:  maxTok,
		ignoreEOS:  r.IgnoreEOS,
		pureGreedy: isPureGreedy(p),
		stopToks:   append([]int32(nil), r.StopTokens...),
		tokens:     make([]int32, n, n+min(maxTok, 256)), // grows past 256 if need be
		sampler:    smp,
		dec:        e.tok.NewStreamDecoder(),
		stop:       sample.NewStopMatcher(r.Stop),
		events:     make(chan Event, e.cfg.EventBuffer),
	}
	copy(req.tokens, r.Prompt)
	req.st = Status{State: StateQueued, PromptTokens: n, Created: time.Now()}
	return req, nil
}

// newID returns a random request id: unguessable, so that one client cannot
// cancel another's request by counting.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "req-" + hex.EncodeToString(b[:])
}

// Cancel cancels a queued or running request; it ends within one step with
// FinishReason "cancelled". Cancelling a finished request does nothing.
// Unknown (or forgotten) ids are ErrNotFound.
func (e *Engine) Cancel(id string) error {
	e.mu.Lock()
	r := e.active[id]
	_, done := e.history.get(id)
	e.mu.Unlock()
	switch {
	case r != nil:
		r.cancelled.Store(true)
		e.wakeup()
		return nil
	case done:
		return nil
	}
	return fmt.Errorf("engine: cancel %q: %w", id, ErrNotFound)
}

// Status returns a snapshot of a request: running ones and the last
// Config.StatusHistory finished ones.
func (e *Engine) Status(id string) (Status, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.active[id]; ok {
		return r.st, true
	}
	return e.history.get(id)
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snap
}

// snapshotLocked refreshes the published stats from the scheduler's
// counters. The caller holds e.mu and is the scheduler (or no scheduler
// runs).
func (e *Engine) snapshotLocked() {
	s := &e.s
	ks := e.kv.Stats()
	e.snap = Stats{
		Running:          len(s.running),
		Waiting:          len(s.waiting) + len(e.inbox),
		KVBlocksTotal:    ks.Blocks,
		KVBlocksUsed:     ks.Used,
		KVBlocksCached:   ks.Cached,
		KVBlocksFree:     ks.Free,
		BlockSize:        ks.BlockSize,
		PrefixHitTokens:  ks.Hits,
		PrefixMissTokens: ks.Misses,
		Steps:            s.steps,
		LastBatchTokens:  s.lastTokens,
		LastBatchSeqs:    s.lastSeqs,
		PromptTokens:     s.promptTokens,
		GeneratedTokens:  s.generated,
		ComputedTokens:   s.computed,
		Preemptions:      s.preemptions,
		Finished:         s.nFinished,
		Cancelled:        s.nCancelled,
		Failed:           s.nFailed,
	}
}
