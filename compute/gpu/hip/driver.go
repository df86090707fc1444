package hip

import (
	"errors"
	"fmt"
	"regexp"
	"unsafe"
)

// Handles of the runtime. They are opaque pointers (or, for DevicePtr, a
// 64-bit device address) that only this package interprets. The names
// follow package cuda so the backend can use either.
type (
	// Device is a HIP device ordinal.
	Device int32
	// Context stands for a device's primary context. The HIP runtime has
	// no explicit contexts: each device has one, made current on a thread
	// by hipSetDevice, so a Context is the device ordinal (see
	// PrimaryCtxRetain and SetCurrent).
	Context int32
	// Stream is a hipStream_t.
	Stream uintptr
	// Module is a hipModule_t.
	Module uintptr
	// Function is a hipFunction_t.
	Function uintptr
	// Event is a hipEvent_t.
	Event uintptr
	// Graph is a hipGraph_t.
	Graph uintptr
	// GraphExec is a hipGraphExec_t.
	GraphExec uintptr
	// DevicePtr is a device address (hipDeviceptr_t).
	DevicePtr uint64
)

// Device attributes (hipDeviceAttribute_t). Their values have been the same
// from ROCm 5.0 through ROCm 7 (checked against the 5.2 and 7 headers).
const (
	AttrL2CacheSize            = 19
	AttrComputeCapabilityMajor = 23
	AttrMaxThreadsPerBlock     = 56
	AttrComputeCapabilityMinor = 61
	AttrMultiprocessorCount    = 63
	AttrMaxSharedMemPerBlock   = 74
	AttrWarpSize               = 87
)

// Function attributes (hipFunction_attribute, numbered as CUDA's).
const (
	FuncAttrLocalSizeBytes     = 3
	FuncAttrNumRegs            = 4
	FuncAttrMaxDynamicSharedMB = 8
)

// hipError_t values the package interprets.
const (
	errNoDevice      = 100 // hipErrorNoDevice
	errInvalidDevice = 101 // hipErrorInvalidDevice, what hipInit says on a machine without a GPU (ROCm 5.2)
)

// ErrNoDevice is matched (errors.Is) by the error of a call that failed
// because the runtime sees no AMD GPU.
var ErrNoDevice = errors.New("no HIP device")

// Error is a failed runtime call: the function and its hipError_t.
type Error struct {
	Func string
	Code int
	Name string // e.g. hipErrorOutOfMemory
	Desc string
}

func (e *Error) Error() string {
	if e.Desc != "" && e.Desc != e.Name {
		return fmt.Sprintf("%s: %s (%d): %s", e.Func, e.Name, e.Code, e.Desc)
	}
	return fmt.Sprintf("%s: %s (%d)", e.Func, e.Name, e.Code)
}

// Is reports whether the error is ErrNoDevice: hipErrorNoDevice from any
// call, or hipErrorInvalidDevice from hipInit.
func (e *Error) Is(target error) bool {
	return target == ErrNoDevice && (e.Code == errNoDevice || e.Code == errInvalidDevice && e.Func == "hipInit")
}

// Driver is the loaded HIP runtime with its entry points resolved. Its
// methods are safe for concurrent use; the current device, however, is per
// OS thread: see SetCurrent.
type Driver struct {
	path string
	api  *runtimeAPI
}

// LoadDriver opens libamdhip64 (see searchDirs for where) and calls
// hipInit. It fails, without crashing, when the library is missing, lacks
// an entry point, or hipInit reports an error (no driver, no device).
func LoadDriver() (*Driver, error) {
	return loadDriver(defaultFinder())
}

func loadDriver(f finder) (*Driver, error) {
	lib, path, err := f.openLib("the HIP runtime (libamdhip64.so)", runtimeNames)
	if err != nil {
		return nil, err
	}
	api, err := bindRuntime(dlsym(lib), path)
	if err != nil {
		return nil, err
	}
	return newDriver(api, path)
}

// newDriver initialises the runtime behind api.
func newDriver(api *runtimeAPI, path string) (*Driver, error) {
	d := &Driver{path: path, api: api}
	if err := d.check("hipInit", api.Init(0)); err != nil {
		return nil, fmt.Errorf("hip: %s: %w", path, err)
	}
	return d, nil
}

// Path is the file the runtime library was loaded from.
func (d *Driver) Path() string { return d.path }

// check turns a hipError_t into an error naming the call, or nil.
func (d *Driver) check(fn string, code int32) error {
	if code == 0 {
		return nil
	}
	e := &Error{Func: fn, Code: int(code)}
	if d.api.GetErrorName != nil {
		e.Name = d.api.GetErrorName(code)
	}
	// hipGetErrorName answers "hipErrorUnknown" for codes it does not know.
	if e.Name == "" || (e.Name == "hipErrorUnknown" && code != 999) {
		e.Name = fmt.Sprintf("hipError_t(%d)", code)
	}
	if d.api.GetErrorString != nil {
		e.Desc = d.api.GetErrorString(code)
	}
	return e
}

// Version is the driver version hipDriverGetVersion reports.
func (d *Driver) Version() (int, error) {
	var v int32
	return int(v), d.check("hipDriverGetVersion", d.api.DriverGetVersion(&v))
}

// RuntimeVersion is the HIP runtime version (major*10000000 +
// minor*100000 + patch).
func (d *Driver) RuntimeVersion() (int, error) {
	var v int32
	return int(v), d.check("hipRuntimeGetVersion", d.api.RuntimeGetVersion(&v))
}

// DeviceCount is the number of HIP devices.
func (d *Driver) DeviceCount() (int, error) {
	var n int32
	return int(n), d.check("hipGetDeviceCount", d.api.GetDeviceCount(&n))
}

// DeviceGet returns the device of an ordinal.
func (d *Driver) DeviceGet(ordinal int) (Device, error) {
	var dev int32
	return Device(dev), d.check(fmt.Sprintf("hipDeviceGet(%d)", ordinal), d.api.DeviceGet(&dev, int32(ordinal)))
}

// DeviceName is the device's marketing name.
func (d *Driver) DeviceName(dev Device) (string, error) {
	buf := make([]byte, 256)
	if err := d.check("hipDeviceGetName", d.api.DeviceGetName(&buf[0], int32(len(buf)), int32(dev))); err != nil {
		return "", err
	}
	return cBytes(buf), nil
}

// DeviceAttribute reads a hipDeviceAttribute_t.
func (d *Driver) DeviceAttribute(dev Device, attr int) (int, error) {
	var v int32
	err := d.check(fmt.Sprintf("hipDeviceGetAttribute(%d)", attr), d.api.DeviceGetAttribute(&v, int32(attr), int32(dev)))
	return int(v), err
}

// DeviceTotalMem is the device's memory in bytes.
func (d *Driver) DeviceTotalMem(dev Device) (int64, error) {
	var v uint64
	err := d.check("hipDeviceTotalMem", d.api.DeviceTotalMem(&v, int32(dev)))
	return int64(v), err
}

// WarpSize is the device's wavefront size as the runtime reports it (64 on
// CDNA; 32 on RDNA unless the device runs wave64). Kernels must be
// compiled for it: see CompileOptions.
func (d *Driver) WarpSize(dev Device) (int, error) {
	w, err := d.DeviceAttribute(dev, AttrWarpSize)
	if err != nil {
		return 0, err
	}
	if w != 32 && w != 64 {
		return 0, fmt.Errorf("hip: device %d reports warp size %d, want 32 or 64", dev, w)
	}
	return w, nil
}

// propsLayout says where gcnArchName sits in a hipDeviceProp_t and how
// large the struct is.
type propsLayout struct {
	name       string
	archOffset int
	size       int
}

// The two hipDeviceProp_t layouts: ROCm 5's (exported as
// hipGetDeviceProperties, kept under that name by ROCm 6) and ROCm 6's
// R0600. Offsets measured with offsetof on the 5.2 header and on the R0600
// struct of the ROCm 7 header (its sizeof, 1472, matches what others
// report).
var (
	propsR0000 = propsLayout{name: "hipGetDeviceProperties", archOffset: 396, size: 792}
	propsR0600 = propsLayout{name: "hipGetDevicePropertiesR0600", archOffset: 1160, size: 1472}
)

// propsBufSize is larger than any known hipDeviceProp_t, so a newer,
// larger layout cannot write past the buffer.
const propsBufSize = 4096

// gcnArchRE matches a target ID such as "gfx90a:sramecc+:xnack-".
var gcnArchRE = regexp.MustCompile(`^gfx[0-9a-f]{3,4}(:[a-z0-9_]+[+-])*$`)

// DeviceArch is the device's target ID (hipDeviceProp_t.gcnArchName, e.g.
// "gfx90a:sramecc+:xnack-"), the value hipRTC's --offload-arch takes.
func (d *Driver) DeviceArch(dev Device) (string, error) {
	buf := make([]byte, propsBufSize)
	l := d.api.propsLayout
	if err := d.check(l.name, d.api.GetDeviceProperties(unsafe.Pointer(&buf[0]), int32(dev))); err != nil {
		return "", err
	}
	return archFromProps(buf, l)
}

// archFromProps decodes gcnArchName from a filled hipDeviceProp_t buffer.
func archFromProps(buf []byte, l propsLayout) (string, error) {
	if l.archOffset+256 > len(buf) {
		return "", fmt.Errorf("hip: %s: gcnArchName at %d is past the %d-byte buffer", l.name, l.archOffset, len(buf))
	}
	arch := cBytes(buf[l.archOffset : l.archOffset+256])
	if !gcnArchRE.MatchString(arch) {
		return "", fmt.Errorf("hip: %s: gcnArchName at offset %d is %q, not a gfx target ID: the runtime's hipDeviceProp_t layout is not the one this package knows", l.name, l.archOffset, arch)
	}
	return arch, nil
}

// cBytes is buf up to its first NUL.
func cBytes(buf []byte) string {
	for i, c := range buf {
		if c == 0 {
			return string(buf[:i])
		}
	}
	return string(buf)
}

// PrimaryCtxRetain returns the Context of dev. HIP keeps one implicit
// context per device, so nothing is retained; the name matches package
// cuda.
func (d *Driver) PrimaryCtxRetain(dev Device) (Context, error) {
	n, err := d.DeviceCount()
	if err != nil {
		return 0, err
	}
	if int(dev) < 0 || int(dev) >= n {
		return 0, fmt.Errorf("hip: device %d out of range [0, %d)", dev, n)
	}
	return Context(dev), nil
}

// PrimaryCtxRelease is a no-op matching PrimaryCtxRetain.
func (d *Driver) PrimaryCtxRelease(Device) error { return nil }

// SetCurrent makes ctx's device current on the calling OS thread
// (hipSetDevice). Go moves goroutines between threads, so callers lock the
// goroutine to its thread (runtime.LockOSThread) around SetCurrent and the
// calls that need the device.
func (d *Driver) SetCurrent(ctx Context) error {
	return d.check("hipSetDevice", d.api.SetDevice(int32(ctx)))
}

// StreamCreate makes a stream that does not synchronize with the null
// stream.
func (d *Driver) StreamCreate() (Stream, error) {
	var s uintptr
	const nonBlocking = 1
	err := d.check("hipStreamCreateWithFlags", d.api.StreamCreateWithFlags(&s, nonBlocking))
	return Stream(s), err
}

// StreamDestroy destroys a stream.
func (d *Driver) StreamDestroy(s Stream) error {
	return d.check("hipStreamDestroy", d.api.StreamDestroy(uintptr(s)))
}

// StreamSynchronize waits for all work queued on s.
func (d *Driver) StreamSynchronize(s Stream) error {
	return d.check("hipStreamSynchronize", d.api.StreamSynchronize(uintptr(s)))
}

// MemAlloc allocates device memory.
func (d *Driver) MemAlloc(bytes int64) (DevicePtr, error) {
	if bytes < 0 {
		return 0, fmt.Errorf("hip: hipMalloc of %d bytes", bytes)
	}
	var p uint64
	err := d.check(fmt.Sprintf("hipMalloc(%d bytes)", bytes), d.api.Malloc(&p, uint64(bytes)))
	return DevicePtr(p), err
}

// MemFree frees device memory.
func (d *Driver) MemFree(p DevicePtr) error {
	return d.check("hipFree", d.api.Free(uint64(p)))
}

// MemAllocHost allocates page-locked host memory, which asynchronous copies
// can read without staging.
func (d *Driver) MemAllocHost(bytes int) (uintptr, error) {
	if bytes < 0 {
		return 0, fmt.Errorf("hip: hipHostMalloc of %d bytes", bytes)
	}
	var p uintptr
	err := d.check(fmt.Sprintf("hipHostMalloc(%d bytes)", bytes), d.api.HostMalloc(&p, uint64(bytes), 0))
	return p, err
}

// MemFreeHost frees memory from MemAllocHost.
func (d *Driver) MemFreeHost(p uintptr) error {
	return d.check("hipHostFree", d.api.HostFree(p))
}

// MemGetInfo is the free and total memory of the current device.
func (d *Driver) MemGetInfo() (free, total int64, err error) {
	var f, t uint64
	err = d.check("hipMemGetInfo", d.api.MemGetInfo(&f, &t))
	return int64(f), int64(t), err
}

// MemcpyHtoD copies host bytes to the device and returns when done.
func (d *Driver) MemcpyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	return d.check("hipMemcpyHtoD", d.api.MemcpyHtoD(uint64(dst), src, uint64(bytes)))
}

// MemcpyHtoDAsync queues a host-to-device copy on s. From pageable memory
// the call returns once src has been consumed; from page-locked memory src
// must stay untouched until the copy has run.
func (d *Driver) MemcpyHtoDAsync(dst DevicePtr, src unsafe.Pointer, bytes int, s Stream) error {
	return d.check("hipMemcpyHtoDAsync", d.api.MemcpyHtoDAsync(uint64(dst), src, uint64(bytes), uintptr(s)))
}

// MemcpyHtoDAsyncPinned is MemcpyHtoDAsync from a page-locked address.
func (d *Driver) MemcpyHtoDAsyncPinned(dst DevicePtr, src uintptr, bytes int, s Stream) error {
	return d.check("hipMemcpyHtoDAsync", d.api.MemcpyHtoDAsyncC(uint64(dst), src, uint64(bytes), uintptr(s)))
}

// MemcpyDtoHAsync queues a device-to-host copy on s.
func (d *Driver) MemcpyDtoHAsync(dst unsafe.Pointer, src DevicePtr, bytes int, s Stream) error {
	return d.check("hipMemcpyDtoHAsync", d.api.MemcpyDtoHAsync(dst, uint64(src), uint64(bytes), uintptr(s)))
}

// MemcpyDtoDAsync queues a device-to-device copy on s.
func (d *Driver) MemcpyDtoDAsync(dst, src DevicePtr, bytes int, s Stream) error {
	return d.check("hipMemcpyDtoDAsync", d.api.MemcpyDtoDAsync(uint64(dst), uint64(src), uint64(bytes), uintptr(s)))
}

// MemsetD8Async queues setting n bytes to v.
func (d *Driver) MemsetD8Async(p DevicePtr, v byte, n int, s Stream) error {
	return d.check("hipMemsetD8Async", d.api.MemsetD8Async(uint64(p), v, uint64(n), uintptr(s)))
}

// MemsetD32Async queues setting n 32-bit words to v.
func (d *Driver) MemsetD32Async(p DevicePtr, v uint32, n int, s Stream) error {
	return d.check("hipMemsetD32Async", d.api.MemsetD32Async(uint64(p), int32(v), uint64(n), uintptr(s)))
}

// ModuleLoadData loads a code object (from hipRTC) onto the current device.
func (d *Driver) ModuleLoadData(image []byte) (Module, error) {
	if len(image) == 0 {
		return 0, errors.New("hip: hipModuleLoadData of an empty image")
	}
	var m uintptr
	err := d.check("hipModuleLoadData", d.api.ModuleLoadData(&m, unsafe.Pointer(&image[0])))
	return Module(m), err
}

// ModuleUnload unloads a module.
func (d *Driver) ModuleUnload(m Module) error {
	return d.check("hipModuleUnload", d.api.ModuleUnload(uintptr(m)))
}

// ModuleGetFunction looks up a kernel by its (extern "C") name.
func (d *Driver) ModuleGetFunction(m Module, name string) (Function, error) {
	var f uintptr
	cs := cString(name)
	err := d.check("hipModuleGetFunction("+name+")", d.api.ModuleGetFunction(&f, uintptr(m), &cs[0]))
	return Function(f), err
}

// FuncAttribute reads a hipFunction_attribute. (There is no
// FuncSetAttribute: AMD GPUs need no opt-in for dynamic shared memory up
// to the 64 KiB of LDS.)
func (d *Driver) FuncAttribute(f Function, attr int) (int, error) {
	var v int32
	err := d.check("hipFuncGetAttribute", d.api.FuncGetAttribute(&v, int32(attr), uintptr(f)))
	return int(v), err
}

// Dim3 is a launch grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// LaunchKernel queues f on s. params points at an array of pointers, one
// per kernel parameter, each pointing at the parameter's value; the runtime
// copies the values before returning.
func (d *Driver) LaunchKernel(f Function, grid, block Dim3, sharedMem uint32, s Stream, params unsafe.Pointer) error {
	return d.check("hipModuleLaunchKernel", d.api.ModuleLaunchKernel(uintptr(f),
		grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedMem, uintptr(s), params, nil))
}

// EventCreate makes an event that records timing.
func (d *Driver) EventCreate() (Event, error) {
	var e uintptr
	err := d.check("hipEventCreate", d.api.EventCreate(&e))
	return Event(e), err
}

// EventRecord records e on s.
func (d *Driver) EventRecord(e Event, s Stream) error {
	return d.check("hipEventRecord", d.api.EventRecord(uintptr(e), uintptr(s)))
}

// EventSynchronize waits for e.
func (d *Driver) EventSynchronize(e Event) error {
	return d.check("hipEventSynchronize", d.api.EventSynchronize(uintptr(e)))
}

// EventElapsed is the time between two completed events, in milliseconds.
func (d *Driver) EventElapsed(start, end Event) (float32, error) {
	var ms float32
	err := d.check("hipEventElapsedTime", d.api.EventElapsedTime(&ms, uintptr(start), uintptr(end)))
	return ms, err
}

// EventDestroy destroys an event.
func (d *Driver) EventDestroy(e Event) error {
	return d.check("hipEventDestroy", d.api.EventDestroy(uintptr(e)))
}

// StreamBeginCapture starts capturing the work queued on s into a graph
// (relaxed mode: other threads may keep using the runtime).
func (d *Driver) StreamBeginCapture(s Stream) error {
	const relaxed = 2 // hipStreamCaptureModeRelaxed
	return d.check("hipStreamBeginCapture", d.api.StreamBeginCapture(uintptr(s), relaxed))
}

// StreamEndCapture ends a capture and returns the graph.
func (d *Driver) StreamEndCapture(s Stream) (Graph, error) {
	var g uintptr
	err := d.check("hipStreamEndCapture", d.api.StreamEndCapture(uintptr(s), &g))
	return Graph(g), err
}

// GraphInstantiate makes an executable graph.
func (d *Driver) GraphInstantiate(g Graph) (GraphExec, error) {
	var e uintptr
	err := d.check("hipGraphInstantiateWithFlags", d.api.GraphInstantiateFlags(&e, uintptr(g), 0))
	return GraphExec(e), err
}

// GraphLaunch queues an executable graph on s.
func (d *Driver) GraphLaunch(e GraphExec, s Stream) error {
	return d.check("hipGraphLaunch", d.api.GraphLaunch(uintptr(e), uintptr(s)))
}

// GraphExecDestroy destroys an executable graph.
func (d *Driver) GraphExecDestroy(e GraphExec) error {
	return d.check("hipGraphExecDestroy", d.api.GraphExecDestroy(uintptr(e)))
}

// GraphDestroy destroys a graph.
func (d *Driver) GraphDestroy(g Graph) error {
	return d.check("hipGraphDestroy", d.api.GraphDestroy(uintptr(g)))
}
