package gpu

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// attWarps is the warps per attention block when the grid is large
// (attMaxWarps when it is small); attNV is ATT_NV in
// attention.cu (per-lane V accumulators).
const (
	attWarps    = 4
	attMaxWarps = 16
	attNV       = 16
)

// Split-K decode: when a decode grid has few (row, head) blocks and the
// block tables hold at least attSplitMinRoom keys (attKeyRoom; below that
// the combine costs more than it saves: 13.5 µs unsplit against 18 µs split
// for one 7B-shaped row at 128 keys on the H100), each block's visible keys
// are split over up to attMaxSplits blocks (at least attSplitMinKeys keys
// each) so that the grid reaches about attSplitBlocksPerSM blocks per
// multiprocessor; the partial results go to
// a scratch of attPartials records, allocated once at start (a captured
// graph keeps its address), and attention_combine merges them.
// ROCMFORGE_GPU_ATT_SPLIT=0 turns it off and =N aims at N blocks per
// multiprocessor instead, for A/B timing.
const (
	attMaxSplits        = 32
	attSplitMinKeys     = 32
	attSplitMinRoom     = 512
	attSplitBlocksPerSM = 4
	attPartials         = 1024
)

// Grouped decode (attention_g<GM>v<VW>_<layout> in attention.cu): one block
// per (row, KV head, split) computes up to GM query heads sharing the KV head
// (GQA), reading each K and V row once instead of once per query head.
// attGroupSizes are the GM built, attGroupVW the head-dim paths (VW elements
// a lane; 0: any head dims, head_dim_v <= attGroupNV*warp), attGroupThreads
// the kernels' launch bound (ATG_THREADS), attGroupSmem the dynamic shared
// memory a block may take (the default limit). Calls of at least
// attGroupMinRows query rows take it (fewer rows: the per-head kernel's
// grid holds more blocks and shorter key walks; on the H100 at TinyLlama's
// shape the grouped kernel took 12.6 µs a layer against 16.5 at 8 rows and
// 9.5 against 8.9 at one; ROCMFORGE_GPU_ATT_GROUP=N moves the threshold to
// N rows, 0 turns the grouped kernel off). Its
// head-dim vector paths load each key group a group ahead
// (attention_g<GM>v<VW>p_<layout>; ROCMFORGE_GPU_ATT_PF=0: as used).
const (
	attKG           = 4 // ATT_KG: keys a warp reads at once
	attGroupNV      = 4
	attGroupThreads = 256
	attGroupSmem    = 48 << 10
	attGroupMinRows = 8
	// attGroupMaxSlots is the most pool rows the grouped kernel takes: it
	// computes a key's slot in 32 bits (signed, as the block tables).
	attGroupMaxSlots = math.MaxInt32
)

var (
	attGroupSizes = []int{2, 4, 8}
	attGroupVW    = []int{0, 2, 4}
)

// attLayouts are the pool types' kernel suffixes (layoutNames).
var attLayouts = []string{"f32", "f16", "q8_0s"}

// attGroupName is the grouped decode kernel for gm heads a block, head-dim
// path vw and pool layout l; pf: the variant that loads a key group's K
// and V a group ahead (vw > 0 only).
func attGroupName(gm, vw int, pf bool, l string) string {
	sfx := ""
	if pf {
		sfx = "p"
	}
	return "attention_g" + strconv.Itoa(gm) + "v" + strconv.Itoa(vw) + sfx + "_" + l
}

// attentionKernelNames lists attention.cu's kernels.
func attentionKernelNames() []string {
	names := []string{"attention_combine"}
	for _, l := range attLayouts {
		names = append(names, "attention_"+l, "attention_tile_"+l, "kvwrite_"+l)
		for _, gm := range attGroupSizes {
			for _, vw := range attGroupVW {
				names = append(names, attGroupName(gm, vw, false, l))
				if vw > 0 {
					names = append(names, attGroupName(gm, vw, true, l))
				}
			}
		}
	}
	return names
}

// attState is the attention kernels of each pool layout and the split-K
// scratch.
type attState struct {
	dec, tile, write map[string]kernel
	grp              map[string]kernel // grouped decode kernels by name (attGroupName)
	combine          kernel
	part             cuda.DevicePtr // attPartials records of attNV*warp+2 floats
	splitOn          bool
	perSM            int // split-K target blocks per multiprocessor
	// q8On: the decode kernels write the output's q8 activation blocks
	// for the output projection (ROCMFORGE_GPU_ATT_Q8=0: a separate
	// quantize launch, for A/B timing).
	q8On bool
	// groupMin: decode calls of at least groupMin rows whose query heads
	// share KV heads take the grouped kernel (0: never).
	groupMin int
	// groupPF: the grouped kernel's VW paths load each key group's K and V
	// a group ahead (ROCMFORGE_GPU_ATT_PF=0: as they are used, for A/B
	// timing).
	groupPF bool
}

// loadAttention looks up the attention kernels (after loadKernels has
// loaded the modules), raises the tiled kernels' shared-memory limit and
// allocates the split-K scratch.
func (b *Backend) loadAttention() error {
	a := &b.att
	a.dec, a.tile, a.write = map[string]kernel{}, map[string]kernel{}, map[string]kernel{}
	a.grp = map[string]kernel{}
	pdl := os.Getenv("ROCMFORGE_GPU_ATT_PDL") != "0"
	for _, l := range attLayouts {
		a.dec[l], a.tile[l], a.write[l] = b.k.all["attention_"+l], b.k.all["attention_tile_"+l], b.k.all["kvwrite_"+l]
		for _, gm := range attGroupSizes {
			for _, vw := range attGroupVW {
				for _, pf := range []bool{false, true} {
					if pf && vw == 0 {
						continue
					}
					// They start with rf_pdl_entry, as attention_<layout>.
					name := attGroupName(gm, vw, pf, l)
					k := b.k.all[name]
					k.pdl = pdl
					a.grp[name] = k
				}
			}
		}
		// 128-wide heads need more than the default 48 KiB.
		if err := b.drv.FuncSetAttribute(a.tile[l].fn, cuda.FuncAttrMaxDynamicSharedMB, atSmem(atMaxD, atMaxD)); err != nil {
			return fmt.Errorf("gpu: attention_tile_%s: %w", l, err)
		}
	}
	a.combine = b.k.all["attention_combine"]
	if !pdl {
		// Plain launches of the decode kernels (for A/B timing); their
		// rf_pdl_entry is then a no-op.
		for _, l := range attLayouts {
			k := a.dec[l]
			k.pdl = false
			a.dec[l] = k
		}
		a.combine.pdl = false
	}
	a.splitOn, a.perSM = true, attSplitBlocksPerSM
	a.q8On = os.Getenv("ROCMFORGE_GPU_ATT_Q8") != "0"
	a.groupMin = attGroupMinRows
	a.groupPF = os.Getenv("ROCMFORGE_GPU_ATT_PF") != "0"
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_ATT_GROUP")); err == nil {
		a.groupMin = max(v, 0)
	}
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_ATT_SPLIT")); err == nil {
		a.splitOn = v > 0
		a.perSM = min(max(v, 1), 64)
	}
	var err error
	if a.part, err = b.alloc(int64(attPartials) * int64(attNV*b.warp+2) * 4); err != nil {
		return fmt.Errorf("gpu: attention split-K scratch: %w", err)
	}
	return nil
}

// freeAttention releases the split-K scratch.
func (b *Backend) freeAttention() {
	if b.att.part != 0 {
		b.drv.MemFree(b.att.part)
		b.att.part = 0
	}
}

// attSplits is how many key splits a decode grid of blocks blocks, whose
// split partial results are recs records a split (rows × query heads), gets
// when its block tables hold keys positions (attKeyRoom; 1: no split).
func (b *Backend) attSplits(blocks, recs, keys int) int {
	target := b.att.perSM * b.sms
	if !b.att.splitOn || b.att.part == 0 || 2*blocks > target || keys < attSplitMinRoom {
		return 1
	}
	n := min((target+blocks-1)/blocks, keys/attSplitMinKeys, attPartials/recs, attMaxSplits)
	return max(n, 1)
}

// attDecPlan is a decode attention launch: the kernel, its grid (rows ×
// head blocks × splits), block and dynamic shared memory.
type attDecPlan struct {
	k       kernel
	grouped bool // the grouped kernel, gm heads a block
	gm      int
	splits  int
	warps   int
	smem    int
	grid    cuda.Dim3
}

// attGroupSmemBytes is a grouped block's dynamic shared memory.
func attGroupSmemBytes(gm, warps int, p compute.AttnParams) int {
	return 4 * (warps*(gm*attKG+8) + gm*p.HeadDim + warps*gm*(p.HeadDimV+2))
}

// attGroup picks the grouped kernel's heads a block (gm) and head-dim path
// (vw) for a call of n rows over a pool of slots rows, or reports that the
// per-head kernel takes it: no shared KV heads, fewer than groupMin rows,
// more slots than attGroupMaxSlots, a head_dim_v above the generic path's
// attGroupNV*warp, or shared memory over attGroupSmem.
func (b *Backend) attGroup(n, slots int, p compute.AttnParams) (gm, vw int, ok bool) {
	g := p.NHead / p.NKVHead
	if b.att.groupMin == 0 || n < b.att.groupMin || g < 2 || slots > attGroupMaxSlots ||
		attKG*attGroupSizes[len(attGroupSizes)-1] > b.warp {
		return 0, 0, false
	}
	if p.HeadDim == p.HeadDimV && (p.HeadDim == 2*b.warp || p.HeadDim == 4*b.warp) {
		vw = p.HeadDim / b.warp
	} else if p.HeadDimV > attGroupNV*b.warp {
		return 0, 0, false
	}
	gm = attGroupSizes[len(attGroupSizes)-1] // more heads: several blocks a KV head
	for _, s := range attGroupSizes {
		if s >= g {
			gm = s
			break
		}
	}
	if attGroupSmemBytes(gm, 1, p) > attGroupSmem {
		return 0, 0, false
	}
	return gm, vw, true
}

// attDec plans the decode kernel's launch for n query rows over block
// tables of keys positions (attKeyRoom; 0: no split) into a pool of slots
// rows. mixed: beside the tiled kernel, unsplit, attWarps warps a block.
func (b *Backend) attDec(layout string, n, slots int, p compute.AttnParams, keys int, mixed bool) attDecPlan {
	pl := attDecPlan{k: b.att.dec[layout], splits: 1, warps: attWarps}
	heads := p.NHead // blocks a row
	gm, vw, grouped := b.attGroup(n, slots, p)
	if grouped {
		pl.k, pl.grouped, pl.gm = b.att.grp[attGroupName(gm, vw, b.att.groupPF && vw > 0, layout)], true, gm
		heads = p.NKVHead * ((p.NHead/p.NKVHead + gm - 1) / gm)
	}
	if !mixed {
		pl.splits = b.attSplits(n*heads, n*p.NHead, keys)
		// Decode has few blocks, each walking its context in one dependent
		// chain of loads per warp: give them more warps, up to 16 (8 for
		// the grouped kernel), until the grid holds about 16 warps per
		// multiprocessor.
		maxWarps := b.attMaxWarps
		if grouped {
			maxWarps = min(maxWarps, attGroupThreads/b.warp)
		}
		for pl.warps < maxWarps && n*heads*pl.splits*pl.warps < 16*b.sms &&
			(!grouped || attGroupSmemBytes(gm, 2*pl.warps, p) <= attGroupSmem) {
			pl.warps *= 2
		}
	}
	if grouped {
		for pl.warps > 1 && attGroupSmemBytes(gm, pl.warps, p) > attGroupSmem {
			pl.warps /= 2
		}
		pl.smem = attGroupSmemBytes(gm, pl.warps, p)
	} else {
		pl.smem = 4 * (p.HeadDim + pl.warps*(p.HeadDimV+2))
	}
	pl.grid = cuda.Dim3{X: uint32(n), Y: uint32(heads), Z: uint32(pl.splits)}
	return pl
}

// attKeyRoom is the keys a graph step's block tables hold for seqs: the
// longest context's blocks rounded up to a power of two, at least 16.
func attKeyRoom(seqs []compute.SeqAttn, bs int) int {
	used, r := 0, 16
	for _, s := range seqs {
		used = max(used, (s.CtxLen+bs-1)/bs)
	}
	for r < used {
		r *= 2
	}
	return r * bs
}

// kvBufs returns a pool's device buffers (CheckKVPool has passed).
func (b *Backend) kvBufs(op string, pool compute.KVPool) (k, v *devBuf, err error) {
	if k, err = b.buf(op, "pool K", pool.K); err != nil {
		return nil, nil, err
	}
	if v, err = b.buf(op, "pool V", pool.V); err != nil {
		return nil, nil, err
	}
	return k, v, nil
}

// The tiled prompt kernel (attention_tile_<type>): AT_WARPS, AT_RPW, AT_QT,
// AT_KT and AT_MAXD in attention.cu, and the smallest batch that uses it
// (ROCMFORGE_GPU_ATT_TILE=0 turns it off, for A/B timing).
const (
	atWarps   = 4
	atRPW     = 8
	atQT      = atWarps * atRPW
	atKT      = 32
	atMaxD    = 128
	atMinRows = 64
	// atSeqRows is the fewest query rows of one sequence that the tiled
	// kernel takes; shorter runs (decode rows above all) go to the per-row
	// kernel, which reads a sequence's keys once per row but runs its rows
	// in parallel, where a tile walks its segments one after another.
	atSeqRows = 16
	// atTiledFlag marks a row of the tiled kernel in rowSeq (AT_TILED in
	// attention.cu).
	atTiledFlag = 1 << 30
)

// atSmem is the tiled kernel's dynamic shared memory in bytes.
func atSmem(hd, hdv int) int {
	return 4 * (atQT*(hd+4) + atKT*(hd+4) + atKT*hdv + atWarps*atRPW*atKT)
}

// attTiled reports whether Attention over seqs takes the tiled kernel: for
// the sequences of at least atSeqRows query rows, when they hold atMinRows
// rows or more. mixed reports that other sequences' rows (decodes) go to
// the per-row kernel in the same call.
func (b *Backend) attTiled(seqs []compute.SeqAttn, p compute.AttnParams) (tiled, mixed bool) {
	if !b.attTileOn || b.warp != 32 || p.HeadDim%4 != 0 || p.HeadDimV%4 != 0 || p.HeadDim > atMaxD || p.HeadDimV > atMaxD {
		return false, false
	}
	rows := 0
	for _, s := range seqs {
		if s.QLen >= atSeqRows {
			rows += s.QLen
		} else if s.QLen > 0 {
			mixed = true
		}
	}
	if rows < atMinRows {
		return false, false
	}
	return true, mixed
}

// KVWrite implements compute.Backend: row i of k and v goes to row
// slots[i] of the pool, converted to its type as compute.EncodeKVRow does
// (the same bytes).
func (b *Backend) KVWrite(pool compute.KVPool, k, v *compute.Tensor, slots []int32) error {
	if err := compute.CheckKVWrite(pool, k, v, slots); err != nil {
		return err
	}
	const op = "kvwrite"
	kp, vp, err := b.kvBufs(op, pool)
	if err != nil {
		return err
	}
	kb, err := b.f32Buf(op, "k", k)
	if err != nil {
		return err
	}
	vb, err := b.f32Buf(op, "v", v)
	if err != nil {
		return err
	}
	n := len(slots)
	if n == 0 {
		return nil
	}
	if b.feeding() {
		return b.stagePut(true, slots)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.stagePut(true, slots); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	b.args.reset().ptr(kp.ptr).ptr(kp.aux).ptr(vp.ptr).ptr(vp.aux).ptr(kb.ptr).ptr(vb.ptr).ptr(b.stage.ptrs[0]).
		i32(k.Cols()).i32(v.Cols())
	work := max(k.Cols(), v.Cols())
	if kp.layout == "q8_0s" {
		work /= 32 // a thread per block
	}
	return b.launch(b.att.write[kp.layout], cuda.Dim3{X: uint32(n)}, cuda.Dim3{X: uint32(b.rowThreads(work))}, 0)
}

// Attention implements compute.Backend: paged attention, one block per
// (query row, head), keys read through each sequence's block table, from a
// pool of any KV type; a small decode grid with long contexts is split
// over the keys (attSplits). Decode calls of many rows whose query heads
// share KV heads take one block per (row, KV head) (attGroup).
func (b *Backend) Attention(out, q *compute.Tensor, pool compute.KVPool, pos []int32, seqs []compute.SeqAttn, p compute.AttnParams) error {
	if err := compute.CheckAttention(out, q, pool, pos, seqs, p); err != nil {
		return err
	}
	const op = "attention"
	ob, err := b.f32Buf(op, "out", out)
	if err != nil {
		return err
	}
	qb, err := b.f32Buf(op, "q", q)
	if err != nil {
		return err
	}
	if ob == qb {
		return fmt.Errorf("%s: out %s and q %s share storage", op, out, q)
	}
	kp, vp, err := b.kvBufs(op, pool)
	if err != nil {
		return err
	}
	if p.HeadDimV > attNV*b.warp {
		return fmt.Errorf("%s: HeadDimV %d above the GPU kernel's limit of %d", op, p.HeadDimV, attNV*b.warp)
	}
	n := q.Shape[0]
	if n == 0 {
		return nil
	}
	tiled, mixed := b.attTiled(seqs, p)
	tileMin := 0 // rows of sequences with at least tileMin rows are the tiled kernel's
	if tiled {
		tileMin = atSeqRows
	}
	if b.feeding() {
		return b.stageAttention(pool.BlockSize, pos, seqs, tileMin)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.stageAttention(pool.BlockSize, pos, seqs, tileMin); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	sp := b.stage.ptrs
	causal := 0
	if p.Causal {
		causal = 1
	}
	common := func() {
		b.args.reset().ptr(ob.ptr).ptr(qb.ptr).ptr(kp.ptr).ptr(kp.aux).ptr(vp.ptr).ptr(vp.aux).
			ptr(sp[0]).ptr(sp[1]).ptr(sp[2]).ptr(sp[3]).
			i32(p.NHead).i32(p.NKVHead).i32(p.HeadDim).i32(p.HeadDimV).i32(pool.BlockSize).f32(p.Scale).
			i32(causal).i32(p.Window).f32(p.Softcap)
	}
	common()
	if tiled {
		if mixed {
			// The per-row kernel first, unsplit, for the short sequences'
			// rows (it leaves the tiled rows alone); then the tiles.
			b.args.ptr(0).ptr(0).ptr(0)
			pl := b.attDec(kp.layout, n, pool.K.Shape[0], p, 0, true)
			if err := b.launch(pl.k, pl.grid, cuda.Dim3{X: uint32(pl.warps * b.warp)}, pl.smem); err != nil {
				return err
			}
			common()
		}
		b.args.i32(n)
		grid := cuda.Dim3{X: uint32((n + atQT - 1) / atQT), Y: uint32(p.NHead)}
		return b.launch(b.att.tile[kp.layout], grid, cuda.Dim3{X: atWarps * 32}, atSmem(p.HeadDim, p.HeadDimV))
	}
	// The split depends on the keys a graph step's block tables can hold
	// (the longest context's blocks rounded up to a power of two, at least
	// 16; stageAttention), not on this step's contexts: the step is replayed
	// until a context outgrows its tables, and its grid is fixed. Eager
	// calls round the same way, so that a step gives the same bits with or
	// without graphs.
	pl := b.attDec(kp.layout, n, pool.K.Shape[0], p, attKeyRoom(seqs, pool.BlockSize), false)
	splits, block := pl.splits, cuda.Dim3{X: uint32(pl.warps * b.warp)}
	// The output's q8 blocks for the output projection's 8-bit product,
	// written by whichever kernel writes the output (whole 32-element
	// blocks within a head).
	var xq, xd cuda.DevicePtr
	if b.att.q8On && p.HeadDimV%32 == 0 {
		xq, xd = b.q8Emit(n, p.NHead*p.HeadDimV)
	}
	if splits == 1 {
		b.args.ptr(0).ptr(xq).ptr(xd)
		if err := b.launch(pl.k, pl.grid, block, pl.smem); err != nil {
			return err
		}
	} else {
		b.args.ptr(b.att.part).ptr(0).ptr(0)
		if err := b.launch(pl.k, pl.grid, block, pl.smem); err != nil {
			return err
		}
		b.args.reset().ptr(ob.ptr).ptr(b.att.part).i32(p.NHead).i32(p.HeadDimV).i32(splits).ptr(xq).ptr(xd)
		if err := b.launch(b.att.combine, cuda.Dim3{X: uint32(n), Y: uint32(p.NHead)}, cuda.Dim3{X: uint32(min(b.rowThreads(p.HeadDimV), 256))}, 0); err != nil {
			return err
		}
	}
	if xq != 0 {
		b.q8Mark(ob.ptr, n, p.NHead*p.HeadDimV)
	}
	return nil
}

// stageAttention stages the attention descriptors: pos [n], rowSeq [n] (the
// sequence of each query row, -1 for none), seqInfo [2*len(seqs)] (CtxLen
// and block-table offset of each sequence) and the block tables, packed
// into one host scratch slice. Eager mode packs the used part of each table
// back to back. In a graph step every table gets the same power-of-two
// room, so the layout, which the step's graph is bound to, changes only
// when a context outgrows it; and the descriptors, which every layer
// shares, are staged once per step.
//
// tileMin > 0 marks the rows of sequences with at least tileMin query rows
// as the tiled kernel's (rowSeq = atTiledFlag + sequence).
func (b *Backend) stageAttention(bs int, pos []int32, seqs []compute.SeqAttn, tileMin int) error {
	graph := b.mode != modeEager
	m := &b.step.att
	if graph && m.valid && m.pos == unsafe.SliceData(pos) && m.nPos == len(pos) &&
		m.seqs == unsafe.SliceData(seqs) && m.nSeqs == len(seqs) && m.bs == bs && m.tileMin == tileMin {
		b.stage.ptrs[0], b.stage.ptrs[1], b.stage.ptrs[2], b.stage.ptrs[3] = m.p0, m.p1, m.p2, m.p3
		return nil
	}
	n := len(pos)
	room := 0 // graph mode: block-table entries per sequence
	nBlocks := 0
	for _, s := range seqs {
		used := (s.CtxLen + bs - 1) / bs
		nBlocks += used
		room = max(room, used)
	}
	if graph {
		r := 16
		for r < room {
			r *= 2
		}
		room = r
		nBlocks = room * len(seqs)
	}
	need := n + 2*len(seqs) + nBlocks
	if cap(b.ints) < need {
		b.ints = make([]int32, need)
	}
	ints := b.ints[:need]
	rowSeq, seqInfo, blocks := ints[:n], ints[n:n+2*len(seqs)], ints[n+2*len(seqs):]
	for i := range rowSeq {
		rowSeq[i] = -1
	}
	off := 0
	for si, s := range seqs {
		owner := int32(si)
		if tileMin > 0 && s.QLen >= tileMin {
			owner += atTiledFlag
		}
		for i := s.QStart; i < s.QStart+s.QLen; i++ {
			rowSeq[i] = owner
		}
		used := (s.CtxLen + bs - 1) / bs
		seqInfo[2*si], seqInfo[2*si+1] = int32(s.CtxLen), int32(off)
		copy(blocks[off:off+used], s.Blocks[:used])
		if graph {
			clear(blocks[off+used : off+room])
			off += room
		} else {
			off += used
		}
	}
	if len(seqs) == 0 {
		seqInfo = nil
	}
	if err := b.stagePut(false, pos, rowSeq, seqInfo, blocks); err != nil {
		return err
	}
	if graph {
		*m = attMemo{valid: true, pos: unsafe.SliceData(pos), nPos: len(pos), seqs: unsafe.SliceData(seqs),
			nSeqs: len(seqs), bs: bs, tileMin: tileMin, p0: b.stage.ptrs[0], p1: b.stage.ptrs[1], p2: b.stage.ptrs[2], p3: b.stage.ptrs[3]}
	}
	return nil
}
