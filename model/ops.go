package model

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute"
)

// ops runs backend ops and keeps the first error, so the forward pass reads
// as a list of steps instead of a list of error checks. After an error every
// later op is skipped.
type ops struct {
	b     compute.Backend
	layer int // for error messages; -1 outside the blocks
	err   error
	mm    compute.MultiMatMuler // o.b's, when it has the capability
	rkv   compute.RoPEKVWriter  // likewise
	mmDst [3]*compute.Tensor    // matmulMulti's arguments (no allocation per call)
	mmW   [3]*compute.Tensor
}

func (o *ops) check(op string, err error) { o.checkW(op, nil, err) }

// checkW is check for ops with a weight, named in the error. The message is
// built only on failure: steps should not allocate.
func (o *ops) checkW(op string, w *compute.Tensor, err error) {
	if err == nil || o.err != nil {
		return
	}
	if w != nil {
		op += " " + w.Name
	}
	if o.layer >= 0 {
		o.err = fmt.Errorf("model: layer %d: %s: %w", o.layer, op, err)
	} else {
		o.err = fmt.Errorf("model: %s: %w", op, err)
	}
}

func (o *ops) embedding(dst, table *compute.Tensor, ids []int32) {
	if o.err == nil {
		o.check("embedding", o.b.Embedding(dst, table, ids))
	}
}

func (o *ops) matmul(dst, x, w *compute.Tensor) {
	if o.err == nil {
		o.checkW("matmul", w, o.b.MatMul(dst, x, w))
	}
}

// matmulMulti is dst[i] = x · w[i]ᵀ for two or three weights sharing x:
// one call where the backend offers it, else one MatMul each.
func (o *ops) matmulMulti(x *compute.Tensor, dw ...*compute.Tensor) {
	n := len(dw) / 2
	if o.err != nil {
		return
	}
	if o.mm == nil || n > len(o.mmW) {
		for i := range n {
			o.matmul(dw[2*i], x, dw[2*i+1])
		}
		return
	}
	for i := range n {
		o.mmDst[i], o.mmW[i] = dw[2*i], dw[2*i+1]
	}
	o.checkW("matmul", o.mmW[0], o.mm.MatMulMulti(o.mmDst[:n], x, o.mmW[:n]))
}

// bias adds b to every row of x; a nil b (no bias in the file) does nothing.
func (o *ops) bias(x, b *compute.Tensor) {
	if o.err == nil && b != nil {
		o.checkW("bias", b, o.b.AddBias(x, b))
	}
}

func (o *ops) rmsNorm(dst, x, w *compute.Tensor, eps float32) {
	if o.err == nil {
		o.check("rmsnorm", o.b.RMSNorm(dst, x, w, eps))
	}
}

func (o *ops) layerNorm(dst, x, w, b *compute.Tensor, eps float32) {
	if o.err == nil {
		o.check("layernorm", o.b.LayerNorm(dst, x, w, b, eps))
	}
}

func (o *ops) add(dst, a, b *compute.Tensor) {
	if o.err == nil {
		o.check("add", o.b.Add(dst, a, b))
	}
}

func (o *ops) scale(x *compute.Tensor, s float32) {
	if o.err == nil {
		o.check("scale", o.b.Scale(x, s))
	}
}

func (o *ops) softcap(x *compute.Tensor, c float32) {
	if o.err == nil {
		o.check("softcap", o.b.Softcap(x, c))
	}
}

func (o *ops) rope(x *compute.Tensor, pos []int32, p compute.RoPEParams) {
	if o.err == nil {
		o.check("rope", o.b.RoPE(x, pos, p))
	}
}

// ropePair rotates q and k, in one call where the backend offers it.
func (o *ops) ropePair(q, k *compute.Tensor, pos []int32, p compute.RoPEParams) {
	if o.err != nil {
		return
	}
	if rp, ok := o.b.(compute.RoPEPairer); ok {
		o.check("rope", rp.RoPEPair(q, k, pos, p))
		return
	}
	o.rope(q, pos, p)
	o.rope(k, pos, p)
}

func (o *ops) swiGLU(dst, gate, up *compute.Tensor) {
	if o.err == nil {
		o.check("swiglu", o.b.SwiGLU(dst, gate, up))
	}
}

func (o *ops) geGLU(dst, gate, up *compute.Tensor) {
	if o.err == nil {
		o.check("geglu", o.b.GeGLU(dst, gate, up))
	}
}

func (o *ops) gelu(x *compute.Tensor) {
	if o.err == nil {
		o.check("gelu", o.b.GELU(x))
	}
}

func (o *ops) copyCols(dst, src *compute.Tensor, dstCol, srcCol, cols int) {
	if o.err == nil {
		o.check("copy", o.b.Copy(dst, src, dstCol, srcCol, cols))
	}
}

// ropeKVWrite rotates q3 and k3 ([n, heads, hd] views of q and k) and
// writes k and v into the pool: one call where the backend offers it.
func (o *ops) ropeKVWrite(q3, k3, k, v *compute.Tensor, pos []int32, p compute.RoPEParams, pool compute.KVPool, slots []int32) {
	if o.err != nil {
		return
	}
	if o.rkv != nil {
		o.check("rope+kv write", o.rkv.RoPEKVWrite(q3, k3, k, v, pos, p, pool, slots))
		return
	}
	o.ropePair(q3, k3, pos, p)
	o.kvWrite(pool, k, v, slots)
}

func (o *ops) kvWrite(pool compute.KVPool, k, v *compute.Tensor, slots []int32) {
	if o.err == nil {
		o.check("kv write", o.b.KVWrite(pool, k, v, slots))
	}
}

func (o *ops) attention(out, q *compute.Tensor, pool compute.KVPool, pos []int32, seqs []compute.SeqAttn, p compute.AttnParams) {
	if o.err == nil {
		o.check("attention", o.b.Attention(out, q, pool, pos, seqs, p))
	}
}

// addRMSNormer is implemented by backends that fuse a residual add with the
// RMSNorm after it: x += a; dst = rmsnorm(x) * w.
type addRMSNormer interface {
	AddRMSNorm(dst, x, a, w *compute.Tensor, eps float32) error
}

func (o *ops) addRMSNorm(f addRMSNormer, dst, x, a, w *compute.Tensor, eps float32) {
	if o.err == nil {
		o.check("add+rmsnorm", f.AddRMSNorm(dst, x, a, w, eps))
	}
}
