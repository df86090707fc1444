package hip

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

func TestCompileOptions(t *testing.T) {
	tests := []struct {
		arch    string
		warp    int
		extra   []string
		want    []string
		wantErr string
	}{
		{arch: "gfx90a:sramecc+:xnack-", warp: 64, want: []string{"--offload-arch=gfx90a:sramecc+:xnack-", "-DWARP_SIZE=64"}},
		{arch: "gfx942", warp: 64, extra: []string{"--std=c++17"}, want: []string{"--offload-arch=gfx942", "-DWARP_SIZE=64", "--std=c++17"}},
		{arch: "gfx1100", warp: 32, want: []string{"--offload-arch=gfx1100", "-DWARP_SIZE=32"}},
		{arch: "gfx1030", warp: 64, want: []string{"--offload-arch=gfx1030", "-DWARP_SIZE=64"}}, // wave64 mode on RDNA is legal
		{arch: "sm_90", warp: 32, wantErr: `target "sm_90" is not a gfx target ID`},
		{arch: "", warp: 64, wantErr: `target "" is not`},
		{arch: "gfx90a --save-temps", warp: 64, wantErr: "not a gfx target ID"},
		{arch: "gfx90a", warp: 48, wantErr: "warp size 48 for gfx90a, want 32 or 64"},
		{arch: "gfx90a", warp: 0, wantErr: "warp size 0"},
	}
	for _, tc := range tests {
		got, err := CompileOptions(tc.arch, tc.warp, tc.extra...)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CompileOptions(%q, %d): got %q, %v; want error %q", tc.arch, tc.warp, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("CompileOptions(%q, %d) = %q, %v; want %q", tc.arch, tc.warp, got, err, tc.want)
		}
	}
}

// cStrings reads n C strings from an array of pointers.
func cStrings(arr unsafe.Pointer, n int32) []string {
	if n == 0 {
		return nil
	}
	var out []string
	for _, p := range unsafe.Slice((*uintptr)(arr), n) {
		out = append(out, goString(p))
	}
	return out
}

// fakeRTC is a hipRTC that records what it was given and "compiles" to
// "\x7fELF" + the options, or fails with log when fail is set.
type fakeRTC struct {
	compiles int
	src      string
	name     string
	headers  []string // name=contents
	options  []string
	fail     bool
	log      string
}

func (f *fakeRTC) api() *rtcAPI {
	var image []byte
	return &rtcAPI{
		GetErrorString: func(c int32) string {
			if c == 6 {
				return "HIPRTC_ERROR_COMPILATION"
			}
			return ""
		},
		Version: func(major, minor *int32) int32 { *major, *minor = 6, 2; return 0 },
		CreateProgram: func(prog *uintptr, src, name *byte, n int32, headers, names unsafe.Pointer) int32 {
			f.src = goString(uintptr(unsafe.Pointer(src)))
			f.name = goString(uintptr(unsafe.Pointer(name)))
			f.headers = nil
			hs, hn := cStrings(headers, n), cStrings(names, n)
			for i := range hs {
				f.headers = append(f.headers, hn[i]+"="+hs[i])
			}
			*prog = 0x77
			return 0
		},
		DestroyProgram: func(prog *uintptr) int32 { *prog = 0; return 0 },
		CompileProgram: func(prog uintptr, n int32, options unsafe.Pointer) int32 {
			f.compiles++
			f.options = cStrings(options, n)
			if f.fail {
				return 6
			}
			image = []byte("\x7fELF" + strings.Join(f.options, " "))
			return 0
		},
		GetProgramLogSize: func(prog uintptr, size *uint64) int32 { *size = uint64(len(f.log) + 1); return 0 },
		GetProgramLog: func(prog uintptr, log *byte) int32 {
			copy(unsafe.Slice(log, len(f.log)+1), f.log+"\x00")
			return 0
		},
		GetCodeSize: func(prog uintptr, size *uint64) int32 { *size = uint64(len(image)); return 0 },
		GetCode: func(prog uintptr, code *byte) int32 {
			copy(unsafe.Slice(code, len(image)), image)
			return 0
		},
	}
}

func TestCompileWithFake(t *testing.T) {
	f := &fakeRTC{}
	r, err := newHIPRTC(f.api(), "/opt/rocm/lib/libhiprtc.so")
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != "6.2" || !strings.HasPrefix(r.CompilerID(), "hiprtc 6.2 /opt/rocm/lib/libhiprtc.so") {
		t.Errorf("version %q, compiler id %q", r.Version(), r.CompilerID())
	}
	opts, err := CompileOptions("gfx90a", 64, "--std=c++17")
	must(t, err)
	headers := map[string]string{"quant.h": "// q", "common.h": "// c"}
	img, _, err := r.Compile("kernel source", "rope.cu", headers, opts)
	must(t, err)
	if string(img) != "\x7fELF--offload-arch=gfx90a -DWARP_SIZE=64 --std=c++17" {
		t.Errorf("image %q", img)
	}
	if f.src != "kernel source" || f.name != "rope.cu" {
		t.Errorf("program %q named %q", f.src, f.name)
	}
	if want := []string{"common.h=// c", "quant.h=// q"}; !slices.Equal(f.headers, want) {
		t.Errorf("headers %q, want %q (sorted by name)", f.headers, want)
	}

	f.fail = true
	f.log = "/tmp/comgr-08df7d/input/CompileSource:3:10: error: use of undeclared identifier 'undefined_name'\n"
	_, log, err := r.Compile("x", "broken.cu", nil, opts)
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("want *CompileError, got %v", err)
	}
	if !strings.Contains(ce.Error(), "broken.cu:3:10: error: use of undeclared identifier 'undefined_name'") || strings.Contains(log, "CompileSource") {
		t.Errorf("log does not name the program and line:\n%v", err)
	}
	var re *RTCError
	if !errors.As(err, &re) || re.Desc != "HIPRTC_ERROR_COMPILATION" || re.Code != 6 {
		t.Errorf("compile error does not carry the hiprtcResult: %#v", err)
	}
}

func TestCacheKey(t *testing.T) {
	base := func() (string, string, string, map[string]string, []string) {
		return "hiprtc 6.2 /opt/rocm/lib/libhiprtc.so 123 456", "rope.cu", "src",
			map[string]string{"common.h": "c", "quant.h": "q"}, []string{"--offload-arch=gfx90a", "-DWARP_SIZE=64"}
	}
	k0 := CacheKey(base())
	if len(k0) != 64 {
		t.Fatalf("key %q is not 64 hex digits", k0)
	}
	// A header map built in another order gives the same key.
	c, n, s, _, o := base()
	if k := CacheKey(c, n, s, map[string]string{"quant.h": "q", "common.h": "c"}, o); k != k0 {
		t.Error("key depends on header map order")
	}
	changes := map[string]func(c, n, s *string, h map[string]string, o *[]string){
		"compiler": func(c, _, _ *string, _ map[string]string, _ *[]string) {
			*c = "hiprtc 6.3 /opt/rocm/lib/libhiprtc.so 123 456"
		},
		"library file": func(c, _, _ *string, _ map[string]string, _ *[]string) {
			*c = "hiprtc 6.2 /opt/rocm/lib/libhiprtc.so 124 456"
		},
		"name":              func(_, n, _ *string, _ map[string]string, _ *[]string) { *n = "rope2.cu" },
		"source":            func(_, _, s *string, _ map[string]string, _ *[]string) { *s = "src " },
		"header content":    func(_, _, _ *string, h map[string]string, _ *[]string) { h["quant.h"] = "q2" },
		"header name":       func(_, _, _ *string, h map[string]string, _ *[]string) { delete(h, "quant.h"); h["quant2.h"] = "q" },
		"extra header":      func(_, _, _ *string, h map[string]string, _ *[]string) { h["x.h"] = "" },
		"arch":              func(_, _, _ *string, _ map[string]string, o *[]string) { (*o)[0] = "--offload-arch=gfx942" },
		"warp":              func(_, _, _ *string, _ map[string]string, o *[]string) { (*o)[1] = "-DWARP_SIZE=32" },
		"option order":      func(_, _, _ *string, _ map[string]string, o *[]string) { (*o)[0], (*o)[1] = (*o)[1], (*o)[0] },
		"extra option":      func(_, _, _ *string, _ map[string]string, o *[]string) { *o = append(*o, "-O2") },
		"text moved across": func(_, n, s *string, _ map[string]string, _ *[]string) { *n, *s = "rope.cus", "rc" },
	}
	seen := map[string]string{k0: "base"}
	for what, change := range changes {
		c, n, s, h, o := base()
		change(&c, &n, &s, h, &o)
		k := CacheKey(c, n, s, h, o)
		if prev, dup := seen[k]; dup {
			t.Errorf("changing the %s gives the key of %s", what, prev)
		}
		seen[k] = what
	}
}

func TestCompileCached(t *testing.T) {
	dir := t.TempDir()
	f := &fakeRTC{}
	r, err := newHIPRTC(f.api(), "libhiprtc.so.6")
	must(t, err)
	opts, err := CompileOptions("gfx90a:sramecc+:xnack-", 64)
	must(t, err)
	headers := map[string]string{"common.h": "c"}

	img1, cached, err := r.CompileCached(dir, "src", "matmul.cu", headers, opts)
	must(t, err)
	if cached || f.compiles != 1 {
		t.Fatalf("first compile: cached %v, %d compiles", cached, f.compiles)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || !strings.HasPrefix(filepath.Base(files[0]), "matmul-gfx90a_sramecc+_xnack--") || !strings.HasSuffix(files[0], ".hsaco") {
		t.Fatalf("cache files %q", files)
	}
	img2, cached, err := r.CompileCached(dir, "src", "matmul.cu", headers, opts)
	must(t, err)
	if !cached || f.compiles != 1 || !bytes.Equal(img1, img2) {
		t.Errorf("second compile: cached %v, %d compiles, same image %v", cached, f.compiles, bytes.Equal(img1, img2))
	}
	// A changed header or another target recompiles into a new entry.
	_, cached, err = r.CompileCached(dir, "src", "matmul.cu", map[string]string{"common.h": "c2"}, opts)
	must(t, err)
	opts32, _ := CompileOptions("gfx1100", 32)
	_, cached2, err := r.CompileCached(dir, "src", "matmul.cu", headers, opts32)
	must(t, err)
	if cached || cached2 || f.compiles != 3 {
		t.Errorf("after changes: cached %v %v, %d compiles, want 3", cached, cached2, f.compiles)
	}
	if files, _ = filepath.Glob(filepath.Join(dir, "*.hsaco")); len(files) != 3 {
		t.Errorf("%d cache entries, want 3: %q", len(files), files)
	}
	// An empty directory disables the cache; a failed compile caches nothing.
	_, cached, err = r.CompileCached("", "src", "matmul.cu", headers, opts)
	if err != nil || cached || f.compiles != 4 {
		t.Errorf("no cache dir: cached %v, %d compiles, %v", cached, f.compiles, err)
	}
	f.fail = true
	if _, _, err := r.CompileCached(dir, "bad", "matmul.cu", headers, opts); err == nil {
		t.Error("failed compile returned no error")
	}
	if files, _ = filepath.Glob(filepath.Join(dir, "*")); len(files) != 3 {
		t.Errorf("failed compile left files: %q", files)
	}
}

// kernelsDir is compute/gpu/kernels, next to this package.
func kernelsDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Skip("cannot locate the test file")
	}
	d := filepath.Join(filepath.Dir(file), "..", "kernels")
	if _, err := os.Stat(filepath.Join(d, "common.h")); err != nil {
		t.Skipf("kernel sources not found at %s: %v", d, err)
	}
	return d
}

// TestRealHIPRTC compiles real kernels with the real hipRTC when one is
// installed (no GPU needed): the purego calls, kernels/common.h's hipRTC
// branch and its WARP_SIZE check. matmul.cu is left to scripts/hip-check.sh
// (it takes seconds per target).
func TestRealHIPRTC(t *testing.T) {
	r, err := LoadHIPRTC()
	if err != nil {
		if !strings.Contains(err.Error(), "not found") {
			t.Fatalf("hipRTC found but unusable: %v", err)
		}
		t.Skipf("no hipRTC here (scripts/hip-check.sh installs one): %v", err)
	}
	t.Logf("hipRTC %s (%s)", r.Version(), r.CompilerID())
	dir := kernelsDir(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	headers := map[string]string{"common.h": read("common.h"), "quant.h": read("quant.h")}
	for _, target := range []struct {
		arch string
		warp int
	}{{"gfx90a:sramecc+:xnack-", 64}, {"gfx1030", 32}} {
		opts, err := CompileOptions(target.arch, target.warp, "--std=c++17")
		must(t, err)
		for _, prog := range []string{"rope.cu", "elementwise.cu"} {
			img, log, err := r.Compile(read(prog), prog, headers, opts)
			if err != nil {
				t.Errorf("%s for %s: %v", prog, target.arch, err)
				continue
			}
			if !bytes.HasPrefix(img, []byte("\x7fELF")) {
				t.Errorf("%s for %s: image starts %q, not an ELF code object", prog, target.arch, img[:min(8, len(img))])
			}
			t.Logf("%s for %s: %d bytes; log %q", prog, target.arch, len(img), log)
		}
	}

	// A WARP_SIZE that is not the target's wavefront size must not compile.
	opts, _ := CompileOptions("gfx1030", 64)
	_, _, err = r.Compile(read("rope.cu"), "rope.cu", headers, opts)
	if err == nil || !strings.Contains(err.Error(), "WARP_SIZE does not match the target's wavefront size") {
		t.Errorf("WARP_SIZE=64 on gfx1030 (wave32): %v", err)
	}
	// Errors name the program and line.
	opts, _ = CompileOptions("gfx90a", 64)
	src := "#include \"common.h\"\nextern \"C\" __global__ void k(float* x) {\n  x[0] = undefined_name;\n}\n"
	_, _, err = r.Compile(src, "broken.cu", headers, opts)
	var ce *CompileError
	if !errors.As(err, &ce) || !strings.Contains(ce.Log, "broken.cu:3:") || !strings.Contains(ce.Log, "undefined_name") {
		t.Errorf("error does not name broken.cu:3 and the identifier:\n%v", err)
	}
}
