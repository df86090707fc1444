package cpu

import (
	"math"
	"sync"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// Attention implements compute.Backend with the semantics of
// compute.Reference.Attention in float32 arithmetic, as llama.cpp's
// non-flash CPU path computes it (scores = scale·q·k, optional softcap,
// masked softmax, then the p-weighted sum of V rows).
//
// The work is split over (query row, KV head) pairs; the query heads that
// share a KV head (GQA) are done together so its K and V rows are read
// from cache. Only the unmasked key range of each query is computed:
// causal attention stops at the query's position and a sliding window
// starts at position−Window+1.
//
// F16 and Q8_0 pools are read through dequantization: each item converts
// its KV head's keys kvChunk positions at a time into a small float32
// buffer (exact, as compute.KVRow) and runs the F32 arithmetic on it, every
// query head of the group scoring against the converted chunk; values
// likewise. The results are those of an F32 pool holding the dequantized
// rows.
func (b *Backend) Attention(out, q *compute.Tensor, pool compute.KVPool, pos []int32, seqs []compute.SeqAttn, p compute.AttnParams) error {
	if err := compute.CheckAttention(out, q, pool, pos, seqs, p); err != nil {
		return err
	}
	clear(out.F32) // rows no sequence covers stay zero
	b.mu.Lock()
	defer b.mu.Unlock()
	rows := b.attnRows[:0]
	maxCtx, work := 0, 0
	for si, s := range seqs {
		for i := s.QStart; i < s.QStart+s.QLen; i++ {
			rows = append(rows, attnRow{seq: si, row: i})
		}
		maxCtx = max(maxCtx, s.CtxLen)
		work += s.QLen * s.CtxLen
	}
	b.attnRows = rows
	j := &b.attn
	*j = attnJob{
		out: out.F32, q: q.F32, pool: pool, pos: pos, seqs: seqs, p: p, rows: rows,
		math: b.math, dot: b.kernels[ggml.F32].rows, maxCtx: maxCtx, scratch: &b.attnScratch,
	}
	items := len(rows) * p.NKVHead
	work *= p.NHead * (p.HeadDim + p.HeadDimV) * 4 // bytes of K and V read
	b.parallel(items, max(1, items/(8*b.pool.threads())), work, j)
	*j = attnJob{}
	return nil
}

// attnRow is one query row of the batch and the sequence that owns it.
type attnRow struct{ seq, row int }

// attnMath is the arithmetic attention needs, in assembly or pure Go.
type attnMath struct {
	// expSum sets x[i] = exp(x[i]−m) and returns Σ x[i].
	expSum func(x []float32, m float32) float32
	// axpyRows adds Σ_r p[r]·v[r·stride : r·stride+len(acc)] to acc.
	axpyRows func(acc, v []float32, stride int, p []float32)
	// swiglu sets dst[i] = silu(gate[i])·up[i].
	swiglu func(dst, gate, up []float32)
	// widenF16 sets dst[i] to the F16 value at src[2i:] (exact).
	widenF16 func(dst []float32, src []byte)
	// widenQ8_0 dequantizes len(dst)/32 whole Q8_0 blocks (ggml's q·d).
	widenQ8_0 func(dst []float32, src []byte)
}

// goAttnMath is the pure-Go attention arithmetic.
func goAttnMath() attnMath {
	return attnMath{expSum: expSumGo, axpyRows: axpyRowsGo, swiglu: swigluGo, widenF16: widenF16Go, widenQ8_0: widenQ8_0Go}
}

func widenQ8_0Go(dst []float32, src []byte) {
	for b := range len(dst) / 32 {
		blk := src[b*34 : b*34+34]
		d := ggml.FP16ToFP32(uint16(blk[0]) | uint16(blk[1])<<8)
		db := dst[b*32 : b*32+32]
		for i, q := range blk[2:34] {
			db[i] = float32(int8(q)) * d
		}
	}
}

func widenF16Go(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = ggml.FP16ToFP32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}

// swigluGo is silu(gate)·up in float32 arithmetic (exp in float64).
func swigluGo(dst, gate, up []float32) {
	for i, g := range gate[:len(dst)] {
		e := float32(math.Exp(float64(-g)))
		dst[i] = g / (1 + e) * up[i]
	}
}

func expSumGo(x []float32, m float32) float32 {
	var s float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		s += e
	}
	return s
}

func axpyRowsGo(acc, v []float32, stride int, p []float32) {
	for r, pr := range p {
		row := v[r*stride : r*stride+len(acc)]
		for i, x := range row {
			acc[i] += pr * x
		}
	}
}

// attnJob computes items [lo, hi): item i is query row rows[i/NKVHead] and
// KV head i%NKVHead, with all the query heads of that KV head.
type attnJob struct {
	out, q  []float32
	pool    compute.KVPool
	pos     []int32
	seqs    []compute.SeqAttn
	p       compute.AttnParams
	rows    []attnRow
	math    attnMath
	dot     func(dst []float32, w []byte, stride int, x *xrow, k int)
	maxCtx  int
	scratch *sync.Pool // of *[]float32 score buffers
}

func (j *attnJob) do(lo, hi int) {
	if j.pool.K.Type != ggml.F32 {
		j.doConverted(lo, hi)
		return
	}
	p := j.p
	group := p.NHead / p.NKVHead
	bufp, _ := j.scratch.Get().(*[]float32)
	if bufp == nil {
		bufp = new([]float32)
	}
	*bufp = grow(*bufp, j.maxCtx)
	scores := *bufp
	defer j.scratch.Put(bufp)

	kCols, vCols := j.pool.K.Cols(), j.pool.V.Cols()
	kBytes := f32Bytes(j.pool.K.F32)
	bs := j.pool.BlockSize
	for it := lo; it < hi; it++ {
		r := j.rows[it/p.NKVHead]
		g := it % p.NKVHead
		s := j.seqs[r.seq]
		qPos := int(j.pos[r.row])
		start, end := 0, s.CtxLen
		if p.Causal {
			end = min(end, qPos+1)
		}
		if p.Window > 0 {
			start = max(start, qPos-p.Window+1)
		}
		if start >= end {
			continue // every key masked: the output stays zero
		}
		for t := range group {
			h := g*group + t
			qh := j.q[r.row*p.NHead*p.HeadDim+h*p.HeadDim:][:p.HeadDim]
			sc := scores[:end-start]
			x := xrow{q: f32Bytes(qh)}
			forBlocks(s, bs, start, end, func(j0, slot, cnt int) {
				off := (slot*kCols + g*p.HeadDim) * 4
				w := kBytes[off : off+((cnt-1)*kCols+p.HeadDim)*4]
				j.dot(sc[j0-start:j0-start+cnt], w, kCols*4, &x, p.HeadDim)
			})
			m := float32(math.Inf(-1))
			for i, v := range sc {
				v *= p.Scale
				if p.Softcap > 0 {
					v = p.Softcap * float32(math.Tanh(float64(v/p.Softcap)))
				}
				sc[i] = v
				if v > m {
					m = v
				}
			}
			sum := j.math.expSum(sc, m)
			oh := j.out[r.row*p.NHead*p.HeadDimV+h*p.HeadDimV:][:p.HeadDimV]
			forBlocks(s, bs, start, end, func(j0, slot, cnt int) {
				off := slot*vCols + g*p.HeadDimV
				j.math.axpyRows(oh, j.pool.V.F32[off:], vCols, sc[j0-start:j0-start+cnt])
			})
			inv := 1 / sum
			for i := range oh {
				oh[i] *= inv
			}
		}
	}
}

// forBlocks calls f for each run of key positions [j0, j0+cnt) inside
// [start, end) that lies in one KV block, with the pool slot of j0.
func forBlocks(s compute.SeqAttn, bs, start, end int, f func(j0, slot, cnt int)) {
	for j := start; j < end; {
		off := j % bs
		cnt := min(bs-off, end-j)
		f(j, int(s.Blocks[j/bs])*bs+off, cnt)
		j += cnt
	}
}

// kvChunk is how many key positions an F16/Q8_0 item converts at a time:
// 64 rows of a 128-wide head are 32 KiB of float32, about L1.
const kvChunk = 64

// doConverted is do for F16 and Q8_0 pools: per item, every query head of
// the KV head scores against chunks of converted keys (scores of head t at
// sc[t·n:]), then softmax per head, then the converted values are summed.
func (j *attnJob) doConverted(lo, hi int) {
	p := j.p
	group := p.NHead / p.NKVHead
	w := max(p.HeadDim, p.HeadDimV)
	bufp, _ := j.scratch.Get().(*[]float32)
	if bufp == nil {
		bufp = new([]float32)
	}
	*bufp = grow(*bufp, group*j.maxCtx+kvChunk*w+group)
	buf := *bufp
	defer j.scratch.Put(bufp)
	kv := buf[group*j.maxCtx : group*j.maxCtx+kvChunk*w]
	sums := buf[group*j.maxCtx+kvChunk*w:]

	for it := lo; it < hi; it++ {
		r := j.rows[it/p.NKVHead]
		g := it % p.NKVHead
		s := j.seqs[r.seq]
		qPos := int(j.pos[r.row])
		start, end := 0, s.CtxLen
		if p.Causal {
			end = min(end, qPos+1)
		}
		if p.Window > 0 {
			start = max(start, qPos-p.Window+1)
		}
		if start >= end {
			continue // every key masked: the output stays zero
		}
		n := end - start
		sc := buf[:group*n]
		for c0 := start; c0 < end; c0 += kvChunk {
			c1 := min(end, c0+kvChunk)
			kc := kv[:(c1-c0)*p.HeadDim]
			j.convert(kc, j.pool.K, s, c0, c1, g*p.HeadDim, p.HeadDim)
			for t := range group {
				qh := j.q[r.row*p.NHead*p.HeadDim+(g*group+t)*p.HeadDim:][:p.HeadDim]
				x := xrow{q: f32Bytes(qh)}
				j.dot(sc[t*n+c0-start:t*n+c1-start], f32Bytes(kc), p.HeadDim*4, &x, p.HeadDim)
			}
		}
		for t := range group {
			st := sc[t*n : (t+1)*n]
			m := float32(math.Inf(-1))
			for i, v := range st {
				v *= p.Scale
				if p.Softcap > 0 {
					v = p.Softcap * float32(math.Tanh(float64(v/p.Softcap)))
				}
				st[i] = v
				if v > m {
					m = v
				}
			}
			sums[t] = j.math.expSum(st, m)
		}
		for c0 := start; c0 < end; c0 += kvChunk {
			c1 := min(end, c0+kvChunk)
			vc := kv[:(c1-c0)*p.HeadDimV]
			j.convert(vc, j.pool.V, s, c0, c1, g*p.HeadDimV, p.HeadDimV)
			for t := range group {
				oh := j.out[r.row*p.NHead*p.HeadDimV+(g*group+t)*p.HeadDimV:][:p.HeadDimV]
				j.math.axpyRows(oh, vc, p.HeadDimV, sc[t*n+c0-start:t*n+c1-start])
			}
		}
		for t := range group {
			oh := j.out[r.row*p.NHead*p.HeadDimV+(g*group+t)*p.HeadDimV:][:p.HeadDimV]
			inv := 1 / sums[t]
			for i := range oh {
				oh[i] *= inv
			}
		}
	}
}

// convert sets dst[(k−c0)·w + i], for key positions k in [c0, c1) of
// sequence s, to column col+i of the position's row of an F16 or Q8_0
// pool tensor, as compute.KVRow does.
func (j *attnJob) convert(dst []float32, t *compute.Tensor, s compute.SeqAttn, c0, c1, col, w int) {
	cols := t.Cols()
	forBlocks(s, j.pool.BlockSize, c0, c1, func(k0, slot, cnt int) {
		for r := range cnt {
			d := dst[(k0-c0+r)*w : (k0-c0+r+1)*w]
			switch {
			case t.Type == ggml.F16:
				off := 2 * ((slot+r)*cols + col)
				j.math.widenF16(d, t.Raw[off:off+2*w])
			case col%32 == 0 && w%32 == 0: // Q8_0, whole blocks
				off := (slot+r)*(cols/32*34) + col/32*34
				j.math.widenQ8_0(d, t.Raw[off:off+w/32*34])
			default: // Q8_0 head rows that start or end inside a block
				compute.KVRow(t, slot+r, col, d)
			}
		}
	})
}
