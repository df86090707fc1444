package hip

import (
	"unsafe"

	"github.com/ebitengine/purego"
)

// runtimeAPI is the part of the HIP runtime the package calls, one Go
// function per C entry point, returning the raw hipError_t. bindRuntime
// fills it from libamdhip64; tests fill it with Go fakes. Pointers to Go
// memory are typed (*int32, unsafe.Pointer) so they stay visible to the
// garbage collector through the call; addresses of C memory are uintptr.
type runtimeAPI struct {
	GetErrorName   func(code int32) string
	GetErrorString func(code int32) string

	Init              func(flags uint32) int32
	DriverGetVersion  func(v *int32) int32
	RuntimeGetVersion func(v *int32) int32

	GetDeviceCount     func(n *int32) int32
	DeviceGet          func(dev *int32, ordinal int32) int32
	DeviceGetName      func(buf *byte, n int32, dev int32) int32
	DeviceGetAttribute func(v *int32, attr int32, dev int32) int32
	DeviceTotalMem     func(bytes *uint64, dev int32) int32
	// GetDeviceProperties fills a hipDeviceProp_t of the layout given by
	// propsLayout (ROCm 6's R0600 when the library exports it).
	GetDeviceProperties func(prop unsafe.Pointer, dev int32) int32
	propsLayout         propsLayout
	SetDevice           func(dev int32) int32

	StreamCreateWithFlags func(s *uintptr, flags uint32) int32
	StreamDestroy         func(s uintptr) int32
	StreamSynchronize     func(s uintptr) int32

	Malloc             func(p *uint64, bytes uint64) int32
	Free               func(p uint64) int32
	HostMalloc         func(p *uintptr, bytes uint64, flags uint32) int32
	HostFree           func(p uintptr) int32
	MemGetInfo         func(free, total *uint64) int32
	MemcpyHtoD         func(dst uint64, src unsafe.Pointer, bytes uint64) int32
	MemcpyHtoDAsync    func(dst uint64, src unsafe.Pointer, bytes uint64, s uintptr) int32
	MemcpyHtoDAsyncC   func(dst uint64, src uintptr, bytes uint64, s uintptr) int32 // src is C (pinned) memory
	MemcpyDtoHAsync    func(dst unsafe.Pointer, src uint64, bytes uint64, s uintptr) int32
	MemcpyDtoDAsync    func(dst, src uint64, bytes uint64, s uintptr) int32
	MemsetD8Async      func(p uint64, v uint8, n uint64, s uintptr) int32
	MemsetD32Async     func(p uint64, v int32, n uint64, s uintptr) int32
	ModuleLoadData     func(m *uintptr, image unsafe.Pointer) int32
	ModuleUnload       func(m uintptr) int32
	ModuleGetFunction  func(f *uintptr, m uintptr, name *byte) int32
	FuncGetAttribute   func(v *int32, attr int32, f uintptr) int32
	ModuleLaunchKernel func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, s uintptr, params, extra unsafe.Pointer) int32

	EventCreate      func(e *uintptr) int32
	EventRecord      func(e, s uintptr) int32
	EventSynchronize func(e uintptr) int32
	EventElapsedTime func(ms *float32, start, end uintptr) int32
	EventDestroy     func(e uintptr) int32

	StreamBeginCapture    func(s uintptr, mode int32) int32
	StreamEndCapture      func(s uintptr, g *uintptr) int32
	GraphInstantiateFlags func(e *uintptr, g uintptr, flags uint64) int32
	GraphLaunch           func(e, s uintptr) int32
	GraphExecDestroy      func(e uintptr) int32
	GraphDestroy          func(g uintptr) int32
}

// call runs a C function and returns its 32-bit result. Arguments that are
// pointers converted to uintptr in the call expression are kept alive and
// in place for the call (go:uintptrescapes, as for syscall.Syscall).
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) int32 {
	r, _, _ := purego.SyscallN(fn, args...)
	return int32(r)
}

// bindRuntime resolves every entry point through lookup. The error lists
// all missing symbols at once.
func bindRuntime(lookup lookupFunc, lib string) (*runtimeAPI, error) {
	r := &resolver{lookup: lookup}
	a := &runtimeAPI{}
	getErrorName, getErrorString := r.need("hipGetErrorName"), r.need("hipGetErrorString")
	a.GetErrorName = func(code int32) string { return goString(callPtr(getErrorName, uintptr(code))) }
	a.GetErrorString = func(code int32) string { return goString(callPtr(getErrorString, uintptr(code))) }

	fInit := r.need("hipInit")
	a.Init = func(flags uint32) int32 { return call(fInit, uintptr(flags)) }
	fDrv := r.need("hipDriverGetVersion")
	a.DriverGetVersion = func(v *int32) int32 { return call(fDrv, uintptr(unsafe.Pointer(v))) }
	fRt := r.need("hipRuntimeGetVersion")
	a.RuntimeGetVersion = func(v *int32) int32 { return call(fRt, uintptr(unsafe.Pointer(v))) }

	fCount := r.need("hipGetDeviceCount")
	a.GetDeviceCount = func(n *int32) int32 { return call(fCount, uintptr(unsafe.Pointer(n))) }
	fDevGet := r.need("hipDeviceGet")
	a.DeviceGet = func(dev *int32, ordinal int32) int32 {
		return call(fDevGet, uintptr(unsafe.Pointer(dev)), uintptr(ordinal))
	}
	fName := r.need("hipDeviceGetName")
	a.DeviceGetName = func(buf *byte, n int32, dev int32) int32 {
		return call(fName, uintptr(unsafe.Pointer(buf)), uintptr(n), uintptr(dev))
	}
	fAttr := r.need("hipDeviceGetAttribute")
	a.DeviceGetAttribute = func(v *int32, attr int32, dev int32) int32 {
		return call(fAttr, uintptr(unsafe.Pointer(v)), uintptr(attr), uintptr(dev))
	}
	fTotal := r.need("hipDeviceTotalMem")
	a.DeviceTotalMem = func(bytes *uint64, dev int32) int32 {
		return call(fTotal, uintptr(unsafe.Pointer(bytes)), uintptr(dev))
	}
	// ROCm 6 exports the R0600 layout under its own name and keeps the old
	// name for the ROCm 5 layout.
	fProps, layout := r.optional("hipGetDevicePropertiesR0600"), propsR0600
	if fProps == 0 {
		fProps, layout = r.need("hipGetDeviceProperties"), propsR0000
	}
	a.propsLayout = layout
	a.GetDeviceProperties = func(prop unsafe.Pointer, dev int32) int32 {
		return call(fProps, uintptr(prop), uintptr(dev))
	}
	fSet := r.need("hipSetDevice")
	a.SetDevice = func(dev int32) int32 { return call(fSet, uintptr(dev)) }

	fSC := r.need("hipStreamCreateWithFlags")
	a.StreamCreateWithFlags = func(s *uintptr, flags uint32) int32 {
		return call(fSC, uintptr(unsafe.Pointer(s)), uintptr(flags))
	}
	fSD := r.need("hipStreamDestroy")
	a.StreamDestroy = func(s uintptr) int32 { return call(fSD, s) }
	fSS := r.need("hipStreamSynchronize")
	a.StreamSynchronize = func(s uintptr) int32 { return call(fSS, s) }

	fMalloc := r.need("hipMalloc")
	a.Malloc = func(ptr *uint64, bytes uint64) int32 {
		return call(fMalloc, uintptr(unsafe.Pointer(ptr)), uintptr(bytes))
	}
	fFree := r.need("hipFree")
	a.Free = func(ptr uint64) int32 { return call(fFree, uintptr(ptr)) }
	fHM := r.need("hipHostMalloc")
	a.HostMalloc = func(ptr *uintptr, bytes uint64, flags uint32) int32 {
		return call(fHM, uintptr(unsafe.Pointer(ptr)), uintptr(bytes), uintptr(flags))
	}
	fHF := r.need("hipHostFree")
	a.HostFree = func(ptr uintptr) int32 { return call(fHF, ptr) }
	fInfo := r.need("hipMemGetInfo")
	a.MemGetInfo = func(free, total *uint64) int32 {
		return call(fInfo, uintptr(unsafe.Pointer(free)), uintptr(unsafe.Pointer(total)))
	}
	fHtoD := r.need("hipMemcpyHtoD")
	a.MemcpyHtoD = func(dst uint64, src unsafe.Pointer, bytes uint64) int32 {
		return call(fHtoD, uintptr(dst), uintptr(src), uintptr(bytes))
	}
	fHtoDA := r.need("hipMemcpyHtoDAsync")
	a.MemcpyHtoDAsync = func(dst uint64, src unsafe.Pointer, bytes uint64, s uintptr) int32 {
		return call(fHtoDA, uintptr(dst), uintptr(src), uintptr(bytes), s)
	}
	a.MemcpyHtoDAsyncC = func(dst uint64, src uintptr, bytes uint64, s uintptr) int32 {
		return call(fHtoDA, uintptr(dst), src, uintptr(bytes), s)
	}
	fDtoHA := r.need("hipMemcpyDtoHAsync")
	a.MemcpyDtoHAsync = func(dst unsafe.Pointer, src uint64, bytes uint64, s uintptr) int32 {
		return call(fDtoHA, uintptr(dst), uintptr(src), uintptr(bytes), s)
	}
	fDtoDA := r.need("hipMemcpyDtoDAsync")
	a.MemcpyDtoDAsync = func(dst, src uint64, bytes uint64, s uintptr) int32 {
		return call(fDtoDA, uintptr(dst), uintptr(src), uintptr(bytes), s)
	}
	fM8 := r.need("hipMemsetD8Async")
	a.MemsetD8Async = func(ptr uint64, v uint8, n uint64, s uintptr) int32 {
		return call(fM8, uintptr(ptr), uintptr(v), uintptr(n), s)
	}
	fM32 := r.need("hipMemsetD32Async")
	a.MemsetD32Async = func(ptr uint64, v int32, n uint64, s uintptr) int32 {
		return call(fM32, uintptr(ptr), uintptr(uint32(v)), uintptr(n), s)
	}
	fMLD := r.need("hipModuleLoadData")
	a.ModuleLoadData = func(m *uintptr, image unsafe.Pointer) int32 {
		return call(fMLD, uintptr(unsafe.Pointer(m)), uintptr(image))
	}
	fMU := r.need("hipModuleUnload")
	a.ModuleUnload = func(m uintptr) int32 { return call(fMU, m) }
	fMGF := r.need("hipModuleGetFunction")
	a.ModuleGetFunction = func(f *uintptr, m uintptr, name *byte) int32 {
		return call(fMGF, uintptr(unsafe.Pointer(f)), m, uintptr(unsafe.Pointer(name)))
	}
	fFGA := r.need("hipFuncGetAttribute")
	a.FuncGetAttribute = func(v *int32, attr int32, f uintptr) int32 {
		return call(fFGA, uintptr(unsafe.Pointer(v)), uintptr(attr), f)
	}
	fLaunch := r.need("hipModuleLaunchKernel")
	a.ModuleLaunchKernel = func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, s uintptr, params, extra unsafe.Pointer) int32 {
		return call(fLaunch, f, uintptr(gx), uintptr(gy), uintptr(gz), uintptr(bx), uintptr(by), uintptr(bz),
			uintptr(shared), s, uintptr(params), uintptr(extra))
	}

	fEC := r.need("hipEventCreate")
	a.EventCreate = func(e *uintptr) int32 { return call(fEC, uintptr(unsafe.Pointer(e))) }
	fER := r.need("hipEventRecord")
	a.EventRecord = func(e, s uintptr) int32 { return call(fER, e, s) }
	fES := r.need("hipEventSynchronize")
	a.EventSynchronize = func(e uintptr) int32 { return call(fES, e) }
	fEE := r.need("hipEventElapsedTime")
	a.EventElapsedTime = func(ms *float32, start, end uintptr) int32 {
		return call(fEE, uintptr(unsafe.Pointer(ms)), start, end)
	}
	fED := r.need("hipEventDestroy")
	a.EventDestroy = func(e uintptr) int32 { return call(fED, e) }

	fBC := r.need("hipStreamBeginCapture")
	a.StreamBeginCapture = func(s uintptr, mode int32) int32 { return call(fBC, s, uintptr(mode)) }
	fEndC := r.need("hipStreamEndCapture")
	a.StreamEndCapture = func(s uintptr, g *uintptr) int32 { return call(fEndC, s, uintptr(unsafe.Pointer(g))) }
	fGI := r.need("hipGraphInstantiateWithFlags")
	a.GraphInstantiateFlags = func(e *uintptr, g uintptr, flags uint64) int32 {
		return call(fGI, uintptr(unsafe.Pointer(e)), g, uintptr(flags))
	}
	fGL := r.need("hipGraphLaunch")
	a.GraphLaunch = func(e, s uintptr) int32 { return call(fGL, e, s) }
	fGED := r.need("hipGraphExecDestroy")
	a.GraphExecDestroy = func(e uintptr) int32 { return call(fGED, e) }
	fGD := r.need("hipGraphDestroy")
	a.GraphDestroy = func(g uintptr) int32 { return call(fGD, g) }

	if err := r.err(lib); err != nil {
		return nil, err
	}
	return a, nil
}

// rtcAPI is the part of hipRTC the package calls (hiprtcResult codes).
type rtcAPI struct {
	GetErrorString    func(code int32) string
	Version           func(major, minor *int32) int32
	CreateProgram     func(prog *uintptr, src, name *byte, numHeaders int32, headers, includeNames unsafe.Pointer) int32
	DestroyProgram    func(prog *uintptr) int32
	CompileProgram    func(prog uintptr, numOptions int32, options unsafe.Pointer) int32
	GetProgramLogSize func(prog uintptr, size *uint64) int32
	GetProgramLog     func(prog uintptr, log *byte) int32
	GetCodeSize       func(prog uintptr, size *uint64) int32
	GetCode           func(prog uintptr, code *byte) int32
}

// bindRTC resolves the hipRTC entry points through lookup.
func bindRTC(lookup lookupFunc, lib string) (*rtcAPI, error) {
	r := &resolver{lookup: lookup}
	a := &rtcAPI{}
	fErr := r.need("hiprtcGetErrorString")
	a.GetErrorString = func(code int32) string { return goString(callPtr(fErr, uintptr(code))) }
	fVer := r.need("hiprtcVersion")
	a.Version = func(major, minor *int32) int32 {
		return call(fVer, uintptr(unsafe.Pointer(major)), uintptr(unsafe.Pointer(minor)))
	}
	fCreate := r.need("hiprtcCreateProgram")
	a.CreateProgram = func(prog *uintptr, src, name *byte, numHeaders int32, headers, includeNames unsafe.Pointer) int32 {
		return call(fCreate, uintptr(unsafe.Pointer(prog)), uintptr(unsafe.Pointer(src)), uintptr(unsafe.Pointer(name)),
			uintptr(numHeaders), uintptr(headers), uintptr(includeNames))
	}
	fDestroy := r.need("hiprtcDestroyProgram")
	a.DestroyProgram = func(prog *uintptr) int32 { return call(fDestroy, uintptr(unsafe.Pointer(prog))) }
	fCompile := r.need("hiprtcCompileProgram")
	a.CompileProgram = func(prog uintptr, numOptions int32, options unsafe.Pointer) int32 {
		return call(fCompile, prog, uintptr(numOptions), uintptr(options))
	}
	fLogSize := r.need("hiprtcGetProgramLogSize")
	a.GetProgramLogSize = func(prog uintptr, size *uint64) int32 {
		return call(fLogSize, prog, uintptr(unsafe.Pointer(size)))
	}
	fLog := r.need("hiprtcGetProgramLog")
	a.GetProgramLog = func(prog uintptr, log *byte) int32 { return call(fLog, prog, uintptr(unsafe.Pointer(log))) }
	fCodeSize := r.need("hiprtcGetCodeSize")
	a.GetCodeSize = func(prog uintptr, size *uint64) int32 {
		return call(fCodeSize, prog, uintptr(unsafe.Pointer(size)))
	}
	fCode := r.need("hiprtcGetCode")
	a.GetCode = func(prog uintptr, code *byte) int32 { return call(fCode, prog, uintptr(unsafe.Pointer(code))) }
	if err := r.err(lib); err != nil {
		return nil, err
	}
	return a, nil
}

// callPtr runs a C function that returns a pointer.
func callPtr(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

// goString copies a NUL-terminated C string; "" for NULL.
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	// p is C memory (a static string table), never Go memory; reading it
	// through a **byte keeps vet's unsafe.Pointer check quiet.
	b := *(**byte)(unsafe.Pointer(&p))
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(b), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(b, n))
}

// cString returns s as a NUL-terminated byte slice.
func cString(s string) []byte { return append([]byte(s), 0) }
