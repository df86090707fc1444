package gpu

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// The tensor-core path for mid-sized batches (kernels/mma.cu): batched
// decode of 9 to ~128 sequences multiplies quantized weights without first
// writing them out as f16 (the cuBLAS path writes and re-reads 2 bytes per
// weight per call, ~13 GB a step for a 7B model); each block dequantizes
// its weight tiles into shared memory and multiplies with mma.sync.

// Shape of the kernels (MMA_BM, MMA_BK, MMA_THREADS, MMA_LD in mma.cu).
const (
	mmaRows    = 128
	mmaChunk   = 128
	mmaThreads = 128
	mmaLD      = mmaChunk + 8
)

// mmaMaxTokens is, for each layout, the largest batch the mma kernels take
// by default (larger ones go to cuBLAS), from BenchmarkMatMulBatched on the
// H100 (docs/perf.md, "GPU batched decode"): Q4_0 and Q8_0 beat cuBLAS at
// 9-128 tokens on every 7B and TinyLlama shape but one (2048x2048 at 128
// tokens, 13.3 against 12.2 µs), Q4_K up to 32 tokens, Q6_K up to 16; F16
// loses at every size (its kernels stay, for ROCMFORGE_GPU_MMA_MAX). The
// other quantized layouts go through the generic dq<T> loader, unmeasured
// since the split-k fix: 16, Q4_K's limit when it used that loader.
// ROCMFORGE_GPU_MMA_MAX=N sets every layout's limit, ROCMFORGE_GPU_MMA=0
// turns the path off (for A/B timing).
var mmaMaxTokens = map[string]int{"q4_0s": 128, "q8_0s": 128, "q4_k": 32, "q6_k": 16, "q4_1": 16, "q5_0": 16,
	"q5_1": 16, "q2_k": 16, "q3_k": 16, "q5_k": 16, "f16": 0}

// mmaTokenTiles are the token tiles (BN) the kernels are built for.
var mmaTokenTiles = []int{16, 32, 64}

// mmaLayouts are the weight layouts with mma kernels: F16 and every
// quantized layout whose f16 rounding is what the cuBLAS path uses (F32
// stays on the exact float GEMM, BF16 on cuBLAS's bf16 GEMM).
var mmaLayouts = map[string]bool{"f16": true, "q4_0s": true, "q8_0s": true, "q4_1": true, "q5_0": true,
	"q5_1": true, "q2_k": true, "q3_k": true, "q4_k": true, "q5_k": true, "q6_k": true}

// mmaAsync lists the layouts whose weight bytes can be staged by cp.async
// (mma_async_*, WAsync in mma.cu), with the k they need a multiple of, the
// shared memory of their stages (STAGES × 128 rows × bytes a row), and
// whether they are used by default: on the H100 the cp.async kernel is
// 1.3-1.5× faster for Q4_K (whose register-staged loader decodes scales
// as soon as the bytes arrive, stalling on them) and 0.8-1.0× for Q4_0
// and Q8_0 (docs/perf.md). ROCMFORGE_GPU_MMA_ASYNC=1 uses it for all
// three, =0 for none.
var mmaAsync = map[string]struct {
	kMod, stageBytes int
	dflt             bool
}{
	"q4_0s": {128, 4 * 128 * 72, false}, "q8_0s": {128, 3 * 128 * 136, false}, "q4_k": {256, 4 * 128 * 80, true},
}

// mmaNames[layout][bn] is the kernel's name, mmaAsyncNames the cp.async
// one's.
var mmaNames, mmaAsyncNames = func() (map[string]map[int]string, map[string]map[int]string) {
	names, async := map[string]map[int]string{}, map[string]map[int]string{}
	for l := range mmaLayouts {
		names[l] = map[int]string{}
		for _, bn := range mmaTokenTiles {
			names[l][bn] = fmt.Sprintf("mma_%s_%d", l, bn)
		}
	}
	for l := range mmaAsync {
		async[l] = map[int]string{}
		for _, bn := range mmaTokenTiles {
			async[l][bn] = fmt.Sprintf("mma_async_%s_%d", l, bn)
		}
	}
	return names, async
}()

// mmaKernelNames lists the functions mma.cu defines (for kernelNames).
func mmaKernelNames() []string {
	names := []string{"mma_reduce"}
	for _, m := range []map[string]map[int]string{mmaNames, mmaAsyncNames} {
		for _, byBN := range m {
			for _, n := range byBN {
				names = append(names, n)
			}
		}
	}
	return names
}

// mmaSmem is the dynamic shared memory of the kernel with token tile bn
// (plus the cp.async stages of the async kernels).
func mmaSmem(bn int) int { return (mmaRows + bn) * mmaLD * 2 }

// mmaState is the mma path's settings and scratch.
type mmaState struct {
	maxTokens int             // batches of up to this many tokens (and at least minTokens) may use it; 0: off
	max       map[string]int  // the limit by layout (each at most maxTokens)
	off       string          // why the path is off
	slots     map[string]int  // blocks of each kernel resident at once on the device
	split     int             // ROCMFORGE_GPU_MMA_SPLIT: parts of k (0: planMMA's choice)
	async     map[string]bool // layouts on the cp.async kernels (where k allows)
	part      scratch
}

// regsPerSM bounds the resident blocks (every CUDA architecture with
// mma.sync has 64 Ki registers a multiprocessor); shared memory is read off
// the device (attrSmemPerSM, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR),
// else assumed 160 KiB (sm_80 to sm_90 have 164-228).
const (
	regsPerSM     = 64 << 10
	attrSmemPerSM = 81
)

// initMMA turns the path on when the device has mma.sync (sm_80 or newer,
// CUDA) and the kernels are loaded. The context must be current.
func (b *Backend) initMMA() {
	mm := &b.blas.mma
	var major int
	if _, err := fmt.Sscanf(b.arch, "sm_%d", &major); err != nil || major < 80 {
		mm.off = "off (needs sm_80 or newer, device is " + b.arch + ")"
		return
	}
	if os.Getenv("ROCMFORGE_GPU_MMA") == "0" {
		mm.off = "off (ROCMFORGE_GPU_MMA=0)"
		return
	}
	smemPerSM, err := b.drv.DeviceAttribute(b.dev, attrSmemPerSM)
	if err != nil || smemPerSM <= 0 {
		smemPerSM = 160 << 10
	}
	mm.slots = map[string]int{}
	setup := func(name string, smem int) error {
		k, ok := b.k.all[name]
		if !ok {
			return fmt.Errorf("kernel %s not loaded", name)
		}
		if err := b.drv.FuncSetAttribute(k.fn, cuda.FuncAttrMaxDynamicSharedMB, smem); err != nil {
			return fmt.Errorf("%s: %d bytes of shared memory: %w", name, smem, err)
		}
		regs, err := b.drv.FuncAttribute(k.fn, cuda.FuncAttrNumRegs)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// Registers are allocated 8 a thread at a time; a block also
		// reserves 1 KiB of shared memory.
		perSM := min(regsPerSM/(max(8, (regs+7)/8*8)*mmaThreads), smemPerSM/(smem+1024))
		mm.slots[name] = max(1, perSM) * b.sms
		return nil
	}
	for l, byBN := range mmaNames {
		for bn, name := range byBN {
			if err := setup(name, mmaSmem(bn)); err != nil {
				mm.off = "off (" + err.Error() + ")"
				return
			}
			if a, ok := mmaAsync[l]; ok {
				if err := setup(mmaAsyncNames[l][bn], mmaSmem(bn)+a.stageBytes); err != nil {
					mm.off = "off (" + err.Error() + ")"
					return
				}
			}
		}
	}
	mm.async = map[string]bool{}
	for l, a := range mmaAsync {
		switch os.Getenv("ROCMFORGE_GPU_MMA_ASYNC") {
		case "0":
		case "1":
			mm.async[l] = true
		default:
			mm.async[l] = a.dflt
		}
	}
	mm.max = maps.Clone(mmaMaxTokens)
	mm.maxTokens = slices.Max(slices.Collect(maps.Values(mm.max)))
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_MMA_MAX")); err == nil && v >= 0 {
		mm.maxTokens = v
		for l := range mm.max {
			mm.max[l] = v
		}
	}
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_MMA_SPLIT")); err == nil && v >= 1 {
		mm.split = v
	}
	if mm.maxTokens == 0 {
		mm.off = "off (ROCMFORGE_GPU_MMA_MAX=0)"
	}
}

// useMMA reports whether a MatMul of n tokens by the weight wb [m, k] that
// takes the large-batch path goes to the mma kernels.
func (b *Backend) useMMA(wb *devBuf, n, k int) bool {
	mm := &b.blas.mma
	return n <= mm.maxTokens && n <= mm.max[wb.layout] && b.useBLAS(n) && k%8 == 0 && mmaLayouts[wb.layout]
}

// mmaPlan is one launch: the kernel, the token tile, the grid and the k
// split.
type mmaPlan struct {
	name           string
	smem           int
	bn             int
	tilesM, tilesN int
	split          int
}

// Split-k cost model, fitted to BenchmarkMatMulBatched on the H100: a
// block takes about mmaChunkSec per chunk (its loads are one chunk ahead,
// so that is mostly memory latency), and each part costs writing and
// reading n·m floats at about mmaPartBW.
const (
	mmaChunkSec = 1.2e-6
	mmaPartBW   = 2.5e12
)

// planMMA picks the token tile for n tokens of a weight in layout and
// splits k when the grid of m rows would leave room on the device: s parts
// cut the chunk walk to chunks/s at the cost of s·n·m·8 bytes of partial
// sums, so s = sqrt(chunkSec·chunks·BW / (8·n·m)), within one wave of
// resident blocks (a second wave would cost a whole block's time) and at
// least a chunk a part.
func (b *Backend) planMMA(layout string, n, m, k int) mmaPlan {
	p := mmaPlan{bn: mmaTokenTiles[len(mmaTokenTiles)-1]}
	for _, bn := range mmaTokenTiles {
		if n <= bn {
			p.bn = bn
			break
		}
	}
	p.name, p.smem = mmaNames[layout][p.bn], mmaSmem(p.bn)
	if a, ok := mmaAsync[layout]; ok && b.blas.mma.async[layout] && k%a.kMod == 0 {
		p.name, p.smem = mmaAsyncNames[layout][p.bn], mmaSmem(p.bn)+a.stageBytes
	}
	p.tilesM, p.tilesN = (m+mmaRows-1)/mmaRows, (n+p.bn-1)/p.bn
	chunks := (k + mmaChunk - 1) / mmaChunk
	tiles := p.tilesM * p.tilesN
	s := int(math.Round(math.Sqrt(mmaChunkSec * float64(chunks) * mmaPartBW / (8 * float64(n) * float64(m)))))
	s = min(s, b.blas.mma.slots[p.name]/tiles)
	if b.blas.mma.split > 0 {
		s = b.blas.mma.split
	}
	p.split = 1
	if s = min(s, chunks); s > 1 {
		per := (chunks + s - 1) / s
		p.split = (chunks + per - 1) / per // no empty parts
	}
	return p
}

// sizeMMA grows the activation and partial-sum scratch a MatMul of n
// tokens by an [m, k] weight needs on the mma path.
func (b *Backend) sizeMMA(layout string, n, m, k int) error {
	if err := b.grow(&b.blas.xh, 2*int64(n)*int64(k)); err != nil {
		return err
	}
	p := b.planMMA(layout, n, m, k)
	if p.split == 1 {
		return nil
	}
	return b.grow(&b.blas.mma.part, 4*int64(p.split)*int64(n)*int64(m))
}

// matmulMMA is dst[n, m] = x[n, k] · w[m, k]ᵀ on the mma kernels (the
// context is current): the activations rounded to f16 into the scratch,
// the product, and the sum of the parts when k is split.
func (b *Backend) matmulMMA(wb, xb, db *devBuf, rowBytes int64, n, m, k int) error {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("matmul: %s weight [%d %d], %d tokens, mma path: %w", wb.typ, m, k, n, err)
	}
	if err := b.sizeMMA(wb.layout, n, m, k); err != nil {
		return wrap(err)
	}
	bl := &b.blas
	nk := int64(n) * int64(k)
	b.args.reset().ptr(bl.xh.ptr).ptr(xb.ptr).i64(nk)
	if err := b.launch(b.k.all["f32_to_f16"], b.gridFor(nk, 256), cuda.Dim3{X: 256}, 0); err != nil {
		return wrap(err)
	}
	p := b.planMMA(wb.layout, n, m, k)
	kern := b.k.all[p.name]
	b.args.reset().ptr(wb.ptr).ptr(wb.aux).i64(rowBytes).ptr(bl.xh.ptr).ptr(db.ptr).
		ptr(bl.mma.part.ptr).i32(m).i32(k).i32(n)
	grid := cuda.Dim3{X: uint32(p.tilesM), Y: uint32(p.tilesN), Z: uint32(p.split)}
	if err := b.launch(kern, grid, cuda.Dim3{X: mmaThreads}, p.smem); err != nil || p.split == 1 {
		return wrap(err)
	}
	nm := int64(n) * int64(m)
	b.args.reset().ptr(bl.mma.part.ptr).ptr(db.ptr).i32(p.split).i64(nm)
	return wrap(b.launch(b.k.all["mma_reduce"], b.gridFor(nm, 256), cuda.Dim3{X: 256}, 0))
}
