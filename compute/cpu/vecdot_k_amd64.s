//go:build amd64 && !purego

#include "textflag.h"

// AVX2 loops for the K-quants against Q8_K activations, one 256-element
// super-block per iteration, for 4 activation rows (batched) or 1. As in
// vecdot_amd64.s both share the per-row arithmetic, so results do not
// depend on batching. Quants are used unsigned with VPMADDUBSW (quant × x
// in int16 pairs), scaled per sub-block with VPMADDWD against a vector of
// the sub-block's integer scale, and summed exactly in int32; offsets
// (Q3_K's −4, Q6_K's −32) start the integer sum at −offset·Σ scale·bsum,
// and mins (Q2_K, Q4_K, Q5_K) are subtracted once per super-block in float
// from the activation's 16-element sums (bsums). One VCVTDQ2PS + FMA per
// super-block and row applies d_w·d_x. The weight decoding (scales, quants,
// scale vectors) is shared by the rows. The batched layout (kBatch)
// interleaves the 4 rows' Q8_K blocks per super-block, so row i's block is
// at 292·i(DI); a single row is the plain Q8_K row.
//
// Register use: DX output, R13 output row stride (m·4), R10 rows left,
// R11 weight row, R12 stride, SI weight block, DI activations, CX blocks
// left; Y0..Y3 row accumulators (float), Y4..Y7 row integer sums, Y8..Y14
// decoded weights and scratch, Y15 a byte mask.

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

// KB1STORE stores the lane sum of Y0 at (DX) in KB4STORE's order.
#define KB1STORE \
	VHADDPS      Y0, Y0, Y0; \
	VHADDPS      Y0, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSS       X0, (DX); \
	ADDQ         $4, DX

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

// Q4K_NIBBLES8 is Q4K_NIBBLES into Y8 (low) and Y9 (high).
#define Q4K_NIBBLES8(qoff) \
	VMOVDQU qoff(SI), Y8; \
	VPSRLW  $4, Y8, Y9; \
	VPAND   Y15, Y8, Y8; \
	VPAND   Y15, Y9, Y9

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

// KB4D adds cvt(ISUM)·d·d_x of row i to ACC; Y13 holds d broadcast.
#define KB4D(i, ISUM, ACC) \
	VBROADCASTSS (292*i)(DI), Y10; \
	VMULPS       Y13, Y10, Y10; \
	VCVTDQ2PS    ISUM, ISUM; \
	VFMADD231PS  Y10, ISUM, ACC

// KB1RUN is KB4RUN for one row.
#define KB1RUN(xoff, Yq, Ys, T) KB4SUB(0, xoff, Yq, Ys, Y4, T)

// Per-row steps for 4 rows and for 1: min terms (Q4_K/Q5_K), d scaling.
#define KMINS4 KB4MIN(0, Y0); KB4MIN(1, Y1); KB4MIN(2, Y2); KB4MIN(3, Y3)
#define KMINS1 KB4MIN(0, Y0)
#define KDS4 KB4D(0, Y4, Y0); KB4D(1, Y5, Y1); KB4D(2, Y6, Y2); KB4D(3, Y7, Y3)
#define KDS1 KB4D(0, Y4, Y0)
#define KZERO4 VPXOR Y4, Y4, Y4; VPXOR Y5, Y5, Y5; VPXOR Y6, Y6, Y6; VPXOR Y7, Y7, Y7
#define KZERO1 VPXOR Y4, Y4, Y4

// KLOOP is a whole loop: for each weight row, BLOCK for each super-block
// (wsize bytes of weights, xstep of activations); STORE writes the row.
#define KLOOP(MASK, BLOCK, wsize, xstep, STORE) \
	KB4SETUP; \
	MOVL         $MASK, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15; \
	TESTQ        R10, R10; \
	JZ           done; \
row: \
	KB4ROW; \
	TESTQ        CX, CX; \
	JZ           rowdone; \
block: \
	BLOCK; \
	ADDQ         $wsize, SI; \
	ADDQ         $xstep, DI; \
	DECQ         CX; \
	JNZ          block; \
rowdone: \
	STORE; \
	ADDQ         R12, R11; \
	DECQ         R10; \
	JNZ          row; \
done: \
	VZEROUPPER; \
	RET

// Q4_K and Q5_K: eight sub-blocks of 32 with 6-bit scales and mins.

// KQ4HEAD starts a Q4_K/Q5_K super-block: scales and mins decoded, the
// rows' min terms subtracted (MINS), Y13 = the scales in both lanes, the
// integer sums cleared (ZERO).
#define KQ4HEAD(MINS, ZERO) \
	Q4K_SCALES(X8); \
	VPSHUFB      minsdup<>(SB), X8, X12; \
	VPMOVZXBW    X12, Y12; \
	VPBROADCASTW 2(SI), X13; \
	VCVTPH2PS    X13, Y13; \
	MINS; \
	VPMOVZXBW    X8, Y13; \
	VPERMQ       $0x44, Y13, Y13; \
	ZERO

// KQ4J does sub-blocks 2j, 2j+1 (nibbles in Y8 low, Y9 high) for the rows.
#define KQ4J(j, RUN) \
	VPSHUFB wordbcast<>+(64*j)(SB), Y13, Y10; \
	VPSHUFB wordbcast<>+(64*j+32)(SB), Y13, Y11; \
	RUN((4+64*j), Y8, Y10, Y14); \
	RUN((36+64*j), Y9, Y11, Y14)

// KDSCALE applies d (f16 at doff) times each row's d_x (DS).
#define KDSCALE(doff, DS) \
	VPBROADCASTW doff(SI), X13; \
	VCVTPH2PS    X13, Y13; \
	DS

#define Q4KBLOCK(MINS, ZERO, RUN, DS) \
	KQ4HEAD(MINS, ZERO); \
	Q4K_NIBBLES8(16); \
	KQ4J(0, RUN); \
	Q4K_NIBBLES8(48); \
	KQ4J(1, RUN); \
	Q4K_NIBBLES8(80); \
	KQ4J(2, RUN); \
	Q4K_NIBBLES8(112); \
	KQ4J(3, RUN); \
	KDSCALE(0, DS)

// KB5HIGH ORs the fifth bits of sub-blocks 2j, 2j+1 (from the qh bytes in
// Y12, moved to bit 4 by SHIFT5 $N5 / SHIFT6 $N6) into Y8 and Y9.
#define KB5HIGH(SHIFT5, N5, SHIFT6, N6) \
	SHIFT5 $N5, Y12, Y10; \
	VPAND  k5x10<>(SB), Y10, Y10; \
	VPOR   Y10, Y8, Y8; \
	SHIFT6 $N6, Y12, Y10; \
	VPAND  k5x10<>(SB), Y10, Y10; \
	VPOR   Y10, Y9, Y9

#define Q5KBLOCK(MINS, ZERO, RUN, DS) \
	KQ4HEAD(MINS, ZERO); \
	VMOVDQU 16(SI), Y12; \
	Q4K_NIBBLES8(48); \
	KB5HIGH(VPSLLW, 4, VPSLLW, 3); \
	KQ4J(0, RUN); \
	Q4K_NIBBLES8(80); \
	KB5HIGH(VPSLLW, 2, VPSLLW, 1); \
	KQ4J(1, RUN); \
	Q4K_NIBBLES8(112); \
	KB5HIGH(VPSRLW, 0, VPSRLW, 1); \
	KQ4J(2, RUN); \
	Q4K_NIBBLES8(144); \
	KB5HIGH(VPSRLW, 2, VPSRLW, 3); \
	KQ4J(3, RUN); \
	KDSCALE(0, DS)

// Q6_K: a super-block is two halves of 128 elements; half h has 64 bytes of
// low nibbles (ql) and 32 of high bit pairs (qh). Run r (0..3) of a half is
// 32 elements:
//   r=0: ql[0:32]&15  | (qh&3)<<4       r=1: ql[32:64]&15 | (qh>>2&3)<<4
//   r=2: ql[0:32]>>4  | (qh>>4&3)<<4    r=3: ql[32:64]>>4 | (qh>>6&3)<<4
// with scales 8h+2r (first 16) and 8h+2r+1 (last 16). The quants are used
// unsigned (0..63); the −32 offset starts each row's sum (KB6CORR).

// KB6CORR starts ISUM of row i at −32·Σ_g scale_g·bsum_g (the Q6_K offset);
// Y13 holds the 16 scales as int16.
#define KB6CORR(i, ISUM) \
	VPMADDWD (292*i+260)(DI), Y13, Y11; \
	VPSLLD   $5, Y11, Y11; \
	VPXOR    ISUM, ISUM, ISUM; \
	VPSUBD   Y11, ISUM, ISUM

#define KCORR6_4 KB6CORR(0, Y4); KB6CORR(1, Y5); KB6CORR(2, Y6); KB6CORR(3, Y7)
#define KCORR6_1 KB6CORR(0, Y4)

// KB6HALF does half h for the rows (ql at qloff, qh at qhoff, activations
// from xoff; PERM picks the half's scales; Y14 is the 0x30 mask).
#define KB6HALF(qloff, qhoff, xoff, PERM, RUN) \
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
	RUN(xoff, Y8, Y10, Y11); \
	VPSHUFB   pairbcast<>+32(SB), Y13, Y10; \
	RUN((xoff+32), Y9, Y10, Y11); \
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
	RUN((xoff+64), Y8, Y10, Y11); \
	VPSHUFB   pairbcast<>+96(SB), Y13, Y10; \
	RUN((xoff+96), Y9, Y10, Y11)

#define Q6KBLOCK(CORR, RUN, DS) \
	MOVL         $0x30303030, AX; \
	VMOVD        AX, X14; \
	VPBROADCASTD X14, Y14; \
	VPMOVSXBW    192(SI), Y13; \
	CORR; \
	KB6HALF(0, 128, 4, 0x44, RUN); \
	KB6HALF(64, 160, 132, 0xee, RUN); \
	KDSCALE(208, DS)

// Q2_K: 16 groups of 16 elements, each with a 4-bit scale (low nibble of
// scales[g]) and a 4-bit min (high nibble). Half h (128 elements) takes its
// 2-bit quants from qs[32h:32h+32], group s of the half from bits 2s, 2s+1,
// with scales 8h+2s and 8h+2s+1.

// KB2MIN subtracts row i's min term cvt(Σ min_g·bsum_g)·dmin·d_x from
// ACC; Y14 holds the 16 mins as int16, Y13 dmin broadcast.
#define KB2MIN(i, ACC) \
	VPMADDWD     (292*i+260)(DI), Y14, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VBROADCASTSS (292*i)(DI), Y10; \
	VMULPS       Y13, Y10, Y10; \
	VFNMADD231PS Y10, Y8, ACC

#define KMINS2_4 KB2MIN(0, Y0); KB2MIN(1, Y1); KB2MIN(2, Y2); KB2MIN(3, Y3)
#define KMINS2_1 KB2MIN(0, Y0)

// KB2GROUP: the 2-bit quants at bit sh of Y12, scaled with pair mask r of
// the half's scales (Y13), for the rows.
#define KB2GROUP(sh, r, xoff, RUN) \
	VPSRLW  $sh, Y12, Y8; \
	VPAND   Y15, Y8, Y8; \
	VPSHUFB pairbcast<>+(32*r)(SB), Y13, Y10; \
	RUN(xoff, Y8, Y10, Y11)

#define Q2KBLOCK(MINS, ZERO, RUN, DS) \
	VMOVDQU      (SI), X9; \
	VPSRLW       $4, X9, X14; \
	VPAND        k0f<>(SB), X14, X14; \
	VPMOVZXBW    X14, Y14; \
	VPAND        k0f<>(SB), X9, X9; \
	VPMOVZXBW    X9, Y9; \
	VPBROADCASTW 82(SI), X13; \
	VCVTPH2PS    X13, Y13; \
	MINS; \
	ZERO; \
	VPERMQ       $0x44, Y9, Y13; \
	VMOVDQU      16(SI), Y12; \
	KB2GROUP(0, 0, 4, RUN); \
	KB2GROUP(2, 1, 36, RUN); \
	KB2GROUP(4, 2, 68, RUN); \
	KB2GROUP(6, 3, 100, RUN); \
	VPERMQ       $0xee, Y9, Y13; \
	VMOVDQU      48(SI), Y12; \
	KB2GROUP(0, 0, 132, RUN); \
	KB2GROUP(2, 1, 164, RUN); \
	KB2GROUP(4, 2, 196, RUN); \
	KB2GROUP(6, 3, 228, RUN); \
	KDSCALE(80, DS)

// Q3_K: the layout of Q2_K's quants plus a high bit, bit 4h+s of hmask[l]
// for element l of group s in half h; the value is q2 − 4 when that bit is
// clear, q2 when set. So u = q2 + 4·bit (0..7) is used unsigned and the −4
// offset starts each row's sum (KB3CORR). Sixteen 6-bit scales, biased by
// 32, one per 16 elements.

// KB3CORR starts ISUM of row i at −4·Σ_g scale_g·bsum_g (Q3_K's offset);
// Y9 holds the 16 scales as int16.
#define KB3CORR(i, ISUM) \
	VPMADDWD (292*i+260)(DI), Y9, Y11; \
	VPSLLD   $2, Y11, Y11; \
	VPXOR    ISUM, ISUM, ISUM; \
	VPSUBD   Y11, ISUM, ISUM

#define KCORR3_4 KB3CORR(0, Y4); KB3CORR(1, Y5); KB3CORR(2, Y6); KB3CORR(3, Y7)
#define KCORR3_1 KB3CORR(0, Y4)

// KB3GROUP: u = the 2-bit quants at bit sh of Y14 | the hmask bit (Y12,
// moved to bit 2 by HOP $hn) as 4, for the rows, pair mask r of Y13.
#define KB3GROUP(sh, HOP, hn, r, xoff, RUN) \
	VPSRLW  $sh, Y14, Y8; \
	VPAND   Y15, Y8, Y8; \
	HOP     $hn, Y12, Y11; \
	VPAND   k04<>(SB), Y11, Y11; \
	VPOR    Y11, Y8, Y8; \
	VPSHUFB pairbcast<>+(32*r)(SB), Y13, Y10; \
	RUN(xoff, Y8, Y10, Y11)

#define Q3KBLOCK(CORR, RUN, DS) \
	Q3K_SCALES(X9, X10); \
	VPMOVSXBW X9, Y9; \
	CORR; \
	VMOVDQU   (SI), Y12; \
	VPERMQ    $0x44, Y9, Y13; \
	VMOVDQU   32(SI), Y14; \
	KB3GROUP(0, VPSLLW, 2, 0, 4, RUN); \
	KB3GROUP(2, VPSLLW, 1, 1, 36, RUN); \
	KB3GROUP(4, VPSRLW, 0, 2, 68, RUN); \
	KB3GROUP(6, VPSRLW, 1, 3, 100, RUN); \
	VPERMQ    $0xee, Y9, Y13; \
	VMOVDQU   64(SI), Y14; \
	KB3GROUP(0, VPSRLW, 2, 0, 132, RUN); \
	KB3GROUP(2, VPSRLW, 3, 1, 164, RUN); \
	KB3GROUP(4, VPSRLW, 4, 2, 196, RUN); \
	KB3GROUP(6, VPSRLW, 5, 3, 228, RUN); \
	KDSCALE(108, DS)

#define Q2K4 Q2KBLOCK(KMINS2_4, KZERO4, KB4RUN, KDS4)
#define Q2K1 Q2KBLOCK(KMINS2_1, KZERO1, KB1RUN, KDS1)
#define Q3K4 Q3KBLOCK(KCORR3_4, KB4RUN, KDS4)
#define Q3K1 Q3KBLOCK(KCORR3_1, KB1RUN, KDS1)
#define Q4K4 Q4KBLOCK(KMINS4, KZERO4, KB4RUN, KDS4)
#define Q4K1 Q4KBLOCK(KMINS1, KZERO1, KB1RUN, KDS1)
#define Q5K4 Q5KBLOCK(KMINS4, KZERO4, KB4RUN, KDS4)
#define Q5K1 Q5KBLOCK(KMINS1, KZERO1, KB1RUN, KDS1)
#define Q6K4 Q6KBLOCK(KCORR6_4, KB4RUN, KDS4)
#define Q6K1 Q6KBLOCK(KCORR6_1, KB1RUN, KDS1)

// func dotQ2_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ2_KRows4(SB), NOSPLIT, $0-104
	KLOOP(0x03030303, Q2K4, 84, 1168, KB4STORE)

// func dotQ2_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ2_KRows1(SB), NOSPLIT, $0-104
	KLOOP(0x03030303, Q2K1, 84, 292, KB1STORE)

// func dotQ3_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ3_KRows4(SB), NOSPLIT, $0-104
	KLOOP(0x03030303, Q3K4, 110, 1168, KB4STORE)

// func dotQ3_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ3_KRows1(SB), NOSPLIT, $0-104
	KLOOP(0x03030303, Q3K1, 110, 292, KB1STORE)

// func dotQ4_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ4_KRows4(SB), NOSPLIT, $0-104
	KLOOP(0x0f0f0f0f, Q4K4, 144, 1168, KB4STORE)

// func dotQ4_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ4_KRows1(SB), NOSPLIT, $0-104
	KLOOP(0x0f0f0f0f, Q4K1, 144, 292, KB1STORE)

// func dotQ5_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ5_KRows4(SB), NOSPLIT, $0-104
	KLOOP(0x0f0f0f0f, Q5K4, 176, 1168, KB4STORE)

// func dotQ5_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ5_KRows1(SB), NOSPLIT, $0-104
	KLOOP(0x0f0f0f0f, Q5K1, 176, 292, KB1STORE)

// func dotQ6_KRows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ6_KRows4(SB), NOSPLIT, $0-104
	KLOOP(0x0f0f0f0f, Q6K4, 210, 1168, KB4STORE)

// func dotQ6_KRows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, nb int)
TEXT ·dotQ6_KRows1(SB), NOSPLIT, $0-104
	KLOOP(0x0f0f0f0f, Q6K1, 210, 292, KB1STORE)
