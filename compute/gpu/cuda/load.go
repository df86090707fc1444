// Package cuda is a thin, cgo-free binding of the parts of the CUDA driver
// API (libcuda) and of NVRTC that the GPU backend needs. Libraries are opened
// with dlopen through github.com/ebitengine/purego; every call goes through
// purego.SyscallN and every CUresult is turned into an error that names the
// call and the result (cuGetErrorName).
//
// A missing or broken CUDA stack is an error from Load, never a crash, so a
// caller can log it and fall back to the CPU.
package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ebitengine/purego"
)

// nvrtcNames are the sonames tried for NVRTC, newest first.
var nvrtcNames = []string{
	"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so",
}

// searchDirs lists the directories where CUDA libraries are looked for, in
// order: the ROCMFORGE_CUDA_PATH and CUDA_PATH variables (each either a lib
// directory or a toolkit root), the usual toolkit locations, and the NVIDIA
// wheels of any Python site-packages. The loader's own path (LD_LIBRARY_PATH,
// the ldconfig cache) is tried after these by dlopen of the bare soname.
func searchDirs() []string {
	var dirs []string
	addRoot := func(root string) {
		if root == "" {
			return
		}
		dirs = append(dirs, root,
			filepath.Join(root, "lib64"),
			filepath.Join(root, "lib"),
			filepath.Join(root, "targets", "x86_64-linux", "lib"),
			filepath.Join(root, "targets", "sbsa-linux", "lib"))
	}
	addRoot(os.Getenv("ROCMFORGE_CUDA_PATH"))
	addRoot(os.Getenv("CUDA_PATH"))
	addRoot(os.Getenv("CUDA_HOME"))
	addRoot("/usr/local/cuda")
	if more, _ := filepath.Glob("/usr/local/cuda-*"); len(more) > 0 {
		// Highest version first.
		sort.Sort(sort.Reverse(sort.StringSlice(more)))
		for _, r := range more {
			addRoot(r)
		}
	}
	dirs = append(dirs, "/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64")
	return append(dirs, pythonLibDirs()...)
}

// pythonLibDirs lists the lib directories of NVIDIA's Python wheels
// (nvidia/cu13/lib, nvidia/cublas/lib, ...) in the active virtualenv or
// conda environment, the system and /opt virtualenvs (PyTorch images keep
// one in /opt/<name>/.venv) and the user's site-packages, plus the conda
// environment's own lib directory, which holds conda's CUDA packages.
func pythonLibDirs() []string {
	var patterns []string
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if root := os.Getenv(env); root != "" {
			patterns = append(patterns, filepath.Join(root, "lib/python3*/site-packages/nvidia/*/lib"))
		}
	}
	patterns = append(patterns,
		"/usr/lib/python3*/site-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/site-packages/nvidia/*/lib",
		"/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib",
		"/opt/*/venv/lib/python3*/site-packages/nvidia/*/lib",
		"/opt/conda/lib/python3*/site-packages/nvidia/*/lib",
	)
	if home, err := os.UserHomeDir(); err == nil {
		patterns = append(patterns, filepath.Join(home, ".local/lib/python3*/site-packages/nvidia/*/lib"))
	}
	var dirs []string
	seen := map[string]bool{}
	for _, pattern := range patterns {
		m, _ := filepath.Glob(pattern)
		sort.Strings(m)
		for _, d := range m {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
	}
	if root := os.Getenv("CONDA_PREFIX"); root != "" {
		dirs = append(dirs, filepath.Join(root, "lib"))
	}
	return dirs
}

// openLib dlopens the first of names found in dirs, then by bare name through
// the system loader. The error lists what was tried.
func openLib(what string, names []string, dirs []string) (uintptr, string, error) {
	return openLibFrom(what, names, dirs, true)
}

// openLibFrom is openLib; without loader it never asks the system loader
// (tests of one directory list use that).
func openLibFrom(what string, names []string, dirs []string, loader bool) (uintptr, string, error) {
	var tried []string
	for _, name := range names {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			if err == nil {
				return h, p, nil
			}
			tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
		}
	}
	for _, name := range names {
		if !loader {
			break
		}
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, name, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%v)", name, err))
	}
	return 0, "", fmt.Errorf("cuda: %s not found; tried %s", what, strings.Join(tried, "; "))
}

// symbols resolves each name into its *uintptr.
func symbols(lib uintptr, libName string, syms map[string]*uintptr) error {
	var missing []string
	for name, p := range syms {
		addr, err := purego.Dlsym(lib, name)
		if err != nil || addr == 0 {
			missing = append(missing, name)
			continue
		}
		*p = addr
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("cuda: %s lacks %s", libName, strings.Join(missing, ", "))
	}
	return nil
}

// ErrNoDevice is wrapped by Load's error when the driver loads but reports no
// CUDA device.
var ErrNoDevice = errors.New("no CUDA device")
