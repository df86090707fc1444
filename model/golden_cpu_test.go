package model

import (
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
)

// The CPU backend (AVX2 kernels where the machine has them, Q8 activation
// quantization as llama.cpp does) must meet the same golden thresholds as
// the reference backend.
func newCPU() compute.Backend { return cpu.New(2) }

func TestGoldenCPU(t *testing.T) { runGolden(t, newCPU) }

func TestStoriesStoryCPU(t *testing.T) { runStory(t, newCPU) }

// The pure-Go kernels are the fallback on machines without AVX2; run the
// golden set through them too.
func TestGoldenCPUNoAsm(t *testing.T) {
	t.Setenv("ROCMFORGE_NOASM", "1")
	runGolden(t, newCPU)
}
