package gpu

import (
	"fmt"
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

// The tiled prompt kernel (attention_tile_f32): AT_WARPS, AT_RPW, AT_QT,
// AT_KT and AT_MAXD in attention.cu, and the smallest batch that uses it
// (ROCMFORGE_GPU_ATT_TILE=0 turns it off, for A/B timing).
const (
	atWarps   = 4
	atRPW     = 8
	atQT      = atWarps * atRPW
	atKT      = 32
	atMaxD    = 128
	atMinRows = 64
)

// atSmem is the tiled kernel's dynamic shared memory in bytes.
func atSmem(hd, hdv int) int {
	return 4 * (atQT*(hd+4) + atKT*(hd+4) + atKT*hdv + atWarps*atRPW*atKT)
}

// attTiled reports whether Attention of n query rows takes the tiled kernel.
func (b *Backend) attTiled(n int, p compute.AttnParams) bool {
	return b.attTileOn && b.warp == 32 && n >= atMinRows && p.HeadDim%4 == 0 && p.HeadDimV%4 == 0 &&
		p.HeadDim <= atMaxD && p.HeadDimV <= atMaxD
}

// KVWrite implements compute.Backend: row i of k and v goes to row
// slots[i] of the pool.
func (b *Backend) KVWrite(pool compute.KVPool, k, v *compute.Tensor, slots []int32) error {
	if err := compute.CheckKVWrite(pool, k, v, slots); err != nil {
		return err
	}
	const op = "kvwrite"
	kp, err := b.f32Buf(op, "pool K", pool.K)
	if err != nil {
		return err
	}
	vp, err := b.f32Buf(op, "pool V", pool.V)
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
	b.args.reset().ptr(kp.ptr).ptr(vp.ptr).ptr(kb.ptr).ptr(vb.ptr).ptr(b.stage.ptrs[0]).i32(k.Cols()).i32(v.Cols())
	return b.launch(b.k.kvwrite, cuda.Dim3{X: uint32(n)}, cuda.Dim3{X: uint32(b.rowThreads(max(k.Cols(), v.Cols())))}, 0)
}

// Attention implements compute.Backend: paged attention, one block per
// (query row, head), keys read through each sequence's block table.
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
	kp, err := b.f32Buf(op, "pool K", pool.K)
	if err != nil {
		return err
	}
	vp, err := b.f32Buf(op, "pool V", pool.V)
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
	if b.feeding() {
		return b.stageAttention(pool.BlockSize, pos, seqs)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.stageAttention(pool.BlockSize, pos, seqs); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	sp := b.stage.ptrs
	causal := 0
	if p.Causal {
		causal = 1
	}
	b.args.reset().ptr(ob.ptr).ptr(qb.ptr).ptr(kp.ptr).ptr(vp.ptr).ptr(sp[0]).ptr(sp[1]).ptr(sp[2]).ptr(sp[3]).
		i32(p.NHead).i32(p.NKVHead).i32(p.HeadDim).i32(p.HeadDimV).i32(pool.BlockSize).f32(p.Scale).
		i32(causal).i32(p.Window).f32(p.Softcap)
	if b.attTiled(n, p) {
		b.args.i32(n)
		grid := cuda.Dim3{X: uint32((n + atQT - 1) / atQT), Y: uint32(p.NHead)}
		return b.launch(b.k.attentionTile, grid, cuda.Dim3{X: atWarps * 32}, atSmem(p.HeadDim, p.HeadDimV))
	}
	// Decode has few (row, head) blocks, each walking its context in one
	// dependent chain of loads per warp: give them more warps, up to 16,
	// until the grid holds about 16 warps per multiprocessor.
	warps := attWarps
	for warps < b.attMaxWarps && n*p.NHead*warps < 16*b.sms {
		warps *= 2
	}
	smem := 4 * (p.HeadDim + warps*(p.HeadDimV+2))
	return b.launch(b.k.attention, cuda.Dim3{X: uint32(n), Y: uint32(p.NHead)}, cuda.Dim3{X: uint32(warps * b.warp)}, smem)
}

// stageAttention stages the attention descriptors: pos [n], rowSeq [n] (the
// sequence of each query row, -1 for none), seqInfo [2*len(seqs)] (CtxLen
// and block-table offset of each sequence) and the block tables, packed
// into one host scratch slice. Eager mode packs the used part of each table
// back to back. In a graph step every table gets the same power-of-two
// room, so the layout, which the step's graph is bound to, changes only
// when a context outgrows it; and the descriptors, which every layer
// shares, are staged once per step.
func (b *Backend) stageAttention(bs int, pos []int32, seqs []compute.SeqAttn) error {
	graph := b.mode != modeEager
	m := &b.step.att
	if graph && m.valid && m.pos == unsafe.SliceData(pos) && m.nPos == len(pos) &&
		m.seqs == unsafe.SliceData(seqs) && m.nSeqs == len(seqs) && m.bs == bs {
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
		for i := s.QStart; i < s.QStart+s.QLen; i++ {
			rowSeq[i] = int32(si)
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
			nSeqs: len(seqs), bs: bs, p0: b.stage.ptrs[0], p1: b.stage.ptrs[1], p2: b.stage.ptrs[2], p3: b.stage.ptrs[3]}
	}
	return nil
}
