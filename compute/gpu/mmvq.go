package gpu

import (
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// Decode matrix-vector products with 8-bit activations (kernels/mmvq.cu):
// for Q4_0, Q8_0, Q4_K and Q6_K weights and up to 8 tokens, the activations are
// quantized once to blocks of 32 int8 values with a float scale, and the
// kernels take integer dot products (dp4a), as llama.cpp's MMVQ does. The
// quantized copy lives in one scratch buffer; the norm and SwiGLU kernels
// that produce a matrix product's input write it as a by-product, and the
// products that follow with the same input (Q, K, V; gate, up) reuse it.
// ROCMFORGE_GPU_MMVQ=0 keeps the float kernels (matmul.cu), for A/B timing.

// mmvqThreads is MMVQ_THREADS in mmvq.cu.
const mmvqThreads = 128

// mmvqUnit is the elements per unit of each layout's kernel (QV<T>::U).
var mmvqUnit = map[string]int{"q4_0s": 32, "q8_0s": 32, "q4_k": 64, "q6_k": 32}

// mmvqRows is the rows per thread group for each token count (the R of the
// MMVQ macro).
var mmvqRows = map[int]int{1: 4, 2: 4, 4: 2, 8: 2}

// mmvqNames[layout][nt] is the kernel's name; nt 0 names the one-token
// kernel with 8 rows per thread group (ROCMFORGE_GPU_MMVQ_R8=1, for A/B).
var mmvqNames = func() map[string]map[int]string {
	names := map[string]map[int]string{}
	for l := range mmvqUnit {
		names[l] = map[int]string{0: fmt.Sprintf("mmvq_%s_1r8", l)}
		for nt := range mmvqRows {
			names[l][nt] = fmt.Sprintf("mmvq_%s_%d", l, nt)
		}
	}
	return names
}()

// handoff records what a scratch copy of some op's output holds (the q8
// blocks of the 8-bit products, the f16 rows of the batched ones): the F32
// rows [n, k] at src, written into the scratch at address at by op number
// seq (core.opSeq). Only the op right after may use it (fresh), which keeps
// it valid for one more op (a second product of the same input); any
// other op in between, or a regrown scratch, makes the consumer convert.
type handoff struct {
	src, at cuda.DevicePtr
	n, k    int
	seq     uint64
}

// mark records that op wrote src's rows [n, k] into the scratch at at.
func (h *handoff) mark(src, at cuda.DevicePtr, n, k int, op uint64) {
	*h = handoff{src: src, at: at, n: n, k: k, seq: op}
}

// fresh reports whether op, the op after the writer, may use the copy of
// src's rows [n, k] at at, and if so keeps it for the op after op.
func (h *handoff) fresh(src, at cuda.DevicePtr, n, k int, op uint64) bool {
	if h.seq == 0 || h.seq+1 != op || h.src != src || h.at != at || h.n != n || h.k != k {
		return false
	}
	h.seq = op
	return true
}

// q8State is the quantized-activation scratch and what it holds.
type q8State struct {
	buf scratch
	handoff
	// wanted: an mmvq product has run, so the producers' q8 blocks may be
	// used (a model of float weights never pays for them).
	wanted bool
	// maxTPR caps the threads per row group (ROCMFORGE_GPU_MMVQ_TPR, for
	// A/B timing; 0 or unset: mmvqThreads).
	maxTPR int
	r8     bool // one token: 8 rows per thread group instead of 4 (ROCMFORGE_GPU_MMVQ_R8=1, for A/B)
}

// q8MinBytes is the scratch's first size: 8 rows of 16384 columns.
const q8MinBytes = 8*16384 + 8*16384/32*8

// q8Layout returns the int8 area and the scale area of n rows of k.
func q8Layout(base cuda.DevicePtr, n, k int) (q, d cuda.DevicePtr, bytes int64) {
	qb := (int64(n)*int64(k) + 255) &^ 255
	return base, base + cuda.DevicePtr(qb), qb + int64(n)*int64(k/32)*8
}

func mmvqFromEnv() bool { return os.Getenv("ROCMFORGE_GPU_MMVQ") != "0" }

func mmvqTPRFromEnv() int {
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_GPU_MMVQ_TPR")); err == nil && v > 0 {
		return v
	}
	return mmvqThreads
}

// useMMVQ reports whether a product of n tokens by a weight of this layout
// and k columns takes the 8-bit path.
func (b *Backend) useMMVQ(layout string, n, k int) bool {
	u, ok := mmvqUnit[layout]
	return ok && b.mmvqOn && !b.useBLAS(n) && n >= 1 && n <= maxMatVecTokens && k > 0 && k%u == 0 && k%32 == 0
}

// q8Emit returns where a kernel that produces rows [n, k] of dst should
// write their q8 blocks, or zeros when it should not (the path is off, the
// shape does not fit, or the scratch is not there yet: growing it is the
// matrix product's job, outside captures). The caller holds enter and, after
// a successful launch, calls q8Mark.
func (b *Backend) q8Emit(n, k int) (q, d cuda.DevicePtr) {
	if !b.q8.wanted || n < 1 || n > maxMatVecTokens || k%32 != 0 || k == 0 || b.q8.buf.ptr == 0 {
		return 0, 0
	}
	q, d, bytes := q8Layout(b.q8.buf.ptr, n, k)
	if bytes > b.q8.buf.bytes {
		return 0, 0
	}
	return q, d
}

// q8Mark records that the scratch now holds src's rows [n, k] (the op just
// launched wrote them).
func (b *Backend) q8Mark(src cuda.DevicePtr, n, k int) {
	b.q8.mark(src, b.q8.buf.ptr, n, k, b.opSeq)
}

// q8Forget says the scratch holds nothing known (graph boundaries).
func (b *Backend) q8Forget() { b.q8.seq = 0 }

// q8Input makes the scratch hold x's rows [n, k] (buffer xb): reused when
// the op just before wrote them there (a norm, SwiGLU, or a product with
// the same input), else quantized now. The caller holds enter.
func (b *Backend) q8Input(xb cuda.DevicePtr, n, k int) (q, d cuda.DevicePtr, err error) {
	s := &b.q8
	if s.fresh(xb, s.buf.ptr, n, k, b.opSeq) {
		q, d, _ = q8Layout(s.buf.ptr, n, k)
		return q, d, nil
	}
	_, _, bytes := q8Layout(0, n, k)
	if err := b.grow(&s.buf, max(bytes, q8MinBytes)); err != nil {
		return 0, 0, err
	}
	q, d, _ = q8Layout(s.buf.ptr, n, k)
	blocks := n * k / 32
	b.args.reset().ptr(xb).ptr(q).ptr(d).i32(n).i32(k)
	if err := b.launch(b.k.all["quantize_q8_f32"], cuda.Dim3{X: uint32((blocks + 7) / 8)}, cuda.Dim3{X: 256}, 0); err != nil {
		return 0, 0, err
	}
	b.q8Mark(xb, n, k)
	return q, d, nil
}

// mmvqTarget is one weight of an mmvq launch.
type mmvqTarget struct {
	w   *devBuf
	rb  int64
	dst cuda.DevicePtr
	m   int
}

// launchMMVQ runs up to three products of the same input (x: buffer xb,
// n rows of k) by weights of one layout as one launch. The caller holds
// enter and has checked useMMVQ.
func (b *Backend) launchMMVQ(layout string, xb cuda.DevicePtr, n, k int, ts []mmvqTarget) error {
	q, d, err := b.q8Input(xb, n, k)
	if err != nil {
		return err
	}
	b.q8.wanted = true
	nt := 1
	for nt < n {
		nt *= 2
	}
	units := k / mmvqUnit[layout]
	tpr := mmvqThreads
	for tpr > b.warp && (tpr/2 >= units || tpr > b.q8.maxTPR) {
		tpr /= 2
	}
	rows, name := mmvqRows[nt], mmvqNames[layout][nt]
	if nt == 1 && b.q8.r8 {
		rows, name = 8, mmvqNames[layout][0]
	}
	total := b.multiArgs(ts, rows*(mmvqThreads/tpr))
	b.args.ptr(q).ptr(d).i32(k).i32(n).i32(tpr).i32(b.pf(layout))
	if total == 0 {
		return nil
	}
	if err := b.launch(b.k.all[name], cuda.Dim3{X: uint32(total)}, cuda.Dim3{X: mmvqThreads}, 0); err != nil {
		return err
	}
	s := &b.q8
	s.seq = b.opSeq // the input's blocks stay valid for the next product
	return nil
}

// MatMulMulti implements compute.MultiMatMuler: dst[i] = x · w[i]ᵀ for
// weights that share the input x (Q, K and V; gate and up). Up to three
// quantized weights of one layout and up to 8 tokens are one launch; other
// cases run as separate MatMuls.
func (b *Backend) MatMulMulti(dst []*compute.Tensor, x *compute.Tensor, w []*compute.Tensor) error {
	if len(dst) != len(w) {
		return fmt.Errorf("matmul multi: %d outputs for %d weights", len(dst), len(w))
	}
	fused := len(w) >= 1 && len(w) <= 3 && x != nil
	var layout string
	var wbs [3]*devBuf
	if fused {
		for i := range w {
			if err := compute.CheckMatMul(dst[i], x, w[i]); err != nil {
				return err
			}
			wb, err := b.buf("matmul", "w", w[i])
			if err != nil {
				return err
			}
			if i == 0 {
				layout = wb.layout
			}
			if wb.layout != layout || w[i].Shape[1] != w[0].Shape[1] {
				fused = false
				break
			}
			wbs[i] = wb
		}
	}
	if fused && b.useFloatMulti(layout, x.Rows(), x.Cols()) {
		if b.feeding() {
			return nil
		}
		ts, xb, err := b.multiTargets(dst, x, w, wbs)
		if err != nil {
			return err
		}
		if err := b.enter(); err != nil {
			return err
		}
		defer b.leave()
		return b.launchFloatMulti(layout, xb, x.Rows(), x.Cols(), ts[:len(w)])
	}
	// Before mmvq: the mmq kernels take some matrix-vector sizes too
	// (useMMQSmall).
	if fused && b.useMMQMulti(layout, x.Rows(), x.Cols(), wbs[:len(w)]) {
		return b.matmulMMQMulti(dst, x, w, wbs)
	}
	if fused && b.useMMVQ(layout, x.Rows(), x.Cols()) {
		if b.feeding() {
			return nil
		}
		ts, xb, err := b.multiTargets(dst, x, w, wbs)
		if err != nil {
			return err
		}
		if err := b.enter(); err != nil {
			return err
		}
		defer b.leave()
		return b.launchMMVQ(layout, xb, x.Rows(), x.Cols(), ts[:len(w)])
	}
	for i := range w {
		if err := b.MatMul(dst[i], x, w[i]); err != nil {
			return err
		}
	}
	return nil
}

// floatMulti lists the float layouts whose matrix-vector kernels have a
// multi-weight form (matvecm_* in matmul.cu).
var floatMulti = map[string]bool{"f32": true, "f16": true, "bf16": true}

// floatMultiNames[layout][nt] is the matvecm kernel's name.
var floatMultiNames = func() map[string]map[int]string {
	names := map[string]map[int]string{}
	for l := range floatMulti {
		names[l] = map[int]string{}
		for _, nt := range matVecTokens {
			names[l][nt] = fmt.Sprintf("matvecm_%s_%d", l, nt)
		}
	}
	return names
}()

// useFloatMulti reports whether products of n tokens by float weights of
// this layout with k columns can be one matvecm launch.
func (b *Backend) useFloatMulti(layout string, n, k int) bool {
	if !floatMulti[layout] || !b.mmvqOn || b.useBLAS(n) || n < 1 || n > maxMatVecTokens {
		return false
	}
	if layout == "f32" {
		return k%4 == 0
	}
	return k%8 == 0
}

// multiTargets checks the outputs of a fused launch and returns its targets
// and the input's buffer.
func (b *Backend) multiTargets(dst []*compute.Tensor, x *compute.Tensor, w []*compute.Tensor, wbs [3]*devBuf) ([3]mmvqTarget, cuda.DevicePtr, error) {
	var ts [3]mmvqTarget
	xb, err := b.f32Buf("matmul", "x", x)
	if err != nil {
		return ts, 0, err
	}
	for i := range w {
		db, err := b.f32Buf("matmul", "dst", dst[i])
		if err != nil {
			return ts, 0, err
		}
		if db == xb {
			return ts, 0, fmt.Errorf("matmul: dst %s and x %s share storage", dst[i], x)
		}
		rb, _ := w[i].Type.RowSize(int64(x.Cols()))
		ts[i] = mmvqTarget{w: wbs[i], rb: rb, dst: db.ptr, m: w[i].Shape[0]}
	}
	return ts, xb.ptr, nil
}

// launchFloatMulti runs up to three float matrix-vector products of one
// input as one matvecm launch (mvWarps rows a block). The caller holds enter.
func (b *Backend) launchFloatMulti(layout string, xb cuda.DevicePtr, n, k int, ts []mmvqTarget) error {
	nt := 1
	for nt < n {
		nt *= 2
	}
	total := b.multiArgs(ts, mvWarps)
	b.args.ptr(xb).i32(k).i32(n).i32(b.pf(layout))
	if total == 0 {
		return nil
	}
	return b.launch(b.k.all[floatMultiNames[layout][nt]], cuda.Dim3{X: uint32(total)}, cuda.Dim3{X: uint32(mvWarps * b.warp)}, 0)
}

// multiArgs puts the three weight slots of a fused launch (rowsPerBlock rows
// a block) into b.args, after a reset, and returns the blocks in all.
func (b *Backend) multiArgs(ts []mmvqTarget, rowsPerBlock int) int {
	a := b.args.reset()
	total := 0
	for i := range 3 {
		if i < len(ts) {
			t := ts[i]
			nb := (t.m + rowsPerBlock - 1) / rowsPerBlock
			total += nb
			a.ptr(t.w.ptr).ptr(t.w.aux).i64(t.rb).ptr(t.dst).i32(t.m)
			if i < 2 {
				a.i32(nb)
			}
		} else {
			// Unused slots: no block reaches them (their counts are 0).
			a.ptr(0).ptr(0).i64(0).ptr(0).i32(1)
			if i < 2 {
				a.i32(0)
			}
		}
	}
	return total
}

// ArgmaxRows implements compute.Argmaxer: the lowest index of each row's
// largest value (NaN and -Inf never chosen, -1 if nothing else), computed on
// the device; only the n indices are copied back.
func (b *Backend) ArgmaxRows(x *compute.Tensor, dst []int32) error {
	if b.mode != modeEager {
		return fmt.Errorf("argmax %s: %w", x, errInStep)
	}
	xb, err := b.f32Buf("argmax", "x", x)
	if err != nil {
		return err
	}
	n, m := x.Rows(), x.Cols()
	if len(dst) != n {
		return fmt.Errorf("argmax: x %s has %d rows but dst holds %d", x, n, len(dst))
	}
	if n == 0 {
		return nil
	}
	if m == 0 {
		for i := range dst {
			dst[i] = -1
		}
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.grow(&b.argOut, 4*int64(n)); err != nil {
		return err
	}
	b.args.reset().ptr(xb.ptr).ptr(b.argOut.ptr).i32(m)
	if err := b.launch(b.k.all["argmax_f32"], cuda.Dim3{X: uint32(n)}, cuda.Dim3{X: 1024}, 0); err != nil {
		return err
	}
	if err := b.drv.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), b.argOut.ptr, 4*n, b.stream); err != nil {
		return fmt.Errorf("argmax %s: %w", x, err)
	}
	if err := b.drv.StreamSynchronize(b.stream); err != nil {
		return fmt.Errorf("argmax %s: %w", x, err)
	}
	return nil
}
