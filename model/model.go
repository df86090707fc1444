// Package model is one decoder-only transformer, parameterized by an
// architecture table (llama, mistral, qwen2, qwen3, phi3, gemma2, gemma3,
// chatglm, glm4, gpt2), with hyperparameters and weights read from GGUF.
//
// The forward pass is written once, in forward.go, against the backend
// contract of package compute; it contains no kernels.
package model

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
)

// Model is a loaded model: hyperparameters and weights on one backend.
//
// Forward reuses scratch tensors between calls, so a Model runs one forward
// pass at a time (it is not safe for concurrent use).
type Model struct {
	HParams HParams

	arch *arch
	b    compute.Backend

	tokEmbd *compute.Tensor // token_embd.weight [n_vocab, n_embd]
	posEmbd *compute.Tensor // position_embd.weight [n_ctx_train, n_embd] (gpt2)
	layers  []layer

	outputNorm, outputNormB *compute.Tensor // output_norm.weight/.bias
	output                  *compute.Tensor // output.weight, or token_embd when tied
	// ropeFreqs is rope_freqs.weight [n_rot/2] (Llama 3.1 and later):
	// divisors of the rotary angles, nil when the file has none.
	ropeFreqs *compute.Tensor

	weights []*compute.Tensor // every uploaded weight, for Close
	// graphTokens is the largest step that goes through the backend's
	// graph steps (graph.go).
	graphTokens int
	// pad holds a decode batch padded to its graph bucket (padDecode).
	pad Batch
	// Per-step state kept here so that a decode step allocates nothing:
	// the graph step function and the boxed keys (graphStep), the ops.
	run      stepRun
	runFn    func(compute.Backend) error
	stepKeys map[stepKey]any
	ops      ops
	s        scratch
}

// Load reads the hyperparameters of f and uploads its weights to b in their
// stored types (quantized weights stay quantized). f must stay open while
// the model is in use: backends may keep references to its mapped data.
//
// An unknown architecture, a missing key or tensor, a tensor of the wrong
// shape or of an unsupported type is an error that names it.
func Load(f *gguf.File, b compute.Backend) (*Model, error) {
	hp, err := ReadHParams(f)
	if err != nil {
		return nil, err
	}
	m := &Model{HParams: hp, arch: archs[hp.Arch], b: b, graphTokens: graphTokensFromEnv()}
	bd := &binder{f: f, b: b, hp: &m.HParams}
	if err := m.bind(bd); err != nil {
		for _, t := range bd.weights {
			b.Free(t)
		}
		return nil, err
	}
	m.weights = bd.weights
	return m, nil
}

func (m *Model) bind(bd *binder) error {
	hp := &m.HParams
	d := hp.NEmbd
	vocabWhy := fmt.Sprintf("n_vocab=%d, n_embd=%d", hp.NVocab, d)
	nEmbd := fmt.Sprintf("n_embd=%d", d)
	l := &bindList{bd: bd}

	l.req(&m.tokEmbd, "token_embd.weight", vocabWhy, hp.NVocab, d)
	if m.arch.rope == ropeNone {
		l.req(&m.posEmbd, "position_embd.weight", fmt.Sprintf("n_ctx_train=%d, n_embd=%d", hp.NCtxTrain, d), hp.NCtxTrain, d)
	}
	if l.err != nil {
		return l.err
	}
	m.layers = make([]layer, hp.NLayer)
	for il := range m.layers {
		ly, err := bd.bindLayer(m.arch, il)
		if err != nil {
			return err
		}
		m.layers[il] = ly
	}
	l.req(&m.outputNorm, "output_norm.weight", nEmbd, d)
	if m.arch.norm == normLayer {
		l.req(&m.outputNormB, "output_norm.bias", nEmbd, d)
	}
	l.opt(&m.output, "output.weight", vocabWhy, hp.NVocab, d)
	if m.arch.rope != ropeNone {
		l.opt(&m.ropeFreqs, "rope_freqs.weight", fmt.Sprintf("n_rot/2=%d", hp.NRot/2), hp.NRot/2)
	}
	if l.err != nil {
		return l.err
	}
	if m.ropeFreqs != nil && m.ropeFreqs.Type != ggml.F32 {
		return fmt.Errorf("model: tensor rope_freqs.weight is %s, want F32", m.ropeFreqs.Type)
	}
	if m.output == nil {
		m.output = m.tokEmbd // tied embeddings
	}
	return nil
}

// Backend is the backend the model's weights live on.
func (m *Model) Backend() compute.Backend { return m.b }

// Close frees the weights and scratch tensors on the backend.
func (m *Model) Close() {
	m.dropGraphs()
	m.s.free(m.b)
	for _, t := range m.weights {
		m.b.Free(t)
	}
	m.weights = nil
	m.layers = nil
}
