package gpu

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/compute/gpu/hip"
)

// hipBLASAPI is what hipBLASLib needs of package hip's BLAS (a fake in
// tests).
type hipBLASAPI interface {
	Path() string
	API() string
	Create() (uintptr, error)
	Destroy(h uintptr) error
	SetStream(h, s uintptr) error
	GemmEx(h uintptr, transA, transB bool, m, n, k int, alpha float32, a uintptr, aType hip.Elem, lda int,
		b uintptr, bType hip.Elem, ldb int, beta float32, c uintptr, cType hip.Elem, ldc int) error
}

// hipBLASLib is hipBLAS as the large-batch path's blasLib: cuBLAS's
// operation and data-type values translated to package hip's, the compute
// type always float32 accumulation (hipBLAS's v1 API has no pedantic one),
// no workspace call (rocBLAS manages its own). Never run on an AMD GPU.
type hipBLASLib struct{ b hipBLASAPI }

func loadHIPBLAS() (blasLib, error) {
	b, err := hip.LoadBLAS()
	if err != nil {
		return nil, err
	}
	return hipBLASLib{b}, nil
}

func (l hipBLASLib) Path() string { return l.b.Path() }

func (l hipBLASLib) Version() (string, error) { return l.b.API() + " API", nil }

func (l hipBLASLib) Create() (cuda.BLASHandle, error) {
	h, err := l.b.Create()
	return cuda.BLASHandle(h), err
}

func (l hipBLASLib) Destroy(h cuda.BLASHandle) error { return l.b.Destroy(uintptr(h)) }

func (l hipBLASLib) SetStream(h cuda.BLASHandle, s cuda.Stream) error {
	return l.b.SetStream(uintptr(h), uintptr(s))
}

func (l hipBLASLib) CanSetWorkspace() bool { return false }

func (l hipBLASLib) SetWorkspace(cuda.BLASHandle, cuda.DevicePtr, int64) error {
	return fmt.Errorf("hip: hipBLAS takes no workspace from the caller")
}

// hipElem is the hip element type of a cuBLAS data type.
func hipElem(t cuda.DataType) (hip.Elem, error) {
	switch t {
	case cuda.R32F:
		return hip.ElemF32, nil
	case cuda.R16F:
		return hip.ElemF16, nil
	case cuda.R16BF:
		return hip.ElemBF16, nil
	}
	return 0, fmt.Errorf("hip: hipBLAS GEMM: no element type for cudaDataType %d", t)
}

func (l hipBLASLib) GemmEx(h cuda.BLASHandle, opA, opB cuda.BLASOp, m, n, k int, alpha float32,
	a cuda.DevicePtr, aType cuda.DataType, lda int, b cuda.DevicePtr, bType cuda.DataType, ldb int,
	beta float32, c cuda.DevicePtr, cType cuda.DataType, ldc int, _ cuda.ComputeType) error {
	var ts [3]hip.Elem
	for i, t := range [3]cuda.DataType{aType, bType, cType} {
		e, err := hipElem(t)
		if err != nil {
			return err
		}
		ts[i] = e
	}
	return l.b.GemmEx(uintptr(h), opA == cuda.OpT, opB == cuda.OpT, m, n, k, alpha, uintptr(a), ts[0], lda,
		uintptr(b), ts[1], ldb, beta, uintptr(c), ts[2], ldc)
}
