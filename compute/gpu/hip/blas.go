package hip

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"
)

// blasNames are the hipBLAS sonames, in the order tried: hipBLAS 3 (ROCm 7),
// 2 (ROCm 6), 1 and 0 (ROCm 5).
var blasNames = []string{"libhipblas.so", "libhipblas.so.3", "libhipblas.so.2", "libhipblas.so.1", "libhipblas.so.0"}

// hipBLAS's enumerations (hipblas.h). Operations follow rocBLAS's numbers,
// not cuBLAS's.
const (
	blasOpN         = 111 // HIPBLAS_OP_N
	blasOpT         = 112 // HIPBLAS_OP_T
	blasGemmDefault = 160 // HIPBLAS_GEMM_DEFAULT

	// hipblasDatatype_t, the element and compute types of hipblasGemmEx
	// before hipBLAS 3 (and without HIPBLAS_V2).
	v1R16F = 150 // HIPBLAS_R_16F
	v1R32F = 151 // HIPBLAS_R_32F
	v1R16B = 168 // HIPBLAS_R_16B

	// hipDataType (the same numbers as CUDA's cudaDataType) and
	// hipblasComputeType_t, the types of the "v2" API: hipblasGemmEx_v2
	// in hipBLAS 2, hipblasGemmEx itself from hipBLAS 3 on.
	v2R32F       = 0  // HIP_R_32F
	v2R16F       = 2  // HIP_R_16F
	v2R16BF      = 14 // HIP_R_16BF
	v2Compute32F = 2  // HIPBLAS_COMPUTE_32F
)

// Elem is a GEMM operand's element type.
type Elem int

const (
	ElemF32 Elem = iota
	ElemF16
	ElemBF16
)

// blasAPI is the part of hipBLAS the backend calls, one Go function per
// entry point returning the raw hipblasStatus_t; bindBLAS fills it from the
// library, tests with Go fakes. GemmEx takes the wire values of whichever
// API the library has (BLAS.v2 says which).
type blasAPI struct {
	Create    func(h *uintptr) int32
	Destroy   func(h uintptr) int32
	SetStream func(h, s uintptr) int32
	GemmEx    func(h uintptr, opA, opB int32, m, n, k int32, alpha *float32, a uintptr, aType int32, lda int32,
		b uintptr, bType int32, ldb int32, beta *float32, c uintptr, cType int32, ldc int32, compute, algo int32) int32
	StatusToString func(code int32) string // optional: "" without hipblasStatusToString
}

// BLAS is a loaded hipBLAS.
//
// Status: never run on an AMD GPU; its tests check the symbol choice, the
// ABI detection and the values passed, against Go fakes.
type BLAS struct {
	path string
	api  *blasAPI
	// v2: GemmEx takes hipDataType and hipblasComputeType_t (hipBLAS 3, or
	// hipBLAS 2's hipblasGemmEx_v2); otherwise hipblasDatatype_t.
	v2 bool
}

// LoadBLAS opens hipBLAS from the directories LoadDriver searches, then
// through the system loader.
func LoadBLAS() (*BLAS, error) {
	f := defaultFinder()
	lib, path, err := f.openLib("hipBLAS (libhipblas.so)", blasNames)
	if err != nil {
		return nil, err
	}
	return bindBLAS(dlsym(lib), path, resolvedPath(path))
}

// resolvedPath follows symbolic links (libhipblas.so -> libhipblas.so.3.0.0)
// so that the soname's major version shows; p itself when it cannot.
func resolvedPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// sonameMajor is the major version in a path like libhipblas.so.3.0.0, or
// -1 when there is none.
func sonameMajor(p string) int {
	_, ver, ok := strings.Cut(filepath.Base(p), ".so.")
	if !ok {
		return -1
	}
	major, _, _ := strings.Cut(ver, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return -1
	}
	return n
}

// bindBLAS resolves the entry points and decides the GemmEx ABI: the _v2
// symbol where the library exports it (hipBLAS 2), else hipblasGemmEx,
// which takes the v2 types from hipBLAS 3 on (real is the library file,
// whose soname major is hipBLAS's major version).
func bindBLAS(lookup lookupFunc, path, real string) (*BLAS, error) {
	r := &resolver{lookup: lookup}
	create, destroy, setStream := r.need("hipblasCreate"), r.need("hipblasDestroy"), r.need("hipblasSetStream")
	gemm, v2 := r.optional("hipblasGemmEx_v2"), true
	if gemm == 0 {
		gemm = r.need("hipblasGemmEx")
		v2 = sonameMajor(real) >= 3
	}
	if err := r.err(path); err != nil {
		return nil, err
	}
	api := &blasAPI{
		Create:    func(h *uintptr) int32 { return call(create, uintptr(unsafe.Pointer(h))) },
		Destroy:   func(h uintptr) int32 { return call(destroy, h) },
		SetStream: func(h, s uintptr) int32 { return call(setStream, h, s) },
		GemmEx: func(h uintptr, opA, opB int32, m, n, k int32, alpha *float32, a uintptr, aType int32, lda int32,
			b uintptr, bType int32, ldb int32, beta *float32, c uintptr, cType int32, ldc int32, compute, algo int32) int32 {
			return call(gemm, h, uintptr(opA), uintptr(opB), uintptr(m), uintptr(n), uintptr(k),
				uintptr(unsafe.Pointer(alpha)), a, uintptr(aType), uintptr(lda), b, uintptr(bType), uintptr(ldb),
				uintptr(unsafe.Pointer(beta)), c, uintptr(cType), uintptr(ldc), uintptr(compute), uintptr(algo))
		},
	}
	if str := r.optional("hipblasStatusToString"); str != 0 {
		api.StatusToString = func(code int32) string { return goString(callPtr(str, uintptr(code))) }
	}
	return &BLAS{path: path, api: api, v2: v2}, nil
}

// Path is the file hipBLAS was loaded from.
func (b *BLAS) Path() string { return b.path }

// API says which GemmEx types the library takes: "v2" (hipDataType,
// hipblasComputeType_t) or "v1" (hipblasDatatype_t).
func (b *BLAS) API() string {
	if b.v2 {
		return "v2"
	}
	return "v1"
}

// BLASError is a failed hipBLAS call.
type BLASError struct {
	Func string
	Code int
	Name string
}

func (e *BLASError) Error() string { return fmt.Sprintf("%s: %s (%d)", e.Func, e.Name, e.Code) }

func (b *BLAS) check(fn string, code int32) error {
	if code == 0 {
		return nil
	}
	e := &BLASError{Func: fn, Code: int(code)}
	if b.api.StatusToString != nil {
		e.Name = b.api.StatusToString(code)
	}
	if e.Name == "" {
		e.Name = fmt.Sprintf("hipblasStatus_t(%d)", code)
	}
	return e
}

// Create makes a handle (on the calling thread's current device).
func (b *BLAS) Create() (uintptr, error) {
	var h uintptr
	err := b.check("hipblasCreate", b.api.Create(&h))
	return h, err
}

// Destroy releases a handle.
func (b *BLAS) Destroy(h uintptr) error { return b.check("hipblasDestroy", b.api.Destroy(h)) }

// SetStream makes the handle's calls run on stream s.
func (b *BLAS) SetStream(h, s uintptr) error {
	return b.check("hipblasSetStream", b.api.SetStream(h, s))
}

// wire is an element type's value in the library's GemmEx ABI.
func (b *BLAS) wire(e Elem) (int32, error) {
	switch {
	case e == ElemF32 && b.v2:
		return v2R32F, nil
	case e == ElemF16 && b.v2:
		return v2R16F, nil
	case e == ElemBF16 && b.v2:
		return v2R16BF, nil
	case e == ElemF32:
		return v1R32F, nil
	case e == ElemF16:
		return v1R16F, nil
	case e == ElemBF16:
		return v1R16B, nil
	}
	return 0, fmt.Errorf("hip: hipblasGemmEx: unknown element type %d", e)
}

// GemmEx is C = alpha·op(A)·op(B) + beta·C, column-major as in BLAS (C is
// m×n, op(A) m×k, op(B) k×n), with float accumulation; transA/transB select
// the transposes.
func (b *BLAS) GemmEx(h uintptr, transA, transB bool, m, n, k int, alpha float32,
	a uintptr, aType Elem, lda int, bp uintptr, bType Elem, ldb int,
	beta float32, c uintptr, cType Elem, ldc int) error {
	op := func(t bool) int32 {
		if t {
			return blasOpT
		}
		return blasOpN
	}
	at, err := b.wire(aType)
	if err != nil {
		return err
	}
	bt, err := b.wire(bType)
	if err != nil {
		return err
	}
	ct, err := b.wire(cType)
	if err != nil {
		return err
	}
	compute := int32(v1R32F)
	if b.v2 {
		compute = v2Compute32F
	}
	al, be := alpha, beta
	return b.check("hipblasGemmEx", b.api.GemmEx(h, op(transA), op(transB), int32(m), int32(n), int32(k), &al,
		a, at, int32(lda), bp, bt, int32(ldb), &be, c, ct, int32(ldc), compute, blasGemmDefault))
}
