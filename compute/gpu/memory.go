package gpu

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/ggml"
)

// devBuf is a tensor's device storage (Tensor.Dev). Views made by
// compute.Reshape or by prefix slicing share it; their shape must fit in it.
type devBuf struct {
	owner *core
	ptr   cuda.DevicePtr
	bytes int64
	// typ and layout describe the bytes: layout is the kernel suffix
	// (layoutNames); for split layouts aux is where the scales start.
	typ    ggml.Type
	layout string
	aux    cuda.DevicePtr
	// f32 is an F32 copy of a 1-D weight of another type (norm weights and
	// biases), which the F32 kernels read; for F32 tensors it is ptr.
	f32   cuda.DevicePtr
	freed bool
}

// storageBytes is the device size of a tensor of type t and shape, with the
// same checks (and messages) as the reference backend.
func storageBytes(op string, t ggml.Type, shape []int, name string) (int64, error) {
	// The tensor is built only for an error message: built up front, it
	// escapes into fmt and costs an allocation per op on the decode path.
	desc := func() *compute.Tensor { return &compute.Tensor{Name: name, Type: t, Shape: shape} }
	if !t.Supported() {
		return 0, fmt.Errorf("%s: %s: type %s is not supported", op, desc(), t)
	}
	if len(shape) == 0 {
		return 0, fmt.Errorf("%s: %s: empty shape (a tensor has at least one dimension)", op, desc())
	}
	elems := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%s: %s: negative dimension %d", op, desc(), d)
		}
		elems *= int64(d)
	}
	cols := int64(shape[len(shape)-1])
	rows := elems / max(cols, 1) // as compute.Tensor.Rows
	rb, err := t.RowSize(cols)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", op, desc(), err)
	}
	return rows * rb, nil
}

// alloc reserves device memory; zero bytes gives a null pointer.
func (b *Backend) alloc(bytes int64) (cuda.DevicePtr, error) {
	if bytes == 0 {
		return 0, nil
	}
	return b.drv.MemAlloc(bytes)
}

// NewTensor implements compute.Backend: zeroed device storage of any
// supported type (ops other than MatMul/Embedding need F32).
func (b *Backend) NewTensor(name string, t ggml.Type, shape ...int) (*compute.Tensor, error) {
	if b.mode != modeEager {
		return nil, fmt.Errorf("new tensor %s: %w", name, errInStep)
	}
	bytes, err := storageBytes("new tensor", t, shape, name)
	if err != nil {
		return nil, err
	}
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	p, err := b.alloc(bytes)
	if err != nil {
		return nil, fmt.Errorf("new tensor %s: %w", name, err)
	}
	if bytes > 0 {
		if err := b.drv.MemsetD8Async(p, 0, int(bytes), b.stream); err != nil {
			b.drv.MemFree(p)
			return nil, fmt.Errorf("new tensor %s: %w", name, err)
		}
	}
	buf := &devBuf{owner: b.core, ptr: p, bytes: bytes, typ: t, layout: layoutNames[t]}
	switch t {
	case ggml.F32:
		buf.f32 = p
	case ggml.Q4_0, ggml.Q8_0: // split layout, as Upload stores them: quants, then the f16 scales
		bs, qb := int64(18), int64(16)
		if t == ggml.Q8_0 {
			bs, qb = 34, 32
		}
		buf.aux = p + cuda.DevicePtr(bytes/bs*qb)
	}
	return &compute.Tensor{Name: name, Type: t, Shape: slices.Clone(shape), Dev: buf}, nil
}

// Upload implements compute.Backend: the bytes go to the device once, in
// their GGUF type (Q4_0 and Q8_0 split into quants and scales). 1-D
// tensors of a type other than F32 also get an F32 copy for the norm and
// bias kernels.
func (b *Backend) Upload(name string, t ggml.Type, shape []int, data []byte) (*compute.Tensor, error) {
	if b.mode != modeEager {
		return nil, fmt.Errorf("upload %s: %w", name, errInStep)
	}
	bytes, err := storageBytes("upload", t, shape, name)
	if err != nil {
		return nil, err
	}
	x := &compute.Tensor{Name: name, Type: t, Shape: slices.Clone(shape)}
	if int64(len(data)) != bytes {
		return nil, fmt.Errorf("upload: %s needs %d bytes but got %d", x, bytes, len(data))
	}
	layout, ok := layoutNames[t]
	if !ok {
		return nil, fmt.Errorf("upload: %s: type %s has no GPU kernels", x, t)
	}
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	buf := &devBuf{owner: b.core, bytes: bytes, typ: t, layout: layout}
	if buf.ptr, err = b.alloc(bytes); err != nil {
		return nil, fmt.Errorf("upload %s: %w", x, err)
	}
	fail := func(err error) (*compute.Tensor, error) {
		b.freeBuf(buf)
		return nil, fmt.Errorf("upload %s: %w", x, err)
	}
	switch t {
	case ggml.Q4_0, ggml.Q8_0:
		if err := b.uploadSplit(buf, t, data); err != nil {
			return fail(err)
		}
	default:
		if bytes > 0 {
			if err := b.drv.MemcpyHtoD(buf.ptr, unsafe.Pointer(&data[0]), len(data)); err != nil {
				return fail(err)
			}
		}
	}
	switch {
	case t == ggml.F32:
		buf.f32 = buf.ptr
	case len(shape) == 1 && shape[0] > 0:
		if buf.f32, err = b.alloc(4 * int64(shape[0])); err != nil {
			return fail(err)
		}
		b.args.reset().ptr(buf.f32).ptr(buf.ptr).ptr(buf.aux).i64(bytes).i32(1).i32(shape[0])
		if err := b.launch(b.k.all["dequant_"+layout], b.gridFor(int64(shape[0]), 256), cuda.Dim3{X: 256}, 0); err != nil {
			return fail(err)
		}
	}
	x.Dev = buf
	return x, nil
}

// uploadSplit stores Q4_0/Q8_0 blocks as all quants (16 or 32 bytes a block,
// 16-byte aligned) followed by all f16 scales, converting on the host a
// slice of rows at a time.
func (b *Backend) uploadSplit(buf *devBuf, t ggml.Type, data []byte) error {
	bs, qb := 18, 16
	if t == ggml.Q8_0 {
		bs, qb = 34, 32
	}
	nBlocks := len(data) / bs
	if nBlocks == 0 {
		return nil
	}
	buf.aux = buf.ptr + cuda.DevicePtr(nBlocks*qb)
	const chunk = 1 << 16 // blocks per copy
	qs := make([]byte, min(chunk, nBlocks)*qb)
	ds := make([]byte, min(chunk, nBlocks)*2)
	for b0 := 0; b0 < nBlocks; b0 += chunk {
		nb := min(chunk, nBlocks-b0)
		for i := range nb {
			blk := data[(b0+i)*bs : (b0+i+1)*bs]
			copy(ds[2*i:2*i+2], blk[:2])
			copy(qs[qb*i:qb*(i+1)], blk[2:])
		}
		if err := b.drv.MemcpyHtoD(buf.ptr+cuda.DevicePtr(b0*qb), unsafe.Pointer(&qs[0]), nb*qb); err != nil {
			return err
		}
		if err := b.drv.MemcpyHtoD(buf.aux+cuda.DevicePtr(b0*2), unsafe.Pointer(&ds[0]), nb*2); err != nil {
			return err
		}
	}
	return nil
}

// Read implements compute.Backend: it waits for the queued work and copies
// an F32 tensor to the host.
func (b *Backend) Read(src *compute.Tensor, dst []float32) error {
	if b.mode != modeEager {
		return fmt.Errorf("read %s: %w", src, errInStep)
	}
	buf, err := b.f32Buf("read", "src", src)
	if err != nil {
		return err
	}
	if len(dst) != src.Elems() {
		return fmt.Errorf("read: src %s has %d elements but dst holds %d", src, src.Elems(), len(dst))
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if len(dst) > 0 {
		if err := b.drv.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), buf.ptr, 4*len(dst), b.stream); err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
	}
	if err := b.drv.StreamSynchronize(b.stream); err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	b.stage.idle()
	return nil
}

// Write implements compute.Backend. The copy is queued in order with the
// ops; src may be reused as soon as Write returns.
func (b *Backend) Write(dst *compute.Tensor, src []float32) error {
	if b.mode != modeEager {
		return fmt.Errorf("write %s: %w", dst, errInStep)
	}
	buf, err := b.f32Buf("write", "dst", dst)
	if err != nil {
		return err
	}
	if len(src) != dst.Elems() {
		return fmt.Errorf("write: dst %s has %d elements but src holds %d", dst, dst.Elems(), len(src))
	}
	if len(src) == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	// From pageable memory the driver returns once src has been consumed.
	if err := b.drv.MemcpyHtoDAsync(buf.ptr, unsafe.Pointer(&src[0]), 4*len(src), b.stream); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

// Free implements compute.Backend. Views of the tensor become unusable.
func (b *Backend) Free(t *compute.Tensor) {
	if t == nil {
		return
	}
	if b.mode != modeEager {
		return // a step's ops never free; freeing mid-capture would break it
	}
	buf, ok := t.Dev.(*devBuf)
	if !ok || buf.owner != b.core {
		return
	}
	if err := b.enter(); err != nil {
		return
	}
	defer b.leave()
	b.freeBuf(buf)
	t.Dev = nil
}

// freeBuf releases a buffer's memory. Queued kernels may still read it:
// cuMemFree waits for the device to finish with it, so no sync is needed.
func (b *Backend) freeBuf(buf *devBuf) {
	if buf.freed {
		return
	}
	if buf.f32 != 0 && buf.f32 != buf.ptr {
		b.drv.MemFree(buf.f32)
	}
	if buf.ptr != 0 {
		b.drv.MemFree(buf.ptr)
	}
	buf.freed = true
}

// buf returns t's device storage after checking that it belongs to this
// backend, is live, and holds t's shape.
func (b *Backend) buf(op, role string, t *compute.Tensor) (*devBuf, error) {
	if t == nil {
		return nil, fmt.Errorf("%s: %s is nil", op, role)
	}
	buf, ok := t.Dev.(*devBuf)
	if !ok || buf == nil {
		return nil, fmt.Errorf("%s: %s %s has no storage on %s", op, role, t, b.name)
	}
	if buf.owner != b.core {
		return nil, fmt.Errorf("%s: %s %s belongs to another backend", op, role, t)
	}
	if buf.freed {
		return nil, fmt.Errorf("%s: %s %s has been freed", op, role, t)
	}
	if buf.typ != t.Type {
		return nil, fmt.Errorf("%s: %s %s but its storage holds %s", op, role, t, buf.typ)
	}
	need, err := storageBytes(op, t.Type, t.Shape, t.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %w", op, role, err)
	}
	if need > buf.bytes {
		return nil, fmt.Errorf("%s: %s %s needs %d bytes but its storage holds %d", op, role, t, need, buf.bytes)
	}
	return buf, nil
}

// f32Buf is buf for tensors that must be F32 (activations).
func (b *Backend) f32Buf(op, role string, t *compute.Tensor) (*devBuf, error) {
	if t != nil && t.Type != ggml.F32 {
		return nil, fmt.Errorf("%s: %s %s must be F32", op, role, t)
	}
	return b.buf(op, role, t)
}

// vecBuf returns the F32 device vector of a checked 1-D weight or bias.
//
// against describes what fixes n, for the error; it is called only on
// failure, so that the decode path builds no strings.
func (b *Backend) vecBuf(op, role string, v *compute.Tensor, n int, against func() string) (cuda.DevicePtr, error) {
	buf, err := b.buf(op, role, v)
	if err != nil {
		return 0, err
	}
	if len(v.Shape) != 1 || v.Shape[0] != n {
		return 0, fmt.Errorf("%s: %s but %s %s (want [%d])", op, against(), role, v, n)
	}
	if buf.f32 == 0 && n > 0 {
		return 0, fmt.Errorf("%s: %s %s has no F32 copy (made with NewTensor as %s)", op, role, v, v.Type)
	}
	return buf.f32, nil
}

// stager moves small per-call index arrays (token ids, positions, slots,
// block tables) to the device: one page-locked host buffer and one device
// buffer of two halves each. A call packs its arrays into the current half
// and issues one asynchronous copy. When a half fills, an event marks its
// last copy and work moves to the other half, waiting first for that half's
// own event; after a Read (stream idle) everything is free again. Nothing is
// allocated per call.
type stager struct {
	host    uintptr // page-locked
	dev     cuda.DevicePtr
	half    int // bytes per half
	cur     int // 0 or 1
	off     int // bytes used in the current half
	events  [2]cuda.Event
	pending [2]bool
	ptrs    [8]cuda.DevicePtr // device addresses of the last put's arrays
}

func (s *stager) init(drv driverAPI, half int) error {
	var err error
	if s.host, err = drv.MemAllocHost(2 * half); err != nil {
		return err
	}
	if s.dev, err = drv.MemAlloc(int64(2 * half)); err != nil {
		return err
	}
	for i := range s.events {
		if s.events[i], err = drv.EventCreate(); err != nil {
			return err
		}
	}
	s.half, s.cur, s.off, s.pending = half, 0, 0, [2]bool{}
	return nil
}

func (s *stager) free(drv driverAPI) {
	if s.host != 0 {
		drv.MemFreeHost(s.host)
	}
	if s.dev != 0 {
		drv.MemFree(s.dev)
	}
	for i, e := range s.events {
		if e != 0 {
			drv.EventDestroy(e)
			s.events[i] = 0
		}
	}
	s.host, s.dev = 0, 0
}

// idle records that the stream has drained: every half is reusable.
func (s *stager) idle() {
	s.off, s.pending = 0, [2]bool{}
}

// put copies the arrays to the device (queued on stream) and leaves their
// device addresses in s.ptrs.
func (b *Backend) put(parts ...[]int32) error {
	s := &b.stage
	total := 0
	for _, p := range parts {
		total += (4*len(p) + 15) &^ 15
	}
	if total > s.half {
		// Larger than a half: drain the stream and grow.
		if err := b.drv.StreamSynchronize(b.stream); err != nil {
			return err
		}
		half := s.half
		for half < total {
			half *= 2
		}
		s.free(b.drv)
		if err := s.init(b.drv, half); err != nil {
			return fmt.Errorf("gpu: staging buffer of %d bytes: %w", 2*half, err)
		}
	}
	if s.off+total > s.half {
		if err := b.drv.EventRecord(s.events[s.cur], b.stream); err != nil {
			return err
		}
		s.pending[s.cur] = true
		s.cur ^= 1
		s.off = 0
		if s.pending[s.cur] {
			if err := b.drv.EventSynchronize(s.events[s.cur]); err != nil {
				return err
			}
			s.pending[s.cur] = false
		}
	}
	base := s.cur*s.half + s.off
	host := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&s.host))), 2*s.half)
	off := base
	for i, p := range parts {
		for j, v := range p {
			binary.LittleEndian.PutUint32(host[off+4*j:], uint32(v))
		}
		s.ptrs[i] = s.dev + cuda.DevicePtr(off)
		off += (4*len(p) + 15) &^ 15
	}
	if total > 0 {
		if err := b.drv.MemcpyHtoDAsyncPinned(s.dev+cuda.DevicePtr(base), s.host+uintptr(base), total, b.stream); err != nil {
			return err
		}
	}
	s.off += total
	return nil
}
