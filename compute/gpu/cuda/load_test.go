package cuda

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

// TestPythonWheelLibs loads NVRTC and cuBLAS from the NVIDIA Python wheels
// alone (no toolkit directories, no system loader), as on a machine whose
// only CUDA libraries came with pip install torch. It needs no GPU, only the
// wheels, and skips where there are none.
func TestPythonWheelLibs(t *testing.T) {
	dirs := pythonLibDirs()
	var withNVRTC []string
	for _, d := range dirs {
		if m, _ := filepath.Glob(filepath.Join(d, "libnvrtc.so*")); len(m) > 0 {
			withNVRTC = append(withNVRTC, d)
		}
	}
	if len(withNVRTC) == 0 {
		t.Skipf("no NVIDIA Python wheel with libnvrtc among %d site-packages directories (%v)", len(dirs), dirs)
	}
	t.Logf("wheel directories: %v", dirs)
	under := func(p string) bool {
		for _, d := range dirs {
			if strings.HasPrefix(p, d+string(os.PathSeparator)) {
				return true
			}
		}
		return false
	}

	n, err := loadNVRTC(dirs, false)
	if err != nil {
		t.Fatalf("NVRTC from the wheels: %v", err)
	}
	if !under(n.Path()) {
		t.Fatalf("NVRTC loaded from %s, not from a wheel directory", n.Path())
	}
	src := "extern \"C\" __global__ void k(float *p) { p[threadIdx.x] *= 2.0f; }\n"
	img, log, err := n.Compile(src, "wheel.cu", nil, []string{"--gpu-architecture=sm_80"})
	if err != nil || len(img) == 0 {
		t.Fatalf("NVRTC %s from %s: compile: %v (%d bytes, log %q)", n.Version(), n.Path(), err, len(img), log)
	}
	t.Logf("NVRTC %s from %s compiled a kernel (%d bytes)", n.Version(), n.Path(), len(img))

	withCUBLAS := false
	for _, d := range dirs {
		if m, _ := filepath.Glob(filepath.Join(d, "libcublas.so.*")); len(m) > 0 {
			withCUBLAS = true
		}
	}
	if !withCUBLAS {
		t.Logf("no libcublas in the wheels; cuBLAS part not run")
		return
	}
	c, err := loadCUBLAS(dirs, false)
	if err != nil {
		t.Fatalf("cuBLAS from the wheels: %v", err)
	}
	if !under(c.Path()) {
		t.Fatalf("cuBLAS loaded from %s, not from a wheel directory", c.Path())
	}
	v, err := c.Version()
	if err != nil {
		t.Fatalf("cuBLAS from %s: version: %v", c.Path(), err)
	}
	t.Logf("cuBLAS %s from %s", v, c.Path())
}

// TestPythonLibDirsEnv finds the wheels of the active virtualenv.
func TestPythonLibDirsEnv(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "lib", "python3.12", "site-packages", "nvidia", "cu13", "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIRTUAL_ENV", root)
	t.Setenv("CONDA_PREFIX", "")
	for _, d := range pythonLibDirs() {
		if d == lib {
			return
		}
	}
	t.Fatalf("pythonLibDirs() = %v, want it to include %s", pythonLibDirs(), lib)
}

// TestCallHot: callHot passes its first n arguments to a C function (libc's
// memcpy here, which needs no GPU) and allocates nothing.
func TestCallHot(t *testing.T) {
	libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Skipf("no libc.so.6 to call: %v", err)
	}
	memcpy, err := purego.Dlsym(libc, "memcpy")
	if err != nil {
		t.Skipf("libc has no memcpy: %v", err)
	}
	src := []byte("callHot passes its arguments")
	dst := make([]byte, len(src))
	copyN := func(n int) {
		callHot(memcpy, 3, uintptr(unsafe.Pointer(&dst[0])), uintptr(unsafe.Pointer(&src[0])), uintptr(n), 0)
		runtime.KeepAlive(dst)
		runtime.KeepAlive(src)
	}
	copyN(7)
	if string(dst[:7]) != "callHot" || dst[7] != 0 {
		t.Fatalf("memcpy of 7 bytes through callHot gave %q", dst)
	}
	copyN(len(src))
	if string(dst) != string(src) {
		t.Fatalf("memcpy through callHot gave %q, want %q", dst, src)
	}
	if a := testing.AllocsPerRun(100, func() { copyN(len(src)) }); a != 0 {
		t.Errorf("callHot allocates %.2f times a call, want 0", a)
	}
}
