//go:build amd64 && !purego

#include "textflag.h"

// Attention helpers: exp of a score row (minus its max) with the row sum,
// and the p-weighted sum of V rows.

// expf constants (Cephes expf): exp(x) = 2^n · e^r with n = round(x·log2 e),
// r = x − n·ln 2 (ln 2 split in two so the reduction is exact) and
// e^r ≈ 1 + r·(1 + r·P(r)), P the degree-5 Cephes polynomial. 2^n is added
// to the exponent bits.
DATA expc<>+0(SB)/4, $0xc2aeac50 // -87.33654: clamp so that 2^n stays normal
DATA expc<>+4(SB)/4, $0x3fb8aa3b // log2 e
DATA expc<>+8(SB)/4, $0x3f318000 // ln 2 high part, 0.693359375
DATA expc<>+12(SB)/4, $0xb95e8083 // ln 2 low part, -2.12194440e-4
DATA expc<>+16(SB)/4, $0x39506967 // 1.9875691500e-4
DATA expc<>+20(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA expc<>+24(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA expc<>+28(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA expc<>+32(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA expc<>+36(SB)/4, $0x3f000000 // 5.0000001201e-1
DATA expc<>+40(SB)/4, $0x3f800000 // 1
GLOBL expc<>(SB), RODATA|NOPTR, $44

// func expSumAVX2(x []float32, m float32) float32
// x[i] = exp(x[i] − m) for the first len(x)&^7 elements; returns their sum.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-36
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS m+24(FP), Y15
	VBROADCASTSS expc<>+0(SB), Y14
	VBROADCASTSS expc<>+4(SB), Y13
	VBROADCASTSS expc<>+8(SB), Y12
	VBROADCASTSS expc<>+12(SB), Y11
	VBROADCASTSS expc<>+16(SB), Y10
	VBROADCASTSS expc<>+20(SB), Y9
	VBROADCASTSS expc<>+24(SB), Y8
	VBROADCASTSS expc<>+28(SB), Y7
	VBROADCASTSS expc<>+32(SB), Y6
	VBROADCASTSS expc<>+36(SB), Y5
	VBROADCASTSS expc<>+40(SB), Y4
	VXORPS       Y3, Y3, Y3
	SHRQ         $3, CX
	JZ           expdone

exploop:
	VMOVUPS      (SI), Y0
	VSUBPS       Y15, Y0, Y0
	VMAXPS       Y14, Y0, Y0
	VMULPS       Y13, Y0, Y1
	VROUNDPS     $0, Y1, Y1
	VFNMADD231PS Y12, Y1, Y0
	VFNMADD231PS Y11, Y1, Y0
	VCVTPS2DQ    Y1, Y1
	VPSLLD       $23, Y1, Y1
	VMOVAPS      Y10, Y2
	VFMADD213PS  Y9, Y0, Y2
	VFMADD213PS  Y8, Y0, Y2
	VFMADD213PS  Y7, Y0, Y2
	VFMADD213PS  Y6, Y0, Y2
	VFMADD213PS  Y5, Y0, Y2
	VFMADD213PS  Y4, Y0, Y2
	VFMADD213PS  Y4, Y0, Y2
	VPADDD       Y1, Y2, Y2
	VMOVUPS      Y2, (SI)
	VADDPS       Y2, Y3, Y3
	ADDQ         $32, SI
	DECQ         CX
	JNZ          exploop

expdone:
	VEXTRACTF128 $1, Y3, X1
	VADDPS       X1, X3, X3
	VHADDPS      X3, X3, X3
	VHADDPS      X3, X3, X3
	VMOVSS       X3, ret+32(FP)
	VZEROUPPER
	RET

// func axpyRowsAVX2(acc []float32, v []byte, stride int, p []float32)
// acc[i] += Σ_r p[r]·v_r[i] for len(acc) (a multiple of 8) columns, v_r
// the float32 row at v[r·stride:].
TEXT ·axpyRowsAVX2(SB), NOSPLIT, $0-80
	MOVQ  acc_base+0(FP), DI
	MOVQ  acc_len+8(FP), BX
	MOVQ  v_base+24(FP), SI
	MOVQ  stride+48(FP), R12
	MOVQ  p_base+56(FP), R8
	MOVQ  p_len+64(FP), R10
	TESTQ R10, R10
	JZ    axdone

ax32:
	CMPQ    BX, $32
	JB      ax8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	MOVQ    SI, R11
	MOVQ    R8, R9
	MOVQ    R10, CX

ax32rows:
	VBROADCASTSS (R9), Y4
	VFMADD231PS  (R11), Y4, Y0
	VFMADD231PS  32(R11), Y4, Y1
	VFMADD231PS  64(R11), Y4, Y2
	VFMADD231PS  96(R11), Y4, Y3
	ADDQ         $4, R9
	ADDQ         R12, R11
	DECQ         CX
	JNZ          ax32rows
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $128, DI
	ADDQ         $128, SI
	SUBQ         $32, BX
	JMP          ax32

ax8:
	CMPQ    BX, $8
	JB      axdone
	VMOVUPS (DI), Y0
	MOVQ    SI, R11
	MOVQ    R8, R9
	MOVQ    R10, CX

ax8rows:
	VBROADCASTSS (R9), Y4
	VFMADD231PS  (R11), Y4, Y0
	ADDQ         $4, R9
	ADDQ         R12, R11
	DECQ         CX
	JNZ          ax8rows
	VMOVUPS      Y0, (DI)
	ADDQ         $32, DI
	ADDQ         $32, SI
	SUBQ         $8, BX
	JMP          ax8

axdone:
	VZEROUPPER
	RET

// Cephes polynomial coefficients as 8-lane vectors, for memory operands.
DATA expv<>+0(SB)/8, $0x3950696739506967 // 1.9875691500e-4
DATA expv<>+8(SB)/8, $0x3950696739506967
DATA expv<>+16(SB)/8, $0x3950696739506967
DATA expv<>+24(SB)/8, $0x3950696739506967
DATA expv<>+32(SB)/8, $0x3ab743ce3ab743ce // 1.3981999507e-3
DATA expv<>+40(SB)/8, $0x3ab743ce3ab743ce
DATA expv<>+48(SB)/8, $0x3ab743ce3ab743ce
DATA expv<>+56(SB)/8, $0x3ab743ce3ab743ce
DATA expv<>+64(SB)/8, $0x3c0889083c088908 // 8.3334519073e-3
DATA expv<>+72(SB)/8, $0x3c0889083c088908
DATA expv<>+80(SB)/8, $0x3c0889083c088908
DATA expv<>+88(SB)/8, $0x3c0889083c088908
DATA expv<>+96(SB)/8, $0x3d2aa9c13d2aa9c1 // 4.1665795894e-2
DATA expv<>+104(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expv<>+112(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expv<>+120(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expv<>+128(SB)/8, $0x3e2aaaaa3e2aaaaa // 1.6666665459e-1
DATA expv<>+136(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expv<>+144(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expv<>+152(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expv<>+160(SB)/8, $0x3f0000003f000000 // 0.5
DATA expv<>+168(SB)/8, $0x3f0000003f000000
DATA expv<>+176(SB)/8, $0x3f0000003f000000
DATA expv<>+184(SB)/8, $0x3f0000003f000000
GLOBL expv<>(SB), RODATA|NOPTR, $192

// func swigluAVX2(dst, gate, up []float32)
// dst[i] = gate[i]/(1+exp(−gate[i]))·up[i] for the first len(dst)&^7
// elements, in float32 with the exp of expSumAVX2 (its argument clamped
// below at −87.34, where silu(x) = x to float32 precision, and taken as +inf
// above 88, where silu(x) = −0 as in ggml).
TEXT ·swigluAVX2(SB), NOSPLIT, $0-72
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         gate_base+24(FP), SI
	MOVQ         up_base+48(FP), DX
	VBROADCASTSS expc<>+0(SB), Y15
	MOVL         $0x42b00000, AX // 88
	VMOVD        AX, X14
	VBROADCASTSS X14, Y14
	VBROADCASTSS expc<>+4(SB), Y13
	VBROADCASTSS expc<>+8(SB), Y12
	VBROADCASTSS expc<>+12(SB), Y11
	VBROADCASTSS expc<>+40(SB), Y10
	VXORPS       Y9, Y9, Y9
	MOVL         $0x7f800000, AX // +inf
	VMOVD        AX, X8
	VBROADCASTSS X8, Y8
	SHRQ         $3, CX
	JZ           swdone

swloop:
	VMOVUPS      (SI), Y0
	VSUBPS       Y0, Y9, Y1
	VCMPPS       $0x1e, Y14, Y1, Y4
	VMAXPS       Y15, Y1, Y1
	VMINPS       Y14, Y1, Y1
	VMULPS       Y13, Y1, Y2
	VROUNDPS     $0, Y2, Y2
	VFNMADD231PS Y12, Y2, Y1
	VFNMADD231PS Y11, Y2, Y1
	VCVTPS2DQ    Y2, Y2
	VPSLLD       $23, Y2, Y2
	VMOVUPS      expv<>+0(SB), Y3
	VFMADD213PS  expv<>+32(SB), Y1, Y3
	VFMADD213PS  expv<>+64(SB), Y1, Y3
	VFMADD213PS  expv<>+96(SB), Y1, Y3
	VFMADD213PS  expv<>+128(SB), Y1, Y3
	VFMADD213PS  expv<>+160(SB), Y1, Y3
	VFMADD213PS  Y10, Y1, Y3
	VFMADD213PS  Y10, Y1, Y3
	VPADDD       Y2, Y3, Y3
	VBLENDVPS    Y4, Y8, Y3, Y3
	VADDPS       Y10, Y3, Y3
	VDIVPS       Y3, Y0, Y0
	VMULPS       (DX), Y0, Y0
	VMOVUPS      Y0, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DX
	ADDQ         $32, DI
	DECQ         CX
	JNZ          swloop

swdone:
	VZEROUPPER
	RET

// func widenF16AVX2(dst []float32, src []byte)
// dst[i] = the F16 value at src[2i:], for len(dst) (a multiple of 8)
// elements.
TEXT ·widenF16AVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	SHRQ $3, CX
	JZ   wdone

wloop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       wloop

wdone:
	VZEROUPPER
	RET

// func widenQ8_0AVX2(dst []float32, src []byte)
// dst = the Q8_0 blocks at src dequantized (q·d, one rounding, as
// ggml), for len(dst)/32 whole blocks of 34 bytes.
TEXT ·widenQ8_0AVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	SHRQ $5, CX
	JZ   qdone

qloop:
	MOVWLZX      (SI), AX
	VMOVD        AX, X0
	VCVTPH2PS    X0, X0
	VBROADCASTSS X0, Y0
	VPMOVSXBD    2(SI), Y1
	VPMOVSXBD    10(SI), Y2
	VPMOVSXBD    18(SI), Y3
	VPMOVSXBD    26(SI), Y4
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y0, Y1, Y1
	VMULPS       Y0, Y2, Y2
	VMULPS       Y0, Y3, Y3
	VMULPS       Y0, Y4, Y4
	VMOVUPS      Y1, (DI)
	VMOVUPS      Y2, 32(DI)
	VMOVUPS      Y3, 64(DI)
	VMOVUPS      Y4, 96(DI)
	ADDQ         $34, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          qloop

qdone:
	VZEROUPPER
	RET
