package model

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// scratch holds the activation tensors of a forward pass. They are
// allocated once for the largest batch seen and reused: a step of n tokens
// works on views of their first n rows, so steady-state steps allocate
// nothing here.
type scratch struct {
	capRows, capOut int // rows the buffers hold
	gen             int // counts allocations: recorded steps name it
	n, m            int // rows of the current views (tokens, outputs)

	// Buffers (capRows or capOut rows) and the views the forward pass uses.
	bufs map[*compute.Tensor]bool

	xBuf, xnBuf, qBuf, kBuf, vBuf, qkvBuf, attBuf, oBuf *compute.Tensor
	gateBuf, upBuf, gateUpBuf, actBuf, downBuf          *compute.Tensor
	xoBuf, logitsBuf                                    *compute.Tensor

	x, xn      compute.Tensor // [n, n_embd] residual stream, normed input
	q, k, v    compute.Tensor // [n, heads*head_dim]
	qHeads     compute.Tensor // q as [n*n_head, head_dim] (per-head norm)
	kHeads     compute.Tensor // k as [n*n_head_kv, head_dim]
	q3, k3     compute.Tensor // q, k as [n, heads, head_dim] (RoPE)
	qkv        compute.Tensor // [n, q+k+v] fused projection
	att        compute.Tensor // [n, n_head*head_dim_v] attention output
	o          compute.Tensor // [n, n_embd] attention block output
	gate, up   compute.Tensor // [n, n_ff]
	gateUp     compute.Tensor // [n, 2*n_ff] fused projection
	act        compute.Tensor // [n, n_ff] activated
	down       compute.Tensor // [n, n_embd] feed-forward block output
	xo         compute.Tensor // [m, n_embd] rows whose logits are wanted
	logits     compute.Tensor // [m, n_vocab]
	outIDs     []int32        // Batch.Outputs as int32 (Embedding's row ids)
	needQKV    bool           // some layer has a fused attn_qkv
	needGateUp bool           // some layer has a fused ffn_up
}

// ensure makes the views cover n token rows and m output rows, growing the
// buffers when a batch is larger than any before.
func (s *scratch) ensure(m *Model, n, nOut int) error {
	if n > s.capRows || nOut > s.capOut {
		gen := s.gen + 1
		m.dropGraphs()
		s.free(m.b)
		s.gen = gen
		if err := s.alloc(m, max(n, s.capRows), max(nOut, s.capOut)); err != nil {
			s.free(m.b)
			return err
		}
		s.n, s.m = -1, -1
	}
	if n == s.n && nOut == s.m {
		return nil
	}
	hp := &m.HParams
	view(&s.x, s.xBuf, n, hp.NEmbd)
	view(&s.xn, s.xnBuf, n, hp.NEmbd)
	view(&s.q, s.qBuf, n, hp.QDim())
	view(&s.k, s.kBuf, n, hp.KDim())
	view(&s.v, s.vBuf, n, hp.VDim())
	view(&s.qHeads, s.qBuf, n*hp.NHead, hp.HeadDimK)
	view(&s.kHeads, s.kBuf, n*hp.NHeadKV, hp.HeadDimK)
	view(&s.q3, s.qBuf, n, hp.NHead, hp.HeadDimK)
	view(&s.k3, s.kBuf, n, hp.NHeadKV, hp.HeadDimK)
	if s.needQKV {
		view(&s.qkv, s.qkvBuf, n, hp.QDim()+hp.KDim()+hp.VDim())
	}
	view(&s.att, s.attBuf, n, hp.NHead*hp.HeadDimV)
	view(&s.o, s.oBuf, n, hp.NEmbd)
	view(&s.gate, s.gateBuf, n, hp.NFF)
	view(&s.up, s.upBuf, n, hp.NFF)
	if s.needGateUp {
		view(&s.gateUp, s.gateUpBuf, n, 2*hp.NFF)
	}
	view(&s.act, s.actBuf, n, hp.NFF)
	view(&s.down, s.downBuf, n, hp.NEmbd)
	if nOut > 0 {
		view(&s.xo, s.xoBuf, nOut, hp.NEmbd)
		view(&s.logits, s.logitsBuf, nOut, hp.NVocab)
	}
	s.n, s.m = n, nOut
	return nil
}

func (s *scratch) alloc(m *Model, rows, outRows int) error {
	hp := &m.HParams
	s.bufs = map[*compute.Tensor]bool{}
	s.capRows, s.capOut = rows, outRows
	var err error
	f32 := func(name string, shape ...int) *compute.Tensor {
		if err != nil {
			return nil
		}
		var t *compute.Tensor
		t, err = m.b.NewTensor(name, ggml.F32, shape...)
		if err != nil {
			err = fmt.Errorf("model: scratch %s: %w", name, err)
			return nil
		}
		s.bufs[t] = true
		return t
	}
	s.needQKV, s.needGateUp = false, false
	for i := range m.layers {
		s.needQKV = s.needQKV || m.layers[i].wqkv != nil
		s.needGateUp = s.needGateUp || m.layers[i].wGateUp != nil
	}
	s.xBuf = f32("x", rows, hp.NEmbd)
	s.xnBuf = f32("x_norm", rows, hp.NEmbd)
	s.qBuf = f32("q", rows, hp.QDim())
	s.kBuf = f32("k", rows, hp.KDim())
	s.vBuf = f32("v", rows, hp.VDim())
	if s.needQKV {
		s.qkvBuf = f32("qkv", rows, hp.QDim()+hp.KDim()+hp.VDim())
	}
	s.attBuf = f32("attn", rows, hp.NHead*hp.HeadDimV)
	s.oBuf = f32("attn_out", rows, hp.NEmbd)
	s.gateBuf = f32("ffn_gate", rows, hp.NFF)
	s.upBuf = f32("ffn_up", rows, hp.NFF)
	if s.needGateUp {
		s.gateUpBuf = f32("ffn_gate_up", rows, 2*hp.NFF)
	}
	s.actBuf = f32("ffn_act", rows, hp.NFF)
	s.downBuf = f32("ffn_out", rows, hp.NEmbd)
	if outRows > 0 {
		s.xoBuf = f32("out_rows", outRows, hp.NEmbd)
		s.logitsBuf = f32("logits", outRows, hp.NVocab)
	}
	s.outIDs = make([]int32, 0, outRows)
	return err
}

func (s *scratch) free(b compute.Backend) {
	for t := range s.bufs {
		b.Free(t)
	}
	*s = scratch{}
}

// view points v at the first elements of buf under shape. It is a prefix
// view: the backend contract has no row-range view, and a host backend
// checks that storage length matches the shape, so the host slice is cut to
// size. v keeps its own Shape backing array so re-pointing allocates nothing.
func view(v *compute.Tensor, buf *compute.Tensor, shape ...int) {
	s := v.Shape[:0]
	*v = *buf
	v.Shape = append(s, shape...)
	n := v.Elems()
	if buf.F32 != nil {
		v.F32 = buf.F32[:n]
	}
}
