package gpu

import (
	"fmt"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/compute/gpu/hip"
)

// hipRuntime is the part of package hip's Driver the backend uses, in
// package hip's types. hipDriver adapts it to driverAPI; tests stand a fake
// in for it.
type hipRuntime interface {
	Path() string
	Version() (int, error)
	DeviceCount() (int, error)
	DeviceGet(ordinal int) (hip.Device, error)
	DeviceName(dev hip.Device) (string, error)
	DeviceAttribute(dev hip.Device, attr int) (int, error)
	DeviceArch(dev hip.Device) (string, error)
	PrimaryCtxRetain(dev hip.Device) (hip.Context, error)
	PrimaryCtxRelease(dev hip.Device) error
	SetCurrent(ctx hip.Context) error
	StreamCreate() (hip.Stream, error)
	StreamDestroy(s hip.Stream) error
	StreamSynchronize(s hip.Stream) error
	MemAlloc(bytes int64) (hip.DevicePtr, error)
	MemFree(p hip.DevicePtr) error
	MemAllocHost(bytes int) (uintptr, error)
	MemFreeHost(p uintptr) error
	MemGetInfo() (free, total int64, err error)
	MemcpyHtoD(dst hip.DevicePtr, src unsafe.Pointer, bytes int) error
	MemcpyHtoDAsync(dst hip.DevicePtr, src unsafe.Pointer, bytes int, s hip.Stream) error
	MemcpyHtoDAsyncPinned(dst hip.DevicePtr, src uintptr, bytes int, s hip.Stream) error
	MemcpyDtoHAsync(dst unsafe.Pointer, src hip.DevicePtr, bytes int, s hip.Stream) error
	MemcpyDtoDAsync(dst, src hip.DevicePtr, bytes int, s hip.Stream) error
	MemsetD8Async(p hip.DevicePtr, v byte, n int, s hip.Stream) error
	MemsetD32Async(p hip.DevicePtr, v uint32, n int, s hip.Stream) error
	ModuleLoadData(image []byte) (hip.Module, error)
	ModuleUnload(m hip.Module) error
	ModuleGetFunction(m hip.Module, name string) (hip.Function, error)
	FuncAttribute(f hip.Function, attr int) (int, error)
	LaunchKernel(f hip.Function, grid, block hip.Dim3, sharedMem uint32, s hip.Stream, params unsafe.Pointer) error
	EventCreate() (hip.Event, error)
	EventRecord(e hip.Event, s hip.Stream) error
	EventSynchronize(e hip.Event) error
	EventElapsed(start, end hip.Event) (float32, error)
	EventDestroy(e hip.Event) error
	StreamBeginCapture(s hip.Stream) error
	StreamEndCapture(s hip.Stream) (hip.Graph, error)
	GraphInstantiate(g hip.Graph) (hip.GraphExec, error)
	GraphLaunch(e hip.GraphExec, s hip.Stream) error
	GraphExecDestroy(e hip.GraphExec) error
	GraphDestroy(g hip.Graph) error
}

var _ hipRuntime = (*hip.Driver)(nil)

// hipDriver is driverAPI over the HIP runtime. HIP's module API mirrors
// CUDA's driver API call for call; what differs is the numbering of device
// attributes (translated here), the context (HIP has one per device:
// package hip makes the device ordinal stand for it) and FuncSetAttribute
// (AMD needs no opt-in for dynamic shared memory up to the block's limit).
//
// This path compiles and is tested against a fake runtime only: no AMD GPU
// has run it.
type hipDriver struct {
	rt  hipRuntime
	dev hip.Device // the backend's device (set by Vendor.arch)
	// sharedPerBlock is the device's shared-memory (LDS) limit per block,
	// read on first use by FuncSetAttribute.
	sharedPerBlock int
}

var _ driverAPI = (*hipDriver)(nil)

// hipAttr maps the CUDA device attributes the backend asks for to HIP's.
var hipAttr = map[int]int{
	cuda.AttrMaxThreadsPerBlock:     hip.AttrMaxThreadsPerBlock,
	cuda.AttrMaxSharedMemPerBlock:   hip.AttrMaxSharedMemPerBlock,
	cuda.AttrWarpSize:               hip.AttrWarpSize,
	cuda.AttrMultiprocessorCount:    hip.AttrMultiprocessorCount,
	cuda.AttrL2CacheSize:            hip.AttrL2CacheSize,
	cuda.AttrComputeCapabilityMajor: hip.AttrComputeCapabilityMajor,
	cuda.AttrComputeCapabilityMinor: hip.AttrComputeCapabilityMinor,
	// AMD has no opt-in shared memory: the per-block limit is the most a
	// kernel can have.
	cuda.AttrMaxSharedMemOptin: hip.AttrMaxSharedMemPerBlock,
}

func (d *hipDriver) Path() string                      { return d.rt.Path() }
func (d *hipDriver) Version() (int, error)             { return d.rt.Version() }
func (d *hipDriver) DeviceCount() (int, error)         { return d.rt.DeviceCount() }
func (d *hipDriver) MemGetInfo() (int64, int64, error) { return d.rt.MemGetInfo() }

func (d *hipDriver) DeviceGet(ordinal int) (cuda.Device, error) {
	dev, err := d.rt.DeviceGet(ordinal)
	return cuda.Device(dev), err
}

func (d *hipDriver) DeviceName(dev cuda.Device) (string, error) {
	return d.rt.DeviceName(hip.Device(dev))
}

// DeviceAttribute takes a CUDA attribute number (package cuda's Attr*).
func (d *hipDriver) DeviceAttribute(dev cuda.Device, attr int) (int, error) {
	a, ok := hipAttr[attr]
	if !ok {
		return 0, fmt.Errorf("hip: device attribute %d (CUDA numbering) has no HIP counterpart here", attr)
	}
	return d.rt.DeviceAttribute(hip.Device(dev), a)
}

func (d *hipDriver) PrimaryCtxRetain(dev cuda.Device) (cuda.Context, error) {
	c, err := d.rt.PrimaryCtxRetain(hip.Device(dev))
	return cuda.Context(c), err
}

func (d *hipDriver) PrimaryCtxRelease(dev cuda.Device) error {
	return d.rt.PrimaryCtxRelease(hip.Device(dev))
}

func (d *hipDriver) SetCurrent(ctx cuda.Context) error { return d.rt.SetCurrent(hip.Context(ctx)) }

func (d *hipDriver) StreamCreate() (cuda.Stream, error) {
	s, err := d.rt.StreamCreate()
	return cuda.Stream(s), err
}

func (d *hipDriver) StreamDestroy(s cuda.Stream) error { return d.rt.StreamDestroy(hip.Stream(s)) }
func (d *hipDriver) StreamSynchronize(s cuda.Stream) error {
	return d.rt.StreamSynchronize(hip.Stream(s))
}

func (d *hipDriver) MemAlloc(bytes int64) (cuda.DevicePtr, error) {
	p, err := d.rt.MemAlloc(bytes)
	return cuda.DevicePtr(p), err
}

func (d *hipDriver) MemFree(p cuda.DevicePtr) error          { return d.rt.MemFree(hip.DevicePtr(p)) }
func (d *hipDriver) MemAllocHost(bytes int) (uintptr, error) { return d.rt.MemAllocHost(bytes) }
func (d *hipDriver) MemFreeHost(p uintptr) error             { return d.rt.MemFreeHost(p) }

func (d *hipDriver) MemcpyHtoD(dst cuda.DevicePtr, src unsafe.Pointer, bytes int) error {
	return d.rt.MemcpyHtoD(hip.DevicePtr(dst), src, bytes)
}

func (d *hipDriver) MemcpyHtoDAsync(dst cuda.DevicePtr, src unsafe.Pointer, bytes int, s cuda.Stream) error {
	return d.rt.MemcpyHtoDAsync(hip.DevicePtr(dst), src, bytes, hip.Stream(s))
}

func (d *hipDriver) MemcpyHtoDAsyncPinned(dst cuda.DevicePtr, src uintptr, bytes int, s cuda.Stream) error {
	return d.rt.MemcpyHtoDAsyncPinned(hip.DevicePtr(dst), src, bytes, hip.Stream(s))
}

func (d *hipDriver) MemcpyDtoHAsync(dst unsafe.Pointer, src cuda.DevicePtr, bytes int, s cuda.Stream) error {
	return d.rt.MemcpyDtoHAsync(dst, hip.DevicePtr(src), bytes, hip.Stream(s))
}

func (d *hipDriver) MemcpyDtoDAsync(dst, src cuda.DevicePtr, bytes int, s cuda.Stream) error {
	return d.rt.MemcpyDtoDAsync(hip.DevicePtr(dst), hip.DevicePtr(src), bytes, hip.Stream(s))
}

func (d *hipDriver) MemsetD8Async(p cuda.DevicePtr, v byte, n int, s cuda.Stream) error {
	return d.rt.MemsetD8Async(hip.DevicePtr(p), v, n, hip.Stream(s))
}

func (d *hipDriver) MemsetD32Async(p cuda.DevicePtr, v uint32, n int, s cuda.Stream) error {
	return d.rt.MemsetD32Async(hip.DevicePtr(p), v, n, hip.Stream(s))
}

func (d *hipDriver) ModuleLoadData(image []byte) (cuda.Module, error) {
	m, err := d.rt.ModuleLoadData(image)
	return cuda.Module(m), err
}

func (d *hipDriver) ModuleUnload(m cuda.Module) error { return d.rt.ModuleUnload(hip.Module(m)) }

func (d *hipDriver) ModuleGetFunction(m cuda.Module, name string) (cuda.Function, error) {
	f, err := d.rt.ModuleGetFunction(hip.Module(m), name)
	return cuda.Function(f), err
}

// FuncAttribute takes a CUDA function attribute number; HIP numbers the
// ones the backend reads (registers, local memory, dynamic shared memory)
// the same way.
func (d *hipDriver) FuncAttribute(f cuda.Function, attr int) (int, error) {
	return d.rt.FuncAttribute(hip.Function(f), attr)
}

// FuncSetAttribute accepts the one attribute the backend sets, the
// dynamic shared memory a kernel may use: AMD needs no opt-in, so it only
// checks the request against the device's per-block limit.
func (d *hipDriver) FuncSetAttribute(f cuda.Function, attr, value int) error {
	if attr != cuda.FuncAttrMaxDynamicSharedMB {
		return fmt.Errorf("hip: function attribute %d cannot be set on this runtime", attr)
	}
	if d.sharedPerBlock == 0 {
		v, err := d.rt.DeviceAttribute(d.dev, hip.AttrMaxSharedMemPerBlock)
		if err != nil {
			return err
		}
		d.sharedPerBlock = v
	}
	if value > d.sharedPerBlock {
		return fmt.Errorf("hip: a kernel asks for %d bytes of dynamic shared memory but the device allows %d per block", value, d.sharedPerBlock)
	}
	return nil
}

func (d *hipDriver) LaunchKernel(f cuda.Function, grid, block cuda.Dim3, sharedMem uint32, s cuda.Stream, params unsafe.Pointer) error {
	return d.rt.LaunchKernel(hip.Function(f), hip.Dim3(grid), hip.Dim3(block), sharedMem, hip.Stream(s), params)
}

func (d *hipDriver) EventCreate() (cuda.Event, error) {
	e, err := d.rt.EventCreate()
	return cuda.Event(e), err
}

func (d *hipDriver) EventRecord(e cuda.Event, s cuda.Stream) error {
	return d.rt.EventRecord(hip.Event(e), hip.Stream(s))
}

func (d *hipDriver) EventSynchronize(e cuda.Event) error { return d.rt.EventSynchronize(hip.Event(e)) }

func (d *hipDriver) EventElapsed(start, end cuda.Event) (float32, error) {
	return d.rt.EventElapsed(hip.Event(start), hip.Event(end))
}

func (d *hipDriver) EventDestroy(e cuda.Event) error { return d.rt.EventDestroy(hip.Event(e)) }

func (d *hipDriver) StreamBeginCapture(s cuda.Stream) error {
	return d.rt.StreamBeginCapture(hip.Stream(s))
}

func (d *hipDriver) StreamEndCapture(s cuda.Stream) (cuda.Graph, error) {
	g, err := d.rt.StreamEndCapture(hip.Stream(s))
	return cuda.Graph(g), err
}

func (d *hipDriver) GraphInstantiate(g cuda.Graph) (cuda.GraphExec, error) {
	e, err := d.rt.GraphInstantiate(hip.Graph(g))
	return cuda.GraphExec(e), err
}

func (d *hipDriver) GraphLaunch(e cuda.GraphExec, s cuda.Stream) error {
	return d.rt.GraphLaunch(hip.GraphExec(e), hip.Stream(s))
}

func (d *hipDriver) GraphExecDestroy(e cuda.GraphExec) error {
	return d.rt.GraphExecDestroy(hip.GraphExec(e))
}

func (d *hipDriver) GraphDestroy(g cuda.Graph) error { return d.rt.GraphDestroy(hip.Graph(g)) }
