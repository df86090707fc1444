// Package cpu is the fast CPU backend: compute.Reference with its hot ops
// (MatMul, Attention, RMSNorm, Embedding) replaced by quantized dot products
// in AVX2 assembly and work split over a fixed pool of goroutines.
//
// MatMul follows ggml's CPU numerics: activations are quantized to the
// weight type's vec_dot type (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1,
// Q8_K for the K-quants, rounded to f16/bf16 for F16/BF16 weights) with
// llama.cpp's exact rounding, and each weight row is multiplied block by
// block without being dequantized. That keeps logits within ~1e-6 of
// llama.cpp's instead of the ~1e-2 a float matmul would give.
//
// The assembly kernels need amd64 with AVX2, FMA and F16C; elsewhere, or
// with the environment variable ROCMFORGE_NOASM=1 (or the build tag
// purego), the same arithmetic runs in pure Go.
package cpu

import (
	"os"
	"runtime"
	"sync"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// Backend is the CPU backend. Ops it does not override are compute.Reference's.
// It is safe for concurrent use; ops on one Backend run one at a time.
type Backend struct {
	*compute.Reference

	kernels map[ggml.Type]*kernel
	pool    *pool
	asm     bool

	mu      sync.Mutex // guards the scratch buffers below
	scratch scratch
	mm      matmulJob // the jobs live here so that ops do not allocate
	qj      quantJob

	math        attnMath
	attn        attnJob
	attnRows    []attnRow
	attnScratch sync.Pool // *[]float32 score rows, one per running worker
}

var _ compute.Backend = (*Backend)(nil)

// New returns a CPU backend that splits work over threads goroutines
// (runtime.NumCPU() when threads <= 0). Assembly kernels are used when the
// CPU supports them, unless ROCMFORGE_NOASM=1 is set.
func New(threads int) *Backend {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	useAsm := asmSupported() && os.Getenv("ROCMFORGE_NOASM") != "1"
	b := &Backend{
		Reference: compute.NewReference(),
		kernels:   kernels(useAsm),
		pool:      newPool(threads),
		asm:       useAsm,
		math:      goAttnMath(),
	}
	if useAsm {
		b.math = asmAttnMath()
	}
	// The helper goroutines reference only the pool, so an abandoned
	// Backend is collected and its cleanup stops them.
	runtime.AddCleanup(b, func(p *pool) { p.close() }, b.pool)
	return b
}

// Name implements compute.Backend.
func (b *Backend) Name() string { return "cpu" }

// Threads is the number of goroutines ops are split over.
func (b *Backend) Threads() int { return b.pool.threads() }

// Asm reports whether the assembly kernels are in use.
func (b *Backend) Asm() bool { return b.asm }

// Close stops the worker goroutines; later ops run on the calling goroutine
// alone. Calling it is optional: an unreachable Backend stops them itself.
func (b *Backend) Close() { b.pool.close() }

// parallelMin is the work (bytes touched) below which an op stays on the
// calling goroutine: ~64 KiB of kernel work takes one core a few
// microseconds, about what handing it to a worker costs when that worker
// has parked (0.4 µs while it still polls; see pool).
const parallelMin = 64 << 10

// serial reports whether an op touching work bytes should stay on the
// calling goroutine.
func (b *Backend) serial(work int) bool {
	return work < parallelMin || b.pool.threads() == 1
}

// parallel runs t over [0, n) in chunks of step, on the pool unless
// serial(work).
func (b *Backend) parallel(n, step, work int, t task) {
	if b.serial(work) {
		t.do(0, n)
		return
	}
	b.pool.run(n, step, t)
}
