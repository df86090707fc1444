package gpu

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
		img, _, err := nv.Compile(programs[name], name, headers, opts)
		if err != nil {
			return nil, fmt.Errorf("gpu: %w", err)
		}
		images[name] = img
		if cachePath != "" {
			writeCache(cachePath, img) // best effort: a read-only cache only costs a recompile
		}
	}
	return images, nil
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
