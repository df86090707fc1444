package cpu

import (
	"unsafe"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// MatMul implements compute.Backend: dst[n, m] = x[n, k] · w[m, k]ᵀ.
//
// As in ggml, the weight is never dequantized: each activation row is
// first quantized to the weight type's vec_dot type (Q8_0, Q8_1, Q8_K, or
// rounded to F16/BF16) and the dot products run block by block on the
// quantized data. The weight rows are split between the worker goroutines;
// groups of 4 activation rows share each weight row's decoding (the
// batched kernels), over tiles of weight rows that stay in L2. Results do
// not depend on the thread count.
func (b *Backend) MatMul(dst, x, w *compute.Tensor) error {
	if err := compute.CheckMatMul(dst, x, w); err != nil {
		return err
	}
	kn := b.kernels[w.Type]
	if kn == nil {
		return b.Reference.MatMul(dst, x, w)
	}
	// n from dst: x.Rows() is 0 when k is.
	k, m, n := x.Cols(), w.Shape[0], dst.Rows()
	if n == 0 || m == 0 {
		return nil
	}
	if k == 0 { // empty dot products
		clear(dst.F32)
		return nil
	}
	wb := w.Raw
	if w.Type == ggml.F32 {
		wb = f32Bytes(w.F32)
	}
	stride := len(wb) / m

	b.mu.Lock()
	defer b.mu.Unlock()
	xs := b.quantizeActivations(kn, x.F32, n, k)
	var batches []xbatch
	if kn.batch != nil && n >= 4 {
		batches = b.packBatches(kn.batch, xs, k)
	}

	// A batch rereads its weight rows once per group of activation rows:
	// tiles of 256 KiB stay in L2 for that.
	tile := m
	if n > 1 {
		tile = max((256<<10)/stride, 1)
	}
	job := &b.mm
	*job = matmulJob{kn: kn, dst: dst.F32, w: wb, stride: stride, xs: xs, batches: batches, k: k, m: m, tile: tile}
	// Enough rows per chunk that a chunk is worth a claim (≥ 16 KiB of
	// weights), few enough that every thread gets several chunks.
	step := min(max((16<<10)/stride, m/(8*b.pool.threads()), 1), tile)
	b.parallel(m, step, len(wb)*n, job)
	*job = matmulJob{}
	return nil
}

// matmulJob computes the output columns [lo, hi) (weight rows) for every
// activation row.
type matmulJob struct {
	kn      *kernel
	dst     []float32
	w       []byte
	stride  int
	xs      []xrow
	batches []xbatch // the first 4·len(batches) rows of xs, packed
	k, m    int
	tile    int // weight rows done for all activation rows before the next
}

func (j *matmulJob) do(lo, hi int) {
	for t := lo; t < hi; t += j.tile {
		j.rows(t, min(t+j.tile, hi))
	}
}

// rows computes output columns [lo, hi) for every activation row.
func (j *matmulJob) rows(lo, hi int) {
	w := j.w[lo*j.stride : hi*j.stride]
	for g := range j.batches {
		i := 4 * g
		j.kn.batch.rows(j.dst[i*j.m+lo:(i+3)*j.m+hi], j.m, hi-lo, w, j.stride, &j.batches[g], j.xs[i:i+4], j.k)
	}
	for i := 4 * len(j.batches); i < len(j.xs); i++ {
		j.kn.rows(j.dst[i*j.m+lo:i*j.m+hi], w, j.stride, &j.xs[i], j.k)
	}
}

// packBatches builds the batch layout of each group of 4 activation rows
// (the last n%4 rows stay single) in the backend's scratch.
func (b *Backend) packBatches(bk *batchKernel, xs []xrow, k int) []xbatch {
	groups := len(xs) / 4
	sd := bk.side(k)
	s := &b.scratch
	s.bq = grow(s.bq, groups*sd.p)
	s.baux = grow(s.baux, groups*sd.aux)
	s.batches = grow(s.batches, groups)
	for g := range groups {
		bt := &s.batches[g]
		*bt = xbatch{q: s.bq[g*sd.p : (g+1)*sd.p], aux: s.baux[g*sd.aux : (g+1)*sd.aux]}
		bk.pack(bt, xs[4*g:4*g+4], k)
	}
	return s.batches[:groups]
}

// quantizeActivations quantizes the n rows of x for kernel kn into the
// backend's scratch (grown as needed, reused across calls) and returns them.
func (b *Backend) quantizeActivations(kn *kernel, x []float32, n, k int) []xrow {
	rl, _ := kn.x.RowSize(int64(k)) // k is whole blocks: CheckMatMul checked w
	qLen := int(rl)
	var sd sides
	if kn.side != nil {
		sd = kn.side(k)
	}
	s := &b.scratch
	s.q = grow(s.q, n*qLen)
	s.p = grow(s.p, n*sd.p)
	s.aux = grow(s.aux, n*sd.aux)
	s.sums = grow(s.sums, n*sd.sums)
	s.rows = grow(s.rows, n)
	for i := range n {
		s.rows[i] = xrow{
			q:    s.q[i*qLen : (i+1)*qLen],
			p:    s.p[i*sd.p : (i+1)*sd.p],
			aux:  s.aux[i*sd.aux : (i+1)*sd.aux],
			sums: s.sums[i*sd.sums : (i+1)*sd.sums],
		}
	}
	q := &b.qj
	*q = quantJob{kn: kn, x: x, k: k, rows: s.rows[:n]}
	b.parallel(n, max(1, 4096/k), n*k, q)
	q.x, q.rows = nil, nil
	return s.rows[:n]
}

// quantJob quantizes activation rows [lo, hi).
type quantJob struct {
	kn   *kernel
	x    []float32
	k    int
	rows []xrow
}

func (j *quantJob) do(lo, hi int) {
	for i := lo; i < hi; i++ {
		j.kn.load(&j.rows[i], j.x[i*j.k:(i+1)*j.k])
	}
}

// scratch holds buffers reused across MatMul calls.
type scratch struct {
	q, p []byte
	aux  []float32
	sums []int32
	rows []xrow

	bq      []byte // batch layouts (packBatches)
	baux    []float32
	batches []xbatch
}

// grow returns s resliced to n elements, reallocated only if too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// f32Bytes views a float32 slice as its little-endian bytes (amd64 and
// arm64, the targets, are little-endian).
func f32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}
