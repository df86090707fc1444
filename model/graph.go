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

// dropGraphs forgets the backend's recorded steps, whose tensors are about
// to go away.
func (m *Model) dropGraphs() {
	if g, ok := m.b.(stepGrapher); ok {
		g.DropGraphs()
	}
}
