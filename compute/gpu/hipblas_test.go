package gpu

import (
	"testing"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/compute/gpu/hip"
)

// fakeHIPBLAS records the GemmEx it is given.
type fakeHIPBLAS struct {
	transA, transB bool
	m, n, k        int
	types          [3]hip.Elem
	ptrs           [4]uintptr
	stream         uintptr
}

func (f *fakeHIPBLAS) Path() string                 { return "fake" }
func (f *fakeHIPBLAS) API() string                  { return "v2" }
func (f *fakeHIPBLAS) Create() (uintptr, error)     { return 42, nil }
func (f *fakeHIPBLAS) Destroy(uintptr) error        { return nil }
func (f *fakeHIPBLAS) SetStream(h, s uintptr) error { f.stream = s; return nil }
func (f *fakeHIPBLAS) GemmEx(h uintptr, transA, transB bool, m, n, k int, alpha float32, a uintptr, aType hip.Elem, lda int,
	b uintptr, bType hip.Elem, ldb int, beta float32, c uintptr, cType hip.Elem, ldc int) error {
	f.transA, f.transB, f.m, f.n, f.k = transA, transB, m, n, k
	f.types = [3]hip.Elem{aType, bType, cType}
	f.ptrs = [4]uintptr{h, a, b, c}
	return nil
}

// TestHIPBLASLib: the large-batch path's cuBLAS-typed calls reach hipBLAS
// with the transposes and element types translated, and a type hipBLAS has
// no counterpart for is an error.
func TestHIPBLASLib(t *testing.T) {
	f := &fakeHIPBLAS{}
	var l blasLib = hipBLASLib{f}
	h, err := l.Create()
	if err != nil || h != 42 {
		t.Fatalf("Create = %v, %v", h, err)
	}
	if err := l.SetStream(h, cuda.Stream(7)); err != nil || f.stream != 7 {
		t.Fatalf("SetStream: %v, stream %d", err, f.stream)
	}
	if l.CanSetWorkspace() || l.SetWorkspace(h, 1, 1) == nil {
		t.Error("hipBLAS claims a workspace call")
	}
	err = l.GemmEx(h, cuda.OpT, cuda.OpN, 300, 70, 4096, 1, 0xa0, cuda.R16BF, 4096, 0xb0, cuda.R16BF, 4096, 0, 0xc0, cuda.R32F, 300, cuda.Compute32F)
	if err != nil {
		t.Fatal(err)
	}
	if !f.transA || f.transB || f.m != 300 || f.n != 70 || f.k != 4096 ||
		f.types != [3]hip.Elem{hip.ElemBF16, hip.ElemBF16, hip.ElemF32} || f.ptrs != [4]uintptr{42, 0xa0, 0xb0, 0xc0} {
		t.Errorf("hipBLAS got %+v", f)
	}
	if err := l.GemmEx(h, cuda.OpN, cuda.OpN, 1, 1, 1, 1, 0, cuda.DataType(99), 1, 0, cuda.R32F, 1, 0, 0, cuda.R32F, 1, cuda.Compute32F); err == nil {
		t.Error("an unknown data type: no error")
	}
}
