package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cublasVersions are the cuBLAS major versions tried, newest first.
var cublasVersions = []string{"13", "12", "11"}

// BLASHandle is a cublasHandle_t.
type BLASHandle uintptr

// BLASOp is a cublasOperation_t.
type BLASOp int

// Operations on a GEMM operand.
const (
	OpN BLASOp = 0 // as stored (column-major)
	OpT BLASOp = 1 // transposed
)

// DataType is a cudaDataType_t (library_types.h).
type DataType int

// Element types the backend hands to cuBLAS.
const (
	R32F  DataType = 0  // CUDA_R_32F
	R16F  DataType = 2  // CUDA_R_16F
	R16BF DataType = 14 // CUDA_R_16BF
)

// ComputeType is a cublasComputeType_t.
type ComputeType int

// Compute types: float accumulation; the pedantic one never uses TF32 or
// other reduced-precision shortcuts, whatever NVIDIA_TF32_OVERRIDE says.
const (
	Compute32F         ComputeType = 68 // CUBLAS_COMPUTE_32F
	Compute32FPedantic ComputeType = 69 // CUBLAS_COMPUTE_32F_PEDANTIC
)

// gemmDefault is CUBLAS_GEMM_DEFAULT (cuBLAS's own heuristic).
const gemmDefault = -1

// CUBLAS is the loaded cuBLAS library.
type CUBLAS struct {
	path string

	create, destroy, setStream, setWorkspace, gemmEx, getProperty, statusName uintptr
}

// LoadCUBLAS opens the newest cuBLAS found (libcublas.so.13, .12, .11; see
// searchDirs for where). Its companion libcublasLt from the same directory
// is opened first, so a copy outside the loader's path (a Python wheel)
// finds it.
func LoadCUBLAS() (*CUBLAS, error) { return loadCUBLAS(searchDirs(), true) }

// loadCUBLAS opens cuBLAS from dirs, then (with loader) by soname.
func loadCUBLAS(dirs []string, loader bool) (*CUBLAS, error) {
	var tried []string
	var lib uintptr
	var path string
	open := func(p string) bool {
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
			return false
		}
		lib, path = h, p
		return true
	}
search:
	for _, v := range cublasVersions {
		for _, d := range dirs {
			p := filepath.Join(d, "libcublas.so."+v)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if lt := filepath.Join(d, "libcublasLt.so."+v); fileExists(lt) {
				// Failure here shows up as libcublas failing to open.
				purego.Dlopen(lt, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			}
			if open(p) {
				break search
			}
		}
	}
	if lib == 0 && loader {
		for _, v := range cublasVersions {
			if open("libcublas.so." + v) {
				break
			}
		}
	}
	if lib == 0 {
		return nil, fmt.Errorf("cuda: cuBLAS (libcublas.so.13/.12/.11) not found; tried %s", strings.Join(tried, "; "))
	}
	c := &CUBLAS{path: path}
	syms := map[string]*uintptr{
		"cublasCreate_v2": &c.create, "cublasDestroy_v2": &c.destroy, "cublasSetStream_v2": &c.setStream,
		"cublasGemmEx": &c.gemmEx, "cublasGetProperty": &c.getProperty,
	}
	if err := symbols(lib, path, syms); err != nil {
		return nil, err
	}
	// Optional entry points (cuBLAS 11.4 and later).
	if a, err := purego.Dlsym(lib, "cublasSetWorkspace_v2"); err == nil {
		c.setWorkspace = a
	}
	if a, err := purego.Dlsym(lib, "cublasGetStatusName"); err == nil {
		c.statusName = a
	}
	return c, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Path is the file cuBLAS was loaded from.
func (c *CUBLAS) Path() string { return c.path }

// BLASError is a failed cuBLAS call: the function and its cublasStatus_t.
type BLASError struct {
	Func string
	Code int
	Name string // e.g. CUBLAS_STATUS_NOT_SUPPORTED
}

func (e *BLASError) Error() string { return fmt.Sprintf("%s: %s (%d)", e.Func, e.Name, e.Code) }

// blasStatusNames are the cublasStatus_t values, for libraries without
// cublasGetStatusName.
var blasStatusNames = map[int]string{
	1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
	8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

//go:uintptrescapes
func (c *CUBLAS) call(fn uintptr, args ...uintptr) int {
	r, _, _ := purego.SyscallN(fn, args...)
	return int(int32(r))
}

func (c *CUBLAS) check(fn string, code int) error {
	if code == 0 {
		return nil
	}
	e := &BLASError{Func: fn, Code: code, Name: blasStatusNames[code]}
	if c.statusName != 0 {
		r, _, _ := purego.SyscallN(c.statusName, uintptr(code))
		if s := goString(r); s != "" {
			e.Name = s
		}
	}
	if e.Name == "" {
		e.Name = fmt.Sprintf("cublasStatus_t(%d)", code)
	}
	return e
}

// Version is cuBLAS's "major.minor.patch" (cublasGetProperty; needs no
// handle).
func (c *CUBLAS) Version() (string, error) {
	var v [3]int32
	for i := range v { // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
		if err := c.check("cublasGetProperty", c.call(c.getProperty, uintptr(i), uintptr(unsafe.Pointer(&v[i])))); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]), nil
}

// Create makes a handle on the calling thread's current context.
func (c *CUBLAS) Create() (BLASHandle, error) {
	var h uintptr
	err := c.check("cublasCreate", c.call(c.create, uintptr(unsafe.Pointer(&h))))
	return BLASHandle(h), err
}

// Destroy releases a handle.
func (c *CUBLAS) Destroy(h BLASHandle) error {
	return c.check("cublasDestroy", c.call(c.destroy, uintptr(h)))
}

// SetStream makes h queue its work on s.
func (c *CUBLAS) SetStream(h BLASHandle, s Stream) error {
	return c.check("cublasSetStream", c.call(c.setStream, uintptr(h), uintptr(s)))
}

// CanSetWorkspace reports whether SetWorkspace is available.
func (c *CUBLAS) CanSetWorkspace() bool { return c.setWorkspace != 0 }

// SetWorkspace gives h a caller-owned workspace, so that it allocates
// nothing itself (which stream capture requires).
func (c *CUBLAS) SetWorkspace(h BLASHandle, p DevicePtr, bytes int64) error {
	if c.setWorkspace == 0 {
		return fmt.Errorf("cuda: %s lacks cublasSetWorkspace_v2", c.path)
	}
	return c.check("cublasSetWorkspace", c.call(c.setWorkspace, uintptr(h), uintptr(p), uintptr(bytes)))
}

// GemmEx is C = alpha·op(A)·op(B) + beta·C in cuBLAS's column-major
// convention (C is m×n with leading dimension ldc, op(A) m×k, op(B) k×n),
// with alpha and beta as float (host pointers), which the float compute
// types require.
func (c *CUBLAS) GemmEx(h BLASHandle, opA, opB BLASOp, m, n, k int, alpha float32,
	a DevicePtr, aType DataType, lda int, b DevicePtr, bType DataType, ldb int,
	beta float32, cp DevicePtr, cType DataType, ldc int, compute ComputeType) error {
	al, be := alpha, beta
	algo := int32(gemmDefault)
	return c.check("cublasGemmEx", c.call(c.gemmEx, uintptr(h), uintptr(opA), uintptr(opB),
		uintptr(m), uintptr(n), uintptr(k), uintptr(unsafe.Pointer(&al)),
		uintptr(a), uintptr(aType), uintptr(lda), uintptr(b), uintptr(bType), uintptr(ldb),
		uintptr(unsafe.Pointer(&be)), uintptr(cp), uintptr(cType), uintptr(ldc),
		uintptr(compute), uintptr(uint32(algo))))
}
