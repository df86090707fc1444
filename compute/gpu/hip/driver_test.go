package hip

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// errorNames is the fake hipGetErrorName/hipGetErrorString table.
var errorNames = map[int32][2]string{
	1:   {"hipErrorInvalidValue", "invalid argument"},
	2:   {"hipErrorOutOfMemory", "out of memory"},
	100: {"hipErrorNoDevice", "no ROCm-capable device is detected"},
	101: {"hipErrorInvalidDevice", "invalid device ordinal"},
	209: {"hipErrorNoBinaryForGpu", "no kernel image is available for execution on the device"},
	999: {"hipErrorUnknown", "unknown error"},
}

// fakeRuntime is a runtimeAPI whose error functions answer from errorNames
// (hipErrorUnknown for other codes, as the real one does) and whose other
// entry points are nil until a test sets them.
func fakeRuntime() *runtimeAPI {
	return &runtimeAPI{
		GetErrorName: func(c int32) string {
			if n, ok := errorNames[c]; ok {
				return n[0]
			}
			return "hipErrorUnknown"
		},
		GetErrorString: func(c int32) string {
			if n, ok := errorNames[c]; ok {
				return n[1]
			}
			return "unknown error"
		},
		Init:        func(uint32) int32 { return 0 },
		propsLayout: propsR0600,
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name    string
		api     func() *runtimeAPI
		code    int32
		want    string
		noDev   bool
		wantNil bool
	}{
		{name: "success", api: fakeRuntime, code: 0, wantNil: true},
		{name: "named", api: fakeRuntime, code: 2, want: "hipMalloc(4096 bytes): hipErrorOutOfMemory (2): out of memory"},
		{name: "no device", api: fakeRuntime, code: 100, want: "hipMalloc(4096 bytes): hipErrorNoDevice (100): no ROCm-capable device is detected", noDev: true},
		{name: "invalid device is not no-device outside hipInit", api: fakeRuntime, code: 101, want: "hipErrorInvalidDevice (101)"},
		{name: "unknown to the runtime", api: fakeRuntime, code: 12345, want: "hipMalloc(4096 bytes): hipError_t(12345) (12345): unknown error"},
		{name: "real hipErrorUnknown kept", api: fakeRuntime, code: 999, want: "hipErrorUnknown (999): unknown error"},
		{name: "no name functions", api: func() *runtimeAPI { return &runtimeAPI{} }, code: 7, want: "hipMalloc(4096 bytes): hipError_t(7) (7)"},
		{name: "description equal to the name is not repeated", api: func() *runtimeAPI {
			a := fakeRuntime()
			a.GetErrorString = a.GetErrorName
			return a
		}, code: 2, want: "hipMalloc(4096 bytes): hipErrorOutOfMemory (2)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := tc.api()
			api.Malloc = func(p *uint64, bytes uint64) int32 {
				if bytes != 4096 {
					t.Errorf("hipMalloc got %d bytes, want 4096", bytes)
				}
				*p = 0xdead0000
				return tc.code
			}
			d := &Driver{api: api}
			p, err := d.MemAlloc(4096)
			if tc.wantNil {
				if err != nil || p != 0xdead0000 {
					t.Fatalf("got %#x, %v; want 0xdead0000, nil", p, err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var he *Error
			if !errors.As(err, &he) || he.Code != int(tc.code) || he.Func != "hipMalloc(4096 bytes)" {
				t.Errorf("error %#v does not carry the call and code %d", err, tc.code)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if got := errors.Is(err, ErrNoDevice); got != tc.noDev {
				t.Errorf("errors.Is(ErrNoDevice) = %v, want %v", got, tc.noDev)
			}
		})
	}
}

func TestNewDriverInitError(t *testing.T) {
	for _, code := range []int32{100, 101} {
		api := fakeRuntime()
		api.Init = func(flags uint32) int32 {
			if flags != 0 {
				t.Errorf("hipInit flags %d, want 0", flags)
			}
			return code
		}
		_, err := newDriver(api, "/opt/rocm/lib/libamdhip64.so")
		if err == nil {
			t.Fatalf("hipInit returning %d: no error", code)
		}
		want := fmt.Sprintf("hip: /opt/rocm/lib/libamdhip64.so: hipInit: %s (%d)", errorNames[code][0], code)
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("got %q, want prefix %q", err, want)
		}
		if !errors.Is(err, ErrNoDevice) {
			t.Errorf("hipInit %d is not matched as ErrNoDevice: %v", code, err)
		}
	}
	api := fakeRuntime()
	d, err := newDriver(api, "libamdhip64.so")
	if err != nil || d.Path() != "libamdhip64.so" {
		t.Errorf("good init: %v, %v", d, err)
	}
}

// putProps writes arch as gcnArchName of a hipDeviceProp_t of layout l.
func putProps(buf unsafe.Pointer, l propsLayout, arch string) {
	b := unsafe.Slice((*byte)(buf), propsBufSize)
	clear(b[:l.size])
	copy(b[l.archOffset:], arch)
}

func TestDeviceArch(t *testing.T) {
	tests := []struct {
		name    string
		layout  propsLayout
		write   propsLayout // where the fake runtime puts the name
		arch    string
		code    int32
		want    string
		wantErr string
	}{
		{name: "ROCm 6 layout", layout: propsR0600, write: propsR0600, arch: "gfx90a:sramecc+:xnack-", want: "gfx90a:sramecc+:xnack-"},
		{name: "ROCm 5 layout", layout: propsR0000, write: propsR0000, arch: "gfx1030", want: "gfx1030"},
		{name: "RDNA3", layout: propsR0600, write: propsR0600, arch: "gfx1100", want: "gfx1100"},
		{name: "layout mismatch", layout: propsR0000, write: propsR0600, arch: "gfx942:sramecc+:xnack-",
			wantErr: `hipGetDeviceProperties: gcnArchName at offset 396 is "", not a gfx target ID`},
		{name: "garbage", layout: propsR0600, write: propsR0600, arch: "AMD Instinct MI300X",
			wantErr: "not the one this package knows"},
		{name: "call fails", layout: propsR0600, write: propsR0600, code: 101,
			wantErr: "hipGetDevicePropertiesR0600: hipErrorInvalidDevice (101)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := fakeRuntime()
			api.propsLayout = tc.layout
			api.GetDeviceProperties = func(p unsafe.Pointer, dev int32) int32 {
				if dev != 3 {
					t.Errorf("device %d, want 3", dev)
				}
				if tc.code != 0 {
					return tc.code
				}
				putProps(p, tc.write, tc.arch)
				return 0
			}
			d := &Driver{api: api}
			got, err := d.DeviceArch(3)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestWarpSize(t *testing.T) {
	for _, c := range []struct {
		attr    int32
		code    int32
		want    int
		wantErr string
	}{
		{attr: 64, want: 64},
		{attr: 32, want: 32},
		{attr: 48, wantErr: "reports warp size 48"},
		{code: 1, wantErr: "hipDeviceGetAttribute(87): hipErrorInvalidValue (1)"},
	} {
		api := fakeRuntime()
		api.DeviceGetAttribute = func(v *int32, attr, dev int32) int32 {
			if attr != AttrWarpSize || dev != 1 {
				t.Errorf("hipDeviceGetAttribute(attr %d, dev %d), want (%d, 1)", attr, dev, AttrWarpSize)
			}
			*v = c.attr
			return c.code
		}
		got, err := (&Driver{api: api}).WarpSize(1)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("attr %d code %d: got %d, %v; want error %q", c.attr, c.code, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("attr %d: got %d, %v", c.attr, got, err)
		}
	}
}

// TestWrappersPassArguments checks the argument order of the wrappers whose
// C signatures are easy to get wrong.
func TestWrappersPassArguments(t *testing.T) {
	api := fakeRuntime()
	var got []string
	rec := func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }
	api.ModuleLaunchKernel = func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, s uintptr, params, extra unsafe.Pointer) int32 {
		rec("launch f=%#x grid=%d,%d,%d block=%d,%d,%d shared=%d stream=%#x params=%v extra=%v",
			f, gx, gy, gz, bx, by, bz, shared, s, params != nil, extra == nil)
		return 0
	}
	api.MemcpyHtoDAsync = func(dst uint64, src unsafe.Pointer, n uint64, s uintptr) int32 {
		rec("htod dst=%#x src=%d n=%d stream=%#x", dst, *(*byte)(src), n, s)
		return 0
	}
	api.MemcpyDtoHAsync = func(dst unsafe.Pointer, src uint64, n uint64, s uintptr) int32 {
		*(*byte)(dst) = 42
		rec("dtoh src=%#x n=%d stream=%#x", src, n, s)
		return 0
	}
	api.MemsetD32Async = func(p uint64, v int32, n uint64, s uintptr) int32 {
		rec("memset32 p=%#x v=%#x n=%d stream=%#x", p, uint32(v), n, s)
		return 0
	}
	api.ModuleGetFunction = func(f *uintptr, m uintptr, name *byte) int32 {
		rec("getfunction m=%#x name=%s", m, cBytes(unsafe.Slice(name, 64)))
		*f = 0xf00
		return 0
	}
	api.StreamCreateWithFlags = func(s *uintptr, flags uint32) int32 {
		rec("stream flags=%d", flags)
		*s = 0x5
		return 0
	}
	api.SetDevice = func(dev int32) int32 {
		rec("setdevice %d", dev)
		return 0
	}
	api.GetDeviceCount = func(n *int32) int32 { *n = 2; return 0 }
	api.StreamBeginCapture = func(s uintptr, mode int32) int32 {
		rec("capture stream=%#x mode=%d", s, mode)
		return 0
	}

	d := &Driver{api: api}
	s, err := d.StreamCreate()
	must(t, err)
	params := []unsafe.Pointer{nil}
	must(t, d.LaunchKernel(0xabc, Dim3{7, 2, 1}, Dim3{256, 1, 1}, 1024, s, unsafe.Pointer(&params[0])))
	src := []byte{9}
	must(t, d.MemcpyHtoDAsync(0x1000, unsafe.Pointer(&src[0]), 1, s))
	dst := []byte{0}
	must(t, d.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), 0x2000, 1, s))
	must(t, d.MemsetD32Async(0x3000, 0xffffffff, 10, s))
	f, err := d.ModuleGetFunction(0x77, "matvec_q4_0")
	must(t, err)
	ctx, err := d.PrimaryCtxRetain(1)
	must(t, err)
	must(t, d.SetCurrent(ctx))
	if _, err := d.PrimaryCtxRetain(2); err == nil || !strings.Contains(err.Error(), "device 2 out of range [0, 2)") {
		t.Errorf("PrimaryCtxRetain(2) of 2 devices: %v", err)
	}
	must(t, d.StreamBeginCapture(s))

	if dst[0] != 42 || f != 0xf00 {
		t.Errorf("outputs not returned: dst %d, function %#x", dst[0], f)
	}
	want := []string{
		"stream flags=1",
		"launch f=0xabc grid=7,2,1 block=256,1,1 shared=1024 stream=0x5 params=true extra=true",
		"htod dst=0x1000 src=9 n=1 stream=0x5",
		"dtoh src=0x2000 n=1 stream=0x5",
		"memset32 p=0x3000 v=0xffffffff n=10 stream=0x5",
		"getfunction m=0x77 name=matvec_q4_0",
		"setdevice 1",
		"capture stream=0x5 mode=2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
	if _, err := d.ModuleLoadData(nil); err == nil {
		t.Error("ModuleLoadData(nil) did not fail")
	}
	if _, err := d.MemAlloc(-1); err == nil {
		t.Error("MemAlloc(-1) did not fail")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBindRuntimeMissing resolves against a fake symbol table: every
// missing entry point is named in one error, and the device-property
// layout follows the symbols present.
func TestBindRuntimeMissing(t *testing.T) {
	all := []string{
		"hipGetErrorName", "hipGetErrorString", "hipInit", "hipDriverGetVersion", "hipRuntimeGetVersion",
		"hipGetDeviceCount", "hipDeviceGet", "hipDeviceGetName", "hipDeviceGetAttribute", "hipDeviceTotalMem",
		"hipGetDeviceProperties", "hipGetDevicePropertiesR0600", "hipSetDevice", "hipStreamCreateWithFlags",
		"hipStreamDestroy", "hipStreamSynchronize", "hipMalloc", "hipFree", "hipHostMalloc", "hipHostFree",
		"hipMemGetInfo", "hipMemcpyHtoD", "hipMemcpyHtoDAsync", "hipMemcpyDtoHAsync", "hipMemcpyDtoDAsync",
		"hipMemsetD8Async", "hipMemsetD32Async", "hipModuleLoadData", "hipModuleUnload", "hipModuleGetFunction",
		"hipFuncGetAttribute", "hipModuleLaunchKernel", "hipEventCreate", "hipEventRecord", "hipEventSynchronize",
		"hipEventElapsedTime", "hipEventDestroy", "hipStreamBeginCapture", "hipStreamEndCapture",
		"hipGraphInstantiateWithFlags", "hipGraphLaunch", "hipGraphExecDestroy", "hipGraphDestroy",
	}
	table := func(drop ...string) lookupFunc {
		return func(name string) (uintptr, error) {
			if !slices.Contains(all, name) || slices.Contains(drop, name) {
				return 0, fmt.Errorf("undefined symbol: %s", name)
			}
			return 0x1000, nil
		}
	}
	api, err := bindRuntime(table(), "libamdhip64.so.6")
	if err != nil {
		t.Fatal(err)
	}
	if api.propsLayout != propsR0600 {
		t.Errorf("with hipGetDevicePropertiesR0600 exported, layout %v", api.propsLayout)
	}
	api, err = bindRuntime(table("hipGetDevicePropertiesR0600"), "libamdhip64.so.5")
	if err != nil {
		t.Fatal(err)
	}
	if api.propsLayout != propsR0000 {
		t.Errorf("ROCm 5 symbols: layout %v", api.propsLayout)
	}
	_, err = bindRuntime(table("hipModuleLaunchKernel", "hipInit", "hipGetDevicePropertiesR0600", "hipGetDeviceProperties"), "/opt/rocm/lib/libamdhip64.so")
	want := "hip: /opt/rocm/lib/libamdhip64.so lacks hipGetDeviceProperties, hipInit, hipModuleLaunchKernel"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = bindRTC(table(), "libamdhip64.so")
	if err == nil || !strings.Contains(err.Error(), "lacks hiprtcCompileProgram, hiprtcCreateProgram") {
		t.Errorf("hipRTC from a library without it: %v", err)
	}
}
