package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Handles of the driver API. They are opaque pointers (or, for DevicePtr, a
// 64-bit device address) that only this package interprets.
type (
	// Device is a CUdevice ordinal handle.
	Device int32
	// Context is a CUcontext.
	Context uintptr
	// Stream is a CUstream.
	Stream uintptr
	// Module is a CUmodule.
	Module uintptr
	// Function is a CUfunction.
	Function uintptr
	// Event is a CUevent.
	Event uintptr
	// Graph is a CUgraph.
	Graph uintptr
	// GraphExec is a CUgraphExec.
	GraphExec uintptr
	// DevicePtr is a CUdeviceptr.
	DevicePtr uint64
)

// Device attributes (CUdevice_attribute) used by the backend.
const (
	AttrMaxThreadsPerBlock     = 1
	AttrMaxSharedMemPerBlock   = 8
	AttrWarpSize               = 10
	AttrMultiprocessorCount    = 16
	AttrL2CacheSize            = 38
	AttrComputeCapabilityMajor = 75
	AttrComputeCapabilityMinor = 76
	AttrMaxSharedMemOptin      = 97
)

// Function attributes (CUfunction_attribute).
const (
	FuncAttrNumRegs            = 4
	FuncAttrLocalSizeBytes     = 3
	FuncAttrMaxDynamicSharedMB = 8
)

// Driver is the loaded libcuda with its entry points resolved. Its methods
// are safe for concurrent use (the driver is thread-safe); the current
// context, however, is per OS thread: see SetCurrent.
type Driver struct {
	path string
	lib  uintptr

	cuInit, cuDriverGetVersion, cuGetErrorName, cuGetErrorString                   uintptr
	cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute           uintptr
	cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease          uintptr
	cuCtxSetCurrent, cuStreamCreate, cuStreamDestroy, cuStreamSynchronize          uintptr
	cuMemAlloc, cuMemFree, cuMemAllocHost, cuMemFreeHost, cuMemGetInfo             uintptr
	cuMemcpyHtoD, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync          uintptr
	cuMemsetD8Async, cuMemsetD32Async                                              uintptr
	cuModuleLoadData, cuModuleUnload, cuModuleGetFunction                          uintptr
	cuFuncGetAttribute, cuFuncSetAttribute, cuLaunchKernel                         uintptr
	cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime           uintptr
	cuEventDestroy, cuStreamBeginCapture, cuStreamEndCapture                       uintptr
	cuGraphInstantiateWithFlags, cuGraphLaunch, cuGraphExecDestroy, cuGraphDestroy uintptr

	// cuLaunchKernelEx (CUDA 12.0+, 0 when absent) and the launch
	// configuration LaunchKernelPDL passes it (kept here, off the Go stack:
	// the driver reads it through a pointer; launches are serialised by the
	// caller).
	cuLaunchKernelEx uintptr
	pdlCfg           *launchConfig
}

// launchConfig is CUlaunchConfig (56 bytes) and launchAttribute
// CUlaunchAttribute (72 bytes: id, padding, a 64-byte value union).
type launchConfig struct {
	gridX, gridY, gridZ, blockX, blockY, blockZ, smem uint32
	_                                                 uint32
	stream, attrs                                     uintptr
	numAttrs                                          uint32
	_                                                 uint32
	attr                                              launchAttribute // what attrs points at
}

type launchAttribute struct {
	id  uint32
	_   uint32
	val [64]byte
}

// attrProgrammaticStreamSerialization is CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.
const attrProgrammaticStreamSerialization = 6

// LoadDriver opens libcuda.so.1 and calls cuInit. It fails, without
// crashing, when the library is missing, lacks an entry point, or cuInit
// reports an error (for example no driver or no device).
func LoadDriver() (*Driver, error) {
	lib, path, err := openLib("the CUDA driver (libcuda.so.1)", []string{"libcuda.so.1", "libcuda.so"}, searchDirs())
	if err != nil {
		return nil, err
	}
	d := &Driver{path: path, lib: lib}
	syms := map[string]*uintptr{
		"cuInit": &d.cuInit, "cuDriverGetVersion": &d.cuDriverGetVersion,
		"cuGetErrorName": &d.cuGetErrorName, "cuGetErrorString": &d.cuGetErrorString,
		"cuDeviceGetCount": &d.cuDeviceGetCount, "cuDeviceGet": &d.cuDeviceGet,
		"cuDeviceGetName": &d.cuDeviceGetName, "cuDeviceGetAttribute": &d.cuDeviceGetAttribute,
		"cuDeviceTotalMem_v2": &d.cuDeviceTotalMem, "cuDevicePrimaryCtxRetain": &d.cuDevicePrimaryCtxRetain,
		"cuDevicePrimaryCtxRelease_v2": &d.cuDevicePrimaryCtxRelease, "cuCtxSetCurrent": &d.cuCtxSetCurrent,
		"cuStreamCreate": &d.cuStreamCreate, "cuStreamDestroy_v2": &d.cuStreamDestroy,
		"cuStreamSynchronize": &d.cuStreamSynchronize,
		"cuMemAlloc_v2":       &d.cuMemAlloc, "cuMemFree_v2": &d.cuMemFree,
		"cuMemAllocHost_v2": &d.cuMemAllocHost, "cuMemFreeHost": &d.cuMemFreeHost,
		"cuMemGetInfo_v2": &d.cuMemGetInfo,
		"cuMemcpyHtoD_v2": &d.cuMemcpyHtoD, "cuMemcpyHtoDAsync_v2": &d.cuMemcpyHtoDAsync,
		"cuMemcpyDtoHAsync_v2": &d.cuMemcpyDtoHAsync, "cuMemcpyDtoDAsync_v2": &d.cuMemcpyDtoDAsync,
		"cuMemsetD8Async": &d.cuMemsetD8Async, "cuMemsetD32Async": &d.cuMemsetD32Async,
		"cuModuleLoadData": &d.cuModuleLoadData, "cuModuleUnload": &d.cuModuleUnload,
		"cuModuleGetFunction": &d.cuModuleGetFunction,
		"cuFuncGetAttribute":  &d.cuFuncGetAttribute, "cuFuncSetAttribute": &d.cuFuncSetAttribute,
		"cuLaunchKernel": &d.cuLaunchKernel,
		"cuEventCreate":  &d.cuEventCreate, "cuEventRecord": &d.cuEventRecord,
		"cuEventSynchronize": &d.cuEventSynchronize, "cuEventDestroy_v2": &d.cuEventDestroy,
		"cuStreamBeginCapture_v2": &d.cuStreamBeginCapture, "cuStreamEndCapture": &d.cuStreamEndCapture,
		"cuGraphInstantiateWithFlags": &d.cuGraphInstantiateWithFlags, "cuGraphLaunch": &d.cuGraphLaunch,
		"cuGraphExecDestroy": &d.cuGraphExecDestroy, "cuGraphDestroy": &d.cuGraphDestroy,
	}
	if err := symbols(lib, path, syms); err != nil {
		return nil, err
	}
	// CUDA 12.8 added cuEventElapsedTime_v2; older drivers only have the first.
	for _, name := range []string{"cuEventElapsedTime_v2", "cuEventElapsedTime"} {
		if addr, err := purego.Dlsym(lib, name); err == nil && addr != 0 {
			d.cuEventElapsedTime = addr
			break
		}
	}
	if d.cuEventElapsedTime == 0 {
		return nil, fmt.Errorf("cuda: %s lacks cuEventElapsedTime", path)
	}
	if addr, err := purego.Dlsym(lib, "cuLaunchKernelEx"); err == nil && addr != 0 {
		d.cuLaunchKernelEx = addr
		d.pdlCfg = &launchConfig{numAttrs: 1}
		d.pdlCfg.attr.id = attrProgrammaticStreamSerialization
		d.pdlCfg.attr.val[0] = 1 // programmaticStreamSerializationAllowed
		d.pdlCfg.attrs = uintptr(unsafe.Pointer(&d.pdlCfg.attr))
	}
	if err := d.check("cuInit", d.call(d.cuInit, 0)); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the file the driver library was loaded from.
func (d *Driver) Path() string { return d.path }

// Error is a failed driver call: the function and its CUresult.
type Error struct {
	Func string
	Code int
	Name string // e.g. CUDA_ERROR_OUT_OF_MEMORY
	Desc string
}

func (e *Error) Error() string {
	if e.Desc != "" {
		return fmt.Sprintf("%s: %s (%d): %s", e.Func, e.Name, e.Code, e.Desc)
	}
	return fmt.Sprintf("%s: %s (%d)", e.Func, e.Name, e.Code)
}

// call runs a driver function and returns its CUresult. Arguments that are
// pointers converted to uintptr are moved to the heap and kept alive for the
// call (go:uintptrescapes), as for syscall.Syscall.
//
//go:uintptrescapes
func (d *Driver) call(fn uintptr, args ...uintptr) int {
	r, _, _ := purego.SyscallN(fn, args...)
	return int(int32(r))
}

// hotArgs are argument arrays for the calls every decode step makes,
// reused: purego.SyscallN's variadic arguments escape to the heap, so a
// call written with a literal argument list allocates its array each time.
var hotArgs = sync.Pool{New: func() any { return new([12]uintptr) }}

// callHot is call for the per-step calls, without allocating: its first n
// of a0..a3 are the arguments. None may be a Go pointer that only this
// call keeps alive (callers pass handles, device addresses, sizes, and host
// addresses their callers hold).
func callHot(fn uintptr, n int, a0, a1, a2, a3 uintptr) int {
	p := hotArgs.Get().(*[12]uintptr)
	p[0], p[1], p[2], p[3] = a0, a1, a2, a3
	r, _, _ := purego.SyscallN(fn, p[:n]...)
	hotArgs.Put(p)
	return int(int32(r))
}

// check turns a CUresult into an error naming the call.
func (d *Driver) check(fn string, code int) error {
	if code == 0 {
		return nil
	}
	e := &Error{Func: fn, Code: code, Name: fmt.Sprintf("CUresult(%d)", code)}
	var p uintptr
	if d.cuGetErrorName != 0 && d.call(d.cuGetErrorName, uintptr(code), uintptr(unsafe.Pointer(&p))) == 0 {
		e.Name = goString(p)
	}
	if d.cuGetErrorString != 0 && d.call(d.cuGetErrorString, uintptr(code), uintptr(unsafe.Pointer(&p))) == 0 {
		e.Desc = goString(p)
	}
	return e
}

// goString copies a NUL-terminated C string.
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	// The pointer is C memory (a static string table), never Go memory.
	b := *(**byte)(unsafe.Pointer(&p))
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(b), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(b, n))
}

// cString returns s as a NUL-terminated byte slice.
func cString(s string) []byte { return append([]byte(s), 0) }

// Version is the driver's CUDA version as major*1000 + minor*10.
func (d *Driver) Version() (int, error) {
	var v int32
	err := d.check("cuDriverGetVersion", d.call(d.cuDriverGetVersion, uintptr(unsafe.Pointer(&v))))
	return int(v), err
}

// DeviceCount is the number of CUDA devices.
func (d *Driver) DeviceCount() (int, error) {
	var n int32
	return int(n), d.check("cuDeviceGetCount", d.call(d.cuDeviceGetCount, uintptr(unsafe.Pointer(&n))))
}

// DeviceGet returns the device of an ordinal.
func (d *Driver) DeviceGet(ordinal int) (Device, error) {
	var dev int32
	return Device(dev), d.check("cuDeviceGet", d.call(d.cuDeviceGet, uintptr(unsafe.Pointer(&dev)), uintptr(ordinal)))
}

// DeviceName is the device's marketing name.
func (d *Driver) DeviceName(dev Device) (string, error) {
	buf := make([]byte, 256)
	if err := d.check("cuDeviceGetName", d.call(d.cuDeviceGetName, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(dev))); err != nil {
		return "", err
	}
	for i, c := range buf {
		if c == 0 {
			return string(buf[:i]), nil
		}
	}
	return string(buf), nil
}

// DeviceAttribute reads a CUdevice_attribute.
func (d *Driver) DeviceAttribute(dev Device, attr int) (int, error) {
	var v int32
	err := d.check(fmt.Sprintf("cuDeviceGetAttribute(%d)", attr), d.call(d.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(attr), uintptr(dev)))
	return int(v), err
}

// DeviceTotalMem is the device's memory in bytes.
func (d *Driver) DeviceTotalMem(dev Device) (int64, error) {
	var v uint64
	err := d.check("cuDeviceTotalMem", d.call(d.cuDeviceTotalMem, uintptr(unsafe.Pointer(&v)), uintptr(dev)))
	return int64(v), err
}

// PrimaryCtxRetain retains the device's primary context.
func (d *Driver) PrimaryCtxRetain(dev Device) (Context, error) {
	var c uintptr
	err := d.check("cuDevicePrimaryCtxRetain", d.call(d.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&c)), uintptr(dev)))
	return Context(c), err
}

// PrimaryCtxRelease releases a retain of the primary context.
func (d *Driver) PrimaryCtxRelease(dev Device) error {
	return d.check("cuDevicePrimaryCtxRelease", d.call(d.cuDevicePrimaryCtxRelease, uintptr(dev)))
}

// SetCurrent binds ctx to the calling OS thread. Go moves goroutines between
// threads, so callers lock the goroutine to its thread (runtime.LockOSThread)
// around SetCurrent and the calls that need the context.
func (d *Driver) SetCurrent(ctx Context) error {
	return d.check("cuCtxSetCurrent", callHot(d.cuCtxSetCurrent, 1, uintptr(ctx), 0, 0, 0))
}

// StreamCreate makes a stream that does not synchronize with the legacy
// default stream.
func (d *Driver) StreamCreate() (Stream, error) {
	var s uintptr
	const nonBlocking = 1
	err := d.check("cuStreamCreate", d.call(d.cuStreamCreate, uintptr(unsafe.Pointer(&s)), nonBlocking))
	return Stream(s), err
}

// StreamDestroy destroys a stream.
func (d *Driver) StreamDestroy(s Stream) error {
	return d.check("cuStreamDestroy", d.call(d.cuStreamDestroy, uintptr(s)))
}

// StreamSynchronize waits for all work queued on s.
func (d *Driver) StreamSynchronize(s Stream) error {
	return d.check("cuStreamSynchronize", callHot(d.cuStreamSynchronize, 1, uintptr(s), 0, 0, 0))
}

// MemAlloc allocates device memory.
func (d *Driver) MemAlloc(bytes int64) (DevicePtr, error) {
	var p uint64
	err := d.check(fmt.Sprintf("cuMemAlloc(%d bytes)", bytes), d.call(d.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(bytes)))
	return DevicePtr(p), err
}

// MemFree frees device memory.
func (d *Driver) MemFree(p DevicePtr) error {
	return d.check("cuMemFree", d.call(d.cuMemFree, uintptr(p)))
}

// MemAllocHost allocates page-locked host memory, which asynchronous copies
// can read without staging.
func (d *Driver) MemAllocHost(bytes int) (uintptr, error) {
	var p uintptr
	err := d.check(fmt.Sprintf("cuMemAllocHost(%d bytes)", bytes), d.call(d.cuMemAllocHost, uintptr(unsafe.Pointer(&p)), uintptr(bytes)))
	return p, err
}

// MemFreeHost frees memory from MemAllocHost.
func (d *Driver) MemFreeHost(p uintptr) error {
	return d.check("cuMemFreeHost", d.call(d.cuMemFreeHost, p))
}

// MemGetInfo is the free and total device memory of the current context.
func (d *Driver) MemGetInfo() (free, total int64, err error) {
	var f, t uint64
	err = d.check("cuMemGetInfo", d.call(d.cuMemGetInfo, uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t))))
	return int64(f), int64(t), err
}

// MemcpyHtoD copies host bytes to the device and returns when done.
func (d *Driver) MemcpyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	return d.check("cuMemcpyHtoD", d.call(d.cuMemcpyHtoD, uintptr(dst), uintptr(src), uintptr(bytes)))
}

// MemcpyHtoDAsync queues a host-to-device copy on s. From pageable memory
// the call returns once src has been consumed; from page-locked memory src
// must stay untouched until the copy has run.
func (d *Driver) MemcpyHtoDAsync(dst DevicePtr, src unsafe.Pointer, bytes int, s Stream) error {
	return d.check("cuMemcpyHtoDAsync", d.call(d.cuMemcpyHtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), uintptr(s)))
}

// MemcpyHtoDAsyncPinned is MemcpyHtoDAsync from a page-locked address.
func (d *Driver) MemcpyHtoDAsyncPinned(dst DevicePtr, src uintptr, bytes int, s Stream) error {
	return d.check("cuMemcpyHtoDAsync", callHot(d.cuMemcpyHtoDAsync, 4, uintptr(dst), src, uintptr(bytes), uintptr(s)))
}

// MemcpyDtoHAsync queues a device-to-host copy on s.
func (d *Driver) MemcpyDtoHAsync(dst unsafe.Pointer, src DevicePtr, bytes int, s Stream) error {
	err := d.check("cuMemcpyDtoHAsync", callHot(d.cuMemcpyDtoHAsync, 4, uintptr(dst), uintptr(src), uintptr(bytes), uintptr(s)))
	runtime.KeepAlive(dst) // the caller keeps it until the copy is done
	return err
}

// MemcpyDtoDAsync queues a device-to-device copy on s.
func (d *Driver) MemcpyDtoDAsync(dst, src DevicePtr, bytes int, s Stream) error {
	return d.check("cuMemcpyDtoDAsync", d.call(d.cuMemcpyDtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), uintptr(s)))
}

// MemsetD8Async queues setting n bytes to v.
func (d *Driver) MemsetD8Async(p DevicePtr, v byte, n int, s Stream) error {
	return d.check("cuMemsetD8Async", d.call(d.cuMemsetD8Async, uintptr(p), uintptr(v), uintptr(n), uintptr(s)))
}

// MemsetD32Async queues setting n 32-bit words to v.
func (d *Driver) MemsetD32Async(p DevicePtr, v uint32, n int, s Stream) error {
	return d.check("cuMemsetD32Async", d.call(d.cuMemsetD32Async, uintptr(p), uintptr(v), uintptr(n), uintptr(s)))
}

// ModuleLoadData loads a cubin (or PTX) image into the current context.
func (d *Driver) ModuleLoadData(image []byte) (Module, error) {
	var m uintptr
	err := d.check("cuModuleLoadData", d.call(d.cuModuleLoadData, uintptr(unsafe.Pointer(&m)), uintptr(unsafe.Pointer(&image[0]))))
	return Module(m), err
}

// ModuleUnload unloads a module.
func (d *Driver) ModuleUnload(m Module) error {
	return d.check("cuModuleUnload", d.call(d.cuModuleUnload, uintptr(m)))
}

// ModuleGetFunction looks up a kernel by its (extern "C") name.
func (d *Driver) ModuleGetFunction(m Module, name string) (Function, error) {
	var f uintptr
	cs := cString(name)
	err := d.check("cuModuleGetFunction("+name+")", d.call(d.cuModuleGetFunction, uintptr(unsafe.Pointer(&f)), uintptr(m), uintptr(unsafe.Pointer(&cs[0]))))
	return Function(f), err
}

// FuncAttribute reads a CUfunction_attribute.
func (d *Driver) FuncAttribute(f Function, attr int) (int, error) {
	var v int32
	err := d.check("cuFuncGetAttribute", d.call(d.cuFuncGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(attr), uintptr(f)))
	return int(v), err
}

// FuncSetAttribute sets a CUfunction_attribute (e.g. the dynamic shared
// memory limit).
func (d *Driver) FuncSetAttribute(f Function, attr, value int) error {
	return d.check("cuFuncSetAttribute", d.call(d.cuFuncSetAttribute, uintptr(f), uintptr(attr), uintptr(value)))
}

// Dim3 is a launch grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// LaunchKernel queues f on s. params points at an array of pointers, one
// per kernel parameter, each pointing at the parameter's value; the driver
// copies the values before returning.
func (d *Driver) LaunchKernel(f Function, grid, block Dim3, sharedMem uint32, s Stream, params unsafe.Pointer) error {
	p := hotArgs.Get().(*[12]uintptr) // no argument array allocated per launch
	*p = [12]uintptr{uintptr(f), uintptr(grid.X), uintptr(grid.Y), uintptr(grid.Z),
		uintptr(block.X), uintptr(block.Y), uintptr(block.Z), uintptr(sharedMem), uintptr(s), uintptr(params)}
	r, _, _ := purego.SyscallN(d.cuLaunchKernel, p[:11]...)
	hotArgs.Put(p)
	runtime.KeepAlive(params)
	if r != 0 {
		return d.check("cuLaunchKernel", int(int32(r)))
	}
	return nil
}

// HasPDL reports whether LaunchKernelPDL can launch with programmatic
// dependent launch (the driver has cuLaunchKernelEx).
func (d *Driver) HasPDL() bool { return d.cuLaunchKernelEx != 0 }

// LaunchKernelPDL is LaunchKernel with programmatic stream serialization
// allowed: the kernel may be scheduled before the previous kernel in the
// stream finishes, so it must wait for it itself (griddepcontrol.wait)
// before touching memory. Without cuLaunchKernelEx it is LaunchKernel.
func (d *Driver) LaunchKernelPDL(f Function, grid, block Dim3, sharedMem uint32, s Stream, params unsafe.Pointer) error {
	if d.cuLaunchKernelEx == 0 {
		return d.LaunchKernel(f, grid, block, sharedMem, s, params)
	}
	c := d.pdlCfg
	c.gridX, c.gridY, c.gridZ = grid.X, grid.Y, grid.Z
	c.blockX, c.blockY, c.blockZ = block.X, block.Y, block.Z
	c.smem, c.stream = sharedMem, uintptr(s)
	r := uintptr(callHot(d.cuLaunchKernelEx, 4, uintptr(unsafe.Pointer(c)), uintptr(f), uintptr(params), 0))
	runtime.KeepAlive(c)
	runtime.KeepAlive(params)
	if r != 0 {
		return d.check("cuLaunchKernelEx", int(int32(r)))
	}
	return nil
}

// EventCreate makes an event that records timing.
func (d *Driver) EventCreate() (Event, error) {
	var e uintptr
	err := d.check("cuEventCreate", d.call(d.cuEventCreate, uintptr(unsafe.Pointer(&e)), 0))
	return Event(e), err
}

// EventRecord records e on s.
func (d *Driver) EventRecord(e Event, s Stream) error {
	return d.check("cuEventRecord", callHot(d.cuEventRecord, 2, uintptr(e), uintptr(s), 0, 0))
}

// EventSynchronize waits for e.
func (d *Driver) EventSynchronize(e Event) error {
	return d.check("cuEventSynchronize", callHot(d.cuEventSynchronize, 1, uintptr(e), 0, 0, 0))
}

// EventElapsed is the time between two completed events, in milliseconds.
func (d *Driver) EventElapsed(start, end Event) (float32, error) {
	var ms float32
	err := d.check("cuEventElapsedTime", d.call(d.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), uintptr(start), uintptr(end)))
	return ms, err
}

// EventDestroy destroys an event.
func (d *Driver) EventDestroy(e Event) error {
	return d.check("cuEventDestroy", d.call(d.cuEventDestroy, uintptr(e)))
}

// StreamBeginCapture starts capturing the work queued on s into a graph
// (relaxed mode: other threads may keep using the driver).
func (d *Driver) StreamBeginCapture(s Stream) error {
	const relaxed = 2
	return d.check("cuStreamBeginCapture", d.call(d.cuStreamBeginCapture, uintptr(s), relaxed))
}

// StreamEndCapture ends a capture and returns the graph.
func (d *Driver) StreamEndCapture(s Stream) (Graph, error) {
	var g uintptr
	err := d.check("cuStreamEndCapture", d.call(d.cuStreamEndCapture, uintptr(s), uintptr(unsafe.Pointer(&g))))
	return Graph(g), err
}

// GraphInstantiate makes an executable graph.
func (d *Driver) GraphInstantiate(g Graph) (GraphExec, error) {
	var e uintptr
	err := d.check("cuGraphInstantiateWithFlags", d.call(d.cuGraphInstantiateWithFlags, uintptr(unsafe.Pointer(&e)), uintptr(g), 0))
	return GraphExec(e), err
}

// GraphLaunch queues an executable graph on s.
func (d *Driver) GraphLaunch(e GraphExec, s Stream) error {
	return d.check("cuGraphLaunch", callHot(d.cuGraphLaunch, 2, uintptr(e), uintptr(s), 0, 0))
}

// GraphExecDestroy destroys an executable graph.
func (d *Driver) GraphExecDestroy(e GraphExec) error {
	return d.check("cuGraphExecDestroy", d.call(d.cuGraphExecDestroy, uintptr(e)))
}

// GraphDestroy destroys a graph.
func (d *Driver) GraphDestroy(g Graph) error {
	return d.check("cuGraphDestroy", d.call(d.cuGraphDestroy, uintptr(g)))
}
