package model

import (
	"fmt"
	"math"

	"github.com/rocmforge/rocmforge/compute"
)

// Batch is one forward step: the new tokens of one or more sequences,
// flattened into rows.
type Batch struct {
	Tokens    []int32 // token id of each row
	Positions []int32 // absolute position of each row in its sequence
	// Slots is the KV-cache slot each row's key and value are written to;
	// it must be the slot its sequence's block table gives for its position.
	Slots []int32
	// Seqs describes each sequence: its rows (in order, disjoint, covering
	// every row), its context length after this step, and its block table.
	Seqs []compute.SeqAttn
	// Outputs are the rows whose logits are wanted, in the order they are
	// written to Forward's logits.
	Outputs []int
}

// Forward runs the model on a batch. It writes each row's keys and values
// into c, attends over each sequence's cached context, and fills logits
// ([len(b.Outputs), n_vocab], row-major) for the rows b.Outputs names.
func (m *Model) Forward(b *Batch, c *Cache, logits []float32) error {
	if err := m.checkBatch(b, c, len(logits)); err != nil {
		return err
	}
	if err := m.forward(b, c); err != nil || len(b.Outputs) == 0 {
		return err
	}
	if err := m.b.Read(&m.s.logits, logits); err != nil {
		return fmt.Errorf("model: read logits: %w", err)
	}
	return nil
}

// ForwardArgmax is Forward for greedy decoding: ids[i] is the index of the
// largest logit of output i (compute.ArgmaxRow's rule). A backend with
// compute.Argmaxer finds it where the logits are and copies back only the
// ids; otherwise the logits are read and searched here.
func (m *Model) ForwardArgmax(b *Batch, c *Cache, ids []int32) error {
	if len(ids) != len(b.Outputs) {
		return fmt.Errorf("model: forward: %d ids for %d outputs", len(ids), len(b.Outputs))
	}
	if err := m.checkBatch(b, c, len(b.Outputs)*m.HParams.NVocab); err != nil {
		return err
	}
	if err := m.forward(b, c); err != nil || len(b.Outputs) == 0 {
		return err
	}
	if a, ok := m.b.(compute.Argmaxer); ok {
		if err := a.ArgmaxRows(&m.s.logits, ids); err != nil {
			return fmt.Errorf("model: argmax: %w", err)
		}
		return nil
	}
	nv := m.HParams.NVocab
	host := make([]float32, len(ids)*nv) // the slow path: no Argmaxer
	if err := m.b.Read(&m.s.logits, host); err != nil {
		return fmt.Errorf("model: read logits: %w", err)
	}
	for i := range ids {
		ids[i] = compute.ArgmaxRow(host[i*nv : (i+1)*nv])
	}
	return nil
}

// forward runs a checked batch up to the logits, left on the backend in
// m.s.logits (one row per output of b).
func (m *Model) forward(b *Batch, c *Cache) error {
	s := &m.s
	g, graphs := m.b.(stepGrapher)
	graphs = graphs && len(b.Tokens) <= m.graphTokens
	nOut := len(b.Outputs)
	if graphs {
		if pb := m.padDecode(b, c); pb != b {
			// A decode batch padded to its bucket: the scratch holds the
			// padded rows, and the logits view is cut back to the real
			// outputs after the step (the next ensure views it again).
			b = pb
			defer func() {
				view(&s.logits, s.logitsBuf, nOut, m.HParams.NVocab)
				s.n, s.m = -1, -1
			}()
		}
	}
	n := len(b.Tokens)
	if err := s.ensure(m, n, len(b.Outputs)); err != nil {
		return err
	}
	// Steps of a few tokens (decode) go through the backend's graph steps
	// when it has them: the ops are recorded once per step shape and
	// replayed with one launch.
	if graphs {
		key := stepKey{m: m, c: c, gen: s.gen, n: n, nOut: len(b.Outputs), nSeq: len(b.Seqs),
			inOrder: allRowsInOrder(b.Outputs, n)}
		return m.graphStep(g, key, b, c)
	}
	return m.forwardOps(m.b, b, c)
}

// forwardOps issues the ops of a forward step on be (the model's backend
// or a view of it that records the step), up to the logits, which it does
// not read.
func (m *Model) forwardOps(be compute.Backend, b *Batch, c *Cache) error {
	n := len(b.Tokens)
	s := &m.s
	hp := &m.HParams
	// The model's ops value, reset: a fresh one per step would be a heap
	// allocation (its methods take it by pointer).
	o := &m.ops
	*o = ops{b: be, layer: -1}
	o.mm, _ = be.(compute.MultiMatMuler)
	o.rkv, _ = be.(compute.RoPEKVWriter)

	// Token (and, for gpt2, position) embeddings.
	o.embedding(&s.x, m.tokEmbd, b.Tokens)
	if m.arch.embedScale {
		o.scale(&s.x, float32(math.Sqrt(float64(hp.NEmbd))))
	}
	if m.posEmbd != nil {
		o.embedding(&s.xn, m.posEmbd, b.Positions)
		o.add(&s.x, &s.x, &s.xn)
	}

	for il := range m.layers {
		ly := &m.layers[il]
		o.layer = il

		// x += attention(norm(x)). Past the first layer, the previous
		// layer's last residual add already normed x into xn.
		if il == 0 {
			m.norm(o, &s.xn, &s.x, ly.attnNorm, ly.attnNormB)
		}
		m.attention(o, ly, il, b, c.Layers[il])
		if ly.postAttnNorm != nil {
			o.rmsNorm(&s.o, &s.o, ly.postAttnNorm, hp.NormEps)
		}
		m.addNorm(o, &s.x, &s.o, &s.xn, ly.ffnNorm, ly.ffnNormB)

		// x += ffn(norm(x)), and the next layer's norm.
		m.feedForward(o, ly)
		if ly.postFFNNorm != nil {
			o.rmsNorm(&s.down, &s.down, ly.postFFNNorm, hp.NormEps)
		}
		if il+1 < len(m.layers) {
			next := &m.layers[il+1]
			m.addNorm(o, &s.x, &s.down, &s.xn, next.attnNorm, next.attnNormB)
		} else {
			o.add(&s.x, &s.x, &s.down)
		}
	}
	o.layer = -1

	if len(b.Outputs) == 0 {
		return o.err
	}
	// Logits, for the wanted rows only. The residual stream is not needed
	// after the last layer, so it is normalised in place when every row is
	// wanted in order; otherwise the rows are gathered first.
	xo := &s.x
	if !allRowsInOrder(b.Outputs, n) {
		s.outIDs = s.outIDs[:0]
		for _, r := range b.Outputs {
			s.outIDs = append(s.outIDs, int32(r))
		}
		o.embedding(&s.xo, &s.x, s.outIDs)
		xo = &s.xo
	}
	m.norm(o, xo, xo, m.outputNorm, m.outputNormB)
	o.matmul(&s.logits, xo, m.output)
	if hp.FinalSoftcap > 0 {
		o.softcap(&s.logits, hp.FinalSoftcap)
	}
	return o.err
}

// addNorm is the residual add x += a followed by the arch's norm of x into
// dst: one op where the backend fuses the pair for RMSNorm.
func (m *Model) addNorm(o *ops, x, a, dst, w, b *compute.Tensor) {
	if f, ok := o.b.(addRMSNormer); ok && m.arch.norm != normLayer {
		o.addRMSNorm(f, dst, x, a, w, m.HParams.NormEps)
		return
	}
	o.add(x, x, a)
	m.norm(o, dst, x, w, b)
}

// norm is the arch's normalisation: RMSNorm, or LayerNorm with bias.
func (m *Model) norm(o *ops, dst, x, w, b *compute.Tensor) {
	if m.arch.norm == normLayer {
		o.layerNorm(dst, x, w, b, m.HParams.NormEps)
	} else {
		o.rmsNorm(dst, x, w, m.HParams.NormEps)
	}
}

// attention computes s.o = wo · attention(q, k, v) + bo from s.xn, after
// writing this step's keys and values into the layer's pool.
func (m *Model) attention(o *ops, ly *layer, il int, b *Batch, pool compute.KVPool) {
	s, hp := &m.s, &m.HParams
	qd, kd, vd := hp.QDim(), hp.KDim(), hp.VDim()

	if ly.wqkv != nil {
		o.matmul(&s.qkv, &s.xn, ly.wqkv)
		o.bias(&s.qkv, ly.bqkv)
		o.copyCols(&s.q, &s.qkv, 0, 0, qd)
		o.copyCols(&s.k, &s.qkv, 0, qd, kd)
		o.copyCols(&s.v, &s.qkv, 0, qd+kd, vd)
	} else {
		o.matmulMulti(&s.xn, &s.q, ly.wq, &s.k, ly.wk, &s.v, ly.wv)
		o.bias(&s.q, ly.bq)
		o.bias(&s.k, ly.bk)
		o.bias(&s.v, ly.bv)
	}
	if ly.qNorm != nil {
		o.rmsNorm(&s.qHeads, &s.qHeads, ly.qNorm, hp.NormEps)
		o.rmsNorm(&s.kHeads, &s.kHeads, ly.kNorm, hp.NormEps)
	}
	if m.arch.rope != ropeNone {
		p := hp.RoPE(il, m.arch.computeRoPE())
		p.FreqFactors = m.ropeFreqs
		o.ropeKVWrite(&s.q3, &s.k3, &s.k, &s.v, b.Positions, p, pool, b.Slots)
	} else {
		o.kvWrite(pool, &s.k, &s.v, b.Slots)
	}
	o.attention(&s.att, &s.q, pool, b.Positions, b.Seqs, compute.AttnParams{
		NHead:    hp.NHead,
		NKVHead:  hp.NHeadKV,
		HeadDim:  hp.HeadDimK,
		HeadDimV: hp.HeadDimV,
		Scale:    hp.AttnScale,
		Causal:   true,
		Window:   hp.Window(il),
		Softcap:  hp.AttnSoftcap,
	})
	o.matmul(&s.o, &s.att, ly.wo)
	o.bias(&s.o, ly.bo)
}

// feedForward computes s.down = ffn(s.xn).
func (m *Model) feedForward(o *ops, ly *layer) {
	s, hp := &m.s, &m.HParams
	if m.arch.ffn == ffnGELU {
		o.matmul(&s.up, &s.xn, ly.wUp)
		o.bias(&s.up, ly.bUp)
		o.gelu(&s.up)
		o.matmul(&s.down, &s.up, ly.wDown)
		o.bias(&s.down, ly.bDown)
		return
	}
	if ly.wGateUp != nil {
		o.matmul(&s.gateUp, &s.xn, ly.wGateUp)
		o.copyCols(&s.gate, &s.gateUp, 0, 0, hp.NFF)
		o.copyCols(&s.up, &s.gateUp, 0, hp.NFF, hp.NFF)
	} else {
		o.matmulMulti(&s.xn, &s.gate, ly.wGate, &s.up, ly.wUp)
		o.bias(&s.gate, ly.bGate)
		o.bias(&s.up, ly.bUp)
	}
	if m.arch.ffn == ffnGeGLU {
		o.geGLU(&s.act, &s.gate, &s.up)
	} else {
		o.swiGLU(&s.act, &s.gate, &s.up)
	}
	o.matmul(&s.down, &s.act, ly.wDown)
	o.bias(&s.down, ly.bDown)
}

func allRowsInOrder(outputs []int, n int) bool {
	if len(outputs) != n {
		return false
	}
	for i, r := range outputs {
		if r != i {
			return false
		}
	}
	return true
}

// checkBatch validates a batch against the model and the cache, so that a
// bad batch is an error naming the bad value rather than a wrong answer.
func (m *Model) checkBatch(b *Batch, c *Cache, nLogits int) error {
	hp := &m.HParams
	n := len(b.Tokens)
	if n == 0 {
		return fmt.Errorf("model: forward: empty batch")
	}
	if len(b.Positions) != n || len(b.Slots) != n {
		return fmt.Errorf("model: forward: %d tokens but %d positions and %d slots", n, len(b.Positions), len(b.Slots))
	}
	if c == nil || len(c.Layers) != hp.NLayer {
		return fmt.Errorf("model: forward: cache is nil or not made for %d layers", hp.NLayer)
	}
	if p := c.Layers[0]; p.K.Cols() != hp.KDim() || p.V.Cols() != hp.VDim() {
		return fmt.Errorf("model: forward: cache rows are K %d, V %d wide but the model needs %d, %d", p.K.Cols(), p.V.Cols(), hp.KDim(), hp.VDim())
	}
	if want := len(b.Outputs) * hp.NVocab; nLogits != want {
		return fmt.Errorf("model: forward: logits holds %d floats but %d outputs × n_vocab %d need %d", nLogits, len(b.Outputs), hp.NVocab, want)
	}
	for i, t := range b.Tokens {
		if t < 0 || int(t) >= hp.NVocab {
			return fmt.Errorf("model: forward: token %d at row %d is outside the vocabulary [0, %d)", t, i, hp.NVocab)
		}
	}
	for i, p := range b.Positions {
		if p < 0 {
			return fmt.Errorf("model: forward: position %d at row %d is negative", p, i)
		}
		if m.posEmbd != nil && int(p) >= hp.NCtxTrain {
			return fmt.Errorf("model: forward: position %d at row %d is beyond the %d learned positions of %s", p, i, hp.NCtxTrain, hp.Arch)
		}
	}
	for i, r := range b.Outputs {
		if r < 0 || r >= n {
			return fmt.Errorf("model: forward: output %d names row %d of a %d-row batch", i, r, n)
		}
	}
	next := 0
	for si, sq := range b.Seqs {
		if sq.QStart != next || sq.QLen <= 0 {
			return fmt.Errorf("model: forward: sequence %d has rows [%d, %d) but must start at row %d and be non-empty", si, sq.QStart, sq.QStart+sq.QLen, next)
		}
		next = sq.QStart + sq.QLen
		if next > n {
			return fmt.Errorf("model: forward: sequence %d has rows [%d, %d) beyond the %d-row batch", si, sq.QStart, next, n)
		}
		if sq.CtxLen > len(sq.Blocks)*c.BlockSize {
			return fmt.Errorf("model: forward: sequence %d has context %d but %d blocks of %d slots", si, sq.CtxLen, len(sq.Blocks), c.BlockSize)
		}
		for _, blk := range sq.Blocks {
			if blk < 0 || int(blk) >= c.NBlocks {
				return fmt.Errorf("model: forward: sequence %d names block %d of a %d-block cache", si, blk, c.NBlocks)
			}
		}
		for i := sq.QStart; i < next; i++ {
			p := int(b.Positions[i])
			if p >= sq.CtxLen {
				return fmt.Errorf("model: forward: row %d has position %d but sequence %d's context is %d", i, p, si, sq.CtxLen)
			}
			slot := int(sq.Blocks[p/c.BlockSize])*c.BlockSize + p%c.BlockSize
			if int(b.Slots[i]) != slot {
				return fmt.Errorf("model: forward: row %d (position %d) has slot %d but sequence %d's block table puts it at %d", i, p, b.Slots[i], si, slot)
			}
		}
	}
	if next != n {
		return fmt.Errorf("model: forward: sequences cover %d of %d rows", next, n)
	}
	return nil
}
