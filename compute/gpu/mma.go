package gpu

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/rocmforge/rocmforge/compute"
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

// The mmq kernels (kernels/mmq.cu): Q4_0 and Q8_0 weights, the A operand
// dequantized in registers, split-k parts summed within a thread block
// cluster, up to three weights a launch. mmqTokenTiles are their token
// tiles (BN), mmqSplits the cluster sizes (parts of k) they are built for.
var (
	mmqLayouts    = map[string]bool{"q4_0s": true, "q8_0s": true}
	mmqTokenTiles = []int{8, 16, 32, 64}
	mmqSplits     = []int{1, 2, 3, 4, 8}
)

// mmqNames[layout][bn][split] is the register-staged kernel's name,
// mmqaNames the cp.async one's.
var mmqNames, mmqaNames = mmqNameTable("mmq"), mmqNameTable("mmqa")

func mmqNameTable(prefix string) map[string]map[int]map[int]string {
	names := map[string]map[int]map[int]string{}
	for l := range mmqLayouts {
		names[l] = map[int]map[int]string{}
		for _, bn := range mmqTokenTiles {
			names[l][bn] = map[int]string{}
			for _, s := range mmqSplits {
				names[l][bn][s] = fmt.Sprintf("%s_%s_%d_s%d", prefix, l, bn, s)
			}
		}
	}
	return names
}

// mmqKernelNames lists the functions mmq.cu defines (for kernelNames).
func mmqKernelNames() []string {
	var names []string
	for _, table := range []map[string]map[int]map[int]string{mmqNames, mmqaNames} {
		for _, byBN := range table {
			for _, bySplit := range byBN {
				for _, n := range bySplit {
					names = append(names, n)
				}
			}
		}
	}
	return names
}

// mmqStages and mmqQuantUnits are MMQ_STAGES and each layout's MQ<T>::QU
// in mmq.cu (16-byte quant units of a block).
const mmqStages = 3

var mmqQuantUnits = map[string]int{"q4_0s": 1, "q8_0s": 2}

// mmqSmem is the dynamic shared memory of the mmq kernel with token tile bn
// and split parts: two activation buffers (MMQ_XS_BYTES), or the f32 tile
// the parts sum (BN rows of MMQ_RLD floats) if larger; for the cp.async
// kernel (async), mmqStages activation buffers and weight stages (the quant
// units and a scale word for each of a thread's 4 rows).
func mmqSmem(layout string, bn, split int, async bool) int {
	xs := 2 * (4*bn*64 + 4*32)
	if async {
		xs = mmqStages * (4*bn*64 + 4*32 + 4*mmqQuantUnits[layout]*mmaThreads*16 + 4*mmaThreads*4)
	}
	if split == 1 {
		return xs
	}
	return max(xs, bn*132*4)
}

// mmqMinTokens is, by layout, the smallest batch of at most maxMatVecTokens
// tokens that the mmq kernels take instead of the matrix-vector kernels
// (0: none; larger batches follow the mma path's limits). From bench
// --parallel 2-8 on the H100 (docs/perf.md, "Batched decode, round 2"): 7B
// Q4_0 steps of 6 and 8 sequences 1.37x and 1.41x faster than on mmvq,
// no gain at 4 (mmvq's 8-token kernel serves 5 to 8 tokens at one cost);
// TinyLlama Q8_0 ones 8 % slower at 6 and even at 8, so Q8_0 stays on mmvq.
// ROCMFORGE_GPU_MMQ_MIN=N sets every layout's (0: off).
var mmqMinTokens = map[string]int{"q4_0s": 5, "q8_0s": 0}

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
	mmq       bool           // the mmq kernels take Q4_0 and Q8_0 where k allows (sm_90)
	mmqOff    string         // why they do not
	mmqSplit  int            // ROCMFORGE_GPU_MMQ_SPLIT: parts of k (0: planMMQ's choice)
	mmqAsync  bool           // the cp.async kernels (ROCMFORGE_GPU_MMQ_ASYNC=1; slower on the H100)
	mmqMin    map[string]int // mmqMinTokens, or ROCMFORGE_GPU_MMQ_MIN
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
	mm.mmq, mm.mmqOff = false, ""
	switch {
	case major < 90:
		mm.mmqOff = "off (needs sm_90 for thread block clusters, device is " + b.arch + ")"
	case os.Getenv("ROCMFORGE_GPU_MMQ") == "0":
		mm.mmqOff = "off (ROCMFORGE_GPU_MMQ=0)"
	default:
		mm.mmq = true
		for ai, table := range []map[string]map[int]map[int]string{mmqNames, mmqaNames} {
			for l, byBN := range table {
				for bn, bySplit := range byBN {
					for split, name := range bySplit {
						if err := setup(name, mmqSmem(l, bn, split, ai == 1)); err != nil {
							mm.mmq, mm.mmqOff = false, "off ("+err.Error()+")"
						}
					}
				}
			}
		}
	}
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_MMQ_SPLIT")); err == nil && slices.Contains(mmqSplits, v) {
		mm.mmqSplit = v
	}
	mm.mmqAsync = os.Getenv("ROCMFORGE_GPU_MMQ_ASYNC") == "1"
	mm.mmqMin = maps.Clone(mmqMinTokens)
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_MMQ_MIN")); err == nil && v >= 0 {
		for l := range mm.mmqMin {
			mm.mmqMin[l] = v
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

// useMMQ reports whether a product on the mma path (useMMA) by a weight in
// layout with rows of k takes the mmq kernels.
func (b *Backend) useMMQ(layout string, k int) bool {
	return b.blas.mma.mmq && mmqLayouts[layout] && k%mmaChunk == 0 && k > 0
}

// useMMQSmall reports whether a product of n tokens, too few for the mma
// path (matrix-vector sizes), goes to the mmq kernels instead (mmqMin),
// which needs the large-batch path on (minTokens > 0), as useMMA does.
func (b *Backend) useMMQSmall(layout string, n, k int) bool {
	lo := b.blas.mma.mmqMin[layout]
	return lo > 0 && n >= lo && n <= maxMatVecTokens && b.blas.minTokens > 0 && !b.useBLAS(n) && b.useMMQ(layout, k)
}

// mmqPlan is one mmq launch: the kernel, its token tile and split, the
// grid.
type mmqPlan struct {
	name           string
	smem           int
	bn, split      int
	tilesM, tilesN int
}

// mmqGPC is the multiprocessors of a GPC assumed when packing clusters
// (the H100 SXM's GPCs have 16 to 18): a cluster's blocks run in one GPC,
// so a wave holds floor(16·perSM/s) clusters of s per 16 multiprocessors.
// mmqPartChunks is what a part costs besides its chunks (the first loads,
// the cluster's sum), in chunk-times.
const (
	mmqGPC        = 16
	mmqPartChunks = 2
)

// planMMQ picks the token tile for n tokens and the parts of k for tilesM
// row tiles (of all the launch's weights) of k columns: the split that
// needs the fewest chunk-times, counted as waves of resident clusters
// times (chunks a part + mmqPartChunks); ties go to fewer parts.
func (b *Backend) planMMQ(layout string, tilesM, n, k int) mmqPlan {
	p := mmqPlan{bn: mmqTokenTiles[len(mmqTokenTiles)-1], tilesM: tilesM}
	for _, bn := range mmqTokenTiles {
		if n <= bn {
			p.bn = bn
			break
		}
	}
	p.tilesN = (n + p.bn - 1) / p.bn
	async := b.blas.mma.mmqAsync
	names := mmqNames
	if async {
		names = mmqaNames
	}
	chunks := k / mmaChunk
	tiles := p.tilesM * p.tilesN
	best := math.MaxInt
	p.split = 1
	for _, s := range mmqSplits {
		if s > chunks {
			break
		}
		perSM := max(1, b.blas.mma.slots[names[layout][p.bn][s]]/max(1, b.sms))
		slots := max(s, mmqGPC*perSM/s*s*b.sms/mmqGPC)
		if cost := (tiles*s + slots - 1) / slots * ((chunks+s-1)/s + mmqPartChunks); cost < best {
			p.split, best = s, cost
		}
	}
	if f := b.blas.mma.mmqSplit; f > 0 {
		p.split = min(f, max(1, chunks))
		if !slices.Contains(mmqSplits, p.split) {
			p.split = 1
		}
	}
	p.name, p.smem = names[layout][p.bn][p.split], mmqSmem(layout, p.bn, p.split, async)
	return p
}

// matmulMMQ multiplies x (n rows of k, buffer xb) by up to three weights of
// one layout on the mmq kernels (the context is current; useMMQ holds): the
// activations rounded to f16 once, then one launch for every weight.
func (b *Backend) matmulMMQ(layout string, xb cuda.DevicePtr, n, k int, ts []mmvqTarget) error {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("matmul: %s weights, %d tokens of %d, mmq path: %w", layout, n, k, err)
	}
	bl := &b.blas
	nk := int64(n) * int64(k)
	if err := b.grow(&bl.xh, 2*nk); err != nil {
		return wrap(err)
	}
	if err := b.toHalf(xb, n, k); err != nil {
		return wrap(err)
	}
	var tiles [3]int
	a := b.args.reset()
	for i := range 3 {
		if i < len(ts) {
			t := ts[i]
			tiles[i] = (t.m + mmaRows - 1) / mmaRows
			a.ptr(t.w.ptr).ptr(t.w.aux).ptr(t.dst).i32(t.m)
		} else {
			a.ptr(0).ptr(0).ptr(0).i32(0)
		}
	}
	p := b.planMMQ(layout, tiles[0]+tiles[1]+tiles[2], n, k)
	a.i32(tiles[0]).i32(tiles[0] + tiles[1]).ptr(bl.xh.ptr).i32(k).i32(n)
	if p.tilesM == 0 {
		return nil
	}
	grid := cuda.Dim3{X: uint32(p.tilesM), Y: uint32(p.tilesN), Z: uint32(p.split)}
	return wrap(b.launch(b.k.all[p.name], grid, cuda.Dim3{X: mmaThreads}, p.smem))
}

// useMMQMulti reports whether products of n tokens of k by the weights wbs
// (one layout) go to the mmq kernels together.
func (b *Backend) useMMQMulti(layout string, n, k int, wbs []*devBuf) bool {
	if len(wbs) < 2 || n == 0 || !b.useMMQ(layout, k) {
		return false
	}
	if b.useMMQSmall(layout, n, k) {
		return true
	}
	for _, wb := range wbs {
		if !b.useMMA(wb, n, k) {
			return false
		}
	}
	return true
}

// matmulMMQMulti is MatMulMulti on the mmq kernels (useMMQMulti holds):
// one conversion of x and one launch for every weight.
func (b *Backend) matmulMMQMulti(dst []*compute.Tensor, x *compute.Tensor, w []*compute.Tensor, wbs [3]*devBuf) error {
	n, k := x.Rows(), x.Cols()
	if b.feeding() {
		// The graph step's feed pass sizes the scratch for the capture.
		return b.grow(&b.blas.xh, 2*int64(n)*int64(k))
	}
	ts, xb, err := b.multiTargets(dst, x, w, wbs)
	if err != nil {
		return err
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.matmulMMQ(wbs[0].layout, xb, n, k, ts[:len(w)])
}

// sizeMMA grows the activation and partial-sum scratch a MatMul of n
// tokens by an [m, k] weight needs on the mma path.
func (b *Backend) sizeMMA(layout string, n, m, k int) error {
	if err := b.grow(&b.blas.xh, 2*int64(n)*int64(k)); err != nil {
		return err
	}
	if b.useMMQ(layout, k) {
		return nil // no partial sums
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
	if b.useMMQ(wb.layout, k) {
		ts := [1]mmvqTarget{{w: wb, rb: rowBytes, dst: db.ptr, m: m}}
		return b.matmulMMQ(wb.layout, xb.ptr, n, k, ts[:])
	}
	if err := b.sizeMMA(wb.layout, n, m, k); err != nil {
		return wrap(err)
	}
	bl := &b.blas
	if err := b.toHalf(xb.ptr, n, k); err != nil {
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
