package cpu

import (
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestNew checks the constructor's choices: thread count, the name, and
// ROCMFORGE_NOASM=1 turning the assembly off.
func TestNew(t *testing.T) {
	b := New(3)
	defer b.Close()
	if b.Threads() != 3 || b.Name() != "cpu" {
		t.Errorf("New(3): %d threads, name %q; want 3, \"cpu\"", b.Threads(), b.Name())
	}
	if got := b.Asm(); got != asmSupported() {
		t.Errorf("Asm() = %v on a CPU where assembly support is %v", got, asmSupported())
	}
	d := New(0)
	defer d.Close()
	if d.Threads() < 1 {
		t.Errorf("New(0): %d threads", d.Threads())
	}
	t.Setenv("ROCMFORGE_NOASM", "1")
	g := New(1)
	defer g.Close()
	if g.Asm() {
		t.Error("ROCMFORGE_NOASM=1 but the assembly kernels are in use")
	}
	for typ, kn := range g.kernels {
		if kn.asm != "" || kn.batch != nil {
			t.Errorf("ROCMFORGE_NOASM=1 but %s uses %s", typ, kn.asm)
		}
	}
}

// TestMatMulEdges covers empty shapes, a closed backend and a bad shape.
func TestMatMulEdges(t *testing.T) {
	ref := compute.NewReference()
	b := New(2)
	x := newF32(t, ref, nil, 2, 0)
	w, err := ref.NewTensor("w", ggml.Q8_0, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	dst := newF32(t, ref, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err := b.MatMul(dst, x, w); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst.F32 {
		if v != 0 {
			t.Errorf("k = 0: dst[%d] = %g, want 0", i, v)
		}
	}
	// After Close the ops still work, on the calling goroutine.
	b.Close()
	rng := newRNG(t)
	checkMatMul(t, b, ref, rng, ggml.Q4_0, 9, 100, 512)
	bad := newF32(t, ref, nil, 2, 4)
	w2, _ := ref.NewTensor("w", ggml.Q8_0, 3, 32)
	if err := b.MatMul(bad, newF32(t, ref, nil, 2, 32), w2); err == nil {
		t.Error("MatMul accepted dst [2 4] for w [3 32]")
	}
}
