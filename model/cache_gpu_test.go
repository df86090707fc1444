package model

import (
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// TestCacheCopyBlockGPU runs the CopyBlock test on the GPU backend, for
// every KV type.
func TestCacheCopyBlockGPU(t *testing.T) {
	b := gpuBackend(t)()
	for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) { testCopyBlock(t, b, typ) })
	}
}
