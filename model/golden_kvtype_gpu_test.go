package model

import "testing"

// TestGoldenKVTypesGPU runs the F16/Q8_0 cache variant of the golden cases
// on the GPU backend.
func TestGoldenKVTypesGPU(t *testing.T) { runGoldenKVTypes(t, gpuBackend(t)) }
