package model

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// sessionBlockSize is the block size of a Session's cache; one sequence
// owns every block, so the size only sets the rounding of the allocation.
const sessionBlockSize = 16

// Session runs one sequence through a model for callers that do not batch
// (tools, tests): it owns a cache of nCtx positions and feeds each Eval's
// tokens at the next positions.
type Session struct {
	m      *Model
	c      *Cache
	nCtx   int
	n      int // tokens evaluated so far
	blocks []int32
	batch  Batch
	logits []float32
	id     [1]int32 // EvalArgmax's result (a local one escapes: an allocation a token)
}

// NewSession makes a session with room for nCtx tokens (the model's training
// context when nCtx <= 0).
func NewSession(m *Model, nCtx int) (*Session, error) {
	return NewSessionType(m, nCtx, ggml.F32)
}

// NewSessionType is NewSession with a cache of KV type t (F32, F16 or
// Q8_0; see NewCacheType).
func NewSessionType(m *Model, nCtx int, t ggml.Type) (*Session, error) {
	if nCtx <= 0 {
		nCtx = m.HParams.NCtxTrain
	}
	nBlocks := (nCtx + sessionBlockSize - 1) / sessionBlockSize
	c, err := NewCacheType(m.b, m.HParams, nBlocks, sessionBlockSize, t)
	if err != nil {
		return nil, err
	}
	s := &Session{m: m, c: c, nCtx: nCtx, blocks: make([]int32, nBlocks)}
	for i := range s.blocks {
		s.blocks[i] = int32(i)
	}
	return s, nil
}

// Len is the number of tokens evaluated so far (the next position).
func (s *Session) Len() int { return s.n }

// Ctx is the session's context size.
func (s *Session) Ctx() int { return s.nCtx }

// Reset forgets every token, keeping the cache allocation.
func (s *Session) Reset() { s.n = 0 }

// Close frees the session's cache.
func (s *Session) Close() { s.c.Free() }

// Eval evaluates tokens at the next positions and returns the logits of the
// last one ([n_vocab]). The slice is reused by the next call.
func (s *Session) Eval(tokens []int32) ([]float32, error) {
	return s.eval(tokens, false)
}

// EvalAll is Eval returning the logits of every token ([len(tokens), n_vocab]
// row-major). The slice is reused by the next call.
func (s *Session) EvalAll(tokens []int32) ([]float32, error) {
	return s.eval(tokens, true)
}

// EvalArgmax is Eval for greedy decoding: it returns the index of the last
// token's largest logit (compute.ArgmaxRow's rule) without copying the
// logits to the host where the backend can find it itself.
func (s *Session) EvalArgmax(tokens []int32) (int32, error) {
	if err := s.prepare(tokens, false); err != nil {
		return -1, err
	}
	if err := s.m.ForwardArgmax(&s.batch, s.c, s.id[:]); err != nil {
		return -1, err
	}
	s.n += len(tokens)
	return s.id[0], nil
}

func (s *Session) eval(tokens []int32, all bool) ([]float32, error) {
	if err := s.prepare(tokens, all); err != nil {
		return nil, err
	}
	need := len(s.batch.Outputs) * s.m.HParams.NVocab
	if cap(s.logits) < need {
		s.logits = make([]float32, need)
	}
	s.logits = s.logits[:need]
	if err := s.m.Forward(&s.batch, s.c, s.logits); err != nil {
		return nil, err
	}
	s.n += len(tokens)
	return s.logits, nil
}

// prepare fills s.batch for tokens at the next positions (the last one's
// logits wanted, or all of them).
func (s *Session) prepare(tokens []int32, all bool) error {
	n := len(tokens)
	if n == 0 {
		return fmt.Errorf("model: session: no tokens to evaluate")
	}
	if s.n+n > s.nCtx {
		return fmt.Errorf("model: session: %d tokens after %d would exceed the context of %d", n, s.n, s.nCtx)
	}
	b := &s.batch
	b.Tokens = tokens
	b.Positions = b.Positions[:0]
	b.Slots = b.Slots[:0]
	for i := range n {
		// Blocks are 0..k in order, so a position is its own slot.
		p := int32(s.n + i)
		b.Positions = append(b.Positions, p)
		b.Slots = append(b.Slots, p)
	}
	ctx := s.n + n
	b.Seqs = append(b.Seqs[:0], compute.SeqAttn{
		QStart: 0, QLen: n, CtxLen: ctx,
		Blocks: s.blocks[:(ctx+sessionBlockSize-1)/sessionBlockSize],
	})
	b.Outputs = b.Outputs[:0]
	if all {
		for i := range n {
			b.Outputs = append(b.Outputs, i)
		}
	} else {
		b.Outputs = append(b.Outputs, n-1)
	}
	return nil
}
