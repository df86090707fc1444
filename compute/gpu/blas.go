package gpu

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// Large batches (prefill) multiply on the tensor cores through cuBLAS, as
// llama.cpp does: the weight is dequantized to f16 into a reusable device
// scratch buffer (F16 and BF16 weights are used in place), the activations
// are rounded to f16 (bf16 for BF16 weights) into another, and cublasGemmEx
// multiplies with float accumulation into the f32 output. F32 weights stay
// exact: a float GEMM with the pedantic compute type (no TF32).
//
// Rounding the activations to f16 costs accuracy: relative error about
// 2^-11 per element, ~4e-4 relative (Frobenius) on a product, against ~1e-6
// for the float kernels. llama.cpp's CPU and CUDA backends round the same
// way for F16 weights.
//
// Batches of up to mmaMaxTokens[layout] tokens by quantized weights take
// the mma kernels instead (mma.go): same roundings, but the weight is
// dequantized in shared memory rather than written out as f16 first.
//
// Without cuBLAS (not installed, or ROCMFORGE_GPU_CUBLAS=0), the tiled
// float kernel does the other large batches, as before.

// defaultBLASMinTokens is the smallest batch that takes the cuBLAS path by
// default: every batch too large for the matrix-vector kernels. Measured on
// the H100 (docs/perf.md), 4096x4096 weights, 12 to 64 tokens: cuBLAS
// 16-38 µs against 330-570 µs for the tiled kernel; at 8 tokens the
// matrix-vector kernels are faster for Q4_0 and Q8_0 (24 against 30 µs),
// slower for F16 (56 against 16) and Q4_K (49 against 36).
// ROCMFORGE_GPU_CUBLAS_MIN overrides it (for measuring).
const defaultBLASMinTokens = maxMatVecTokens + 1

// blasWorkspaceBytes is the cuBLAS workspace (32 MiB, NVIDIA's advice for
// Hopper): set once, so cuBLAS never allocates per call or in a capture.
const blasWorkspaceBytes = 32 << 20

// scratchAlign rounds scratch sizes up, so that nearby sizes share a buffer.
const scratchAlign = 2 << 20

// blasLib is the vendor BLAS of the large-batch path: cuBLAS, or hipBLAS
// through hipBLASLib (hipblas.go), in cuBLAS's types.
type blasLib interface {
	Path() string
	Version() (string, error)
	Create() (cuda.BLASHandle, error)
	Destroy(h cuda.BLASHandle) error
	SetStream(h cuda.BLASHandle, s cuda.Stream) error
	CanSetWorkspace() bool
	SetWorkspace(h cuda.BLASHandle, p cuda.DevicePtr, bytes int64) error
	GemmEx(h cuda.BLASHandle, opA, opB cuda.BLASOp, m, n, k int, alpha float32,
		a cuda.DevicePtr, aType cuda.DataType, lda int, b cuda.DevicePtr, bType cuda.DataType, ldb int,
		beta float32, c cuda.DevicePtr, cType cuda.DataType, ldc int, compute cuda.ComputeType) error
}

// blasState is the vendor BLAS handle and the scratch buffers of the path.
type blasState struct {
	lib       blasLib
	name      string // "cuBLAS" or "hipBLAS", for messages
	h         cuda.BLASHandle
	version   string
	minTokens int    // batches of at least this many tokens use cuBLAS; 0: off
	off       string // why the path is off
	ws        scratch
	wh, xh    scratch // the f16 weight, the f16/bf16 activations
	mma       mmaState
	h16       h16State
}

// h16State is what xh holds when the op that wrote it was a producer
// (RMSNorm, AddRMSNorm, SwiGLU) that emitted its output rounded to f16; the
// batched product right after reuses it instead of converting
// (ROCMFORGE_GPU_F16EMIT=0: always convert, for A/B).
type h16State struct {
	on bool
	handoff
}

// h16Emit returns where a producer of rows [n, k] should also write them as
// f16, or 0: only for batches the large-batch path multiplies (n above the
// matrix-vector sizes) and when xh already holds them (growing it is the
// product's job). The caller holds enter and calls h16Mark after its launch.
func (b *Backend) h16Emit(n, k int) cuda.DevicePtr {
	bl := &b.blas
	if !bl.h16.on || n <= maxMatVecTokens || k == 0 || !b.useBLAS(n) || bl.xh.ptr == 0 || 2*int64(n)*int64(k) > bl.xh.bytes {
		return 0
	}
	return bl.xh.ptr
}

// h16Mark records that xh now holds src's rows [n, k] as f16.
func (b *Backend) h16Mark(src cuda.DevicePtr, n, k int) {
	b.blas.h16.mark(src, b.blas.xh.ptr, n, k, b.opSeq)
}

// toHalf rounds x's rows [n, k] (buffer xb) to f16 into xh, unless the op
// before left them there.
func (b *Backend) toHalf(xb cuda.DevicePtr, n, k int) error {
	if b.blas.h16.fresh(xb, b.blas.xh.ptr, n, k, b.opSeq) {
		return nil
	}
	nk := int64(n) * int64(k)
	b.args.reset().ptr(b.blas.xh.ptr).ptr(xb).i64(nk)
	return b.launch(b.k.all["f32_to_f16"], b.gridFor(nk, 256), cuda.Dim3{X: 256}, 0)
}

// scratch is a device buffer that only grows.
type scratch struct {
	ptr   cuda.DevicePtr
	bytes int64
}

// initBLAS loads cuBLAS and makes its handle on the backend's stream. A
// failure leaves the path off with the reason logged once; it never fails
// the backend. The context must be current.
func (b *Backend) initBLAS() {
	bl := &b.blas
	bl.h16.on = os.Getenv("ROCMFORGE_GPU_F16EMIT") != "0"
	b.initMMA()
	// The mma kernels need the large-batch path on even without cuBLAS;
	// what they do not take then goes to the tiled kernel.
	defer func() {
		if bl.minTokens == 0 && bl.mma.maxTokens > 0 {
			bl.minTokens = blasMinFromEnv()
		}
	}()
	bl.name = "cuBLAS"
	load := func() (blasLib, error) { return cuda.LoadCUBLAS() }
	if b.vendor == HIP {
		bl.name, load = "hipBLAS", loadHIPBLAS
	}
	if os.Getenv("ROCMFORGE_GPU_CUBLAS") == "0" {
		bl.off = "off (ROCMFORGE_GPU_CUBLAS=0)"
		return
	}
	fail := func(err error) {
		bl.off = "off: " + err.Error()
		slog.Warn("gpu: "+bl.name+" unavailable; large-batch MatMul uses the tiled float kernel", "err", err)
		b.freeBLAS()
	}
	lib, err := load()
	if err != nil {
		fail(err)
		return
	}
	bl.lib = lib
	if bl.version, err = lib.Version(); err != nil {
		fail(err)
		return
	}
	if bl.h, err = lib.Create(); err != nil {
		fail(err)
		return
	}
	if err = lib.SetStream(bl.h, b.stream); err != nil {
		fail(err)
		return
	}
	if lib.CanSetWorkspace() {
		if err = b.grow(&bl.ws, blasWorkspaceBytes); err != nil {
			fail(err)
			return
		}
		if err = lib.SetWorkspace(bl.h, bl.ws.ptr, bl.ws.bytes); err != nil {
			fail(err)
			return
		}
	}
	bl.minTokens = blasMinFromEnv()
	if b.vendor == HIP {
		// rocBLAS is kept out of graph captures (steps of up to 64 tokens
		// by default, model/graph.go): its behaviour under hipGraph stream
		// capture is unverified here.
		bl.minTokens = max(bl.minTokens, hipBLASMinTokens)
	}
}

// hipBLASMinTokens is the smallest batch hipBLAS multiplies: past the
// largest graph step, so that no hipBLAS call is captured.
const hipBLASMinTokens = 65

// blasMinFromEnv is defaultBLASMinTokens or ROCMFORGE_GPU_CUBLAS_MIN.
func blasMinFromEnv() int {
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_CUBLAS_MIN")); err == nil && v >= 1 {
		return v
	}
	return defaultBLASMinTokens
}

// freeBLAS releases the handle and the buffers; the context must be current.
func (b *Backend) freeBLAS() {
	bl := &b.blas
	if bl.h != 0 {
		bl.lib.Destroy(bl.h)
		bl.h = 0
	}
	for _, s := range []*scratch{&bl.ws, &bl.wh, &bl.xh, &bl.mma.part} {
		if s.ptr != 0 {
			b.drv.MemFree(s.ptr)
		}
		*s = scratch{}
	}
	bl.minTokens = 0
}

// MatMulPath says how large batches multiply: "mma kernels for 9 <= n <=
// 128 (F16, quantized); cuBLAS 13.1.0 (path) for n >= 9", or why the
// tiled kernel does them.
func (b *Backend) MatMulPath() string {
	bl := &b.blas
	mma := "mma kernels " + bl.mma.off
	if bl.mma.maxTokens > 0 {
		mma = fmt.Sprintf("mma kernels from n = %d up to %v tokens by layout", bl.minTokens, bl.mma.max)
		if bl.mma.mmq {
			async := "cp.async"
			if !bl.mma.mmqAsync {
				async = "register-staged"
			}
			mma += fmt.Sprintf(" (Q4_0 and Q8_0 with k a multiple of 128: %s mmq kernels, from n = %v by layout)", async, bl.mma.mmqMin)
		} else {
			mma += " (mmq kernels " + bl.mma.mmqOff + ")"
		}
	}
	if bl.h == 0 {
		return mma + "; tiled float kernel otherwise; " + bl.name + " " + bl.off
	}
	return fmt.Sprintf("%s; %s %s (%s) for n >= %d", mma, bl.name, bl.version, bl.lib.Path(), bl.minTokens)
}

// useBLAS reports whether a MatMul of n tokens takes the cuBLAS path, in
// every mode: graph steps capture it too (their feed pass sizes the scratch
// buffers first), so a step gives the same result with and without graphs.
func (b *Backend) useBLAS(n int) bool {
	return b.blas.minTokens > 0 && n >= b.blas.minTokens
}

// sizeBLAS grows the scratch buffers a cuBLAS MatMul of n tokens by the
// weight wb [m, k] needs (the context is current).
func (b *Backend) sizeBLAS(wb *devBuf, n, m, k int) error {
	if k != 0 && (b.useMMA(wb, n, k) || b.useMMQSmall(wb.layout, n, k)) {
		return b.sizeMMA(wb.layout, n, m, k)
	}
	if k == 0 || wb.layout == "f32" || b.blas.h == 0 {
		return nil
	}
	if wb.layout != "f16" && wb.layout != "bf16" {
		if err := b.grow(&b.blas.wh, 2*int64(m)*int64(k)); err != nil {
			return err
		}
	}
	return b.grow(&b.blas.xh, 2*int64(n)*int64(k))
}

// grow makes s hold at least bytes. Growing waits for the stream first
// (queued work may still read the old buffer) and drops the captured step
// graphs (they hold the old address), so it must not happen while the
// stream is being captured: graph steps size the buffers in their feed pass.
// Buffers only grow, so this is rare (the largest weight and batch set the
// sizes once).
func (b *Backend) grow(s *scratch, bytes int64) error {
	if bytes <= s.bytes {
		return nil
	}
	if b.mode == modeCapture {
		return fmt.Errorf("gpu: cuBLAS scratch of %d bytes needed during a graph capture (the feed pass sized %d)", bytes, s.bytes)
	}
	bytes = (bytes + scratchAlign - 1) / scratchAlign * scratchAlign
	if s.ptr != 0 {
		if err := b.drv.StreamSynchronize(b.stream); err != nil {
			return err
		}
		b.dropGraphsLocked()
		b.drv.MemFree(s.ptr)
		*s = scratch{}
	}
	p, err := b.drv.MemAlloc(bytes)
	if err != nil {
		return err
	}
	*s = scratch{ptr: p, bytes: bytes}
	return nil
}

// matmulBLAS is dst[n, m] = x[n, k] · w[m, k]ᵀ through cuBLAS (the context
// is current). cuBLAS is column-major: the row-major dst is the
// column-major m×n matrix dstᵀ = W·xᵀ, where the row-major weight, read
// column-major, is Wᵀ (k×m, lda k: op T) and the row-major x is xᵀ (k×n,
// ldb k: op N).
func (b *Backend) matmulBLAS(wb, xb, db *devBuf, rowBytes int64, n, m, k int) error {
	if b.useMMA(wb, n, k) {
		return b.matmulMMA(wb, xb, db, rowBytes, n, m, k)
	}
	bl := &b.blas
	if bl.h == 0 {
		// No cuBLAS (the path is on for the mma kernels): the tiled kernel.
		kern, _, grid, block := b.matmulKernel(wb.layout, n, m, k)
		b.args.reset().ptr(wb.ptr).ptr(wb.aux).i64(rowBytes).ptr(xb.ptr).ptr(db.ptr).i32(m).i32(k).i32(n)
		return b.launch(kern, grid, block, 0)
	}
	var err error
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("matmul: %s weight [%d %d], %d tokens, cuBLAS path: %w", wb.typ, m, k, n, err)
	}
	if wb.layout == "f32" {
		err = bl.lib.GemmEx(bl.h, cuda.OpT, cuda.OpN, m, n, k, 1, wb.ptr, cuda.R32F, k,
			xb.ptr, cuda.R32F, k, 0, db.ptr, cuda.R32F, m, cuda.Compute32FPedantic)
		return wrap(b.afterBLAS(err))
	}
	if err := b.sizeBLAS(wb, n, m, k); err != nil {
		return wrap(err)
	}
	a, typ, conv := wb.ptr, cuda.R16F, b.k.all["f32_to_f16"]
	switch wb.layout {
	case "f16":
	case "bf16":
		typ, conv = cuda.R16BF, b.k.all["f32_to_bf16"]
	default:
		tohalf, ok := b.k.all["tohalf_"+wb.layout]
		if !ok {
			return wrap(fmt.Errorf("no f16 conversion kernel for layout %s", wb.layout))
		}
		threads := 256
		grid := cuda.Dim3{X: uint32((k/8 + threads - 1) / threads), Y: uint32(min(m, 65535))}
		b.args.reset().ptr(bl.wh.ptr).ptr(wb.ptr).ptr(wb.aux).i64(rowBytes).i32(m).i32(k)
		if err := b.launch(tohalf, grid, cuda.Dim3{X: uint32(threads)}, 0); err != nil {
			return wrap(err)
		}
		a = bl.wh.ptr
	}
	nk := int64(n) * int64(k)
	if typ == cuda.R16F {
		if err := b.toHalf(xb.ptr, n, k); err != nil {
			return wrap(err)
		}
	} else {
		b.args.reset().ptr(bl.xh.ptr).ptr(xb.ptr).i64(nk)
		if err := b.launch(conv, b.gridFor(nk, 256), cuda.Dim3{X: 256}, 0); err != nil {
			return wrap(err)
		}
	}
	err = bl.lib.GemmEx(bl.h, cuda.OpT, cuda.OpN, m, n, k, 1, a, typ, k, bl.xh.ptr, typ, k, 0, db.ptr, cuda.R32F, m,
		cuda.Compute32F)
	return wrap(b.afterBLAS(err))
}

// afterBLAS waits for the GEMM when every op must (tests), so a fault is
// reported by its op.
func (b *Backend) afterBLAS(err error) error {
	if err == nil && b.syncEachOp && b.mode != modeCapture {
		err = b.drv.StreamSynchronize(b.stream)
	}
	return err
}
