package gpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// TestKernelsCompile compiles every embedded kernel for sm_90 with NVRTC. It
// needs only NVRTC, not a GPU, so it also runs on machines that have the
// compiler library but no device.
func TestKernelsCompile(t *testing.T) {
	nv, err := cuda.LoadNVRTC()
	if err != nil {
		t.Skipf("no NVRTC, kernels not compiled: %v", err)
	}
	t.Logf("NVRTC %s from %s", nv.Version(), nv.Path())
	images, err := compileAll(nv, "sm_90", compileOptions("sm_90", 32, false), "")
	if err != nil {
		t.Fatal(err)
	}
	progs, _, _ := kernelSources()
	if len(images) != len(progs) {
		t.Fatalf("%d images for %d programs", len(images), len(progs))
	}
	for name, img := range images {
		if len(img) == 0 {
			t.Errorf("%s: empty image", name)
		}
	}
}

// TestCompileErrorShowsLog checks that a broken kernel's error carries
// NVRTC's log with the file name and line.
func TestCompileErrorShowsLog(t *testing.T) {
	nv, err := cuda.LoadNVRTC()
	if err != nil {
		t.Skipf("no NVRTC: %v", err)
	}
	src := "#include \"common.h\"\nextern \"C\" __global__ void k(float* x) {\n  x[0] = undefined_name;\n}\n"
	_, _, err = nv.Compile(src, "broken.cu", map[string]string{"common.h": "#define WARP_SIZE 32\n"}, compileOptions("sm_90", 32, false))
	var ce *cuda.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *cuda.CompileError, got %v", err)
	}
	if !strings.Contains(ce.Error(), "broken.cu(3)") || !strings.Contains(ce.Error(), "undefined_name") {
		t.Errorf("error does not name the file, line and identifier:\n%v", err)
	}
}
