package gpu

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/compute/gpu/hip"
)

// fakeHIP is a hipRuntime that records what it was asked. Only the calls
// the tests make do anything; the embedded nil interface makes any other
// call panic, which would name it.
type fakeHIP struct {
	hipRuntime
	attrs    map[int]int // HIP attribute number -> value
	asked    []int       // HIP attribute numbers asked for, in order
	launched struct {
		f            hip.Function
		grid, block  hip.Dim3
		smem         uint32
		stream       hip.Stream
		params       unsafe.Pointer
		calls, total int
	}
	copied struct {
		dst hip.DevicePtr
		n   int
		s   hip.Stream
	}
}

func (f *fakeHIP) DeviceAttribute(dev hip.Device, attr int) (int, error) {
	f.asked = append(f.asked, attr)
	return f.attrs[attr], nil
}

func (f *fakeHIP) DeviceArch(dev hip.Device) (string, error) { return "gfx90a:sramecc+:xnack-", nil }

func (f *fakeHIP) LaunchKernel(fn hip.Function, grid, block hip.Dim3, smem uint32, s hip.Stream, params unsafe.Pointer) error {
	l := &f.launched
	l.f, l.grid, l.block, l.smem, l.stream, l.params = fn, grid, block, smem, s, params
	l.calls++
	return nil
}

func (f *fakeHIP) MemcpyHtoDAsync(dst hip.DevicePtr, src unsafe.Pointer, n int, s hip.Stream) error {
	f.copied.dst, f.copied.n, f.copied.s = dst, n, s
	return nil
}

func (f *fakeHIP) StreamCreate() (hip.Stream, error) { return hip.Stream(0xfeed), nil }

func newFakeHIP() *fakeHIP {
	return &fakeHIP{attrs: map[int]int{
		hip.AttrWarpSize:               64,
		hip.AttrMultiprocessorCount:    110,
		hip.AttrComputeCapabilityMajor: 9,
		hip.AttrComputeCapabilityMinor: 0,
		hip.AttrMaxSharedMemPerBlock:   65536,
		hip.AttrMaxThreadsPerBlock:     1024,
		hip.AttrL2CacheSize:            8 << 20,
	}}
}

// TestHIPDriverAttributes checks that the backend's CUDA-numbered device
// attributes reach the HIP runtime under HIP's numbers.
func TestHIPDriverAttributes(t *testing.T) {
	f := newFakeHIP()
	d := &hipDriver{rt: f}
	cases := []struct {
		name      string
		cuda, hip int
		want      int
	}{
		{"warp size", cuda.AttrWarpSize, hip.AttrWarpSize, 64},
		{"multiprocessors", cuda.AttrMultiprocessorCount, hip.AttrMultiprocessorCount, 110},
		{"cc major", cuda.AttrComputeCapabilityMajor, hip.AttrComputeCapabilityMajor, 9},
		{"shared per block", cuda.AttrMaxSharedMemPerBlock, hip.AttrMaxSharedMemPerBlock, 65536},
		{"shared opt-in", cuda.AttrMaxSharedMemOptin, hip.AttrMaxSharedMemPerBlock, 65536},
		{"threads per block", cuda.AttrMaxThreadsPerBlock, hip.AttrMaxThreadsPerBlock, 1024},
		{"L2", cuda.AttrL2CacheSize, hip.AttrL2CacheSize, 8 << 20},
	}
	for _, c := range cases {
		f.asked = nil
		got, err := d.DeviceAttribute(3, c.cuda)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want || len(f.asked) != 1 || f.asked[0] != c.hip {
			t.Errorf("%s: CUDA attribute %d gave %d after asking HIP for %v; want %d from HIP attribute %d",
				c.name, c.cuda, got, f.asked, c.want, c.hip)
		}
	}
	if _, err := d.DeviceAttribute(0, 12345); err == nil || !strings.Contains(err.Error(), "12345") {
		t.Errorf("unknown attribute: err %v, want one naming 12345", err)
	}
}

// TestHIPDriverSharedMemory checks FuncSetAttribute: dynamic shared memory
// within the device's per-block limit is accepted with no call, above it is
// an error that gives both sizes, and other attributes are refused.
func TestHIPDriverSharedMemory(t *testing.T) {
	f := newFakeHIP()
	d := &hipDriver{rt: f, dev: 2}
	if err := d.FuncSetAttribute(1, cuda.FuncAttrMaxDynamicSharedMB, 60000); err != nil {
		t.Fatalf("60000 bytes of 65536: %v", err)
	}
	err := d.FuncSetAttribute(1, cuda.FuncAttrMaxDynamicSharedMB, 70000)
	if err == nil || !strings.Contains(err.Error(), "70000") || !strings.Contains(err.Error(), "65536") {
		t.Errorf("70000 bytes of 65536: err %v, want one giving both sizes", err)
	}
	if err := d.FuncSetAttribute(1, cuda.FuncAttrNumRegs, 1); err == nil {
		t.Error("setting the register count: no error")
	}
	if len(f.asked) != 1 {
		t.Errorf("the device limit was read %d times, want once (cached)", len(f.asked))
	}
}

// TestHIPDriverHandles checks that handles and launch geometry pass through
// unchanged.
func TestHIPDriverHandles(t *testing.T) {
	f := newFakeHIP()
	d := &hipDriver{rt: f}
	s, err := d.StreamCreate()
	if err != nil || s != cuda.Stream(0xfeed) {
		t.Fatalf("StreamCreate = %#x, %v; want 0xfeed", s, err)
	}
	var arg int32
	params := unsafe.Pointer(&arg)
	if err := d.LaunchKernel(cuda.Function(0xf00), cuda.Dim3{X: 7, Y: 3, Z: 1}, cuda.Dim3{X: 256, Y: 1, Z: 1}, 4096, s, params); err != nil {
		t.Fatal(err)
	}
	l := f.launched
	if l.calls != 1 || l.f != 0xf00 || l.grid != (hip.Dim3{X: 7, Y: 3, Z: 1}) || l.block != (hip.Dim3{X: 256, Y: 1, Z: 1}) ||
		l.smem != 4096 || l.stream != 0xfeed || l.params != params {
		t.Errorf("launch reached the runtime as %+v", l)
	}
	if err := d.MemcpyHtoDAsync(cuda.DevicePtr(1<<40+8), params, 4, s); err != nil {
		t.Fatal(err)
	}
	if f.copied.dst != hip.DevicePtr(1<<40+8) || f.copied.n != 4 || f.copied.s != 0xfeed {
		t.Errorf("copy reached the runtime as %+v", f.copied)
	}
}

// TestHIPVendorTarget checks the compile target and options on HIP: the
// device's target ID and hipRTC's --offload-arch with the warp size.
func TestHIPVendorTarget(t *testing.T) {
	f := newFakeHIP()
	d := &hipDriver{rt: f}
	arch, err := HIP.arch(d, 1, 9, 0)
	if err != nil || arch != "gfx90a:sramecc+:xnack-" {
		t.Fatalf("arch = %q, %v", arch, err)
	}
	if d.dev != 1 {
		t.Errorf("the adapter's device is %d after arch of device 1", d.dev)
	}
	opts, err := HIP.compileOptions(arch, 64, true)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(opts, " ")
	for _, want := range []string{"--offload-arch=gfx90a:sramecc+:xnack-", "-DWARP_SIZE=64", "--std=c++17"} {
		if !strings.Contains(got, want) {
			t.Errorf("HIP options %q lack %q", got, want)
		}
	}
	if _, err := HIP.arch(&cuda.Driver{}, 0, 9, 0); err == nil {
		t.Error("HIP arch with a CUDA driver: no error")
	}
	if a, _ := CUDA.arch(nil, 0, 9, 0); a != "sm_90" {
		t.Errorf("CUDA arch of 9.0 = %q", a)
	}
	if HIP.String() != "hip" || CUDA.String() != "cuda" {
		t.Errorf("vendor names %q, %q", HIP, CUDA)
	}
}
