package gpu

import (
	"unsafe"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// driverAPI is what the backend asks of a vendor runtime. Package cuda's
// Driver implements it directly; hipDriver (hipdriver.go) adapts package
// hip's. Handles use package cuda's types on both vendors: they are opaque
// integers of the same widths, and device and function attributes are
// numbered as CUDA numbers them (hipDriver translates).
type driverAPI interface {
	Path() string
	Version() (int, error)
	DeviceCount() (int, error)
	DeviceGet(ordinal int) (cuda.Device, error)
	DeviceName(dev cuda.Device) (string, error)
	DeviceAttribute(dev cuda.Device, attr int) (int, error)
	PrimaryCtxRetain(dev cuda.Device) (cuda.Context, error)
	PrimaryCtxRelease(dev cuda.Device) error
	SetCurrent(ctx cuda.Context) error

	StreamCreate() (cuda.Stream, error)
	StreamDestroy(s cuda.Stream) error
	StreamSynchronize(s cuda.Stream) error

	MemAlloc(bytes int64) (cuda.DevicePtr, error)
	MemFree(p cuda.DevicePtr) error
	MemAllocHost(bytes int) (uintptr, error)
	MemFreeHost(p uintptr) error
	MemGetInfo() (free, total int64, err error)
	MemcpyHtoD(dst cuda.DevicePtr, src unsafe.Pointer, bytes int) error
	MemcpyHtoDAsync(dst cuda.DevicePtr, src unsafe.Pointer, bytes int, s cuda.Stream) error
	MemcpyHtoDAsyncPinned(dst cuda.DevicePtr, src uintptr, bytes int, s cuda.Stream) error
	MemcpyDtoHAsync(dst unsafe.Pointer, src cuda.DevicePtr, bytes int, s cuda.Stream) error
	MemcpyDtoDAsync(dst, src cuda.DevicePtr, bytes int, s cuda.Stream) error
	MemsetD8Async(p cuda.DevicePtr, v byte, n int, s cuda.Stream) error
	MemsetD32Async(p cuda.DevicePtr, v uint32, n int, s cuda.Stream) error

	ModuleLoadData(image []byte) (cuda.Module, error)
	ModuleUnload(m cuda.Module) error
	ModuleGetFunction(m cuda.Module, name string) (cuda.Function, error)
	FuncAttribute(f cuda.Function, attr int) (int, error)
	FuncSetAttribute(f cuda.Function, attr, value int) error
	LaunchKernel(f cuda.Function, grid, block cuda.Dim3, sharedMem uint32, s cuda.Stream, params unsafe.Pointer) error

	EventCreate() (cuda.Event, error)
	EventRecord(e cuda.Event, s cuda.Stream) error
	EventSynchronize(e cuda.Event) error
	EventElapsed(start, end cuda.Event) (float32, error)
	EventDestroy(e cuda.Event) error

	StreamBeginCapture(s cuda.Stream) error
	StreamEndCapture(s cuda.Stream) (cuda.Graph, error)
	GraphInstantiate(g cuda.Graph) (cuda.GraphExec, error)
	GraphLaunch(e cuda.GraphExec, s cuda.Stream) error
	GraphExecDestroy(e cuda.GraphExec) error
	GraphDestroy(g cuda.Graph) error
}

var _ driverAPI = (*cuda.Driver)(nil)

// rtcAPI is the run-time compiler: NVRTC or hipRTC. Both take CUDA C with
// the headers given by name and return a loadable image.
type rtcAPI interface {
	Version() string
	Compile(src, name string, headers map[string]string, options []string) (image []byte, log string, err error)
}

var _ rtcAPI = (*cuda.NVRTC)(nil)
