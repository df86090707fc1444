//go:build amd64 && !purego

#include "textflag.h"

// AVX2 activation quantizers, the same operation sequence as ggml's AVX2
// quantize_row_q8_0/q8_1: amax by VMAXPS, d = amax/127 rounded to f16 by
// VCVTPS2PH, x·(127/amax) rounded by VCVTPS2DQ (the default MXCSR mode is
// round to nearest even), packed with signed saturation. The results are
// byte-identical to quantizeQ8_0 / quantizeQ8_1.

// Dword order that undoes the lane interleaving of VPACKSSDW + VPACKSSWB.
DATA packperm<>+0(SB)/4, $0
DATA packperm<>+4(SB)/4, $4
DATA packperm<>+8(SB)/4, $1
DATA packperm<>+12(SB)/4, $5
DATA packperm<>+16(SB)/4, $2
DATA packperm<>+20(SB)/4, $6
DATA packperm<>+24(SB)/4, $3
DATA packperm<>+28(SB)/4, $7
GLOBL packperm<>(SB), RODATA|NOPTR, $32

// Q8BLOCK quantizes the 32 floats at (SI): X4 = d (f32), X6 low word = d as
// f16, Y0..Y3 = the 32 quants as int32, Y0 (after packing) the 32 bytes.
// Needs Y15 = abs mask, X14 = 127.0, Y12 = packperm.
#define Q8BLOCK \
	VMOVUPS      (SI), Y0; \
	VMOVUPS      32(SI), Y1; \
	VMOVUPS      64(SI), Y2; \
	VMOVUPS      96(SI), Y3; \
	VANDPS       Y15, Y0, Y4; \
	VANDPS       Y15, Y1, Y5; \
	VMAXPS       Y5, Y4, Y4; \
	VANDPS       Y15, Y2, Y5; \
	VMAXPS       Y5, Y4, Y4; \
	VANDPS       Y15, Y3, Y5; \
	VMAXPS       Y5, Y4, Y4; \
	VEXTRACTF128 $1, Y4, X5; \
	VMAXPS       X5, X4, X4; \
	VMOVHLPS     X4, X4, X5; \
	VMAXPS       X5, X4, X4; \
	VMOVSHDUP    X4, X5; \
	VMAXSS       X5, X4, X4; \
	VDIVSS       X14, X4, X7; \
	VCVTPS2PH    $0, X7, X6; \
	VXORPS       X8, X8, X8; \
	VCMPSS       $4, X8, X4, X8; \
	VDIVSS       X4, X14, X9; \
	VANDPS       X8, X9, X9; \
	VMOVAPS      X7, X4; \
	VBROADCASTSS X9, Y9; \
	VMULPS       Y9, Y0, Y0; \
	VMULPS       Y9, Y1, Y1; \
	VMULPS       Y9, Y2, Y2; \
	VMULPS       Y9, Y3, Y3; \
	VCVTPS2DQ    Y0, Y0; \
	VCVTPS2DQ    Y1, Y1; \
	VCVTPS2DQ    Y2, Y2; \
	VCVTPS2DQ    Y3, Y3

// Q8PACK packs Y0..Y3 (int32) into the 32 bytes of Y0, in element order.
#define Q8PACK \
	VPACKSSDW Y1, Y0, Y0; \
	VPACKSSDW Y3, Y2, Y2; \
	VPACKSSWB Y2, Y0, Y0; \
	VPERMD    Y0, Y12, Y0

// Q8SUM leaves Σ of the 32 int32 quants in Y0..Y3 in AX.
#define Q8SUM \
	VPADDD       Y1, Y0, Y10; \
	VPADDD       Y3, Y2, Y11; \
	VPADDD       Y11, Y10, Y10; \
	VEXTRACTI128 $1, Y10, X11; \
	VPADDD       X11, X10, X10; \
	VPHADDD      X10, X10, X10; \
	VPHADDD      X10, X10, X10; \
	VMOVD        X10, AX

// QSETUP loads the constants: Y15 abs mask, X14 127.0, Y12 packperm.
#define QSETUP \
	MOVL         $0x7fffffff, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15; \
	MOVL         $0x42fe0000, AX; \
	VMOVD        AX, X14; \
	VMOVDQU      packperm<>(SB), Y12

// func quantizeQ8_0AVX2(dst []byte, sums []int32, src []float32, nb int)
TEXT ·quantizeQ8_0AVX2(SB), NOSPLIT, $0-80
	MOVQ  dst_base+0(FP), DI
	MOVQ  sums_base+24(FP), DX
	MOVQ  src_base+48(FP), SI
	MOVQ  nb+72(FP), CX
	QSETUP
	TESTQ CX, CX
	JZ    q80done

q80loop:
	Q8BLOCK
	VPEXTRW $0, X6, AX
	MOVW    AX, (DI)
	Q8SUM
	MOVL    AX, (DX)
	Q8PACK
	VMOVDQU Y0, 2(DI)
	ADDQ    $128, SI
	ADDQ    $34, DI
	ADDQ    $4, DX
	DECQ    CX
	JNZ     q80loop

q80done:
	VZEROUPPER
	RET

// func quantizeQ8_1AVX2(dst []byte, src []float32, nb int)
TEXT ·quantizeQ8_1AVX2(SB), NOSPLIT, $0-56
	MOVQ  dst_base+0(FP), DI
	MOVQ  src_base+24(FP), SI
	MOVQ  nb+48(FP), CX
	QSETUP
	TESTQ CX, CX
	JZ    q81done

q81loop:
	Q8BLOCK
	VPEXTRW   $0, X6, AX
	MOVW      AX, (DI)
	Q8SUM
	VCVTSI2SSL AX, X10, X10
	VMULSS    X4, X10, X10
	VCVTPS2PH $0, X10, X10
	VPEXTRW   $0, X10, AX
	MOVW      AX, 2(DI)
	Q8PACK
	VMOVDQU   Y0, 4(DI)
	ADDQ      $128, SI
	ADDQ      $36, DI
	DECQ      CX
	JNZ       q81loop

q81done:
	VZEROUPPER
	RET

// func roundF16AVX2(q []byte, wide []float32, src []float32, n int)
// rounds n (a multiple of 8) floats to f16 (nearest even) into q and
// writes their exact float32 values to wide.
TEXT ·roundF16AVX2(SB), NOSPLIT, $0-80
	MOVQ  q_base+0(FP), DI
	MOVQ  wide_base+24(FP), DX
	MOVQ  src_base+48(FP), SI
	MOVQ  n+72(FP), CX
	SHRQ  $3, CX
	TESTQ CX, CX
	JZ    f16done

f16loop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VMOVDQU   X1, (DI)
	VCVTPH2PS X1, Y2
	VMOVUPS   Y2, (DX)
	ADDQ      $32, SI
	ADDQ      $16, DI
	ADDQ      $32, DX
	DECQ      CX
	JNZ       f16loop

f16done:
	VZEROUPPER
	RET
