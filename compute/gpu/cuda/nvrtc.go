package cuda

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// NVRTC is the loaded runtime compiler.
type NVRTC struct {
	path         string
	major, minor int

	nvrtcVersion, nvrtcGetErrorString, nvrtcCreateProgram, nvrtcDestroyProgram uintptr
	nvrtcCompileProgram, nvrtcGetProgramLogSize, nvrtcGetProgramLog            uintptr
	nvrtcGetCUBINSize, nvrtcGetCUBIN, nvrtcGetPTXSize, nvrtcGetPTX             uintptr
}

// LoadNVRTC opens the newest NVRTC found (libnvrtc.so.13, .12, ...; see
// searchDirs for where).
func LoadNVRTC() (*NVRTC, error) { return loadNVRTC(searchDirs(), true) }

// loadNVRTC opens NVRTC from dirs, then (with loader) by soname.
func loadNVRTC(dirs []string, loader bool) (*NVRTC, error) {
	lib, path, err := openLibFrom("NVRTC (libnvrtc.so)", nvrtcNames, dirs, loader)
	if err != nil {
		return nil, err
	}
	if filepath.IsAbs(path) {
		// NVRTC dlopens libnvrtc-builtins by soname when it compiles; from a
		// directory outside the loader's path (a Python wheel, a toolkit
		// not in ldconfig) that fails unless the copy beside it is already
		// loaded. A failure here shows up as the compile error it causes.
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "libnvrtc-builtins.so*"))
		for _, b := range m {
			purego.Dlopen(b, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		}
	}
	n := &NVRTC{path: path}
	syms := map[string]*uintptr{
		"nvrtcVersion": &n.nvrtcVersion, "nvrtcGetErrorString": &n.nvrtcGetErrorString,
		"nvrtcCreateProgram": &n.nvrtcCreateProgram, "nvrtcDestroyProgram": &n.nvrtcDestroyProgram,
		"nvrtcCompileProgram": &n.nvrtcCompileProgram, "nvrtcGetProgramLogSize": &n.nvrtcGetProgramLogSize,
		"nvrtcGetProgramLog": &n.nvrtcGetProgramLog, "nvrtcGetCUBINSize": &n.nvrtcGetCUBINSize,
		"nvrtcGetCUBIN": &n.nvrtcGetCUBIN, "nvrtcGetPTXSize": &n.nvrtcGetPTXSize, "nvrtcGetPTX": &n.nvrtcGetPTX,
	}
	if err := symbols(lib, path, syms); err != nil {
		return nil, err
	}
	var major, minor int32
	if err := n.check("nvrtcVersion", n.call(n.nvrtcVersion, uintptr(unsafe.Pointer(&major)), uintptr(unsafe.Pointer(&minor)))); err != nil {
		return nil, err
	}
	n.major, n.minor = int(major), int(minor)
	return n, nil
}

// Path is the file NVRTC was loaded from.
func (n *NVRTC) Path() string { return n.path }

// Version is NVRTC's "major.minor".
func (n *NVRTC) Version() string { return fmt.Sprintf("%d.%d", n.major, n.minor) }

//go:uintptrescapes
func (n *NVRTC) call(fn uintptr, args ...uintptr) int {
	r, _, _ := purego.SyscallN(fn, args...)
	return int(int32(r))
}

func (n *NVRTC) check(fn string, code int) error {
	if code == 0 {
		return nil
	}
	r, _, _ := purego.SyscallN(n.nvrtcGetErrorString, uintptr(code))
	return fmt.Errorf("%s: %s (%d)", fn, goString(r), code)
}

// CompileError is a failed compilation with NVRTC's log, whose lines name
// the file and line of each problem.
type CompileError struct {
	Name string
	Log  string
	Err  error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("nvrtc: compiling %s: %v:\n%s", e.Name, e.Err, strings.TrimSpace(e.Log))
}

// Compile compiles CUDA C source named name, with headers (include name ->
// contents) available to #include "name", and returns the cubin for a real
// architecture (options must then hold --gpu-architecture=sm_XY) or PTX for
// a virtual one (compute_XY), plus the compiler log (warnings).
func (n *NVRTC) Compile(src, name string, headers map[string]string, options []string) (image []byte, log string, err error) {
	var keep [][]byte // C strings, alive until the end of the call
	cstr := func(s string) uintptr {
		b := cString(s)
		keep = append(keep, b)
		return uintptr(unsafe.Pointer(&b[0]))
	}
	var hdrSrc, hdrName []uintptr
	for hn, hs := range headers {
		hdrSrc = append(hdrSrc, cstr(hs))
		hdrName = append(hdrName, cstr(hn))
	}
	var hsp, hnp uintptr
	if len(hdrSrc) > 0 {
		hsp, hnp = uintptr(unsafe.Pointer(&hdrSrc[0])), uintptr(unsafe.Pointer(&hdrName[0]))
	}
	var prog uintptr
	if err := n.check("nvrtcCreateProgram", n.call(n.nvrtcCreateProgram, uintptr(unsafe.Pointer(&prog)),
		cstr(src), cstr(name), uintptr(len(hdrSrc)), hsp, hnp)); err != nil {
		return nil, "", err
	}
	defer n.call(n.nvrtcDestroyProgram, uintptr(unsafe.Pointer(&prog)))

	opts := make([]uintptr, 0, len(options))
	for _, o := range options {
		opts = append(opts, cstr(o))
	}
	var optp uintptr
	if len(opts) > 0 {
		optp = uintptr(unsafe.Pointer(&opts[0]))
	}
	compileErr := n.check("nvrtcCompileProgram", n.call(n.nvrtcCompileProgram, prog, uintptr(len(opts)), optp))

	var logSize uint64
	if err := n.check("nvrtcGetProgramLogSize", n.call(n.nvrtcGetProgramLogSize, prog, uintptr(unsafe.Pointer(&logSize)))); err == nil && logSize > 1 {
		buf := make([]byte, logSize)
		if n.call(n.nvrtcGetProgramLog, prog, uintptr(unsafe.Pointer(&buf[0]))) == 0 {
			log = strings.TrimRight(string(buf), "\x00")
		}
	}
	// Keep the header and option strings alive through the compile.
	runtime.KeepAlive(keep)
	if compileErr != nil {
		return nil, log, &CompileError{Name: name, Log: log, Err: compileErr}
	}

	sizeFn, getFn, what := n.nvrtcGetCUBINSize, n.nvrtcGetCUBIN, "CUBIN"
	for _, o := range options {
		if strings.Contains(o, "compute_") {
			sizeFn, getFn, what = n.nvrtcGetPTXSize, n.nvrtcGetPTX, "PTX"
		}
	}
	var size uint64
	if err := n.check("nvrtcGet"+what+"Size", n.call(sizeFn, prog, uintptr(unsafe.Pointer(&size)))); err != nil {
		return nil, log, err
	}
	if size == 0 {
		return nil, log, fmt.Errorf("nvrtc: %s produced an empty %s", name, what)
	}
	image = make([]byte, size)
	if err := n.check("nvrtcGet"+what, n.call(getFn, prog, uintptr(unsafe.Pointer(&image[0])))); err != nil {
		return nil, log, err
	}
	return image, log, nil
}
