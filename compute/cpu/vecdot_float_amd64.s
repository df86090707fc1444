//go:build amd64 && !purego

#include "textflag.h"

// Float row loops: n (a multiple of 8) elements per row, four accumulators
// over 32 elements, then 8 at a time. LOADW/LOADX widen 8 elements at
// off(SI) / off(DI) to 8 floats; ES and XS are the weight and activation
// element sizes.
#define FLOATLOOP(ES, XS, LOADW, LOADX) \
	MOVQ  dst_base+0(FP), DX; \
	MOVQ  dst_len+8(FP), R10; \
	MOVQ  w_base+24(FP), R11; \
	MOVQ  stride+48(FP), R12; \
	MOVQ  n+80(FP), R13; \
	TESTQ R10, R10; \
	JZ    done; \
row: \
	MOVQ   R11, SI; \
	MOVQ   x_base+56(FP), DI; \
	MOVQ   R13, CX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	CMPQ   CX, $32; \
	JB     tail; \
loop: \
	LOADW(0, Y4); \
	LOADX(0, Y5); \
	VFMADD231PS Y5, Y4, Y0; \
	LOADW(8*ES, Y6); \
	LOADX(8*XS, Y7); \
	VFMADD231PS Y7, Y6, Y1; \
	LOADW(16*ES, Y8); \
	LOADX(16*XS, Y9); \
	VFMADD231PS Y9, Y8, Y2; \
	LOADW(24*ES, Y10); \
	LOADX(24*XS, Y11); \
	VFMADD231PS Y11, Y10, Y3; \
	ADDQ $(32*ES), SI; \
	ADDQ $(32*XS), DI; \
	SUBQ $32, CX; \
	CMPQ CX, $32; \
	JAE  loop; \
tail: \
	CMPQ CX, $8; \
	JB   sum; \
	LOADW(0, Y4); \
	LOADX(0, Y5); \
	VFMADD231PS Y5, Y4, Y0; \
	ADDQ $(8*ES), SI; \
	ADDQ $(8*XS), DI; \
	SUBQ $8, CX; \
	JMP  tail; \
sum: \
	VADDPS       Y1, Y0, Y0; \
	VADDPS       Y3, Y2, Y2; \
	VADDPS       Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VMOVSS       X0, (DX); \
	ADDQ         $4, DX; \
	ADDQ         R12, R11; \
	DECQ         R10; \
	JNZ          row; \
done: \
	VZEROUPPER; \
	RET

#define LOADF32W(off, Y) VMOVUPS off(SI), Y
#define LOADF32X(off, Y) VMOVUPS off(DI), Y
#define LOADF16W(off, Y) VCVTPH2PS off(SI), Y
#define LOADBF16W(off, Y) VPMOVZXWD off(SI), Y; VPSLLD $16, Y, Y

// func dotF32Rows(dst []float32, w []byte, stride int, x []byte, n int)
TEXT ·dotF32Rows(SB), NOSPLIT, $0-88
	FLOATLOOP(4, 4, LOADF32W, LOADF32X)

// The F16 and BF16 loops read activations already widened to float32
// (exact: they were rounded to f16/bf16 first), so only the weights are
// converted in the loop.

// func dotF16Rows(dst []float32, w []byte, stride int, x []byte, n int)
TEXT ·dotF16Rows(SB), NOSPLIT, $0-88
	FLOATLOOP(2, 4, LOADF16W, LOADF32X)

// func dotBF16Rows(dst []float32, w []byte, stride int, x []byte, n int)
TEXT ·dotBF16Rows(SB), NOSPLIT, $0-88
	FLOATLOOP(2, 4, LOADBF16W, LOADF32X)

// func dotF16Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, xstride int, n int)
// Batched F16 loop: for weight rows r < rows (at w + r·stride) and the 4
// float32 activation rows at x + i·xstride (i < 4), dst[i·m + r] = w_r·x_i
// over n elements (a multiple of 8). Each weight vector is converted once
// and used for the 4 activation rows.
TEXT ·dotF16Rows4(SB), NOSPLIT, $0-112
	MOVQ  dst_base+0(FP), DX
	MOVQ  m+24(FP), R13
	SHLQ  $2, R13
	MOVQ  rows+32(FP), R10
	MOVQ  w_base+40(FP), R11
	MOVQ  stride+64(FP), R12
	MOVQ  x_base+72(FP), DI
	MOVQ  xstride+96(FP), R9
	LEAQ  (R9)(R9*2), R14
	TESTQ R10, R10
	JZ    f16r4done

f16r4row:
	MOVQ   R11, SI
	XORQ   AX, AX
	XORQ   BX, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   n+104(FP), CX
	CMPQ   CX, $16
	JB     f16r4tail

f16r4loop:
	VCVTPH2PS   (SI)(BX*1), Y8
	VCVTPH2PS   16(SI)(BX*1), Y9
	LEAQ        (DI)(AX*1), R8
	VFMADD231PS (R8), Y8, Y0
	VFMADD231PS 32(R8), Y9, Y4
	VFMADD231PS (R8)(R9*1), Y8, Y1
	VFMADD231PS 32(R8)(R9*1), Y9, Y5
	VFMADD231PS (R8)(R9*2), Y8, Y2
	VFMADD231PS 32(R8)(R9*2), Y9, Y6
	VFMADD231PS (R8)(R14*1), Y8, Y3
	VFMADD231PS 32(R8)(R14*1), Y9, Y7
	ADDQ        $64, AX
	ADDQ        $32, BX
	SUBQ        $16, CX
	CMPQ        CX, $16
	JAE         f16r4loop

f16r4tail:
	CMPQ        CX, $8
	JB          f16r4sum
	VCVTPH2PS   (SI)(BX*1), Y8
	LEAQ        (DI)(AX*1), R8
	VFMADD231PS (R8), Y8, Y0
	VFMADD231PS (R8)(R9*1), Y8, Y1
	VFMADD231PS (R8)(R9*2), Y8, Y2
	VFMADD231PS (R8)(R14*1), Y8, Y3

f16r4sum:
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	// Transpose-add: X0 lanes ← the sums of Y0..Y3.
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	MOVQ         DX, R8
	VMOVSS       X0, (R8)
	ADDQ         R13, R8
	VEXTRACTPS   $1, X0, (R8)
	ADDQ         R13, R8
	VEXTRACTPS   $2, X0, (R8)
	ADDQ         R13, R8
	VEXTRACTPS   $3, X0, (R8)
	ADDQ         $4, DX
	ADDQ         R12, R11
	DECQ         R10
	JNZ          f16r4row

f16r4done:
	VZEROUPPER
	RET
