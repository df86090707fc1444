package hip

import (
	"errors"
	"strings"
	"testing"
)

// fakeLookup resolves the names in syms to made-up addresses.
func fakeLookup(syms ...string) lookupFunc {
	return func(name string) (uintptr, error) {
		for i, s := range syms {
			if s == name {
				return uintptr(0x1000 + i), nil
			}
		}
		return 0, errors.New("undefined symbol " + name)
	}
}

// TestBindBLASABI: hipBLAS 2's hipblasGemmEx_v2 is preferred; otherwise
// hipblasGemmEx takes the v2 types from soname major 3 on and the old
// hipblasDatatype_t before; a library without the entry points is refused
// with every missing name.
func TestBindBLASABI(t *testing.T) {
	base := []string{"hipblasCreate", "hipblasDestroy", "hipblasSetStream", "hipblasGemmEx"}
	for _, tc := range []struct {
		syms []string
		real string
		want string
	}{
		{append(base, "hipblasGemmEx_v2"), "/opt/rocm/lib/libhipblas.so.2.1.0", "v2"},
		{base, "/opt/rocm/lib/libhipblas.so.3.0.0", "v2"},
		{base, "/opt/rocm/lib/libhipblas.so.2.1.0", "v1"},
		{base, "/usr/lib/libhipblas.so.0.1", "v1"},
		{base, "/usr/lib/libhipblas.so", "v1"}, // no version to read: the old ABI
	} {
		b, err := bindBLAS(fakeLookup(tc.syms...), "libhipblas.so", tc.real)
		if err != nil {
			t.Fatalf("%s with %v: %v", tc.real, tc.syms, err)
		}
		if b.API() != tc.want {
			t.Errorf("%s with %d symbols: API %s, want %s", tc.real, len(tc.syms), b.API(), tc.want)
		}
	}
	_, err := bindBLAS(fakeLookup("hipblasCreate"), "libhipblas.so", "libhipblas.so.3")
	if err == nil || !strings.Contains(err.Error(), "hipblasDestroy, hipblasGemmEx, hipblasSetStream") {
		t.Errorf("a library lacking entry points: err = %v, want every missing name", err)
	}
}

func TestSonameMajor(t *testing.T) {
	for p, want := range map[string]int{
		"/opt/rocm-7.0.1/lib/libhipblas.so.3.0.70001": 3, "libhipblas.so.2": 2, "libhipblas.so": -1, "libhipblas.so.x": -1,
	} {
		if got := sonameMajor(p); got != want {
			t.Errorf("sonameMajor(%q) = %d, want %d", p, got, want)
		}
	}
}

// gemmCall is what a fake hipblasGemmEx saw.
type gemmCall struct {
	opA, opB, m, n, k, aType, lda, bType, ldb, cType, ldc, compute, algo int32
	alpha, beta                                                          float32
	a, b, c                                                              uintptr
}

func fakeBLAS(v2 bool, seen *gemmCall, status int32) *BLAS {
	return &BLAS{path: "fake", v2: v2, api: &blasAPI{
		GemmEx: func(h uintptr, opA, opB int32, m, n, k int32, alpha *float32, a uintptr, aType int32, lda int32,
			b uintptr, bType int32, ldb int32, beta *float32, c uintptr, cType int32, ldc int32, compute, algo int32) int32 {
			*seen = gemmCall{opA, opB, m, n, k, aType, lda, bType, ldb, cType, ldc, compute, algo, *alpha, *beta, a, b, c}
			return status
		},
		StatusToString: func(code int32) string { return "HIPBLAS_STATUS_INVALID_VALUE" },
	}}
}

// TestBLASGemmExWire: the values hipblasGemmEx receives in each ABI (the
// transposes as rocBLAS numbers them, element and compute types, the
// default algorithm), and a failed status as an error naming it.
func TestBLASGemmExWire(t *testing.T) {
	for _, tc := range []struct {
		v2                         bool
		wantA, wantB, wantC, wantK int32
	}{
		{true, 2, 14, 0, 2},         // HIP_R_16F, HIP_R_16BF, HIP_R_32F, HIPBLAS_COMPUTE_32F
		{false, 150, 168, 151, 151}, // HIPBLAS_R_16F, HIPBLAS_R_16B, HIPBLAS_R_32F, compute HIPBLAS_R_32F
	} {
		var seen gemmCall
		b := fakeBLAS(tc.v2, &seen, 0)
		if err := b.GemmEx(7, true, false, 300, 9, 4096, 1, 0xa0, ElemF16, 4096, 0xb0, ElemBF16, 4096, 0, 0xc0, ElemF32, 300); err != nil {
			t.Fatal(err)
		}
		want := gemmCall{112, 111, 300, 9, 4096, tc.wantA, 4096, tc.wantB, 4096, tc.wantC, 300, tc.wantK, 160, 1, 0, 0xa0, 0xb0, 0xc0}
		if seen != want {
			t.Errorf("%s: hipblasGemmEx got %+v, want %+v", b.API(), seen, want)
		}
	}
	var seen gemmCall
	err := fakeBLAS(true, &seen, 3).GemmEx(1, false, false, 1, 1, 1, 1, 0, ElemF32, 1, 0, ElemF32, 1, 0, 0, ElemF32, 1)
	var be *BLASError
	if !errors.As(err, &be) || be.Code != 3 || be.Name != "HIPBLAS_STATUS_INVALID_VALUE" || be.Func != "hipblasGemmEx" {
		t.Errorf("a failing call: err = %v, want a BLASError naming hipblasGemmEx and the status", err)
	}
	if err := fakeBLAS(true, &seen, 0).GemmEx(1, false, false, 1, 1, 1, 1, 0, Elem(9), 1, 0, ElemF32, 1, 0, 0, ElemF32, 1); err == nil {
		t.Error("an unknown element type: no error")
	}
}

// TestLoadBLASMissing: without hipBLAS (as on machines without ROCm) the
// load is an error, not a crash.
func TestLoadBLASMissing(t *testing.T) {
	b, err := LoadBLAS()
	if err == nil {
		t.Logf("hipBLAS found at %s (%s API); nothing to check", b.Path(), b.API())
		return
	}
	if !strings.Contains(err.Error(), "hipBLAS") {
		t.Errorf("error %q does not name hipBLAS", err)
	}
}
