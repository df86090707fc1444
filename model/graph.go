package model

import "github.com/rocmforge/rocmforge/compute"

// maxGraphTokens is the largest step (in tokens) that goes through a
// backend's graph steps: decode and small batches, where launch cost rules.
// Larger steps (prefill) launch op by op; their kernels are long enough.
const maxGraphTokens = 16

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

// dropGraphs forgets the backend's recorded steps, whose tensors are about
// to go away.
func (m *Model) dropGraphs() {
	if g, ok := m.b.(stepGrapher); ok {
		g.DropGraphs()
	}
}
