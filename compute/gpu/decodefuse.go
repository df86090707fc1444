package gpu

import (
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// Two decode-latency measures (docs/perf.md, "Decode latency, round 2"),
// each with a switch for A/B timing:
//
//   - RoPEKVWrite (compute.RoPEKVWriter): RoPE of Q and K and the KV write
//     of K and V in one launch (rope.cu's rope_kv_<type>), one launch a
//     layer fewer, and the KV write joins the programmatic-dependent-launch
//     chain. ROCMFORGE_GPU_ROPE_KV=0: RoPEPair then KVWrite.
//   - Weight prefetch: the decode products (mmvq_*, matvecm_*) ask L2 for
//     their weight rows before waiting for the previous kernel, which under
//     programmatic dependent launch still runs. ROCMFORGE_GPU_PREFETCH=0:
//     never; =N: a prefetch every N bytes for every layout; unset: the
//     per-layout defaults below.

// decodeFuse is the state of these measures.
type decodeFuse struct {
	ropeKVOn bool
	// prefetch is the bytes between two prefetches for every layout, 0
	// for none, -1 for prefetchDefault.
	prefetch int
}

// prefetchDefault is the prefetch step of each layout's decode kernels
// (absent: none). Measured on the H100 (docs/perf.md): Q4_0 gains (its
// kernel is latency-bound: 2006 -> 2400 GB/s at 11008x4096, tg128 +6 to
// +12 %); Q8_0 and F16 lose 2-9 % (their kernels are near the bandwidth
// and the early requests only compete with the running kernel's), Q4_K
// stays level.
var prefetchDefault = map[string]int{"q4_0s": 128}

func decodeFuseFromEnv() decodeFuse {
	d := decodeFuse{ropeKVOn: os.Getenv("ROCMFORGE_GPU_ROPE_KV") != "0", prefetch: -1}
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_PREFETCH")); err == nil && (v == 0 || (v >= 16 && v <= 4096 && v&(v-1) == 0)) {
		d.prefetch = v
	}
	return d
}

// pf is the kernels' prefetch argument for a layout: the bytes between two
// prefetches, or 0. Tied to programmatic dependent launch, the only way it
// was measured (and the one where the prefetch overlaps the predecessor).
func (b *Backend) pf(layout string) int {
	if b.pdl == nil {
		return 0
	}
	if b.dec.prefetch >= 0 {
		return b.dec.prefetch
	}
	return prefetchDefault[layout]
}

// ropeKVNames is the rope_kv kernel of each pool layout.
var ropeKVNames = map[string]string{"f32": "rope_kv_f32", "f16": "rope_kv_f16", "q8_0s": "rope_kv_q8_0s"}

// RoPEKVWrite implements compute.RoPEKVWriter: RoPE of q and k ([n, heads,
// headDim]) at pos, then KVWrite of the rotated keys (kRows, k's storage as
// [n, kvHeads*headDim]) and of v into pool at slots, as one launch (rope.cu's
// rope_kv_<type>) where the pool type allows (Q8_0 pools need head sizes
// that are whole q8 blocks); otherwise RoPEPair and KVWrite. The same
// results bit for bit either way.
func (b *Backend) RoPEKVWrite(q, k, kRows, v *compute.Tensor, pos []int32, p compute.RoPEParams, pool compute.KVPool, slots []int32) error {
	if err := compute.CheckRoPE(k, pos, p); err != nil {
		return err
	}
	if len(q.Shape) == 3 && k.Shape[2] != q.Shape[2] {
		return fmt.Errorf("rope: q %s and k %s have different head sizes", q, k)
	}
	if err := compute.CheckKVWrite(pool, kRows, v, slots); err != nil {
		return err
	}
	if kRows.Dev != k.Dev || kRows.Elems() != k.Elems() {
		return fmt.Errorf("rope+kvwrite: k rows %s are not k %s's storage", kRows, k)
	}
	kp, vp, err := b.kvBufs("kvwrite", pool)
	if err != nil {
		return err
	}
	heads2, hd := k.Shape[1], k.Shape[2]
	hdv := 0
	if heads2 > 0 && v.Cols()%heads2 == 0 {
		hdv = v.Cols() / heads2
	}
	name, ok := ropeKVNames[kp.layout]
	if !ok || !b.dec.ropeKVOn || kp.layout != vp.layout || hdv == 0 ||
		(kp.layout == "q8_0s" && (hd%32 != 0 || hdv%32 != 0)) {
		if err := b.RoPEPair(q, k, pos, p); err != nil {
			return err
		}
		return b.KVWrite(pool, kRows, v, slots)
	}
	vb, err := b.f32Buf("kvwrite", "v", v)
	if err != nil {
		return err
	}
	ra, err := b.ropeArgs(q, k, pos, p)
	if err != nil || ra.n == 0 {
		return err
	}
	heads3 := heads2
	total := ra.heads + heads2 + heads3
	if total == 0 {
		return nil
	}
	if b.feeding() {
		return b.stagePut(true, pos, slots)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.stagePut(true, pos, slots); err != nil {
		return fmt.Errorf("rope+kvwrite: %w", err)
	}
	hpb := max(1, min(total, 256/max(1, p.NRot/2)))
	chunks := (total + hpb - 1) / hpb
	posp, slotp := b.stage.ptrs[0], b.stage.ptrs[1]
	ra.put(b.args.reset(), posp, hpb)
	b.args.ptr(vb.ptr).i32(heads3).i32(hdv).ptr(kp.ptr).ptr(kp.aux).ptr(vp.ptr).ptr(vp.aux).ptr(slotp)
	threads := b.rowThreads(max(hpb*p.NRot/2, 32))
	return b.launch(b.k.all[name], cuda.Dim3{X: uint32(ra.n), Y: uint32(chunks)}, cuda.Dim3{X: uint32(threads)}, 4*p.NRot)
}

// ropeConsts are the per-call constants of rope_f32, computed exactly as
// compute.RoPECache does.
type ropeConsts struct {
	thetaScale, freqScale, ext, mscale float32
	corr                               [2]float32
	neox                               int
}

func newRoPEConsts(p compute.RoPEParams) ropeConsts {
	c := ropeConsts{freqScale: p.FreqScale, mscale: p.AttnFactor, ext: p.ExtFactor}
	if c.freqScale == 0 {
		c.freqScale = 1
	}
	if c.mscale == 0 && p.ExtFactor == 0 {
		c.mscale = 1
	}
	if p.ExtFactor != 0 {
		c.corr = compute.RoPECorrDims(p.NRot, p.OrigCtx, p.FreqBase, p.BetaFast, p.BetaSlow)
		c.mscale *= 1 + 0.1*float32(math.Log(float64(1/c.freqScale)))
	}
	c.thetaScale = float32(math.Pow(float64(p.FreqBase), float64(float32(-2)/float32(p.NRot))))
	if p.Kind == compute.RoPENeoX {
		c.neox = 1
	}
	return c
}
