package model

import (
	"fmt"
	"slices"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/gguf"
)

// layer is one transformer block's weights. Fields are nil when the file
// (or the arch) does not have them. Names are the GGUF names after "blk.N.".
type layer struct {
	attnNorm, attnNormB *compute.Tensor // attn_norm.weight/.bias

	// Either the fused projection or the three separate ones.
	wqkv, bqkv *compute.Tensor // attn_qkv: rows [Q | K | V]
	wq, bq     *compute.Tensor // attn_q
	wk, bk     *compute.Tensor // attn_k
	wv, bv     *compute.Tensor // attn_v
	qNorm      *compute.Tensor // attn_q_norm.weight [head_dim]
	kNorm      *compute.Tensor // attn_k_norm.weight [head_dim]
	wo, bo     *compute.Tensor // attn_output

	postAttnNorm *compute.Tensor // post_attention_norm.weight

	ffnNorm, ffnNormB *compute.Tensor // ffn_norm.weight/.bias
	// Either gate and up, or the fused gateUp (ffn_up with rows [gate | up]).
	wGate, bGate *compute.Tensor // ffn_gate
	wUp, bUp     *compute.Tensor // ffn_up
	wGateUp      *compute.Tensor // ffn_up of 2*n_ff rows
	wDown, bDown *compute.Tensor // ffn_down

	postFFNNorm *compute.Tensor // post_ffw_norm.weight
}

// binder uploads tensors of a GGUF file to a backend, checking each against
// the shape the hyperparameters imply.
type binder struct {
	f       *gguf.File
	b       compute.Backend
	hp      *HParams
	weights []*compute.Tensor // everything uploaded, for Close
}

// has reports whether the file has a tensor of that name.
func (bd *binder) has(name string) bool {
	_, ok := bd.f.Tensor(name)
	return ok
}

// tensor uploads name, which must exist with Shape want (outermost first,
// i.e. GGUF dims reversed). why names the hyperparameters behind want.
func (bd *binder) tensor(name string, why string, want ...int) (*compute.Tensor, error) {
	ti, ok := bd.f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("model: tensor %s is missing (%s needs it)", name, bd.hp.Arch)
	}
	return bd.upload(ti, why, want)
}

// optional is tensor for a tensor that may be absent (nil, nil).
func (bd *binder) optional(name string, why string, want ...int) (*compute.Tensor, error) {
	ti, ok := bd.f.Tensor(name)
	if !ok {
		return nil, nil
	}
	return bd.upload(ti, why, want)
}

func (bd *binder) upload(ti *gguf.TensorInfo, why string, want []int) (*compute.Tensor, error) {
	shape := make([]int, len(ti.Dims))
	for i, d := range ti.Dims {
		shape[len(shape)-1-i] = int(d)
	}
	if !slices.Equal(shape, want) {
		gotNE := slices.Clone(ti.Dims)
		wantNE := make([]int, len(want))
		for i, d := range want {
			wantNE[len(want)-1-i] = d
		}
		return nil, fmt.Errorf("model: tensor %s: shape %v but %s means %v (GGUF dims, ne0 first)", ti.Name, gotNE, why, wantNE)
	}
	if !ti.Type.Supported() {
		return nil, fmt.Errorf("model: tensor %s: type %s is not supported", ti.Name, ti.Type)
	}
	data, err := bd.f.TensorData(ti)
	if err != nil {
		return nil, fmt.Errorf("model: tensor %s: %w", ti.Name, err)
	}
	t, err := bd.b.Upload(ti.Name, ti.Type, shape, data)
	if err != nil {
		return nil, fmt.Errorf("model: tensor %s: %w", ti.Name, err)
	}
	bd.weights = append(bd.weights, t)
	return t, nil
}

// bindList binds tensors into fields and keeps the first error, so the long
// list of weights in bindLayer reads as a table.
type bindList struct {
	bd  *binder
	err error
}

func (l *bindList) req(dst **compute.Tensor, name, why string, want ...int) {
	if l.err != nil {
		return
	}
	*dst, l.err = l.bd.tensor(name, why, want...)
}

func (l *bindList) opt(dst **compute.Tensor, name, why string, want ...int) {
	if l.err != nil {
		return
	}
	*dst, l.err = l.bd.optional(name, why, want...)
}

// bindLayer binds blk.il.* according to the arch.
func (bd *binder) bindLayer(a *arch, il int) (layer, error) {
	hp := bd.hp
	d := hp.NEmbd
	n := func(s string) string { return fmt.Sprintf("blk.%d.%s", il, s) }
	nEmbd := fmt.Sprintf("n_embd=%d", d)
	qkvWhy := fmt.Sprintf("n_embd=%d, n_head=%d, n_head_kv=%d, head_dim k=%d v=%d", d, hp.NHead, hp.NHeadKV, hp.HeadDimK, hp.HeadDimV)
	ffWhy := fmt.Sprintf("n_embd=%d, n_ff=%d", d, hp.NFF)

	var ly layer
	l := &bindList{bd: bd}
	bias := l.opt
	if a.allBiases {
		bias = l.req
	}

	l.req(&ly.attnNorm, n("attn_norm.weight"), nEmbd, d)
	if a.norm == normLayer {
		bias(&ly.attnNormB, n("attn_norm.bias"), nEmbd, d)
	}

	qd, kd, vd := hp.QDim(), hp.KDim(), hp.VDim()
	if bd.has(n("attn_qkv.weight")) {
		l.req(&ly.wqkv, n("attn_qkv.weight"), qkvWhy, qd+kd+vd, d)
		bias(&ly.bqkv, n("attn_qkv.bias"), qkvWhy, qd+kd+vd)
	} else {
		l.req(&ly.wq, n("attn_q.weight"), qkvWhy, qd, d)
		l.req(&ly.wk, n("attn_k.weight"), qkvWhy, kd, d)
		l.req(&ly.wv, n("attn_v.weight"), qkvWhy, vd, d)
		qkvBias := bias
		if a.qkvBias {
			qkvBias = l.req
		}
		qkvBias(&ly.bq, n("attn_q.bias"), qkvWhy, qd)
		qkvBias(&ly.bk, n("attn_k.bias"), qkvWhy, kd)
		qkvBias(&ly.bv, n("attn_v.bias"), qkvWhy, vd)
	}
	if a.qkNorm {
		hdWhy := fmt.Sprintf("head_dim=%d", hp.HeadDimK)
		l.req(&ly.qNorm, n("attn_q_norm.weight"), hdWhy, hp.HeadDimK)
		l.req(&ly.kNorm, n("attn_k_norm.weight"), hdWhy, hp.HeadDimK)
	}
	l.req(&ly.wo, n("attn_output.weight"), qkvWhy, d, hp.NHead*hp.HeadDimV)
	bias(&ly.bo, n("attn_output.bias"), nEmbd, d)

	l.req(&ly.ffnNorm, n("ffn_norm.weight"), nEmbd, d)
	if a.norm == normLayer {
		bias(&ly.ffnNormB, n("ffn_norm.bias"), nEmbd, d)
	}
	switch {
	case a.ffn == ffnGELU:
		l.req(&ly.wUp, n("ffn_up.weight"), ffWhy, hp.NFF, d)
		bias(&ly.bUp, n("ffn_up.bias"), ffWhy, hp.NFF)
	case bd.has(n("ffn_gate.weight")):
		l.req(&ly.wGate, n("ffn_gate.weight"), ffWhy, hp.NFF, d)
		l.req(&ly.wUp, n("ffn_up.weight"), ffWhy, hp.NFF, d)
		bias(&ly.bGate, n("ffn_gate.bias"), ffWhy, hp.NFF)
		bias(&ly.bUp, n("ffn_up.bias"), ffWhy, hp.NFF)
	default:
		// No gate: ffn_up holds [gate | up] (phi3, chatglm, glm4).
		l.req(&ly.wGateUp, n("ffn_up.weight"), ffWhy+" (fused gate|up, no ffn_gate.weight)", 2*hp.NFF, d)
	}
	l.req(&ly.wDown, n("ffn_down.weight"), ffWhy, d, hp.NFF)
	bias(&ly.bDown, n("ffn_down.bias"), nEmbd, d)

	if a.postNorms {
		l.req(&ly.postAttnNorm, n("post_attention_norm.weight"), nEmbd, d)
		l.req(&ly.postFFNNorm, n("post_ffw_norm.weight"), nEmbd, d)
	}
	return ly, l.err
}
