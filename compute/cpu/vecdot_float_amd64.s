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

// F16 arithmetic, shared by the batched and single-row loops so that a
// row's result does not depend on batching: per (weight row, activation
// row) pair and k-block of blk elements, two accumulators take alternate
// 8-element chunks (even chunks the first) by FMA in order; the block sum is
// their sum's lanes added as ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)); the
// block sums of a row are added left to right.

// HSUM4 leaves in X0 the lane sums of Y0..Y3 (that order of additions).
#define HSUM4 \
	VHADDPS      Y1, Y0, Y0; \
	VHADDPS      Y3, Y2, Y2; \
	VHADDPS      Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0

// func dotF16Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, xstride int, n int, acc bool)
// Batched F16 loop over one k-block: for weight rows r < rows (at w +
// r·stride) and the 4 float32 activation rows at x + i·xstride (i < 4), the
// block sum over n elements (a multiple of 8) is stored to dst[i·m + r], or
// with acc added to it. Each converted weight vector feeds four FMAs.
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
	TESTQ R10, R10
	JZ    f16b4done

f16b4row:
	MOVQ   R11, SI
	MOVQ   DI, R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   n+104(FP), CX
	SHRQ   $4, CX
	JZ     f16b4odd

f16b4loop:
	VCVTPH2PS   (SI), Y8
	VCVTPH2PS   16(SI), Y9
	VFMADD231PS (R8), Y8, Y0
	VFMADD231PS 32(R8), Y9, Y4
	VFMADD231PS (R8)(R9*1), Y8, Y1
	VFMADD231PS 32(R8)(R9*1), Y9, Y5
	VFMADD231PS (R8)(R9*2), Y8, Y2
	VFMADD231PS 32(R8)(R9*2), Y9, Y6
	VFMADD231PS (R8)(R14*1), Y8, Y3
	VFMADD231PS 32(R8)(R14*1), Y9, Y7
	ADDQ        $32, SI
	ADDQ        $64, R8
	DECQ        CX
	JNZ         f16b4loop

f16b4odd:
	TESTQ       $8, n+104(FP)
	JZ          f16b4sum
	VCVTPH2PS   (SI), Y8
	VFMADD231PS (R8), Y8, Y0
	VFMADD231PS (R8)(R9*1), Y8, Y1
	VFMADD231PS (R8)(R9*2), Y8, Y2
	VFMADD231PS (R8)(R14*1), Y8, Y3

f16b4sum:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	HSUM4
	MOVQ   DX, R8
	CMPB   acc+112(FP), $0
	JEQ    f16b4store
	VMOVSS    (R8), X12
	VINSERTPS $0x10, (R8)(R13*1), X12, X12
	VINSERTPS $0x20, (R8)(R13*2), X12, X12
	LEAQ      (R8)(R13*2), AX
	VINSERTPS $0x30, (AX)(R13*1), X12, X12
	VADDPS    X12, X0, X0

f16b4store:
	VMOVSS     X0, (R8)
	ADDQ       R13, R8
	VEXTRACTPS $1, X0, (R8)
	ADDQ       R13, R8
	VEXTRACTPS $2, X0, (R8)
	ADDQ       R13, R8
	VEXTRACTPS $3, X0, (R8)
	ADDQ       $4, DX
	ADDQ       R12, R11
	DECQ       R10
	JNZ        f16b4row

f16b4done:
	VZEROUPPER
	RET

// func dotF16Rows1(dst []float32, rows int, w []byte, stride int, x []byte, n int, blk int)
// dst[r] = w_r·x for weight rows r < rows and one float32 activation row,
// over n elements in k-blocks of blk (both multiples of 8), with the same
// arithmetic as dotF16Rows4 over the same blocks. A row is read front to
// back with the two accumulators as two FMA chains.
TEXT ·dotF16Rows1(SB), NOSPLIT, $0-104
	MOVQ  dst_base+0(FP), DX
	MOVQ  rows+24(FP), R10
	MOVQ  w_base+32(FP), R11
	MOVQ  stride+56(FP), R12
	MOVQ  x_base+64(FP), DI
	TESTQ R10, R10
	JZ    f16r1done

f16r1row:
	XORQ BX, BX // k0, elements
	MOVQ R11, SI
	MOVQ DI, R8

f16r1blk:
	MOVQ   n+88(FP), CX
	SUBQ   BX, CX
	CMPQ   CX, blk+96(FP)
	JBE    f16r1count
	MOVQ   blk+96(FP), CX

f16r1count:
	MOVQ   CX, R9 // elements in this block
	SHRQ   $4, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y4, Y4, Y4
	JZ     f16r1odd

f16r1loop:
	VCVTPH2PS   (SI), Y8
	VCVTPH2PS   16(SI), Y9
	VFMADD231PS (R8), Y8, Y0
	VFMADD231PS 32(R8), Y9, Y4
	ADDQ        $32, SI
	ADDQ        $64, R8
	DECQ        CX
	JNZ         f16r1loop

f16r1odd:
	TESTQ       $8, R9
	JZ          f16r1sum
	VCVTPH2PS   (SI), Y8
	VFMADD231PS (R8), Y8, Y0
	ADDQ        $16, SI
	ADDQ        $32, R8

f16r1sum:
	VADDPS       Y4, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	TESTQ        BX, BX
	JNZ          f16r1add
	VMOVAPS      X0, X13
	JMP          f16r1next

f16r1add:
	VADDSS X0, X13, X13

f16r1next:
	ADDQ R9, BX
	CMPQ BX, n+88(FP)
	JB   f16r1blk
	VMOVSS X13, (DX)
	ADDQ   $4, DX
	ADDQ   R12, R11
	DECQ   R10
	JNZ    f16r1row

f16r1done:
	VZEROUPPER
	RET
