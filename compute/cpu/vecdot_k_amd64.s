//go:build amd64 && !purego

#include "textflag.h"

// AVX2 row loops for the K-quants × Q8_K, one 256-element super-block per
// iteration. Quants are used unsigned with VPMADDUBSW (quant × x in int16
// pairs), scaled per sub-block with VPMADDWD against a vector of the
// sub-block's integer scale, and summed exactly in int32; offsets (Q3_K's
// −4, Q6_K's −32) and mins (Q2_K, Q4_K, Q5_K) are applied once per
// super-block from the activation's 16-element sums (bsums). One
// VCVTDQ2PS + FMA per super-block applies d_w·d_x.
//
// Shared register use:
//   DX  dst pointer   R10 rows left   R11 weight row   R12 stride
//   R13 super-blocks per row   SI weight block   DI x block   CX blocks left
//   Y13 row accumulator   Y12 min accumulator (subtracted at the end)
//   Y15 byte mask 0x0F (Q4_K, Q5_K) or 0x03 (Q2_K, Q3_K, Q6_K)

// Word broadcast masks for VPSHUFB: mask i (32 bytes at 32·i) copies int16
// lane i of each 128-bit lane to all eight.
DATA wordbcast<>+0(SB)/8, $0x0100010001000100
DATA wordbcast<>+8(SB)/8, $0x0100010001000100
DATA wordbcast<>+16(SB)/8, $0x0100010001000100
DATA wordbcast<>+24(SB)/8, $0x0100010001000100
DATA wordbcast<>+32(SB)/8, $0x0302030203020302
DATA wordbcast<>+40(SB)/8, $0x0302030203020302
DATA wordbcast<>+48(SB)/8, $0x0302030203020302
DATA wordbcast<>+56(SB)/8, $0x0302030203020302
DATA wordbcast<>+64(SB)/8, $0x0504050405040504
DATA wordbcast<>+72(SB)/8, $0x0504050405040504
DATA wordbcast<>+80(SB)/8, $0x0504050405040504
DATA wordbcast<>+88(SB)/8, $0x0504050405040504
DATA wordbcast<>+96(SB)/8, $0x0706070607060706
DATA wordbcast<>+104(SB)/8, $0x0706070607060706
DATA wordbcast<>+112(SB)/8, $0x0706070607060706
DATA wordbcast<>+120(SB)/8, $0x0706070607060706
DATA wordbcast<>+128(SB)/8, $0x0908090809080908
DATA wordbcast<>+136(SB)/8, $0x0908090809080908
DATA wordbcast<>+144(SB)/8, $0x0908090809080908
DATA wordbcast<>+152(SB)/8, $0x0908090809080908
DATA wordbcast<>+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA wordbcast<>+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA wordbcast<>+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA wordbcast<>+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA wordbcast<>+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA wordbcast<>+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA wordbcast<>+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA wordbcast<>+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA wordbcast<>+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA wordbcast<>+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA wordbcast<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA wordbcast<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL wordbcast<>(SB), RODATA|NOPTR, $256

// Pair masks for VPSHUFB: mask r (32 bytes at 32·r) copies int16 lane 2r of
// the low 128-bit lane to the whole low lane and lane 2r+1 of the high
// 128-bit lane to the whole high lane. With the same 8 scales in both
// lanes, that is the scale vector of 32 elements whose first 16 use scale
// 2r and last 16 scale 2r+1 (Q2_K, Q3_K, Q6_K).
DATA pairbcast<>+0(SB)/8, $0x0100010001000100
DATA pairbcast<>+8(SB)/8, $0x0100010001000100
DATA pairbcast<>+16(SB)/8, $0x0302030203020302
DATA pairbcast<>+24(SB)/8, $0x0302030203020302
DATA pairbcast<>+32(SB)/8, $0x0504050405040504
DATA pairbcast<>+40(SB)/8, $0x0504050405040504
DATA pairbcast<>+48(SB)/8, $0x0706070607060706
DATA pairbcast<>+56(SB)/8, $0x0706070607060706
DATA pairbcast<>+64(SB)/8, $0x0908090809080908
DATA pairbcast<>+72(SB)/8, $0x0908090809080908
DATA pairbcast<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA pairbcast<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA pairbcast<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA pairbcast<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA pairbcast<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA pairbcast<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL pairbcast<>(SB), RODATA|NOPTR, $128

// Bytes of 0x0F and 0x04, for memory operands.
DATA k0f<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA k0f<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA k0f<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA k0f<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL k0f<>(SB), RODATA|NOPTR, $32
DATA k04<>+0(SB)/8, $0x0404040404040404
DATA k04<>+8(SB)/8, $0x0404040404040404
DATA k04<>+16(SB)/8, $0x0404040404040404
DATA k04<>+24(SB)/8, $0x0404040404040404
GLOBL k04<>(SB), RODATA|NOPTR, $32

// Bytes of 0x10 (Q5_K's fifth bit), for memory operands.
DATA k5x10<>+0(SB)/8, $0x1010101010101010
DATA k5x10<>+8(SB)/8, $0x1010101010101010
DATA k5x10<>+16(SB)/8, $0x1010101010101010
DATA k5x10<>+24(SB)/8, $0x1010101010101010
GLOBL k5x10<>(SB), RODATA|NOPTR, $32

// Byte indices 8,8,9,9,…,15,15: each of the 8 mins twice (Q4_K, Q5_K).
DATA minsdup<>+0(SB)/8, $0x0b0b0a0a09090808
DATA minsdup<>+8(SB)/8, $0x0f0f0e0e0d0d0c0c
GLOBL minsdup<>(SB), RODATA|NOPTR, $16

// KSETUP loads the arguments of a K-quant row loop.
#define KSETUP \
	MOVQ dst_base+0(FP), DX; \
	MOVQ dst_len+8(FP), R10; \
	MOVQ w_base+24(FP), R11; \
	MOVQ stride+48(FP), R12; \
	MOVQ nb+80(FP), R13

// KB4SETUP loads the arguments of a batched K-quant loop.
#define KB4SETUP \
	MOVQ dst_base+0(FP), DX; \
	MOVQ m+24(FP), R13; \
	SHLQ $2, R13; \
	MOVQ rows+32(FP), R10; \
	MOVQ w_base+40(FP), R11; \
	MOVQ stride+64(FP), R12

// KB4ROW points SI/DI/CX at the row start and clears Y0..Y3.
#define KB4ROW \
	MOVQ   R11, SI; \
	MOVQ   x_base+72(FP), DI; \
	MOVQ   nb+96(FP), CX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3

// KROWSTART points SI/DI/CX at the start of the row and clears the sums.
#define KROWSTART \
	MOVQ   R11, SI; \
	MOVQ   x_base+56(FP), DI; \
	MOVQ   R13, CX; \
	VXORPS Y13, Y13, Y13; \
	VXORPS Y12, Y12, Y12

// KROWEND stores Σ(Y13 − Y12) at (DX) and moves to the next row.
#define KROWEND \
	VSUBPS       Y12, Y13, Y13; \
	VEXTRACTF128 $1, Y13, X1; \
	VADDPS       X1, X13, X13; \
	VHADDPS      X13, X13, X13; \
	VHADDPS      X13, X13, X13; \
	VMOVSS       X13, (DX); \
	ADDQ         $4, DX; \
	ADDQ         R12, R11; \
	DECQ         R10

// Q4K_SCALES decodes the 12 scale bytes at 4(SI) (ggml's get_scale_min_k4
// layout) into X: bytes 0..7 the 6-bit scales, 8..15 the 6-bit mins.
#define Q4K_SCALES(X) \
	MOVL    4(SI), AX; \
	MOVL    8(SI), BX; \
	MOVL    12(SI), R8; \
	MOVL    R8, R9; \
	SHRL    $4, R9; \
	ANDL    $0x0f0f0f0f, R9; \
	MOVL    BX, R14; \
	SHRL    $6, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	ORL     R14, R9; \
	ANDL    $0x3f3f3f3f, BX; \
	ANDL    $0x0f0f0f0f, R8; \
	MOVL    AX, R14; \
	SHRL    $6, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	ORL     R14, R8; \
	ANDL    $0x3f3f3f3f, AX; \
	VMOVD   AX, X; \
	VPINSRD $1, R8, X, X; \
	VPINSRD $2, BX, X, X; \
	VPINSRD $3, R9, X, X

// Q4K_MINS: Y2 = 8 int32 m_j·(bsum_2j + bsum_2j+1) from the mins in X0,
// and Y3 = the 8 scales as int16 in both 128-bit lanes.
#define Q4K_MINS \
	VPSHUFB   minsdup<>(SB), X0, X2; \
	VPMOVZXBW X2, Y2; \
	VPMADDWD  260(DI), Y2, Y2; \
	VPMOVZXBW X0, Y3; \
	VPERMQ    $0x44, Y3, Y3

// Q4K_SUB multiplies the 64 elements of sub-blocks 2j, 2j+1 (4-bit quants
// in Y5 low nibbles / Y6 high nibbles, activations at xoff(DI)) by their
// scales and adds them to Y4.
#define Q4K_SUB(j, xoff) \
	VPMADDUBSW xoff(DI), Y5, Y5; \
	VPMADDUBSW (xoff+32)(DI), Y6, Y6; \
	VPSHUFB    wordbcast<>+(64*j)(SB), Y3, Y7; \
	VPSHUFB    wordbcast<>+(64*j+32)(SB), Y3, Y8; \
	VPMADDWD   Y7, Y5, Y5; \
	VPMADDWD   Y8, Y6, Y6; \
	VPADDD     Y5, Y4, Y4; \
	VPADDD     Y6, Y4, Y4

// Q4K_NIBBLES splits the 32 bytes at qoff(SI) into low (Y5) and high (Y6)
// nibbles.
#define Q4K_NIBBLES(qoff) \
	VMOVDQU qoff(SI), Y5; \
	VPSRLW  $4, Y5, Y6; \
	VPAND   Y15, Y5, Y5; \
	VPAND   Y15, Y6, Y6

// Q4K_NIBBLES8 is Q4K_NIBBLES into Y8 (low) and Y9 (high).
#define Q4K_NIBBLES8(qoff) \
	VMOVDQU qoff(SI), Y8; \
	VPSRLW  $4, Y8, Y9; \
	VPAND   Y15, Y8, Y8; \
	VPAND   Y15, Y9, Y9

// KSCALE2 adds cvt(Y4)·d·d_x to Y13 and cvt(Y2)·dmin·d_x to Y12, with the
// f16 d, dmin at doff(SI) and the f32 d_x at 0(DI).
#define KSCALE2(doff) \
	VMOVD        doff(SI), X5; \
	VCVTPH2PS    X5, X5; \
	VBROADCASTSS (DI), X6; \
	VMULPS       X6, X5, X5; \
	VBROADCASTSS X5, Y6; \
	VMOVSHDUP    X5, X7; \
	VBROADCASTSS X7, Y7; \
	VCVTDQ2PS    Y4, Y4; \
	VFMADD231PS  Y6, Y4, Y13; \
	VCVTDQ2PS    Y2, Y2; \
	VFMADD231PS  Y7, Y2, Y12

// func dotQ4_KRows(dst []float32, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ4_KRows(SB), NOSPLIT, $0-88
	KSETUP
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	TESTQ        R10, R10
	JZ           q4kdone

q4krow:
	KROWSTART
	TESTQ CX, CX
	JZ    q4krowdone

q4kblock:
	Q4K_SCALES(X0)
	Q4K_MINS
	VPXOR Y4, Y4, Y4
	Q4K_NIBBLES(16)
	Q4K_SUB(0, 4)
	Q4K_NIBBLES(48)
	Q4K_SUB(1, 68)
	Q4K_NIBBLES(80)
	Q4K_SUB(2, 132)
	Q4K_NIBBLES(112)
	Q4K_SUB(3, 196)
	KSCALE2(0)
	ADDQ $144, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q4kblock

q4krowdone:
	KROWEND
	JNZ q4krow

q4kdone:
	VZEROUPPER
	RET

// Q5K_HIGH ORs the fifth bits of sub-blocks 2j (bit 2j of the qh bytes in
// Y9) and 2j+1 (bit 2j+1), as 0x10, into Y5 and Y6. LSH/RSH move bit 2j to
// bit 4 of each byte; the AND with 0x10 (Y14) drops what crossed bytes.
#define Q5K_HIGH(SHIFT5, N5, SHIFT6, N6) \
	SHIFT5  $N5, Y9, Y10; \
	VPAND   Y14, Y10, Y10; \
	VPOR    Y10, Y5, Y5; \
	SHIFT6  $N6, Y9, Y10; \
	VPAND   Y14, Y10, Y10; \
	VPOR    Y10, Y6, Y6

// func dotQ5_KRows(dst []float32, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ5_KRows(SB), NOSPLIT, $0-88
	KSETUP
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x10101010, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	TESTQ        R10, R10
	JZ           q5kdone

q5krow:
	KROWSTART
	TESTQ CX, CX
	JZ    q5krowdone

q5kblock:
	Q4K_SCALES(X0)
	Q4K_MINS
	VPXOR   Y4, Y4, Y4
	VMOVDQU 16(SI), Y9
	Q4K_NIBBLES(48)
	Q5K_HIGH(VPSLLW, 4, VPSLLW, 3)
	Q4K_SUB(0, 4)
	Q4K_NIBBLES(80)
	Q5K_HIGH(VPSLLW, 2, VPSLLW, 1)
	Q4K_SUB(1, 68)
	Q4K_NIBBLES(112)
	Q5K_HIGH(VPSRLW, 0, VPSRLW, 1)
	Q4K_SUB(2, 132)
	Q4K_NIBBLES(144)
	Q5K_HIGH(VPSRLW, 2, VPSRLW, 3)
	Q4K_SUB(3, 196)
	KSCALE2(0)
	ADDQ $176, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q5kblock

q5krowdone:
	KROWEND
	JNZ q5krow

q5kdone:
	VZEROUPPER
	RET

// Q6_K: a super-block is two halves of 128 elements; half h has 64 bytes
// of low nibbles (ql) and 32 of high bit pairs (qh). Run r (0..3) of a half
// is 32 elements: low nibbles of ql[0:32] or ql[32:64] (r even / odd… see
// below) with bits 2r, 2r+1 of qh, i.e.
//   r=0: ql[0:32]&15  | (qh&3)<<4       r=1: ql[32:64]&15 | (qh>>2&3)<<4
//   r=2: ql[0:32]>>4  | (qh>>4&3)<<4    r=3: ql[32:64]>>4 | (qh>>6&3)<<4
// and uses scales 8h+2r (first 16) and 8h+2r+1 (last 16). The quants are
// used unsigned (0..63); the −32 offset is −32·Σ_g scale_g·bsum_g.

// Q6K_RUN multiplies quants Yq (unsigned 6-bit) with the 32 activations at
// xoff(DI), scales them with pair mask r applied to the half's scales in
// Y3, and adds them to Y4. Clobbers Y10.
#define Q6K_RUN(Yq, r, xoff) \
	VPMADDUBSW xoff(DI), Yq, Yq; \
	VPSHUFB    pairbcast<>+(32*r)(SB), Y3, Y10; \
	VPMADDWD   Y10, Yq, Yq; \
	VPADDD     Yq, Y4, Y4

// Q6K_HALF does half h: ql at qloff(SI), qh at qhoff(SI), x at xoff(DI).
#define Q6K_HALF(qloff, qhoff, xoff) \
	VMOVDQU qloff(SI), Y5; \
	VMOVDQU (qloff+32)(SI), Y6; \
	VMOVDQU qhoff(SI), Y9; \
	VPSRLW  $4, Y5, Y7; \
	VPSRLW  $4, Y6, Y8; \
	VPAND   Y15, Y5, Y5; \
	VPAND   Y15, Y6, Y6; \
	VPAND   Y15, Y7, Y7; \
	VPAND   Y15, Y8, Y8; \
	VPSLLW  $4, Y9, Y10; \
	VPAND   Y14, Y10, Y10; \
	VPOR    Y10, Y5, Y5; \
	VPSLLW  $2, Y9, Y10; \
	VPAND   Y14, Y10, Y10; \
	VPOR    Y10, Y6, Y6; \
	VPAND   Y14, Y9, Y10; \
	VPOR    Y10, Y7, Y7; \
	VPSRLW  $2, Y9, Y10; \
	VPAND   Y14, Y10, Y10; \
	VPOR    Y10, Y8, Y8; \
	Q6K_RUN(Y5, 0, xoff); \
	Q6K_RUN(Y6, 1, (xoff+32)); \
	Q6K_RUN(Y7, 2, (xoff+64)); \
	Q6K_RUN(Y8, 3, (xoff+96))

// func dotQ6_KRows(dst []float32, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ6_KRows(SB), NOSPLIT, $0-88
	KSETUP
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x30303030, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	TESTQ        R10, R10
	JZ           q6kdone

q6krow:
	KROWSTART
	TESTQ CX, CX
	JZ    q6krowdone

q6kblock:
	// Y11 = the 16 scales as int16; Y2 = −32·Σ scale_g·bsum_g (8 lanes).
	VPMOVSXBW 192(SI), Y11
	VPMADDWD  260(DI), Y11, Y2
	VPSLLD    $5, Y2, Y2
	VPXOR     Y4, Y4, Y4
	VPERMQ    $0x44, Y11, Y3
	Q6K_HALF(0, 128, 4)
	VPERMQ    $0xee, Y11, Y3
	Q6K_HALF(64, 160, 132)
	VPSUBD    Y2, Y4, Y4

	// Y13 += cvt(Y4)·d·d_x
	MOVWLZX      208(SI), AX
	VMOVD        AX, X5
	VCVTPH2PS    X5, X5
	VMULSS       (DI), X5, X5
	VBROADCASTSS X5, Y6
	VCVTDQ2PS    Y4, Y4
	VFMADD231PS  Y6, Y4, Y13
	ADDQ         $210, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          q6kblock

q6krowdone:
	KROWEND
	JNZ q6krow

q6kdone:
	VZEROUPPER
	RET

// Q2_K: 16 groups of 16 elements, each with a 4-bit scale (low nibble of
// scales[g]) and a 4-bit min (high nibble). Half h (128 elements) takes its
// 2-bit quants from qs[32h:32h+32], group s of the half from bits 2s, 2s+1,
// with scales 8h+2s and 8h+2s+1.

// Q2K_GROUP multiplies the 2-bit quants at bit sh of Y5 with the 32
// activations at xoff(DI), scales them (pair mask r on Y3) into Y4.
#define Q2K_GROUP(sh, r, xoff) \
	VPSRLW     $sh, Y5, Y6; \
	VPAND      Y15, Y6, Y6; \
	VPMADDUBSW xoff(DI), Y6, Y6; \
	VPSHUFB    pairbcast<>+(32*r)(SB), Y3, Y10; \
	VPMADDWD   Y10, Y6, Y6; \
	VPADDD     Y6, Y4, Y4

// func dotQ2_KRows(dst []float32, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ2_KRows(SB), NOSPLIT, $0-88
	KSETUP
	MOVL         $0x03030303, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	TESTQ        R10, R10
	JZ           q2kdone

q2krow:
	KROWSTART
	TESTQ CX, CX
	JZ    q2krowdone

q2kblock:
	// Y2 = 8 int32 Σ min_g·bsum_g; Y11 = the 16 scales as int16.
	VMOVDQU   (SI), X0
	VPSRLW    $4, X0, X1
	VPAND     X14, X0, X0
	VPAND     X14, X1, X1
	VPMOVZXBW X1, Y2
	VPMADDWD  260(DI), Y2, Y2
	VPMOVZXBW X0, Y11
	VPXOR     Y4, Y4, Y4
	VPERMQ    $0x44, Y11, Y3
	VMOVDQU   16(SI), Y5
	Q2K_GROUP(0, 0, 4)
	Q2K_GROUP(2, 1, 36)
	Q2K_GROUP(4, 2, 68)
	Q2K_GROUP(6, 3, 100)
	VPERMQ    $0xee, Y11, Y3
	VMOVDQU   48(SI), Y5
	Q2K_GROUP(0, 0, 132)
	Q2K_GROUP(2, 1, 164)
	Q2K_GROUP(4, 2, 196)
	Q2K_GROUP(6, 3, 228)
	KSCALE2(80)
	ADDQ      $84, SI
	ADDQ      $292, DI
	DECQ      CX
	JNZ       q2kblock

q2krowdone:
	KROWEND
	JNZ q2krow

q2kdone:
	VZEROUPPER
	RET

// Q3_K: the layout of Q2_K's quants (2 bits from qs, half h, group s) plus
// a high bit, bit 4h+s of hmask[l] for element l of the group; the value is
// q2 − 4 when that bit is clear, q2 when set. So u = q2 + 4·bit (0..7) is
// used unsigned and −4·Σ_g scale_g·bsum_g corrects it. Sixteen 6-bit
// scales, biased by 32, one per 16 elements.

// Q3K_GROUP: u from bit sh of the quants in Y5 and the hmask bit moved to
// bit 2 by HOP $hn on Y9; scaled with pair mask r on Y3 into Y4.
#define Q3K_GROUP(sh, HOP, hn, r, xoff) \
	VPSRLW     $sh, Y5, Y6; \
	VPAND      Y15, Y6, Y6; \
	HOP        $hn, Y9, Y7; \
	VPAND      Y14, Y7, Y7; \
	VPOR       Y7, Y6, Y6; \
	VPMADDUBSW xoff(DI), Y6, Y6; \
	VPSHUFB    pairbcast<>+(32*r)(SB), Y3, Y10; \
	VPMADDWD   Y10, Y6, Y6; \
	VPADDD     Y6, Y4, Y4

// Q3K_SCALES decodes the 16 6-bit scales of a Q3_K block (ggml's q3_K
// packing at 96(SI)) into the bytes of X, unbiased (−32..31); T is scratch.
#define Q3K_SCALES(X, T) \
	MOVL    96(SI), AX; \
	MOVL    100(SI), BX; \
	MOVL    104(SI), R8; \
	MOVL    AX, R9; \
	SHRL    $4, R9; \
	ANDL    $0x0f0f0f0f, R9; \
	MOVL    R8, R14; \
	SHRL    $4, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	ORL     R14, R9; \
	VMOVD   R9, T; \
	MOVL    BX, R9; \
	SHRL    $4, R9; \
	ANDL    $0x0f0f0f0f, R9; \
	MOVL    R8, R14; \
	SHRL    $6, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	ORL     R14, R9; \
	VPINSRD $1, R9, T, T; \
	ANDL    $0x0f0f0f0f, AX; \
	MOVL    R8, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	ORL     R14, AX; \
	ANDL    $0x0f0f0f0f, BX; \
	MOVL    R8, R14; \
	SHRL    $2, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	ORL     R14, BX; \
	VMOVD   AX, X; \
	VPINSRD $1, BX, X, X; \
	VPUNPCKLQDQ T, X, X; \
	MOVL    $0x20202020, AX; \
	VMOVD   AX, T; \
	VPBROADCASTD T, T; \
	VPSUBB  T, X, X

// func dotQ3_KRows(dst []float32, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ3_KRows(SB), NOSPLIT, $0-88
	KSETUP
	MOVL         $0x03030303, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x04040404, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	TESTQ        R10, R10
	JZ           q3kdone

q3krow:
	KROWSTART
	TESTQ CX, CX
	JZ    q3krowdone

q3kblock:
	Q3K_SCALES(X0, X1)

	// Y11 = scales as int16; Y2 = 4·Σ scale_g·bsum_g.
	VPMOVSXBW X0, Y11
	VPMADDWD  260(DI), Y11, Y2
	VPSLLD    $2, Y2, Y2
	VPXOR     Y4, Y4, Y4
	VMOVDQU   (SI), Y9
	VPERMQ    $0x44, Y11, Y3
	VMOVDQU   32(SI), Y5
	Q3K_GROUP(0, VPSLLW, 2, 0, 4)
	Q3K_GROUP(2, VPSLLW, 1, 1, 36)
	Q3K_GROUP(4, VPSRLW, 0, 2, 68)
	Q3K_GROUP(6, VPSRLW, 1, 3, 100)
	VPERMQ    $0xee, Y11, Y3
	VMOVDQU   64(SI), Y5
	Q3K_GROUP(0, VPSRLW, 2, 0, 132)
	Q3K_GROUP(2, VPSRLW, 3, 1, 164)
	Q3K_GROUP(4, VPSRLW, 4, 2, 196)
	Q3K_GROUP(6, VPSRLW, 5, 3, 228)
	VPSUBD    Y2, Y4, Y4

	// Y13 += cvt(Y4)·d·d_x
	MOVWLZX      108(SI), AX
	VMOVD        AX, X5
	VCVTPH2PS    X5, X5
	VMULSS       (DI), X5, X5
	VBROADCASTSS X5, Y6
	VCVTDQ2PS    Y4, Y4
	VFMADD231PS  Y6, Y4, Y13
	ADDQ         $110, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          q3kblock

q3krowdone:
	KROWEND
	JNZ q3krow

q3kdone:
	VZEROUPPER
	RET

// Batched K-quant loops: one weight row against 4 activation rows. The
// batch layout (kBatchPack) interleaves the rows' Q8_K blocks per
// super-block, so row i's block is at 292·i(DI) and DI moves 1168 bytes.
// Outputs go to (DX), (DX+R13), (DX+2·R13), (DX+3·R13).

// KB4STORE stores the lane sums of Y0..Y3 to the 4 outputs of the row.
#define KB4STORE \
	VHADDPS      Y1, Y0, Y0; \
	VHADDPS      Y3, Y2, Y2; \
	VHADDPS      Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	MOVQ         DX, R9; \
	VMOVSS       X0, (R9); \
	ADDQ         R13, R9; \
	VEXTRACTPS   $1, X0, (R9); \
	ADDQ         R13, R9; \
	VEXTRACTPS   $2, X0, (R9); \
	ADDQ         R13, R9; \
	VEXTRACTPS   $3, X0, (R9); \
	ADDQ         $4, DX

// KB4MIN subtracts row i's min term cvt(mins·bsums)·dmin·d_x from ACC;
// Y12 holds the mins (each twice) as int16, Y13 dmin broadcast.
#define KB4MIN(i, ACC) \
	VPMADDWD     (292*i+260)(DI), Y12, Y9; \
	VCVTDQ2PS    Y9, Y9; \
	VBROADCASTSS (292*i)(DI), Y10; \
	VMULPS       Y13, Y10, Y10; \
	VFNMADD231PS Y10, Y9, ACC

// KB4SUB adds to ISUM row i's products of 32 quants (Yq) with its
// activations at xoff, scaled by the int16 vector Ys; T is scratch.
#define KB4SUB(i, xoff, Yq, Ys, ISUM, T) \
	VPMADDUBSW (292*i+xoff)(DI), Yq, T; \
	VPMADDWD   Ys, T, T; \
	VPADDD     T, ISUM, ISUM

// KB4RUN does one 32-element run (quants Yq, scale vector Ys) for the 4
// rows.
#define KB4RUN(xoff, Yq, Ys, T) \
	KB4SUB(0, xoff, Yq, Ys, Y4, T); \
	KB4SUB(1, xoff, Yq, Ys, Y5, T); \
	KB4SUB(2, xoff, Yq, Ys, Y6, T); \
	KB4SUB(3, xoff, Yq, Ys, Y7, T)

// KB4Q4J does sub-blocks 2j, 2j+1 of a Q4_K/Q5_K super-block for the 4
// rows; the nibbles must be in Y8 (low) and Y9 (high), the scales in Y13.
#define KB4Q4J(j) \
	VPSHUFB wordbcast<>+(64*j)(SB), Y13, Y10; \
	VPSHUFB wordbcast<>+(64*j+32)(SB), Y13, Y11; \
	KB4RUN((4+64*j), Y8, Y10, Y14); \
	KB4RUN((36+64*j), Y9, Y11, Y14)

// KB4D adds cvt(ISUM)·d·d_x of row i to ACC; Y13 holds d broadcast.
#define KB4D(i, ISUM, ACC) \
	VBROADCASTSS (292*i)(DI), Y10; \
	VMULPS       Y13, Y10, Y10; \
	VCVTDQ2PS    ISUM, ISUM; \
	VFMADD231PS  Y10, ISUM, ACC

// KB4Q4HEAD is the start of a Q4_K/Q5_K super-block: scales decoded, the
// min terms of the 4 rows subtracted, Y13 = the scales in both lanes,
// Y4..Y7 cleared.
#define KB4Q4HEAD \
	Q4K_SCALES(X8); \
	VPSHUFB      minsdup<>(SB), X8, X12; \
	VPMOVZXBW    X12, Y12; \
	VPBROADCASTW 2(SI), X13; \
	VCVTPH2PS    X13, Y13; \
	KB4MIN(0, Y0); \
	KB4MIN(1, Y1); \
	KB4MIN(2, Y2); \
	KB4MIN(3, Y3); \
	VPMOVZXBW    X8, Y13; \
	VPERMQ       $0x44, Y13, Y13; \
	VPXOR        Y4, Y4, Y4; \
	VPXOR        Y5, Y5, Y5; \
	VPXOR        Y6, Y6, Y6; \
	VPXOR        Y7, Y7, Y7

// KB4TAIL applies d·d_x to the 4 rows' integer sums.
#define KB4TAIL \
	VPBROADCASTW (SI), X13; \
	VCVTPH2PS    X13, Y13; \
	KB4D(0, Y4, Y0); \
	KB4D(1, Y5, Y1); \
	KB4D(2, Y6, Y2); \
	KB4D(3, Y7, Y3)

// func dotQ4_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ4_KRows4(SB), NOSPLIT, $0-104
	KB4SETUP
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	TESTQ        R10, R10
	JZ           q4kb4done

q4kb4row:
	KB4ROW
	TESTQ CX, CX
	JZ    q4kb4rowdone

q4kb4block:
	KB4Q4HEAD
	Q4K_NIBBLES8(16)
	KB4Q4J(0)
	Q4K_NIBBLES8(48)
	KB4Q4J(1)
	Q4K_NIBBLES8(80)
	KB4Q4J(2)
	Q4K_NIBBLES8(112)
	KB4Q4J(3)
	KB4TAIL
	ADDQ $144, SI
	ADDQ $1168, DI
	DECQ CX
	JNZ  q4kb4block

q4kb4rowdone:
	KB4STORE
	ADDQ R12, R11
	DECQ R10
	JNZ  q4kb4row

q4kb4done:
	VZEROUPPER
	RET

// KB6CORR starts ISUM of row i at −32·Σ_g scale_g·bsum_g (the Q6_K offset);
// Y13 holds the 16 scales as int16.
#define KB6CORR(i, ISUM) \
	VPMADDWD (292*i+260)(DI), Y13, Y11; \
	VPSLLD   $5, Y11, Y11; \
	VPXOR    ISUM, ISUM, ISUM; \
	VPSUBD   Y11, ISUM, ISUM

// KB6HALF does half h of a Q6_K super-block for the 4 rows (ql at qloff,
// qh at qhoff, activations from xoff; PERM selects the half's scales).
#define KB6HALF(qloff, qhoff, xoff, PERM) \
	VPMOVSXBW 192(SI), Y13; \
	VPERMQ    $PERM, Y13, Y13; \
	VMOVDQU   qhoff(SI), Y12; \
	VMOVDQU   qloff(SI), Y8; \
	VPAND     Y15, Y8, Y8; \
	VPSLLW    $4, Y12, Y11; \
	VPAND     Y14, Y11, Y11; \
	VPOR      Y11, Y8, Y8; \
	VMOVDQU   (qloff+32)(SI), Y9; \
	VPAND     Y15, Y9, Y9; \
	VPSLLW    $2, Y12, Y11; \
	VPAND     Y14, Y11, Y11; \
	VPOR      Y11, Y9, Y9; \
	VPSHUFB   pairbcast<>+0(SB), Y13, Y10; \
	KB4RUN(xoff, Y8, Y10, Y11); \
	VPSHUFB   pairbcast<>+32(SB), Y13, Y10; \
	KB4RUN((xoff+32), Y9, Y10, Y11); \
	VMOVDQU   qloff(SI), Y8; \
	VPSRLW    $4, Y8, Y8; \
	VPAND     Y15, Y8, Y8; \
	VPAND     Y14, Y12, Y11; \
	VPOR      Y11, Y8, Y8; \
	VMOVDQU   (qloff+32)(SI), Y9; \
	VPSRLW    $4, Y9, Y9; \
	VPAND     Y15, Y9, Y9; \
	VPSRLW    $2, Y12, Y11; \
	VPAND     Y14, Y11, Y11; \
	VPOR      Y11, Y9, Y9; \
	VPSHUFB   pairbcast<>+64(SB), Y13, Y10; \
	KB4RUN((xoff+64), Y8, Y10, Y11); \
	VPSHUFB   pairbcast<>+96(SB), Y13, Y10; \
	KB4RUN((xoff+96), Y9, Y10, Y11)

// func dotQ6_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ6_KRows4(SB), NOSPLIT, $0-104
	KB4SETUP
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x30303030, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	TESTQ        R10, R10
	JZ           q6kb4done

q6kb4row:
	KB4ROW
	TESTQ CX, CX
	JZ    q6kb4rowdone

q6kb4block:
	VPMOVSXBW    192(SI), Y13
	KB6CORR(0, Y4)
	KB6CORR(1, Y5)
	KB6CORR(2, Y6)
	KB6CORR(3, Y7)
	KB6HALF(0, 128, 4, 0x44)
	KB6HALF(64, 160, 132, 0xee)
	VPBROADCASTW 208(SI), X13
	VCVTPH2PS    X13, Y13
	KB4D(0, Y4, Y0)
	KB4D(1, Y5, Y1)
	KB4D(2, Y6, Y2)
	KB4D(3, Y7, Y3)
	ADDQ         $210, SI
	ADDQ         $1168, DI
	DECQ         CX
	JNZ          q6kb4block

q6kb4rowdone:
	KB4STORE
	ADDQ R12, R11
	DECQ R10
	JNZ  q6kb4row

q6kb4done:
	VZEROUPPER
	RET

// KB5HIGH ORs the fifth bits of sub-blocks 2j, 2j+1 (from the qh bytes in
// Y12, moved to bit 4 by SHIFT5 $N5 / SHIFT6 $N6) into Y8 and Y9.
#define KB5HIGH(SHIFT5, N5, SHIFT6, N6) \
	SHIFT5 $N5, Y12, Y10; \
	VPAND  k5x10<>(SB), Y10, Y10; \
	VPOR   Y10, Y8, Y8; \
	SHIFT6 $N6, Y12, Y10; \
	VPAND  k5x10<>(SB), Y10, Y10; \
	VPOR   Y10, Y9, Y9

// func dotQ5_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ5_KRows4(SB), NOSPLIT, $0-104
	KB4SETUP
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	TESTQ        R10, R10
	JZ           q5kb4done

q5kb4row:
	KB4ROW
	TESTQ CX, CX
	JZ    q5kb4rowdone

q5kb4block:
	KB4Q4HEAD
	VMOVDQU 16(SI), Y12
	Q4K_NIBBLES8(48)
	KB5HIGH(VPSLLW, 4, VPSLLW, 3)
	KB4Q4J(0)
	Q4K_NIBBLES8(80)
	KB5HIGH(VPSLLW, 2, VPSLLW, 1)
	KB4Q4J(1)
	Q4K_NIBBLES8(112)
	KB5HIGH(VPSRLW, 0, VPSRLW, 1)
	KB4Q4J(2)
	Q4K_NIBBLES8(144)
	KB5HIGH(VPSRLW, 2, VPSRLW, 3)
	KB4Q4J(3)
	KB4TAIL
	ADDQ $176, SI
	ADDQ $1168, DI
	DECQ CX
	JNZ  q5kb4block

q5kb4rowdone:
	KB4STORE
	ADDQ R12, R11
	DECQ R10
	JNZ  q5kb4row

q5kb4done:
	VZEROUPPER
	RET

// KB2GROUP: the 2-bit quants at bit sh of Y12 (times 4 rows), scaled with
// pair mask r of the half's scales (Y13).
#define KB2GROUP(sh, r, xoff) \
	VPSRLW  $sh, Y12, Y8; \
	VPAND   Y15, Y8, Y8; \
	VPSHUFB pairbcast<>+(32*r)(SB), Y13, Y10; \
	KB4RUN(xoff, Y8, Y10, Y11)

// KB2MIN subtracts row i's min term cvt(Σ min_g·bsum_g)·dmin·d_x from
// ACC; Y14 holds the 16 mins as int16, Y13 dmin broadcast.
#define KB2MIN(i, ACC) \
	VPMADDWD     (292*i+260)(DI), Y14, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VBROADCASTSS (292*i)(DI), Y10; \
	VMULPS       Y13, Y10, Y10; \
	VFNMADD231PS Y10, Y8, ACC

// func dotQ2_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ2_KRows4(SB), NOSPLIT, $0-104
	KB4SETUP
	MOVL         $0x03030303, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	TESTQ        R10, R10
	JZ           q2kb4done

q2kb4row:
	KB4ROW
	TESTQ CX, CX
	JZ    q2kb4rowdone

q2kb4block:
	VMOVDQU      (SI), X9
	VPSRLW       $4, X9, X14
	VPAND        k0f<>(SB), X14, X14
	VPMOVZXBW    X14, Y14
	VPAND        k0f<>(SB), X9, X9
	VPMOVZXBW    X9, Y9
	VPBROADCASTW 82(SI), X13
	VCVTPH2PS    X13, Y13
	KB2MIN(0, Y0)
	KB2MIN(1, Y1)
	KB2MIN(2, Y2)
	KB2MIN(3, Y3)
	VPXOR        Y4, Y4, Y4
	VPXOR        Y5, Y5, Y5
	VPXOR        Y6, Y6, Y6
	VPXOR        Y7, Y7, Y7
	VPERMQ       $0x44, Y9, Y13
	VMOVDQU      16(SI), Y12
	KB2GROUP(0, 0, 4)
	KB2GROUP(2, 1, 36)
	KB2GROUP(4, 2, 68)
	KB2GROUP(6, 3, 100)
	VPERMQ       $0xee, Y9, Y13
	VMOVDQU      48(SI), Y12
	KB2GROUP(0, 0, 132)
	KB2GROUP(2, 1, 164)
	KB2GROUP(4, 2, 196)
	KB2GROUP(6, 3, 228)
	VPBROADCASTW 80(SI), X13
	VCVTPH2PS    X13, Y13
	KB4D(0, Y4, Y0)
	KB4D(1, Y5, Y1)
	KB4D(2, Y6, Y2)
	KB4D(3, Y7, Y3)
	ADDQ         $84, SI
	ADDQ         $1168, DI
	DECQ         CX
	JNZ          q2kb4block

q2kb4rowdone:
	KB4STORE
	ADDQ R12, R11
	DECQ R10
	JNZ  q2kb4row

q2kb4done:
	VZEROUPPER
	RET

// KB3GROUP: u = the 2-bit quants at bit sh of Y14 | the hmask bit (Y12,
// moved to bit 2 by HOP $hn) as 4, times 4 rows, pair mask r of Y13.
#define KB3GROUP(sh, HOP, hn, r, xoff) \
	VPSRLW  $sh, Y14, Y8; \
	VPAND   Y15, Y8, Y8; \
	HOP     $hn, Y12, Y11; \
	VPAND   k04<>(SB), Y11, Y11; \
	VPOR    Y11, Y8, Y8; \
	VPSHUFB pairbcast<>+(32*r)(SB), Y13, Y10; \
	KB4RUN(xoff, Y8, Y10, Y11)

// KB3CORR starts ISUM of row i at −4·Σ_g scale_g·bsum_g (Q3_K's offset);
// Y9 holds the 16 scales as int16.
#define KB3CORR(i, ISUM) \
	VPMADDWD (292*i+260)(DI), Y9, Y11; \
	VPSLLD   $2, Y11, Y11; \
	VPXOR    ISUM, ISUM, ISUM; \
	VPSUBD   Y11, ISUM, ISUM

// func dotQ3_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ3_KRows4(SB), NOSPLIT, $0-104
	KB4SETUP
	MOVL         $0x03030303, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	TESTQ        R10, R10
	JZ           q3kb4done

q3kb4row:
	KB4ROW
	TESTQ CX, CX
	JZ    q3kb4rowdone

q3kb4block:
	Q3K_SCALES(X9, X10)
	VPMOVSXBW    X9, Y9
	KB3CORR(0, Y4)
	KB3CORR(1, Y5)
	KB3CORR(2, Y6)
	KB3CORR(3, Y7)
	VMOVDQU      (SI), Y12
	VPERMQ       $0x44, Y9, Y13
	VMOVDQU      32(SI), Y14
	KB3GROUP(0, VPSLLW, 2, 0, 4)
	KB3GROUP(2, VPSLLW, 1, 1, 36)
	KB3GROUP(4, VPSRLW, 0, 2, 68)
	KB3GROUP(6, VPSRLW, 1, 3, 100)
	VPERMQ       $0xee, Y9, Y13
	VMOVDQU      64(SI), Y14
	KB3GROUP(0, VPSRLW, 2, 0, 132)
	KB3GROUP(2, VPSRLW, 3, 1, 164)
	KB3GROUP(4, VPSRLW, 4, 2, 196)
	KB3GROUP(6, VPSRLW, 5, 3, 228)
	VPBROADCASTW 108(SI), X13
	VCVTPH2PS    X13, Y13
	KB4D(0, Y4, Y0)
	KB4D(1, Y5, Y1)
	KB4D(2, Y6, Y2)
	KB4D(3, Y7, Y3)
	ADDQ         $110, SI
	ADDQ         $1168, DI
	DECQ         CX
	JNZ          q3kb4block

q3kb4rowdone:
	KB4STORE
	ADDQ R12, R11
	DECQ R10
	JNZ  q3kb4row

q3kb4done:
	VZEROUPPER
	RET
