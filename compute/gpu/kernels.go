package gpu

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The kernels are CUDA C, compiled at start by NVRTC for the device's
// architecture. kernels/common.h is the one place that knows about CUDA vs
// HIP differences (warp size, shuffles, half conversion).
//
//go:embed kernels/*.cu kernels/*.h
var kernelFS embed.FS

// kernelSources returns the programs (file name -> source) and the headers
// they may include.
func kernelSources() (programs, headers map[string]string, err error) {
	programs, headers = map[string]string{}, map[string]string{}
	entries, err := fs.ReadDir(kernelFS, "kernels")
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(kernelFS, "kernels/"+e.Name())
		if err != nil {
			return nil, nil, err
		}
		switch filepath.Ext(e.Name()) {
		case ".cu":
			programs[e.Name()] = string(data)
		case ".h":
			headers[e.Name()] = string(data)
		}
	}
	return programs, headers, nil
}

// compileOptions are the NVRTC options for an architecture ("sm_90") and
// warp size. lineInfo adds source lines for compute-sanitizer and profiler
// reports; it is opt-in (ROCMFORGE_KERNEL_LINEINFO=1) because NVRTC 11.8
// was seen to crash compiling quant.h with it.
func compileOptions(arch string, warp int, lineInfo bool) []string {
	opts := []string{
		"--gpu-architecture=" + arch,
		fmt.Sprintf("-DWARP_SIZE=%d", warp),
		"--std=c++17",
	}
	if lineInfo {
		opts = append(opts, "-lineinfo")
	}
	return opts
}

// kernelCacheDir is where compiled images are kept between runs.
func kernelCacheDir() string {
	if d := os.Getenv("ROCMFORGE_KERNEL_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "rocmforge", "kernels")
}

// compileAll compiles every program for arch, reusing images cached under
// cacheDir (keyed by sha256 of the source, the headers, the options and the
// NVRTC version). An empty cacheDir disables the cache. A compile error
// carries NVRTC's log with file and line.
func compileAll(nv rtcAPI, arch string, opts []string, cacheDir string) (map[string][]byte, error) {
	programs, headers, err := kernelSources()
	if err != nil {
		return nil, fmt.Errorf("gpu: reading embedded kernels: %w", err)
	}
	names := make([]string, 0, len(programs))
	for n := range programs {
		names = append(names, n)
	}
	sort.Strings(names)
	hnames := make([]string, 0, len(headers))
	for n := range headers {
		hnames = append(hnames, n)
	}
	sort.Strings(hnames)

	images := map[string][]byte{}
	type job struct{ name, cachePath string }
	var todo []job
	for _, name := range names {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00nvrtc %s\x00%s\x00", name, programs[name], nv.Version(), strings.Join(opts, " "))
		for _, hn := range hnames {
			fmt.Fprintf(h, "%s\x00%s\x00", hn, headers[hn])
		}
		key := hex.EncodeToString(h.Sum(nil))[:24]
		var cachePath string
		if cacheDir != "" {
			cachePath = filepath.Join(cacheDir, fmt.Sprintf("%s-%s-%s.cubin", strings.TrimSuffix(name, ".cu"), arch, key))
			if img, err := os.ReadFile(cachePath); err == nil && len(img) > 0 {
				images[name] = img
				continue
			}
		}
		todo = append(todo, job{name, cachePath})
	}
	// The programs compile independently (each its own NVRTC/hipRTC
	// program), so they compile at once: a first start on a fresh machine
	// waits for the largest file, not the sum (the cold start was ~75 s on
	// the H100 machine).
	imgs := make([][]byte, len(todo))
	errs := make([]error, len(todo))
	sem := make(chan struct{}, compileJobs())
	var wg sync.WaitGroup
	for i, j := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			imgs[i], _, errs[i] = nv.Compile(programs[j.name], j.name, headers, opts)
		})
	}
	wg.Wait()
	for i, j := range todo {
		if errs[i] != nil {
			return nil, fmt.Errorf("gpu: %w", errs[i])
		}
		images[j.name] = imgs[i]
		if j.cachePath != "" {
			writeCache(j.cachePath, imgs[i]) // best effort: a read-only cache only costs a recompile
		}
	}
	return images, nil
}

// compileJobs is how many kernel files compile at once: one per CPU, at
// most 8, or ROCMFORGE_KERNEL_JOBS when it is a number >= 1 (1: one after
// another).
func compileJobs() int {
	if v, err := strconv.Atoi(os.Getenv("ROCMFORGE_KERNEL_JOBS")); err == nil && v >= 1 {
		return v
	}
	return min(runtime.GOMAXPROCS(0), 8)
}

// writeCache writes a file atomically (temp file, rename), ignoring errors.
func writeCache(path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if os.Rename(f.Name(), path) != nil {
		os.Remove(f.Name())
	}
}
