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

// Q8PACK packs Y0..Y3 (int32) into the 32 bytes of Y0, in element order;
// P holds packperm.
#define Q8PACK(P) \
	VPACKSSDW Y1, Y0, Y0; \
	VPACKSSDW Y3, Y2, Y2; \
	VPACKSSWB Y2, Y0, Y0; \
	VPERMD    Y0, P, Y0

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
	Q8PACK(Y12)
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
	Q8PACK(Y12)
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

// REDUCE8B leaves in Y4 lane i the sum of the 8 int32 lanes of Y(4+i).
#define REDUCE8B \
	VPHADDD    Y5, Y4, Y4; \
	VPHADDD    Y7, Y6, Y6; \
	VPHADDD    Y9, Y8, Y8; \
	VPHADDD    Y11, Y10, Y10; \
	VPHADDD    Y6, Y4, Y4; \
	VPHADDD    Y10, Y8, Y8; \
	VPERM2I128 $0x20, Y8, Y4, Y5; \
	VPERM2I128 $0x31, Y8, Y4, Y6; \
	VPADDD     Y6, Y5, Y4

// Q8KCHUNK quantizes the 32 floats at off(SI) with iscale (Y12): q =
// min(127, round_half_even(iscale·x)), bytes to off/4+4(DI); the sums of
// elements 0..15 and 16..31 (8 int32 lanes each) go to GA and GB.
#define Q8KCHUNK(off, GA, GB) \
	VMULPS    off(SI), Y12, Y0; \
	VMULPS    (off+32)(SI), Y12, Y1; \
	VMULPS    (off+64)(SI), Y12, Y2; \
	VMULPS    (off+96)(SI), Y12, Y3; \
	VCVTPS2DQ Y0, Y0; \
	VCVTPS2DQ Y1, Y1; \
	VCVTPS2DQ Y2, Y2; \
	VCVTPS2DQ Y3, Y3; \
	VPMINSD   Y14, Y0, Y0; \
	VPMINSD   Y14, Y1, Y1; \
	VPMINSD   Y14, Y2, Y2; \
	VPMINSD   Y14, Y3, Y3; \
	VPADDD    Y1, Y0, GA; \
	VPADDD    Y3, Y2, GB; \
	Q8PACK(Y13); \
	VMOVDQU   Y0, (off/4+4)(DI)

// func quantizeQ8_KAVX2(dst []byte, src []float32, nb int)
// is quantizeQ8_K (ggml's quantize_row_q8_K_ref) for nb super-blocks: the
// element of largest magnitude (the first one on ties) sets
// iscale = −127/max; q = min(127, round_half_even(iscale·x)); d = 1/iscale;
// bsums are the sums of each 16 quants. Byte-identical to the Go code.
TEXT ·quantizeQ8_KAVX2(SB), NOSPLIT, $0-56
	MOVQ         dst_base+0(FP), DI
	MOVQ         src_base+24(FP), SI
	MOVQ         nb+48(FP), CX
	VMOVDQU      packperm<>(SB), Y13
	MOVL         $127, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	TESTQ        CX, CX
	JZ           q8kdone

q8kblock:
	// amax over the 256 values.
	MOVL         $0x7fffffff, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VXORPS       Y4, Y4, Y4
	VXORPS       Y5, Y5, Y5
	XORQ         BX, BX

q8kamax:
	VANDPS       (SI)(BX*1), Y15, Y0
	VANDPS       32(SI)(BX*1), Y15, Y1
	VMAXPS       Y0, Y4, Y4
	VMAXPS       Y1, Y5, Y5
	ADDQ         $64, BX
	CMPQ         BX, $1024
	JB           q8kamax
	VMAXPS       Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VMOVHLPS     X4, X4, X5
	VMAXPS       X5, X4, X4
	VMOVSHDUP    X4, X5
	VMAXSS       X5, X4, X4
	VXORPS       X5, X5, X5
	VUCOMISS     X5, X4
	JNE          q8kfind

	// All zero: d, quants and sums are zero.
	VXORPS  Y0, Y0, Y0
	MOVL    $0, (DI)
	XORQ    BX, BX

q8kzero:
	VMOVDQU Y0, 4(DI)(BX*1)
	ADDQ    $32, BX
	CMPQ    BX, $288
	JB      q8kzero
	JMP     q8knext

q8kfind:
	// max = the first element whose magnitude is amax.
	VBROADCASTSS X4, Y5
	XORQ         BX, BX

q8kscan:
	VANDPS    (SI)(BX*1), Y15, Y0
	VCMPPS    $0, Y5, Y0, Y0
	VMOVMSKPS Y0, AX
	TESTL     AX, AX
	JNZ       q8kfound
	ADDQ      $32, BX
	CMPQ      BX, $1024
	JB        q8kscan
	VMOVAPS   X4, X6 // unreachable unless a value is NaN
	JMP       q8kscale

q8kfound:
	BSFL   AX, AX
	LEAQ   (BX)(AX*4), AX
	VMOVSS (SI)(AX*1), X6

q8kscale:
	MOVL         $0xc2fe0000, AX // -127
	VMOVD        AX, X7
	VDIVSS       X6, X7, X7
	MOVL         $0x3f800000, AX // 1
	VMOVD        AX, X8
	VDIVSS       X7, X8, X8
	VMOVSS       X8, (DI)
	VBROADCASTSS X7, Y12
	Q8KCHUNK(0, Y4, Y5)
	Q8KCHUNK(128, Y6, Y7)
	Q8KCHUNK(256, Y8, Y9)
	Q8KCHUNK(384, Y10, Y11)
	REDUCE8B
	VMOVDQA      Y4, Y15
	Q8KCHUNK(512, Y4, Y5)
	Q8KCHUNK(640, Y6, Y7)
	Q8KCHUNK(768, Y8, Y9)
	Q8KCHUNK(896, Y10, Y11)
	REDUCE8B
	VPACKSSDW    Y4, Y15, Y4
	VPERMQ       $0xd8, Y4, Y4
	VMOVDQU      Y4, 260(DI)

q8knext:
	ADDQ $1024, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q8kblock

q8kdone:
	VZEROUPPER
	RET
