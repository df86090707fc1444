// Package hip is a thin, cgo-free binding of the parts of the HIP runtime
// (libamdhip64) and of hipRTC that the GPU backend needs on AMD GPUs. It
// mirrors package cuda: libraries are opened with dlopen through
// github.com/ebitengine/purego, every call goes through purego.SyscallN, and
// every hipError_t becomes an *Error that names the call and the code
// (hipGetErrorName, hipGetErrorString).
//
// A missing or broken ROCm stack is an error from LoadDriver or LoadHIPRTC,
// never a crash, so a caller can log it and fall back to another backend.
//
// Status: this code has never run on an AMD GPU. Its tests run the error
// mapping, the library search order, the device-property decoding, the
// compile options and the compile cache against Go fakes of the library
// (the entry points are a struct of Go functions, see runtimeAPI and
// rtcAPI); where a ROCm runtime without a GPU is installed (Debian's
// libamdhip64 5.2, pulled in by scripts/hip-check.sh) they also load the
// real library, see hipInit fail cleanly, and compile the kernels with the
// real hipRTC. Device memory, launches and graphs are untested.
package hip

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ebitengine/purego"
)

// Sonames, in the order tried in each directory. The unversioned name is
// the one an installation points at its current release; the versioned
// names cover runtime-only installs that lack the development symlink.
var (
	runtimeNames = []string{"libamdhip64.so", "libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5"}
	// ROCm 6 moved hipRTC into its own library; ROCm 5 exports it from
	// libamdhip64, which is therefore the last resort.
	rtcNames = []string{"libhiprtc.so", "libhiprtc.so.7", "libhiprtc.so.6", "libhiprtc.so.5",
		"libamdhip64.so", "libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5"}
)

// searchDirs lists the directories where ROCm libraries are looked for, in
// order: $ROCMFORGE_HIP_PATH, $ROCM_PATH and $HIP_PATH (each a lib directory
// or an installation root), /opt/rocm, then /opt/rocm-<version> newest
// first. The system loader (LD_LIBRARY_PATH, the ld.so cache, which is
// where distribution packages such as Debian's live) is tried after these
// by dlopen of the bare soname. getenv and glob are parameters so tests can
// pin the order.
func searchDirs(getenv func(string) string, glob func(string) ([]string, error)) []string {
	var dirs []string
	add := func(d string) {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	addRoot := func(root string) {
		if root == "" {
			return
		}
		root = filepath.Clean(root)
		add(filepath.Join(root, "lib"))
		add(filepath.Join(root, "lib64"))
		add(root)
	}
	for _, v := range []string{"ROCMFORGE_HIP_PATH", "ROCM_PATH", "HIP_PATH"} {
		addRoot(getenv(v))
	}
	addRoot("/opt/rocm")
	if more, err := glob("/opt/rocm-*"); err == nil {
		sort.Slice(more, func(i, j int) bool { return versionLess(more[j], more[i]) })
		for _, r := range more {
			addRoot(r)
		}
	}
	return dirs
}

// versionLess orders paths like /opt/rocm-6.10.1 by their numeric version
// (so 6.10 sorts after 6.9), falling back to string order.
func versionLess(a, b string) bool {
	va, vb := versionOf(a), versionOf(b)
	for i := 0; i < len(va) && i < len(vb); i++ {
		if va[i] != vb[i] {
			return va[i] < vb[i]
		}
	}
	if len(va) != len(vb) {
		return len(va) < len(vb)
	}
	return a < b
}

func versionOf(p string) []int {
	_, v, ok := strings.Cut(filepath.Base(p), "-")
	if !ok {
		return nil
	}
	var out []int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

// finder opens the first library found. Its functions are fields so tests
// can replace the file system and dlopen.
type finder struct {
	dirs   []string
	exists func(path string) bool
	open   func(path string) (uintptr, error)
}

// defaultFinder searches the real file system and dlopens with purego.
func defaultFinder() finder {
	return finder{
		dirs: searchDirs(os.Getenv, filepath.Glob),
		exists: func(p string) bool {
			_, err := os.Stat(p)
			return err == nil
		},
		open: func(p string) (uintptr, error) {
			return purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		},
	}
}

// openLib dlopens the first of names present in f.dirs (each directory is
// searched for every name before the next directory), then the bare names
// through the system loader. The error names every directory searched and
// every failed dlopen.
func (f finder) openLib(what string, names []string) (handle uintptr, path string, err error) {
	var failed []string
	for _, d := range f.dirs {
		for _, name := range names {
			p := filepath.Join(d, name)
			if !f.exists(p) {
				continue
			}
			h, err := f.open(p)
			if err == nil {
				return h, p, nil
			}
			failed = append(failed, fmt.Sprintf("%s (%v)", p, err))
		}
	}
	for _, name := range names {
		h, err := f.open(name)
		if err == nil {
			return h, name, nil
		}
		failed = append(failed, fmt.Sprintf("loader: %s (%v)", name, err))
	}
	return 0, "", fmt.Errorf("hip: %s not found: searched %s for %s; then %s",
		what, strings.Join(f.dirs, ", "), strings.Join(names, ", "), strings.Join(failed, "; "))
}

// lookupFunc resolves a symbol of an opened library; 0 with an error when
// absent.
type lookupFunc func(name string) (uintptr, error)

func dlsym(lib uintptr) lookupFunc {
	return func(name string) (uintptr, error) { return purego.Dlsym(lib, name) }
}

// resolver collects symbol addresses and the names that are missing, so
// that one error lists them all.
type resolver struct {
	lookup  lookupFunc
	missing []string
}

// need returns the address of a required symbol (0 and noted if missing).
func (r *resolver) need(name string) uintptr {
	addr, err := r.lookup(name)
	if err != nil || addr == 0 {
		r.missing = append(r.missing, name)
		return 0
	}
	return addr
}

// optional returns the address of name or 0, noting nothing.
func (r *resolver) optional(name string) uintptr {
	addr, err := r.lookup(name)
	if err != nil {
		return 0
	}
	return addr
}

func (r *resolver) err(lib string) error {
	if len(r.missing) == 0 {
		return nil
	}
	sort.Strings(r.missing)
	return fmt.Errorf("hip: %s lacks %s", lib, strings.Join(r.missing, ", "))
}
