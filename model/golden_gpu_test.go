package model

import (
	"sync"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu"
)

// gpuBackend makes one GPU backend for the golden tests, or skips them when
// no usable CUDA GPU is present (CI's CPU machine).
func gpuBackend(t *testing.T) func() compute.Backend {
	t.Helper()
	if err := gpu.Available(); err != nil {
		t.Skipf("no usable CUDA GPU, GPU golden tests skipped: %v", err)
	}
	var once sync.Once
	var b *gpu.Backend
	var err error
	once.Do(func() { b, err = gpu.New() })
	if err != nil {
		t.Fatalf("gpu.New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	// Every case shares the backend (its calls are serialised); each model
	// frees its weights on Close.
	return func() compute.Backend { return b }
}

// TestGoldenGPU runs the golden set on the GPU backend, with the same
// thresholds as the reference.
func TestGoldenGPU(t *testing.T) {
	runGolden(t, gpuBackend(t))
}

// TestStoriesStoryGPU runs the stories260K story on the GPU backend.
func TestStoriesStoryGPU(t *testing.T) {
	runStory(t, gpuBackend(t))
}
