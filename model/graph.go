package model

import (
	"os"
	"strconv"

	"github.com/rocmforge/rocmforge/compute"
)

// defaultGraphTokens is the largest step (in tokens) that goes through a
// backend's graph steps: decode, batched decode of up to 64 sequences and
// small batches, where launch cost rules (a 64-sequence 7B step is ~1000
// launches, 5-6 ms of host time op by op). Larger steps (prefill) launch op
// by op; their kernels are long enough.
const defaultGraphTokens = 64

// graphTokensFromEnv is defaultGraphTokens, or ROCMFORGE_GRAPH_TOKENS when
// it is a number >= 0 (for A/B timing; 0 sends every step op by op).
func graphTokensFromEnv() int {
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GRAPH_TOKENS")); err == nil && v >= 0 {
		return v
	}
	return defaultGraphTokens
}

// stepGrapher is implemented by backends that can record the ops of a
// forward step once and replay them (the CUDA backend's graphs). fn issues
// the step's ops on the backend it is given; the key must fix everything
// about a step but the contents of its index arrays.
type stepGrapher interface {
	GraphStep(key any, fn func(compute.Backend) error) error
	DropGraphs()
}

// stepKey is what a recorded step is bound to: the model and cache (their
// tensors' addresses), the scratch buffers' generation, and the batch's
// shape. The token ids, positions, slots and block tables are data.
type stepKey struct {
	m             *Model
	c             *Cache
	gen           int
	n, nOut, nSeq int
	inOrder       bool
}

// stepRun is the step GraphStep records: forwardOps on the batch and cache
// of the current call, reached through a method value made once, so that a
// step allocates no closure.
type stepRun struct {
	m *Model
	b *Batch
	c *Cache
}

func (r *stepRun) ops(be compute.Backend) error { return r.m.forwardOps(be, r.b, r.c) }

// graphStep runs a step of shape key through g without allocating: the key
// is boxed once per shape (GraphStep takes an any) and the step function
// is the model's stepRun.
func (m *Model) graphStep(g stepGrapher, key stepKey, b *Batch, c *Cache) error {
	if m.runFn == nil {
		m.run.m = m
		m.runFn = m.run.ops
	}
	m.run.b, m.run.c = b, c
	boxed, ok := m.stepKeys[key]
	if !ok {
		if m.stepKeys == nil || len(m.stepKeys) >= 4096 {
			m.stepKeys = map[stepKey]any{}
		}
		boxed = key
		m.stepKeys[key] = boxed
	}
	err := g.GraphStep(boxed, m.runFn)
	m.run.b, m.run.c = nil, nil
	return err
}

// dropGraphs forgets the backend's recorded steps, whose tensors are about
// to go away.
func (m *Model) dropGraphs() {
	clear(m.stepKeys)
	if g, ok := m.b.(stepGrapher); ok {
		g.DropGraphs()
	}
}

// decodeBuckets are the sizes decode batches are padded up to, so that a
// server whose batch size wanders captures at most one graph per bucket
// instead of one per size (and stays under the backend's graph limit, past
// which every graph is dropped and recaptured). Small batches are their own
// bucket: there a padded row costs a noticeable share of the step.
var decodeBuckets = []int{1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 40, 48, 56, 64}

// maxDecodePad is the most padding rows a bucket adds (the widest gap
// between decodeBuckets, less one): the cache's spare blocks hold that many
// slots.
const maxDecodePad = 7

// decodeBucket is the smallest bucket that holds n rows, or n when none
// does or the bucket would exceed limit.
func decodeBucket(n, limit int) int {
	for _, b := range decodeBuckets {
		if b >= n {
			if b > limit {
				return n
			}
			return b
		}
	}
	return n
}

// padDecode returns b padded to its decode bucket: extra one-row sequences
// that write the cache's spare blocks and attend only to what they wrote,
// each an output after the real ones. Only decode batches are padded (one
// row per sequence, every row an output, in order), and only for a cache
// with a spare block; otherwise b itself is returned. The padded batch
// lives in the model's buffers until the next call.
func (m *Model) padDecode(b *Batch, c *Cache) *Batch {
	n := len(b.Tokens)
	if len(c.spareTables) == 0 || len(b.Seqs) != n || len(b.Outputs) != n {
		return b
	}
	nb := decodeBucket(n, m.graphTokens)
	if nb == n {
		return b
	}
	for i, sq := range b.Seqs {
		if sq.QStart != i || sq.QLen != 1 || b.Outputs[i] != i {
			return b
		}
	}
	p := &m.pad
	p.Tokens = append(p.Tokens[:0], b.Tokens...)
	p.Positions = append(p.Positions[:0], b.Positions...)
	p.Slots = append(p.Slots[:0], b.Slots...)
	p.Seqs = append(p.Seqs[:0], b.Seqs...)
	p.Outputs = append(p.Outputs[:0], b.Outputs...)
	for j := range nb - n {
		// Padding row j writes token 0 at position j%BlockSize of spare
		// block j/BlockSize and attends to that block's rows up to it,
		// all written by this step's padding rows: finite, deterministic,
		// and no slot written twice.
		i, pos := n+j, j%c.BlockSize
		blk := c.spareTables[j/c.BlockSize : j/c.BlockSize+1]
		p.Tokens = append(p.Tokens, 0)
		p.Positions = append(p.Positions, int32(pos))
		p.Slots = append(p.Slots, blk[0]*int32(c.BlockSize)+int32(pos))
		p.Seqs = append(p.Seqs, compute.SeqAttn{QStart: i, QLen: 1, CtxLen: pos + 1, Blocks: blk})
		p.Outputs = append(p.Outputs, i)
	}
	return p
}
