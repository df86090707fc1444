package gpu

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// maxMatVecTokens is the largest token count the matrix-vector kernels take;
// larger batches use the tiled kernel.
const maxMatVecTokens = 8

// mvWarps is MV_WARPS in matmul.cu: weight rows per block of the float
// matrix-vector kernels; MQ_WARPS, the warps of the quantized ones, is the same.
const mvWarps = 4

// quantMatVec lists the layouts whose matrix-vector kernels are mv_quant,
// and quantRows its weight rows per block for each token count (the R of
// the MQ macro in matmul.cu).
var (
	quantMatVec = map[string]bool{"q4_0s": true, "q8_0s": true, "q4_1": true, "q5_0": true, "q5_1": true,
		"q4_k": true, "q5_k": true, "q6_k": true}
	quantRows = map[int]int{1: 8, 2: 8, 4: 4, 8: 2}
)

// matVecNames[layout][nt] is the fast kernel's name (built once: no
// formatting per call).
var matVecNames = func() map[string]map[int]string {
	names := map[string]map[int]string{}
	for l := range fastMatVec {
		names[l] = map[int]string{}
		for _, nt := range matVecTokens {
			names[l][nt] = fmt.Sprintf("matvec_%s_%d", l, nt)
		}
	}
	return names
}()

// MatMul implements compute.Backend: dst[n, m] = x[n, k] · w[m, k]ᵀ with w
// in its stored type.
func (b *Backend) MatMul(dst, x, w *compute.Tensor) error {
	if b.feeding() && (x == nil || !b.useBLAS(x.Rows())) && !b.feedsMMQSmall(x, w) {
		return nil
	}
	if err := compute.CheckMatMul(dst, x, w); err != nil {
		return err
	}
	wb, err := b.buf("matmul", "w", w)
	if err != nil {
		return err
	}
	xb, err := b.f32Buf("matmul", "x", x)
	if err != nil {
		return err
	}
	db, err := b.f32Buf("matmul", "dst", dst)
	if err != nil {
		return err
	}
	if xb == db {
		return fmt.Errorf("matmul: dst %s and x %s share storage", dst, x)
	}
	k, _, grid, block := b.matmulKernel(wb.layout, x.Rows(), w.Shape[0], w.Shape[1])
	if k.fn == 0 {
		return fmt.Errorf("matmul: w %s: no GPU kernel for type %s", w, w.Type)
	}
	n, m, kk := x.Rows(), w.Shape[0], w.Shape[1]
	if n == 0 || m == 0 {
		return nil
	}
	if b.feeding() {
		// The graph step's feed pass sizes the cuBLAS scratch buffers, so
		// the capture that follows never has to grow them.
		return b.sizeBLAS(wb, n, m, kk)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if kk == 0 {
		// An empty dot product is zero (the kernels would write nothing).
		return b.drv.MemsetD32Async(db.ptr, 0, n*m, b.stream)
	}
	rb, _ := w.Type.RowSize(int64(kk))
	if b.useMMQSmall(wb.layout, n, kk) {
		ts := [1]mmvqTarget{{w: wb, rb: rb, dst: db.ptr, m: m}}
		return b.matmulMMQ(wb.layout, xb.ptr, n, kk, ts[:])
	}
	if b.useMMVQ(wb.layout, n, kk) {
		ts := [1]mmvqTarget{{w: wb, rb: rb, dst: db.ptr, m: m}}
		return b.launchMMVQ(wb.layout, xb.ptr, n, kk, ts[:])
	}
	if b.useBLAS(n) {
		return b.matmulBLAS(wb, xb, db, rb, n, m, kk)
	}
	b.args.reset().ptr(wb.ptr).ptr(wb.aux).i64(rb).ptr(xb.ptr).ptr(db.ptr).i32(m).i32(kk).i32(n)
	return b.launch(k, grid, block, 0)
}

// feedsMMQSmall reports whether the graph feed pass must size the scratch
// for a product of x by w that takes the mmq kernels at a matrix-vector
// size (useMMQSmall; other small products need none).
func (b *Backend) feedsMMQSmall(x, w *compute.Tensor) bool {
	if x == nil || w == nil || len(x.Shape) == 0 {
		return false
	}
	wb, ok := w.Dev.(*devBuf)
	return ok && wb != nil && b.useMMQSmall(wb.layout, x.Rows(), x.Cols())
}

// matmulKernel picks the kernel and launch shape for n tokens, m weight rows
// and k columns: a dedicated matrix-vector kernel for small n where one
// exists (and k suits its vector width), else the generic one, else the
// tiled kernel for large n.
func (b *Backend) matmulKernel(layout string, n, m, k int) (kernel, string, cuda.Dim3, cuda.Dim3) {
	if n <= maxMatVecTokens {
		grid := cuda.Dim3{X: uint32((m + mvWarps - 1) / mvWarps)}
		block := cuda.Dim3{X: uint32(mvWarps * b.warp)}
		fast := fastMatVec[layout]
		switch layout {
		case "f32":
			fast = k%4 == 0
		case "f16", "bf16":
			fast = k%8 == 0
		}
		if fast {
			nt := 1
			for nt < n {
				nt *= 2
			}
			if rows, ok := quantRows[nt]; ok && quantMatVec[layout] {
				grid = cuda.Dim3{X: uint32((m + rows - 1) / rows)}
			}
			name := matVecNames[layout][nt]
			return b.k.all[name], name, grid, block
		}
		name := "matvec_gen_" + layout + "_8"
		if n == 1 {
			name = "matvec_gen_" + layout + "_1"
		}
		return b.k.all[name], name, grid, block
	}
	name := "gemm_" + layout
	grid := cuda.Dim3{X: uint32((m + 63) / 64), Y: uint32((n + 63) / 64)}
	return b.k.all[name], name, grid, cuda.Dim3{X: 16, Y: 16}
}
