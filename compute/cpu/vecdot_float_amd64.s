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
#define LOADBF16W(off, Y) VPMOVZXWD off(SI), Y; VPSLLD $16, Y, Y

// func dotF32Rows(dst []float32, w []byte, stride int, x []byte, n int)
TEXT ·dotF32Rows(SB), NOSPLIT, $0-88
	FLOATLOOP(4, 4, LOADF32W, LOADF32X)

// The BF16 loop reads activations already widened to float32 (exactly:
// they were rounded to bf16 first), so only the weights are converted.

// func dotBF16Rows(dst []float32, w []byte, stride int, x []byte, n int)
TEXT ·dotBF16Rows(SB), NOSPLIT, $0-88
	FLOATLOOP(2, 4, LOADBF16W, LOADF32X)

// LOADACC puts the 4 outputs at (DX)+off, (DX+R13)+off, … into lane 0 of
// Xa..Xd (the rest zeroed), so the final lane sums add to them.
#define LOADACC(Xa, Xb, Xc, Xd, off) \
	VMOVSS off(DX), Xa; \
	VMOVSS off(DX)(R13*1), Xb; \
	VMOVSS off(DX)(R13*2), Xc; \
	LEAQ   (DX)(R13*2), R8; \
	VMOVSS off(R8)(R13*1), Xd

// STORE4X stores the lane sums of Ya..Yd to (DX)+off, (DX+R13)+off,
// (DX+2·R13)+off, (DX+3·R13)+off; clobbers Ya, Yc, X1, R8.
#define STORE4X(Ya, Yb, Yc, Yd, Xa, off) \
	VHADDPS      Yb, Ya, Ya; \
	VHADDPS      Yd, Yc, Yc; \
	VHADDPS      Yc, Ya, Ya; \
	VEXTRACTF128 $1, Ya, X1; \
	VADDPS       X1, Xa, Xa; \
	MOVQ         DX, R8; \
	VMOVSS       Xa, off(R8); \
	ADDQ         R13, R8; \
	VEXTRACTPS   $1, Xa, off(R8); \
	ADDQ         R13, R8; \
	VEXTRACTPS   $2, Xa, off(R8); \
	ADDQ         R13, R8; \
	VEXTRACTPS   $3, Xa, off(R8)

// func dotF16Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, xstride int, n int, acc bool)
// Batched F16 loop: for weight rows r < rows (at w + r·stride) and the 4
// float32 activation rows at x + i·xstride (i < 4), dst[i·m + r] = w_r·x_i
// over n elements (a multiple of 8), or += with acc. Weight rows go in
// pairs, so every activation vector loaded feeds two FMAs and every
// converted weight vector four (8 accumulators).
TEXT ·dotF16Rows4(SB), NOSPLIT, $0-113
	MOVQ  dst_base+0(FP), DX
	MOVQ  m+24(FP), R13
	SHLQ  $2, R13
	MOVQ  rows+32(FP), R10
	MOVQ  w_base+40(FP), R11
	MOVQ  stride+64(FP), R12
	MOVQ  x_base+72(FP), DI
	MOVQ  xstride+96(FP), R9
	LEAQ  (R9)(R9*2), R14

f16p:
	CMPQ   R10, $2
	JB     f16single
	MOVQ   R11, SI
	LEAQ   (R11)(R12*1), BX
	XORQ   AX, AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	CMPB   acc+112(FP), $0
	JEQ    f16pzero
	LOADACC(X0, X1, X2, X3, 0)
	LOADACC(X4, X5, X6, X7, 4)

f16pzero:
	MOVQ   n+104(FP), CX
	SHRQ   $3, CX
	JZ     f16pstore

f16ploop:
	VCVTPH2PS   (SI), Y8
	VCVTPH2PS   (BX), Y9
	LEAQ        (DI)(AX*1), R8
	VMOVUPS     (R8), Y10
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y10, Y9, Y4
	VMOVUPS     (R8)(R9*1), Y11
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y11, Y9, Y5
	VMOVUPS     (R8)(R9*2), Y10
	VFMADD231PS Y10, Y8, Y2
	VFMADD231PS Y10, Y9, Y6
	VMOVUPS     (R8)(R14*1), Y11
	VFMADD231PS Y11, Y8, Y3
	VFMADD231PS Y11, Y9, Y7
	ADDQ        $16, SI
	ADDQ        $16, BX
	ADDQ        $32, AX
	DECQ        CX
	JNZ         f16ploop

f16pstore:
	STORE4X(Y0, Y1, Y2, Y3, X0, 0)
	STORE4X(Y4, Y5, Y6, Y7, X4, 4)
	ADDQ $8, DX
	LEAQ (R11)(R12*2), R11
	SUBQ $2, R10
	JMP  f16p

f16single:
	TESTQ R10, R10
	JZ    f16r4done

f16r4row:
	// One row left: the pair loop's arithmetic for one row, so a result
	// does not depend on how rows were split between calls.
	MOVQ   R11, SI
	XORQ   AX, AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPB   acc+112(FP), $0
	JEQ    f16r4zero
	LOADACC(X0, X1, X2, X3, 0)

f16r4zero:
	MOVQ   n+104(FP), CX
	SHRQ   $3, CX
	JZ     f16r4store

f16r4loop:
	VCVTPH2PS   (SI), Y8
	LEAQ        (DI)(AX*1), R8
	VMOVUPS     (R8), Y10
	VFMADD231PS Y10, Y8, Y0
	VMOVUPS     (R8)(R9*1), Y11
	VFMADD231PS Y11, Y8, Y1
	VMOVUPS     (R8)(R9*2), Y10
	VFMADD231PS Y10, Y8, Y2
	VMOVUPS     (R8)(R14*1), Y11
	VFMADD231PS Y11, Y8, Y3
	ADDQ        $16, SI
	ADDQ        $32, AX
	DECQ        CX
	JNZ         f16r4loop

f16r4store:
	STORE4X(Y0, Y1, Y2, Y3, X0, 0)

f16r4done:
	VZEROUPPER
	RET

// func dotF16Rows1(dst []float32, rows int, w []byte, stride int, x []byte, n int, acc bool)
// dst[r] = w_r·x (or += with acc) for weight rows r < rows and one float32
// activation row, over n elements (a multiple of 8), with exactly the
// arithmetic dotF16Rows4 does for each (row, activation) pair: one
// accumulator starting at 0 (or the previous value in lane 0), an FMA per 8
// elements in order, lane sums as STORE4X adds them. Four weight rows go
// at a time, so every activation vector loaded feeds four FMAs.
TEXT ·dotF16Rows1(SB), NOSPLIT, $0-97
	MOVQ dst_base+0(FP), DX
	MOVQ rows+24(FP), R10
	MOVQ w_base+32(FP), R11
	MOVQ stride+56(FP), R12
	MOVQ x_base+64(FP), DI
	MOVQ $4, R13
	LEAQ (R12)(R12*2), R14

f16q:
	CMPQ   R10, $4
	JB     f16one
	MOVQ   R11, SI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPB   acc+96(FP), $0
	JEQ    f16qzero
	VMOVSS (DX), X0
	VMOVSS 4(DX), X1
	VMOVSS 8(DX), X2
	VMOVSS 12(DX), X3

f16qzero:
	XORQ AX, AX
	MOVQ n+88(FP), CX
	SHRQ $3, CX
	JZ   f16qstore

f16qloop:
	VMOVUPS     (DI)(AX*4), Y8
	VCVTPH2PS   (SI), Y9
	VCVTPH2PS   (SI)(R12*1), Y10
	VCVTPH2PS   (SI)(R12*2), Y11
	VCVTPH2PS   (SI)(R14*1), Y12
	VFMADD231PS Y8, Y9, Y0
	VFMADD231PS Y8, Y10, Y1
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y8, Y12, Y3
	ADDQ        $16, SI
	ADDQ        $8, AX
	DECQ        CX
	JNZ         f16qloop

f16qstore:
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DX)
	ADDQ         $16, DX
	LEAQ         (R11)(R12*4), R11
	SUBQ         $4, R10
	JMP          f16q

f16one:
	TESTQ  R10, R10
	JZ     f16r1done
	MOVQ   R11, SI
	VXORPS Y0, Y0, Y0
	CMPB   acc+96(FP), $0
	JEQ    f16onezero
	VMOVSS (DX), X0

f16onezero:
	XORQ AX, AX
	MOVQ n+88(FP), CX
	SHRQ $3, CX
	JZ   f16onestore

f16oneloop:
	VMOVUPS     (DI)(AX*4), Y8
	VCVTPH2PS   (SI), Y9
	VFMADD231PS Y8, Y9, Y0
	ADDQ        $16, SI
	ADDQ        $8, AX
	DECQ        CX
	JNZ         f16oneloop

f16onestore:
	VHADDPS      Y0, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVSS       X0, (DX)
	ADDQ         $4, DX
	ADDQ         R12, R11
	DECQ         R10
	JMP          f16one

f16r1done:
	VZEROUPPER
	RET
