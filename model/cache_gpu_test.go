package model

import "testing"

// TestCacheCopyBlockGPU runs the CopyBlock test on the GPU backend.
func TestCacheCopyBlockGPU(t *testing.T) {
	testCopyBlock(t, gpuBackend(t)())
}
