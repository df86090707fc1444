// Package gpu is the GPU backend: compute.Backend on device memory, with
// kernels written in CUDA C (kernels/*.cu), compiled at start by NVRTC for
// the device's architecture and launched through the CUDA driver API
// (package cuda), all without cgo.
//
// Work is queued asynchronously on one stream; the host waits only in Read.
// Weights stay in their GGUF type on the device. Q4_0 and Q8_0 weights are
// stored split (all quants, then all scales) so the matrix-vector kernels
// can use aligned 16-byte loads; every other type keeps its GGUF blocks.
//
// The same backend runs on AMD through the HIP runtime and hipRTC (NewHIP,
// vendor.go, hipdriver.go): same kernels, same code, kernels/common.h
// mapping the few differences. That path compiles and is tested against a
// fake runtime, but no AMD GPU has run it; only NVIDIA has been run.
package gpu

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/ggml"
)

// Backend is compute.Backend on one CUDA device. Its methods may be called
// from any goroutine; calls are serialised.
//
// A Backend is a view of the device state (core) in one op mode: the one
// New returns launches ops (modeEager); GraphStep hands its step function
// views in the feed and capture modes, so that other goroutines' ops on the
// eager view are unaffected (they wait for the step to finish).
type Backend struct {
	*core
	mode opMode
}

// core is the device state every view of a backend shares.
type core struct {
	mu     sync.Mutex
	drv    driverAPI
	vendor Vendor
	dev    cuda.Device
	ctx    cuda.Context
	stream cuda.Stream

	name    string
	arch    string
	warp    int
	sms     int
	nvrtc   string
	modules []cuda.Module
	k       kernels

	args  *launchArgs
	stage stager
	blas  blasState // the cuBLAS path for large batches (blas.go)
	ints  []int32   // host scratch for batch descriptors (attention)
	att   attState  // attention kernels by pool type, split-K scratch (attention.go)

	// syncEachOp makes every op wait for its kernels, so an asynchronous
	// fault is reported by the op that caused it (tests turn it on).
	syncEachOp bool
	closed     bool

	// Graph steps (graph.go), guarded by mu: GraphStep holds it while the
	// step's views run.
	step              stepState
	graphs            map[any]*stepGraph
	stepSeen          map[any]int
	graphsOn          bool
	fuseOn            bool // AddRMSNorm as one kernel (ROCMFORGE_GPU_FUSE=0: two, for A/B timing)
	attTileOn         bool // the tiled prompt attention kernel (ROCMFORGE_GPU_ATT_TILE=0: off, for A/B timing)
	attMaxWarps       int  // warps of a small attention grid's blocks (ROCMFORGE_GPU_ATT_WARPS, for A/B timing)
	gstats            GraphStats
	feedView, capView *Backend

	// Decode products with 8-bit activations (mmvq.go).
	mmvqOn bool    // ROCMFORGE_GPU_MMVQ=0: off, for A/B timing
	opSeq  uint64  // ops entered so far: what the q8 scratch holds is valid for the op after the one that wrote it
	q8     q8State // the quantized activations
	argOut scratch // ArgmaxRows' device output
	dec    decodeFuse

	// TopKRows' output buffers (topk.go).
	topk topkState

	// pdl launches the pdlKernel kernels with programmatic dependent launch
	// (sm_90 and later with cuLaunchKernelEx; ROCMFORGE_GPU_PDL=0: never).
	pdl pdlLauncher
}

var _ compute.Backend = (*Backend)(nil)

// Available reports whether a usable CUDA stack is present: the driver
// loads, initialises and sees a device, and NVRTC loads. A nil error means
// New should succeed; the error says what is missing otherwise.
func Available() error {
	drv, err := cuda.LoadDriver()
	if err != nil {
		return err
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("cuda: driver %s: %w", drv.Path(), cuda.ErrNoDevice)
	}
	if _, err := cuda.LoadNVRTC(); err != nil {
		return err
	}
	return nil
}

// New opens CUDA device 0, compiles (or loads from the disk cache) the
// kernels and returns a ready backend. Any failure is an error for the
// caller to log before falling back to the CPU.
func New() (*Backend, error) {
	return newBackend(CUDA, 0)
}

// NewHIP is New on AMD device 0 through the HIP runtime and hipRTC. It
// shares every kernel and all of the backend's code with CUDA but the
// NVIDIA-only tensor-core kernels; batches of 65 tokens and more go through
// hipBLAS where it loads (smaller ones through the tiled kernel). No AMD GPU
// has run it: it compiles, its driver and hipBLAS adapters are tested
// against fakes and the kernels compile for AMD targets in CI.
func NewHIP() (*Backend, error) {
	return newBackend(HIP, 0)
}

func newBackend(v Vendor, ordinal int) (b *Backend, err error) {
	drv, rtc, err := v.load()
	if err != nil {
		return nil, err
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return nil, err
	}
	if ordinal >= n {
		return nil, fmt.Errorf("gpu: %s device %d requested but the driver sees %d: %w", v, ordinal, n, v.errNoDevice())
	}
	b = &Backend{core: &core{drv: drv, vendor: v, args: newLaunchArgs(), nvrtc: rtc.Version(), graphsOn: graphsFromEnv(),
		fuseOn: os.Getenv("ROCMFORGE_GPU_FUSE") != "0", attMaxWarps: attMaxWarps,
		attTileOn: os.Getenv("ROCMFORGE_GPU_ATT_TILE") != "0", mmvqOn: v == CUDA && mmvqFromEnv(),
		q8: q8State{maxTPR: mmvqTPRFromEnv(), r8: os.Getenv("ROCMFORGE_GPU_MMVQ_R8") == "1"}, dec: decodeFuseFromEnv()}}
	if w, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_ATT_WARPS")); err == nil && w >= 1 && w <= attMaxWarps {
		b.attMaxWarps = w
	}
	b.feedView = &Backend{core: b.core, mode: modeFeed}
	b.capView = &Backend{core: b.core, mode: modeCapture}
	if b.dev, err = drv.DeviceGet(ordinal); err != nil {
		return nil, err
	}
	attr := func(a int) int {
		if err != nil {
			return 0
		}
		var v int
		v, err = drv.DeviceAttribute(b.dev, a)
		return v
	}
	major, minor := attr(cuda.AttrComputeCapabilityMajor), attr(cuda.AttrComputeCapabilityMinor)
	b.warp = attr(cuda.AttrWarpSize)
	b.sms = attr(cuda.AttrMultiprocessorCount)
	if err != nil {
		return nil, err
	}
	if b.warp != 32 && b.warp != 64 {
		return nil, fmt.Errorf("gpu: unsupported warp size %d", b.warp)
	}
	if b.arch, err = v.arch(drv, b.dev, major, minor); err != nil {
		return nil, err
	}
	name, err := drv.DeviceName(b.dev)
	if err != nil {
		return nil, err
	}
	b.name = fmt.Sprintf("%s:%d %s (%s)", v, ordinal, name, b.arch)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if b.ctx, err = drv.PrimaryCtxRetain(b.dev); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.release()
		}
	}()
	if err = drv.SetCurrent(b.ctx); err != nil {
		return nil, err
	}
	if b.stream, err = drv.StreamCreate(); err != nil {
		return nil, err
	}
	lineInfo := os.Getenv("ROCMFORGE_KERNEL_LINEINFO") == "1"
	opts, err := v.compileOptions(b.arch, b.warp, lineInfo)
	if err != nil {
		return nil, err
	}
	images, err := compileAll(rtc, b.arch, opts, kernelCacheDir())
	if err != nil {
		return nil, err
	}
	if err = b.loadKernels(images); err != nil {
		return nil, err
	}
	if l, ok := drv.(pdlLauncher); ok && v == CUDA && major >= 9 && l.HasPDL() && os.Getenv("ROCMFORGE_GPU_PDL") != "0" {
		b.pdl = l
	}
	if err = b.stage.init(drv, 256<<10); err != nil {
		return nil, err
	}
	b.initBLAS()
	return b, nil
}

// Name implements compute.Backend: "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)".
func (b *Backend) Name() string { return b.name }

// Close releases the stream, the kernels and the context. Tensors must be
// freed first; the backend is unusable afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.drv.SetCurrent(b.ctx); err != nil {
		return err
	}
	err := b.drv.StreamSynchronize(b.stream)
	b.dropGraphsLocked()
	b.release()
	b.closed = true
	return err
}

// release frees what newBackend made; the context must be current.
func (b *Backend) release() {
	b.freeBLAS()
	b.freeAttention()
	b.stage.free(b.drv)
	for _, m := range b.modules {
		b.drv.ModuleUnload(m)
	}
	b.modules = nil
	if b.stream != 0 {
		b.drv.StreamDestroy(b.stream)
		b.stream = 0
	}
	if b.ctx != 0 {
		b.drv.PrimaryCtxRelease(b.dev)
		b.ctx = 0
	}
}

// enter serialises a call and makes the context current on this goroutine's
// OS thread (the driver's current context is per thread and Go moves
// goroutines between threads). A successful enter is paired with leave; a
// failed one has already undone itself.
func (b *Backend) enter() error {
	if b.mode != modeEager {
		b.opSeq++
		return nil // GraphStep holds the lock, the thread and the context
	}
	b.mu.Lock()
	b.opSeq++
	runtime.LockOSThread()
	err := b.drv.SetCurrent(b.ctx)
	if b.closed {
		err = fmt.Errorf("gpu: backend is closed")
	}
	if err != nil {
		b.leave()
	}
	return err
}

func (b *Backend) leave() {
	if b.mode != modeEager {
		return
	}
	runtime.UnlockOSThread()
	b.mu.Unlock()
}

// kernel is a loaded function and its name for error messages.
type kernel struct {
	fn   cuda.Function
	name string
	pdl  bool // starts with rf_pdl_entry: may be launched with programmatic dependent launch
}

// pdlKernel reports whether a kernel begins with rf_pdl_entry (quant.h),
// so that it may be launched before its predecessor finishes: the decode
// kernels, whose launch latency is a large part of a small model's step.
func pdlKernel(name string) bool {
	switch name {
	case "quantize_q8_f32", "argmax_f32", "rmsnorm_f32", "add_rmsnorm_f32", "swiglu_q8_f32", "rope_f32",
		"attention_combine", "attention_f32", "attention_f16", "attention_q8_0s":
		return true
	}
	return strings.HasPrefix(name, "mmvq_") || strings.HasPrefix(name, "matvecm_") ||
		strings.HasPrefix(name, "rope_kv_") ||
		(strings.HasPrefix(name, "matvec_") && !strings.HasPrefix(name, "matvec_gen_"))
}

// pdlLauncher is the driver's programmatic dependent launch (package cuda's
// Driver has it).
type pdlLauncher interface {
	HasPDL() bool
	LaunchKernelPDL(f cuda.Function, grid, block cuda.Dim3, sharedMem uint32, s cuda.Stream, params unsafe.Pointer) error
}

// kernels holds every function, looked up once at start.
type kernels struct {
	all map[string]kernel

	add, scale, softcap, swiglu, geglu, gelu, addbias, copyCols kernel
	softmax, rmsnorm, layernorm, rope                           kernel
	addRMSNorm                                                  kernel
}

func (b *Backend) loadKernels(images map[string][]byte) error {
	b.k.all = map[string]kernel{}
	for prog, img := range images {
		mod, err := b.drv.ModuleLoadData(img)
		if err != nil {
			return fmt.Errorf("gpu: loading %s: %w", prog, err)
		}
		b.modules = append(b.modules, mod)
		for _, name := range kernelNames(prog) {
			fn, err := b.drv.ModuleGetFunction(mod, name)
			if err != nil {
				return fmt.Errorf("gpu: %s: %w", prog, err)
			}
			b.k.all[name] = kernel{fn: fn, name: name, pdl: pdlKernel(name)}
		}
	}
	get := func(name string) kernel {
		k, ok := b.k.all[name]
		if !ok {
			panic("gpu: kernel " + name + " not declared in kernelNames") // a programming error the tests catch
		}
		return k
	}
	k := &b.k
	k.add, k.scale, k.softcap = get("add_f32"), get("scale_f32"), get("softcap_f32")
	k.swiglu, k.geglu, k.gelu = get("swiglu_f32"), get("geglu_f32"), get("gelu_f32")
	k.addbias, k.copyCols, k.softmax = get("addbias_f32"), get("copy_cols_f32"), get("softmax_f32")
	k.rmsnorm, k.layernorm, k.rope = get("rmsnorm_f32"), get("layernorm_f32"), get("rope_f32")
	k.addRMSNorm = get("add_rmsnorm_f32")
	for _, name := range attentionKernelNames() {
		get(name)
	}
	return b.loadAttention() // attention.go
}

// layoutNames are the kernel-name suffixes of each weight type's device
// layout (Q4_0 and Q8_0 are stored split, hence the "s").
var layoutNames = map[ggml.Type]string{
	ggml.F32: "f32", ggml.F16: "f16", ggml.BF16: "bf16",
	ggml.Q4_0: "q4_0s", ggml.Q8_0: "q8_0s", ggml.Q4_1: "q4_1", ggml.Q5_0: "q5_0", ggml.Q5_1: "q5_1",
	ggml.Q8_1: "q8_1", ggml.Q2_K: "q2_k", ggml.Q3_K: "q3_k", ggml.Q4_K: "q4_k", ggml.Q5_K: "q5_k",
	ggml.Q6_K: "q6_k", ggml.Q8_K: "q8_k",
}

// fastMatVec lists the layouts with a dedicated matrix-vector kernel.
var fastMatVec = map[string]bool{"f32": true, "f16": true, "bf16": true, "q8_0s": true, "q4_0s": true,
	"q4_1": true, "q5_0": true, "q5_1": true, "q4_k": true, "q5_k": true, "q6_k": true}

// matVecTokens are the token counts the matrix-vector kernels are built for.
var matVecTokens = []int{1, 2, 4, 8}

// kernelNames lists the extern "C" functions each program defines.
func kernelNames(prog string) []string {
	var names []string
	switch prog {
	case "elementwise.cu":
		names = []string{"add_f32", "scale_f32", "softcap_f32", "swiglu_f32", "geglu_f32", "gelu_f32",
			"addbias_f32", "copy_cols_f32", "softmax_f32", "rmsnorm_f32", "layernorm_f32", "add_rmsnorm_f32",
			"swiglu_q8_f32", "swiglu_h_f32"}
	case "rope.cu":
		names = []string{"rope_f32"}
		for _, l := range attLayouts {
			names = append(names, ropeKVNames[l])
		}
	case "attention.cu":
		names = attentionKernelNames()
	case "embedding.cu":
		for _, l := range layoutNames {
			names = append(names, "embedding_"+l)
			if l != "f32" {
				names = append(names, "dequant_"+l)
			}
		}
	case "convert.cu":
		names = []string{"f32_to_f16", "f32_to_bf16"}
		for _, l := range layoutNames {
			if l != "f32" && l != "f16" && l != "bf16" {
				names = append(names, "tohalf_"+l)
			}
		}
	case "mma.cu":
		names = mmaKernelNames()
	case "mmq.cu":
		names = mmqKernelNames()
	case "topk.cu":
		names = []string{"topk_f32"}
	case "mmvq.cu":
		names = []string{"quantize_q8_f32", "argmax_f32"}
		for _, byNT := range mmvqNames {
			for _, name := range byNT {
				names = append(names, name)
			}
		}
	case "matmul.cu":
		for _, l := range layoutNames {
			names = append(names, "gemm_"+l, "matvec_gen_"+l+"_1", "matvec_gen_"+l+"_8")
			if fastMatVec[l] {
				for _, nt := range matVecTokens {
					names = append(names, fmt.Sprintf("matvec_%s_%d", l, nt))
					if floatMulti[l] {
						names = append(names, fmt.Sprintf("matvecm_%s_%d", l, nt))
					}
				}
			}
		}
	}
	return names
}

// launchArgs is the kernel parameter block: each parameter's value in its
// own 8-byte slot and, once, an array of pointers to the slots, which is
// what cuLaunchKernel reads. It lives on the heap for the backend's life,
// so launches allocate nothing.
type launchArgs struct {
	vals [32]uint64
	ptrs [32]unsafe.Pointer
	n    int
}

func newLaunchArgs() *launchArgs {
	a := &launchArgs{}
	for i := range a.vals {
		a.ptrs[i] = unsafe.Pointer(&a.vals[i])
	}
	return a
}

func (a *launchArgs) reset() *launchArgs { a.n = 0; return a }

func (a *launchArgs) put(v uint64) *launchArgs {
	a.vals[a.n] = v
	a.n++
	return a
}

func (a *launchArgs) ptr(p cuda.DevicePtr) *launchArgs { return a.put(uint64(p)) }
func (a *launchArgs) i32(v int) *launchArgs            { return a.put(uint64(uint32(int32(v)))) }
func (a *launchArgs) i64(v int64) *launchArgs          { return a.put(uint64(v)) }
func (a *launchArgs) f32(v float32) *launchArgs {
	return a.put(uint64(*(*uint32)(unsafe.Pointer(&v))))
}

// launch queues k with the parameters in b.args.
func (b *Backend) launch(k kernel, grid, block cuda.Dim3, smem int) error {
	if grid.Y == 0 {
		grid.Y = 1
	}
	if grid.Z == 0 {
		grid.Z = 1
	}
	if block.Y == 0 {
		block.Y = 1
	}
	if block.Z == 0 {
		block.Z = 1
	}
	var err error
	if k.pdl && b.pdl != nil {
		err = b.pdl.LaunchKernelPDL(k.fn, grid, block, uint32(smem), b.stream, unsafe.Pointer(&b.args.ptrs[0]))
		if err != nil && b.mode != modeCapture {
			// A driver that refuses the attribute: launch plainly from now on.
			b.pdl = nil
			err = b.drv.LaunchKernel(k.fn, grid, block, uint32(smem), b.stream, unsafe.Pointer(&b.args.ptrs[0]))
		}
	} else {
		err = b.drv.LaunchKernel(k.fn, grid, block, uint32(smem), b.stream, unsafe.Pointer(&b.args.ptrs[0]))
	}
	if err != nil {
		return fmt.Errorf("gpu: %s: %w", k.name, err)
	}
	if b.syncEachOp && b.mode != modeCapture {
		if err := b.drv.StreamSynchronize(b.stream); err != nil {
			return fmt.Errorf("gpu: %s: %w", k.name, err)
		}
	}
	return nil
}

// gridFor is the 1-D grid for a grid-stride loop over n elements.
func (b *Backend) gridFor(n int64, threads int) cuda.Dim3 {
	blocks := (n + int64(threads) - 1) / int64(threads)
	limit := int64(b.sms) * 32
	blocks = max(1, min(blocks, limit))
	return cuda.Dim3{X: uint32(blocks)}
}

// KernelInfo reports, for each loaded kernel, its registers per thread and
// local-memory (spill) bytes per thread: a quick look for spills.
func (b *Backend) KernelInfo() (string, error) {
	if err := b.enter(); err != nil {
		return "", err
	}
	defer b.leave()
	var sb strings.Builder
	names := make([]string, 0, len(b.k.all))
	for n := range b.k.all {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		k := b.k.all[n]
		regs, err := b.drv.FuncAttribute(k.fn, cuda.FuncAttrNumRegs)
		if err != nil {
			return "", err
		}
		local, err := b.drv.FuncAttribute(k.fn, cuda.FuncAttrLocalSizeBytes)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&sb, "%-24s regs %3d local %4d B\n", n, regs, local)
	}
	return sb.String(), nil
}

// graph is a captured sequence of ops that replays with one launch.
type graph struct {
	g    cuda.Graph
	exec cuda.GraphExec
}

// capture records the ops f queues (nothing runs) into a graph, for the
// benchmarks. Ops that stage batch arrays capture the staging copy from its
// current host bytes, so only ops without batch arrays (MatMul, the
// elementwise ops) replay meaningfully here; GraphStep (graph.go) is the
// graph path for whole steps with changing index arrays.
func (b *Backend) capture(f func() error) (*graph, error) {
	if err := b.enter(); err != nil {
		return nil, err
	}
	err := b.drv.StreamBeginCapture(b.stream)
	b.leave()
	if err != nil {
		return nil, err
	}
	ferr := f()
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	g, err := b.drv.StreamEndCapture(b.stream)
	if ferr != nil || err != nil {
		if g != 0 {
			b.drv.GraphDestroy(g)
		}
		if ferr != nil {
			return nil, ferr
		}
		return nil, err
	}
	exec, err := b.drv.GraphInstantiate(g)
	if err != nil {
		b.drv.GraphDestroy(g)
		return nil, err
	}
	return &graph{g: g, exec: exec}, nil
}

// replay queues a captured graph.
func (b *Backend) replay(g *graph) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.drv.GraphLaunch(g.exec, b.stream)
}

// destroy releases a graph.
func (b *Backend) destroy(g *graph) {
	if err := b.enter(); err != nil {
		return
	}
	defer b.leave()
	b.drv.GraphExecDestroy(g.exec)
	b.drv.GraphDestroy(g.g)
}

// sync waits for all queued work.
func (b *Backend) sync() error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.drv.StreamSynchronize(b.stream); err != nil {
		return err
	}
	b.stage.idle()
	return nil
}
