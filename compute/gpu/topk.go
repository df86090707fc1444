package gpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// topkThreads is topk_f32's block size (TOPK_THREADS in topk.cu).
const topkThreads = 1024

var _ compute.TopKer = (*Backend)(nil)

// topkState holds TopKRows' output: on the device ids, then values, then
// log-sum-exps; on the host the same words, copied back in one transfer.
type topkState struct {
	out  scratch
	host []uint32
}

// TopKRows implements compute.TopKer: each row's k best candidates and its
// log-sum-exp are found on the device (kernels/topk.cu, one block per row)
// and only those n*(2k+1) numbers are copied back. k may be 1 to
// compute.MaxTopK. Like ArgmaxRows it runs between graph steps, on the
// logits a step left on the device, not inside one.
func (b *Backend) TopKRows(x *compute.Tensor, k int, ids []int32, vals []float32, lse []float32) error {
	if b.mode != modeEager {
		return fmt.Errorf("topk %s: %w", x, errInStep)
	}
	if err := compute.CheckTopKRows(x, k, ids, vals, lse); err != nil {
		return err
	}
	xb, err := b.f32Buf("topk", "logits", x)
	if err != nil {
		return err
	}
	n, m := x.Rows(), x.Cols()
	if n == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	nk := n * k
	words := 2*nk + n
	if err := b.grow(&b.topk.out, 4*int64(words)); err != nil {
		return err
	}
	idsPtr := b.topk.out.ptr
	valsPtr := idsPtr + cuda.DevicePtr(4*nk)
	lsePtr := valsPtr + cuda.DevicePtr(4*nk)
	b.args.reset().ptr(xb.ptr).i32(m).i32(k).ptr(idsPtr).ptr(valsPtr).ptr(lsePtr)
	if err := b.launch(b.k.all["topk_f32"], cuda.Dim3{X: uint32(n)}, cuda.Dim3{X: topkThreads}, 0); err != nil {
		return err
	}
	if cap(b.topk.host) < words {
		b.topk.host = make([]uint32, words)
	}
	h := b.topk.host[:words]
	if err := b.drv.MemcpyDtoHAsync(unsafe.Pointer(&h[0]), idsPtr, 4*words, b.stream); err != nil {
		return fmt.Errorf("topk %s: %w", x, err)
	}
	if err := b.drv.StreamSynchronize(b.stream); err != nil {
		return fmt.Errorf("topk %s: %w", x, err)
	}
	for i := range nk {
		ids[i] = int32(h[i])
		vals[i] = math.Float32frombits(h[nk+i])
	}
	for i := range n {
		lse[i] = math.Float32frombits(h[2*nk+i])
	}
	return nil
}
