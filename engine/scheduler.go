package engine

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/sample"
)

// scheduler is the state of the scheduler goroutine: the only code that
// touches the model, the KV cache and the requests' generation state.
type scheduler struct {
	e *Engine

	running []*request // admitted, oldest first
	waiting []*request // not admitted: preempted ones at the front, then new ones in order
	backlog []*request // requests with events waiting for room in their channel

	stepNo    int64
	batch     model.Batch
	sched     []scheduled
	preempted []*request // in this step
	logits    []float32
	ids       []int32    // argmax ids of a greedy step
	outReqs   []*request // the requests sampled in this step, in output order
	sampled   []sampled  // their sampling results
	cands     candidates // the best tokens of a step sampled from them (sampling.go)
	workers   int        // goroutines that sample a step's rows
	cases     []reflect.SelectCase
	caseReqs  []*request

	cost       costModel
	now        func() time.Time // the clock of step durations
	minPrefill int              // floor of the adaptive prefill cap (defaultMinPrefill; tests lower it)

	newlyAdmitted int // first admissions not yet taken off Engine.queued

	// Counters published in Stats.
	steps                          int64
	lastTokens, lastSeqs           int
	promptTokens, generated        int64
	computed, preemptions          int64
	nFinished, nCancelled, nFailed int64
}

// scheduled is one sequence's part of a step's batch.
type scheduled struct {
	r      *request
	n      int  // rows
	output bool // its last row's logits are sampled
}

func (s *scheduler) init(e *Engine) {
	s.e = e
	s.workers = samplingWorkers()
	s.cost = &stepCost{}
	s.now = time.Now
	s.minPrefill = max(defaultMinPrefill, e.cfg.BlockSize)
}

// loop is the scheduler goroutine.
func (s *scheduler) loop(ctx context.Context) {
	e := s.e
	defer close(e.loopDone)
	defer s.shutdown()
	for {
		if ctx.Err() != nil || e.abort.Load() {
			return
		}
		closing := s.intake()
		s.flushBacklog(time.Now())
		s.reap()
		if len(s.running) > 0 || len(s.waiting) > 0 {
			s.step()
			continue
		}
		if closing && len(s.backlog) == 0 {
			return
		}
		s.idle(ctx)
	}
}

// intake moves newly submitted requests to the end of the queue and reports
// whether the engine is closing.
func (s *scheduler) intake() (closing bool) {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	s.waiting = append(s.waiting, e.inbox...)
	clear(e.inbox)
	e.inbox = e.inbox[:0]
	return e.closed
}

// reap ends the requests that were cancelled.
func (s *scheduler) reap() {
	for i := len(s.running) - 1; i >= 0; i-- {
		if r := s.running[i]; r.cancelled.Load() {
			s.end(r, FinishCancelled, r.cancelErr, false)
		}
	}
	for i := len(s.waiting) - 1; i >= 0; i-- {
		if r := s.waiting[i]; r.cancelled.Load() {
			s.end(r, FinishCancelled, r.cancelErr, false)
		}
	}
}

// step runs one forward pass over every sequence that can make progress,
// then samples the sequences that reached the end of their known tokens.
func (s *scheduler) step() {
	e := s.e
	s.stepNo++
	b := &s.batch
	b.Tokens, b.Positions, b.Slots = b.Tokens[:0], b.Positions[:0], b.Slots[:0]
	b.Seqs, b.Outputs = b.Seqs[:0], b.Outputs[:0]
	clear(s.sched)
	s.sched = s.sched[:0]
	clear(s.preempted)
	s.preempted = s.preempted[:0]
	budget := e.cfg.MaxBatchTokens

	// 1. One row for each decoding sequence, oldest first; one that cannot
	// get a block preempts the newest running sequence (maybe itself).
	decodes := 0
	for i := 0; i < len(s.running) && budget > 0; i++ {
		r := s.running[i]
		if len(r.tokens)-r.computed != 1 {
			continue
		}
		if s.room(r, 1, true) == 1 {
			if s.schedule(r, 1) {
				budget--
				decodes++
			} else {
				i-- // r left the running list
			}
		}
	}
	// Prompt rows next to decodes are capped, so that the decoding
	// sequences do not wait for a whole budget of prefill.
	prefillCap := s.prefillCap(decodes, budget)
	prefill := prefillCap
	// 2. A chunk of each sequence still computing its prompt (or, after a
	// preemption, prompt and generated tokens).
	for i := 0; i < len(s.running) && prefill > 0; i++ {
		r := s.running[i]
		if r.stepNo == s.stepNo {
			continue
		}
		if n := s.room(r, min(len(r.tokens)-r.computed, prefill), false); n > 0 {
			if s.schedule(r, n) {
				prefill -= n
			} else {
				i--
			}
		}
	}
	// 3. Admissions, in queue order, while the first chunk fits.
	for prefill > 0 && len(s.waiting) > 0 && len(s.running) < e.cfg.MaxSeqs && e.kv.Available() > 0 {
		n, ok := s.admit(s.waiting[0], prefill)
		if !ok {
			break
		}
		prefill -= n
	}

	if len(b.Tokens) == 0 {
		// Every running sequence was preempted or stalled with nothing to
		// free: only a sequence larger than the pool gets here, which
		// Submit's checks rule out. Fail one rather than spin.
		var r *request
		if len(s.running) > 0 {
			r = s.running[0]
		} else if len(s.waiting) > 0 {
			r = s.waiting[0]
		}
		if r != nil {
			s.end(r, FinishError, fmt.Errorf("engine: request %s: %d tokens cannot be scheduled in a KV pool of %d blocks of %d",
				r.id, len(r.tokens), e.kv.Stats().Blocks, e.cfg.BlockSize), false)
		}
		s.publish()
		return
	}

	start := s.now()
	// Greedy steps: when every sequence sampled in this step only needs
	// the argmax of its logits, ask the model for the ids and leave the
	// logit rows where they are (on a device, n ints cross instead of n
	// vocabulary-sized rows).
	useArgmax := e.argmax != nil && len(b.Outputs) > 0
	for _, sc := range s.sched {
		if sc.output && !sc.r.pureGreedy {
			useArgmax = false
			break
		}
	}
	var logits []float32
	var err error
	topK := 0 // > 0: every sampled row needs only its best topK tokens
	if useArgmax {
		if cap(s.ids) < len(b.Outputs) {
			s.ids = make([]int32, len(b.Outputs))
		}
		s.ids = s.ids[:len(b.Outputs)]
		err = e.argmax.ForwardArgmax(b, e.cache, s.ids)
	} else if topK = s.candidatesK(); topK > 0 {
		err = s.cands.forward(e, b, topK)
	} else {
		need := len(b.Outputs) * e.nVocab
		if cap(s.logits) < need {
			s.logits = make([]float32, need)
		}
		logits = s.logits[:need]
		err = e.fwd.Forward(b, e.cache, logits)
	}
	if err != nil {
		err = fmt.Errorf("engine: forward pass of %d tokens in %d sequences: %w", len(b.Tokens), len(b.Seqs), err)
		e.cfg.Logger.Error("engine: step failed", "err", err)
		for _, sc := range s.sched {
			// Drop, not Free: blocks registered this step hold no K/V.
			s.end(sc.r, FinishError, err, true)
		}
		s.publish()
		return
	}
	s.steps++
	s.lastTokens, s.lastSeqs = len(b.Tokens), len(b.Seqs)
	s.computed += int64(len(b.Tokens))

	st := StepStats{Tokens: len(b.Tokens), Seqs: len(b.Seqs), DecodeSeqs: decodes, PrefillTokens: len(b.Tokens) - decodes,
		PrefillSeqs: len(b.Seqs) - decodes, PrefillCap: prefillCap, Outputs: len(b.Outputs), Argmax: useArgmax}
	if !useArgmax {
		// Sample every output row first (in parallel when there are
		// several), then apply the results in order.
		s.outReqs = s.outReqs[:0]
		for _, sc := range s.sched {
			if sc.output {
				s.outReqs = append(s.outReqs, sc.r)
			}
		}
		if cap(s.sampled) < len(s.outReqs) {
			s.sampled = make([]sampled, len(s.outReqs))
		}
		s.sampled = s.sampled[:len(s.outReqs)]
		if topK > 0 {
			s.cands.sample(s.outReqs, s.workers, s.sampled)
		} else {
			sampleRows(s.outReqs, logits, e.nVocab, s.workers, s.sampled)
		}
	}
	o := 0
	for _, sc := range s.sched {
		sc.r.computed += sc.n
		if !sc.output {
			continue
		}
		if useArgmax {
			s.nextGreedy(sc.r, s.ids[o])
		} else {
			s.next(sc.r, s.sampled[o])
		}
		o++
	}
	clear(s.outReqs) // no references to finished requests kept
	st.Duration = s.now().Sub(start)
	s.cost.observe(st.Tokens, st.Duration)
	if e.cfg.OnStep != nil {
		e.cfg.OnStep(st)
	}
	s.publish()
}

// room returns how many of want tokens of the running sequence r fit in
// the pool now. When none fit, it preempts the newest running sequence not
// yet in this step's batch, newer than r (or r itself if self), until some
// fit.
func (s *scheduler) room(r *request, want int, self bool) int {
	for {
		if n := s.fit(r, want); n > 0 {
			return n
		}
		var v *request
		for i := len(s.running) - 1; i >= 0; i-- {
			if c := s.running[i]; c.stepNo != s.stepNo {
				v = c
				break
			}
		}
		if v == nil || (v == r && !self) {
			return 0
		}
		s.preempt(v)
		if v == r {
			return 0
		}
	}
}

// fit returns the largest n <= want such that n more tokens of r's
// sequence fit in the pool.
func (s *scheduler) fit(r *request, want int) int {
	kv := s.e.kv
	avail := kv.Available()
	if need, err := kv.NeedBlocks(r.seq, want); err != nil || need <= avail {
		if err != nil {
			return 0
		}
		return want
	}
	lo, hi := 0, want // lo fits, hi does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if need, _ := kv.NeedBlocks(r.seq, mid); need <= avail {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// preempt releases a running sequence's blocks and puts it at the front of
// the queue; it is recomputed from its tokens when admitted again.
func (s *scheduler) preempt(r *request) {
	e := s.e
	// Free, not Drop: every token appended so far has been computed (only
	// sequences outside this step's batch are preempted), so its full
	// blocks stay useful in the prefix cache.
	_ = e.kv.Free(r.seq)
	r.hasSeq = false
	r.computed = 0
	if i := slices.Index(s.running, r); i >= 0 {
		s.running = slices.Delete(s.running, i, i+1)
	}
	s.waiting = slices.Insert(s.waiting, 0, r)
	s.preemptions++
	s.preempted = append(s.preempted, r)
	e.cfg.Logger.Debug("engine: preempted", "id", r.id, "tokens", len(r.tokens), "free_blocks", e.kv.Available())
}

// admit tries to start the first waiting request with a chunk of at most
// budget tokens after its prefix-cache match. It reports the chunk's size,
// or false (and changes nothing) when its blocks cannot be had now.
func (s *scheduler) admit(r *request, budget int) (int, bool) {
	e := s.e
	if err := e.kv.NewSeq(r.seq); err != nil {
		s.end(r, FinishError, fmt.Errorf("engine: request %s: %w", r.id, err), false)
		return 0, true
	}
	r.hasSeq = true
	cached, err := e.kv.MatchPrefix(r.seq, r.tokens)
	if err != nil {
		s.end(r, FinishError, fmt.Errorf("engine: request %s: %w", r.id, err), false)
		return 0, true
	}
	want := min(len(r.tokens)-cached, budget)
	if s.fit(r, want) < want {
		_ = e.kv.Free(r.seq)
		r.hasSeq = false
		return 0, false
	}
	s.waiting = slices.Delete(s.waiting, 0, 1)
	s.running = append(s.running, r)
	r.computed = cached
	if !r.admitted {
		r.admitted = true
		r.cached = cached
		s.newlyAdmitted++
		s.promptTokens += int64(r.nPrompt)
	}
	if !s.schedule(r, want) {
		return 0, true
	}
	return want, true
}

// schedule adds rows for r's next n tokens to the batch. On failure r is
// ended and false returned.
func (s *scheduler) schedule(r *request, n int) bool {
	e := s.e
	b := &s.batch
	start := len(b.Tokens)
	toks := r.tokens[r.computed : r.computed+n]
	slots, copies, err := e.kv.AppendSlots(b.Slots, r.seq, toks)
	if err != nil {
		s.end(r, FinishError, fmt.Errorf("engine: request %s: %w", r.id, err), false)
		return false
	}
	b.Slots = slots
	for _, c := range copies {
		if err := e.cache.CopyBlock(int(c.Src), int(c.Dst), c.Len); err != nil {
			b.Slots = b.Slots[:start]
			s.end(r, FinishError, fmt.Errorf("engine: request %s: copy-on-write: %w", r.id, err), true)
			return false
		}
	}
	b.Tokens = append(b.Tokens, toks...)
	for j := range n {
		b.Positions = append(b.Positions, int32(r.computed+j))
	}
	table, err := e.kv.BlockTable(r.seq)
	if err != nil { // cannot happen: the sequence was just appended to
		b.Tokens, b.Positions, b.Slots = b.Tokens[:start], b.Positions[:start], b.Slots[:start]
		s.end(r, FinishError, err, true)
		return false
	}
	b.Seqs = append(b.Seqs, compute.SeqAttn{QStart: start, QLen: n, CtxLen: r.computed + n, Blocks: table})
	out := r.computed+n == len(r.tokens)
	if out {
		b.Outputs = append(b.Outputs, start+n-1)
	}
	r.stepNo = s.stepNo
	s.sched = append(s.sched, scheduled{r: r, n: n, output: out})
	return true
}

// next emits r's sampled next token, or ends r when sampling failed.
func (s *scheduler) next(r *request, sr sampled) {
	res, err := sr.res, sr.err
	if err != nil {
		s.end(r, FinishError, fmt.Errorf("engine: request %s: sampling: %w", r.id, err), false)
		return
	}
	s.accept(r, res)
}

// nextGreedy takes the argmax id of a pure-greedy request's logits as its
// next token, which is what its sampler would pick from the logit row: the
// lowest index of the largest value, -Inf never. A row without any finite
// value (-1) fails the request as the sampler does.
//
// One difference is left: the sampler refuses a row holding NaN or +Inf (a
// broken forward pass) and fails the request, while an argmax skips NaN
// and may pick +Inf; the request then goes on with that token.
func (s *scheduler) nextGreedy(r *request, id int32) {
	if id < 0 || int(id) >= s.e.nVocab {
		err := sample.ErrNoCandidates
		if id >= 0 {
			err = fmt.Errorf("argmax id %d outside the vocabulary [0, %d)", id, s.e.nVocab)
		}
		s.end(r, FinishError, fmt.Errorf("engine: request %s: sampling: %w", r.id, err), false)
		return
	}
	s.accept(r, sample.Result{Token: id})
}

// accept emits the sampled token res.Token of r, or ends r when it is a
// stop token, a stop string completes or r has all its tokens.
func (s *scheduler) accept(r *request, res sample.Result) {
	tok := res.Token
	if r.isStopToken(s.e.tok.IsEOG(tok), tok) {
		s.end(r, FinishStop, nil, false)
		return
	}
	_ = r.sampler.Accept(tok) // tok is in the vocabulary: it was sampled from it
	r.tokens = append(r.tokens, tok)
	r.generated++
	s.generated++
	if r.generated == 1 {
		r.firstToken = time.Now() // published to Status under e.mu
	}
	text, stopped := r.stop.Push(r.dec.Add(tok))
	s.emit(r, Event{Token: tok, Text: text, Logprob: res.Logprob, Top: res.Top})
	switch {
	case stopped:
		s.end(r, FinishStop, nil, false)
	case r.generated >= r.maxTokens:
		s.end(r, FinishLength, nil, false)
	}
}

// end finishes a request: releases its blocks (Drop after a failed step),
// takes it off the running or waiting list, records its final status and
// emits its Done event.
func (s *scheduler) end(r *request, reason string, err error, drop bool) {
	if r.ended {
		return
	}
	e := s.e
	r.ended = true
	if r.hasSeq {
		if drop {
			_ = e.kv.Drop(r.seq)
		} else {
			_ = e.kv.Free(r.seq)
		}
		r.hasSeq = false
	}
	if i := slices.Index(s.running, r); i >= 0 {
		s.running = slices.Delete(s.running, i, i+1)
	} else if i := slices.Index(s.waiting, r); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
	}
	text := ""
	if reason == FinishStop || reason == FinishLength {
		emit, stopped := r.stop.Push(r.dec.Flush())
		text = emit
		if !stopped {
			text += r.stop.Flush()
		}
	}
	state := StateFinished
	switch reason {
	case FinishCancelled:
		state = StateCancelled
		s.nCancelled++
	case FinishError:
		state = StateFailed
		s.nFailed++
	default:
		s.nFinished++
	}
	e.mu.Lock()
	r.st.State = state
	r.st.Finished = time.Now()
	r.st.FinishReason = reason
	if err != nil {
		r.st.Error = err.Error()
	}
	r.st.GeneratedTokens = r.generated
	r.st.CachedTokens = r.cached
	r.st.FirstToken = r.firstToken
	delete(e.active, r.id)
	e.history.add(r.st)
	if !r.admitted {
		e.queued--
	}
	e.snapshotLocked()
	e.mu.Unlock()
	if r.stopCtx != nil {
		r.stopCtx()
	}
	s.emit(r, Event{Token: -1, Text: text, Done: true, FinishReason: reason, Err: err, Usage: r.usage()})
}

// publish makes this step's progress visible to Status and Stats.
func (s *scheduler) publish() {
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queued -= s.newlyAdmitted
	s.newlyAdmitted = 0
	for _, sc := range s.sched {
		r := sc.r
		if r.ended {
			continue
		}
		r.st.State = StateRunning
		r.st.GeneratedTokens = r.generated
		r.st.CachedTokens = r.cached
		r.st.FirstToken = r.firstToken
	}
	for _, r := range s.preempted {
		if !r.ended {
			r.st.State = StateQueued
		}
	}
	e.snapshotLocked()
}

// flushBacklog moves backlogged events into their channels, and cancels the
// requests whose reader has taken nothing for SlowReaderTimeout (forcing
// the Done event of those already ended).
func (s *scheduler) flushBacklog(now time.Time) {
	if len(s.backlog) == 0 {
		return
	}
	timeout := s.e.cfg.SlowReaderTimeout
	kept := s.backlog[:0]
	for _, r := range s.backlog {
		if r.flush() {
			r.outSince = now
		}
		if r.chanClosed || len(r.out) == 0 {
			r.inBacklog = false
			continue
		}
		if now.Sub(r.outSince) >= timeout {
			if r.ended {
				r.force()
				r.inBacklog = false
				continue
			}
			if !r.cancelled.Load() {
				r.cancelErr = fmt.Errorf("%w: %d events unread for %v", ErrSlowReader, len(r.out)+cap(r.events), timeout)
				r.cancelled.Store(true)
			}
		}
		kept = append(kept, r)
	}
	clear(s.backlog[len(kept):])
	s.backlog = kept
}

// idle waits for a wake-up, the end of ctx, room in a backlogged channel or
// a slow reader's deadline.
func (s *scheduler) idle(ctx context.Context) {
	e := s.e
	if len(s.backlog) == 0 {
		select {
		case <-e.wake:
		case <-ctx.Done():
		}
		return
	}
	// The set of channels is dynamic, hence reflect.Select; this path only
	// runs while the engine is idle and some reader lags behind.
	deadline := s.backlog[0].outSince
	for _, r := range s.backlog[1:] {
		if r.outSince.Before(deadline) {
			deadline = r.outSince
		}
	}
	timer := time.NewTimer(time.Until(deadline.Add(e.cfg.SlowReaderTimeout)))
	defer timer.Stop()
	s.cases = append(s.cases[:0],
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(e.wake)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
	s.caseReqs = s.caseReqs[:0]
	for _, r := range s.backlog {
		if len(r.out) == 0 || r.chanClosed {
			continue
		}
		s.cases = append(s.cases, reflect.SelectCase{Dir: reflect.SelectSend, Chan: reflect.ValueOf(r.events), Send: reflect.ValueOf(r.out[0])})
		s.caseReqs = append(s.caseReqs, r)
	}
	i, _, _ := reflect.Select(s.cases)
	if i >= 3 {
		r := s.caseReqs[i-3]
		r.sent()
		r.outSince = time.Now()
	}
	clear(s.cases)
	clear(s.caseReqs)
}

// shutdown cancels every request left, delivers every Done event and frees
// the KV cache. It runs on the scheduler goroutine as it exits, or in Close
// when no scheduler was started.
func (s *scheduler) shutdown() {
	e := s.e
	e.mu.Lock()
	e.closed = true
	s.waiting = append(s.waiting, e.inbox...)
	clear(e.inbox)
	e.inbox = nil
	e.mu.Unlock()
	for len(s.running) > 0 {
		s.end(s.running[len(s.running)-1], FinishCancelled, ErrClosed, false)
	}
	for len(s.waiting) > 0 {
		s.end(s.waiting[0], FinishCancelled, ErrClosed, false)
	}
	for _, r := range s.backlog {
		r.force()
		r.inBacklog = false
	}
	clear(s.backlog)
	s.backlog = nil
	e.cache.Free()
	e.mu.Lock()
	e.snapshotLocked()
	e.mu.Unlock()
}
