package hip

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"unsafe"
)

// HIPRTC is the loaded runtime compiler.
type HIPRTC struct {
	path         string
	major, minor int
	id           string // see CompilerID
	api          *rtcAPI
}

// LoadHIPRTC opens hipRTC: libhiprtc (ROCm 6 and later) or, failing that,
// libamdhip64, which exports hipRTC in ROCm 5. See searchDirs for where.
func LoadHIPRTC() (*HIPRTC, error) {
	return loadHIPRTC(defaultFinder())
}

func loadHIPRTC(f finder) (*HIPRTC, error) {
	lib, path, err := f.openLib("hipRTC (libhiprtc.so, or libamdhip64.so before ROCm 6)", rtcNames)
	if err != nil {
		return nil, err
	}
	api, err := bindRTC(dlsym(lib), path)
	if err != nil {
		return nil, err
	}
	return newHIPRTC(api, path)
}

func newHIPRTC(api *rtcAPI, path string) (*HIPRTC, error) {
	r := &HIPRTC{path: path, api: api}
	var major, minor int32
	if err := r.check("hiprtcVersion", api.Version(&major, &minor)); err != nil {
		return nil, fmt.Errorf("hip: %s: %w", path, err)
	}
	r.major, r.minor = int(major), int(minor)
	r.id = fmt.Sprintf("hiprtc %d.%d %s", major, minor, fileStamp(path))
	return r, nil
}

// CompilerID names the compiler for cache keys: hipRTC's version plus the
// library file's path, size and modification time, because hipRTC's own
// version number does not change with every ROCm release.
func (r *HIPRTC) CompilerID() string { return r.id }

// fileStamp is "path size mtime" of the library file behind path (a bare
// soname is looked up among the process's mapped files), or path alone
// when the file cannot be found.
func fileStamp(path string) string {
	file := path
	if !filepath.IsAbs(path) {
		file = mappedFile(path)
	}
	st, err := os.Stat(file)
	if file == "" || err != nil {
		return path
	}
	return fmt.Sprintf("%s %d %d", file, st.Size(), st.ModTime().UnixNano())
}

// mappedFile is the absolute path of a mapped library whose base name
// starts with soname ("libamdhip64.so" matches libamdhip64.so.5.2.21153),
// from /proc/self/maps; "" if none.
func mappedFile(soname string) string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(maps)) {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		p := f[len(f)-1]
		if strings.HasPrefix(p, "/") && strings.HasPrefix(filepath.Base(p), soname) {
			return p
		}
	}
	return ""
}

// Path is the file hipRTC was loaded from.
func (r *HIPRTC) Path() string { return r.path }

// Version is hipRTC's "major.minor".
func (r *HIPRTC) Version() string { return fmt.Sprintf("%d.%d", r.major, r.minor) }

// RTCError is a failed hipRTC call with its hiprtcResult.
type RTCError struct {
	Func string
	Code int
	Desc string // hiprtcGetErrorString, e.g. HIPRTC_ERROR_COMPILATION
}

func (e *RTCError) Error() string { return fmt.Sprintf("%s: %s (%d)", e.Func, e.Desc, e.Code) }

func (r *HIPRTC) check(fn string, code int32) error {
	if code == 0 {
		return nil
	}
	e := &RTCError{Func: fn, Code: int(code)}
	if r.api.GetErrorString != nil {
		e.Desc = r.api.GetErrorString(code)
	}
	if e.Desc == "" {
		e.Desc = fmt.Sprintf("hiprtcResult(%d)", code)
	}
	return e
}

// CompileError is a failed compilation with hipRTC's log, whose lines name
// the file and line of each problem.
type CompileError struct {
	Name string
	Log  string
	Err  error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("hiprtc: compiling %s: %v:\n%s", e.Name, e.Err, strings.TrimSpace(e.Log))
}

func (e *CompileError) Unwrap() error { return e.Err }

// CompileOptions are the hipRTC options for a device: its target ID as
// DeviceArch reports it (e.g. "gfx90a:sramecc+:xnack-"), its wavefront
// size as WarpSize reports it (kernels/common.h refuses a WARP_SIZE that
// differs from the target's), then extra options in order.
func CompileOptions(arch string, warp int, extra ...string) ([]string, error) {
	if !gcnArchRE.MatchString(arch) {
		return nil, fmt.Errorf("hip: target %q is not a gfx target ID such as gfx90a or gfx90a:sramecc+:xnack-", arch)
	}
	if warp != 32 && warp != 64 {
		return nil, fmt.Errorf("hip: warp size %d for %s, want 32 or 64", warp, arch)
	}
	opts := []string{"--offload-arch=" + arch, fmt.Sprintf("-DWARP_SIZE=%d", warp)}
	return append(opts, extra...), nil
}

// Compile compiles HIP C++ source named name, with headers (include name ->
// contents) available to #include "name", and returns the code object
// (an ELF image for hipModuleLoadData) and the compiler log (warnings).
// options come from CompileOptions.
func (r *HIPRTC) Compile(src, name string, headers map[string]string, options []string) (image []byte, log string, err error) {
	var keep [][]byte // C strings, alive until the end of the call
	cstr := func(s string) uintptr {
		b := cString(s)
		keep = append(keep, b)
		return uintptr(unsafe.Pointer(&b[0]))
	}
	hnames := make([]string, 0, len(headers))
	for hn := range headers {
		hnames = append(hnames, hn)
	}
	slices.Sort(hnames)
	var hdrSrc, hdrName []uintptr
	for _, hn := range hnames {
		hdrSrc = append(hdrSrc, cstr(headers[hn]))
		hdrName = append(hdrName, cstr(hn))
	}
	var hsp, hnp unsafe.Pointer
	if len(hdrSrc) > 0 {
		hsp, hnp = unsafe.Pointer(&hdrSrc[0]), unsafe.Pointer(&hdrName[0])
	}
	srcC, nameC := cString(src), cString(name)
	var prog uintptr
	if err := r.check("hiprtcCreateProgram", r.api.CreateProgram(&prog, &srcC[0], &nameC[0], int32(len(hdrSrc)), hsp, hnp)); err != nil {
		return nil, "", err
	}
	defer r.api.DestroyProgram(&prog)

	opts := make([]uintptr, 0, len(options))
	for _, o := range options {
		opts = append(opts, cstr(o))
	}
	var optp unsafe.Pointer
	if len(opts) > 0 {
		optp = unsafe.Pointer(&opts[0])
	}
	compileErr := r.check("hiprtcCompileProgram", r.api.CompileProgram(prog, int32(len(opts)), optp))
	// The pointer arrays hold addresses of these Go byte slices.
	runtime.KeepAlive(keep)
	runtime.KeepAlive(srcC)
	runtime.KeepAlive(nameC)

	var logSize uint64
	if r.api.GetProgramLogSize(prog, &logSize) == 0 && logSize > 1 {
		buf := make([]byte, logSize)
		if r.api.GetProgramLog(prog, &buf[0]) == 0 {
			log = programLog(strings.TrimRight(string(buf), "\x00"), name)
		}
	}
	if compileErr != nil {
		return nil, log, &CompileError{Name: name, Log: log, Err: compileErr}
	}
	var size uint64
	if err := r.check("hiprtcGetCodeSize", r.api.GetCodeSize(prog, &size)); err != nil {
		return nil, log, err
	}
	if size == 0 {
		return nil, log, fmt.Errorf("hiprtc: %s produced an empty code object", name)
	}
	image = make([]byte, size)
	if err := r.check("hiprtcGetCode", r.api.GetCode(prog, &image[0])); err != nil {
		return nil, log, err
	}
	return image, log, nil
}

// comgrSourceRE matches the path hipRTC (through comgr) gives the program
// in its diagnostics, e.g. /tmp/comgr-08df7d/input/CompileSource.
var comgrSourceRE = regexp.MustCompile(`\S*/input/CompileSource\b`)

// programLog puts the program's name where hipRTC's log has its temporary
// file, so "rope.cu:12:3: error" reads as it would from hipcc.
func programLog(log, name string) string {
	return comgrSourceRE.ReplaceAllLiteralString(log, name)
}

// CacheKey identifies a compiled image: a hex SHA-256 of the compiler
// (CompilerID), the program's name and source, every header (sorted by
// name) and the options in order. Each part is length-prefixed, so moving
// text between parts changes the key.
func CacheKey(compiler, name, src string, headers map[string]string, options []string) string {
	h := sha256.New()
	put := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	put(compiler)
	put(name)
	put(src)
	hnames := make([]string, 0, len(headers))
	for hn := range headers {
		hnames = append(hnames, hn)
	}
	slices.Sort(hnames)
	fmt.Fprintf(h, "headers %d;", len(hnames))
	for _, hn := range hnames {
		put(hn)
		put(headers[hn])
	}
	fmt.Fprintf(h, "options %d;", len(options))
	for _, o := range options {
		put(o)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cachePath is where CompileCached keeps an image: the program's base name,
// the target from --offload-arch (so a cache directory shared by several
// GPUs stays readable) and the first 24 hex digits of the key.
func cachePath(dir, name, key string, options []string) string {
	arch := "noarch"
	for _, o := range options {
		if a, ok := strings.CutPrefix(o, "--offload-arch="); ok {
			arch = a
		}
	}
	safe := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '+' {
				return r
			}
			return '_'
		}, s)
	}
	base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	return filepath.Join(dir, fmt.Sprintf("%s-%s-%s.hsaco", safe(base), safe(arch), key[:24]))
}

// CompileCached is Compile with a disk cache under dir keyed by CacheKey;
// an empty dir disables it. cached says the image came from the cache. A
// cache that cannot be written costs only a recompile next time.
func (r *HIPRTC) CompileCached(dir, src, name string, headers map[string]string, options []string) (image []byte, cached bool, err error) {
	var path string
	if dir != "" {
		path = cachePath(dir, name, CacheKey(r.id, name, src, headers, options), options)
		if img, err := os.ReadFile(path); err == nil && len(img) > 0 {
			return img, true, nil
		}
	}
	image, _, err = r.Compile(src, name, headers, options)
	if err != nil {
		return nil, false, err
	}
	if path != "" {
		_ = writeFileAtomic(path, image) // best effort, see above
	}
	return image, false, nil
}

// writeFileAtomic writes through a temporary file and a rename, so a
// reader never sees a partial image.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
