//go:build amd64 && !purego

#include "textflag.h"

// AVX2 + FMA + F16C loops for the 32-element block formats (Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0): one weight row against 4 activation rows (the
// batched loops, for prompts) or 1 (decode). Both go 4 blocks at a time
// with the same per-row arithmetic, so a row's result does not depend on
// whether it was computed in a batch: each block's 32 products become
// exact int32 sums (VPMADDUBSW, then VPMADDWD by ones); the vectors of the
// 4 blocks are combined so that each block owns 2 of the 8 lanes, and one
// VCVTDQ2PS + FMA applies the block scales d_w·d_x given in the same lane
// pattern. The weight decoding (nibble unpacking, scale gathering) is done
// once per group for all rows.
//
// The 4- and 5-bit formats read activations in a pair layout: for blocks
// A, B the 64 bytes A[0:16] B[0:16] A[16:32] B[16:32], so the low nibbles
// of A and B (loaded into the two 128-bit lanes of one register) meet
// their activations in one 32-byte load and the high nibbles in the next;
// a pair's sums come out as A in the low lane, B in the high lane, and the
// groups' lane pattern is A A C C | B B D D. Q8_0 keeps plain block order,
// lanes A B C D | A B C D. Per group and row, aux holds the activation
// scales in that pattern, then (4- and 5-bit) offset corrections or the
// Q8_1 sums s in lanes A 0 C 0 | B 0 D 0. See pairBatch and q8_0Batch for
// the layouts; the batched layout puts the 4 rows of a group one after the
// other (x: 128 bytes a row, aux: 16 or 8 floats a row).
//
// Register use: DX output, R13 output row stride (m·4), R10 rows left,
// R11 weight row, R12 stride, SI weight group, DI activations, R8 aux,
// CX groups left; Y0..Y3 row accumulators, Y4..Y7 decoded weights,
// Y8 weight scales, Y9..Y11 scratch, Y12 weight minimums (_1 types),
// Y14 int16 ones, Y15 byte mask 0x0F.

// BATCH4SETUP loads the batched loops' arguments and constants.
#define BATCH4SETUP \
	MOVQ         dst_base+0(FP), DX; \
	MOVQ         m+24(FP), R13; \
	SHLQ         $2, R13; \
	MOVQ         rows+32(FP), R10; \
	MOVQ         w_base+40(FP), R11; \
	MOVQ         stride+64(FP), R12; \
	MOVL         $0x00010001, AX; \
	VMOVD        AX, X14; \
	VPBROADCASTD X14, Y14; \
	MOVL         $0x0f0f0f0f, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

// BATCH4ROW points SI/DI/R8/CX at the row start and clears Y0..Y3.
#define BATCH4ROW \
	MOVQ   R11, SI; \
	MOVQ   x_base+72(FP), DI; \
	MOVQ   aux_base+96(FP), R8; \
	MOVQ   groups+120(FP), CX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3

// Fifth-bit expansion for Q5_0/Q5_1 pairs. The two blocks' 32-bit qh words
// are broadcast as one qword (A in bytes 0..3, B in 4..7 of each lane);
// q5lo picks the bytes holding bits 0..15 (A in the low lane, B in the
// high lane), q5hi those holding bits 16..31, and q5bit selects bit i%8 of
// byte i.
DATA q5lo<>+0(SB)/8, $0x0000000000000000
DATA q5lo<>+8(SB)/8, $0x0101010101010101
DATA q5lo<>+16(SB)/8, $0x0404040404040404
DATA q5lo<>+24(SB)/8, $0x0505050505050505
GLOBL q5lo<>(SB), RODATA|NOPTR, $32
DATA q5hi<>+0(SB)/8, $0x0202020202020202
DATA q5hi<>+8(SB)/8, $0x0303030303030303
DATA q5hi<>+16(SB)/8, $0x0606060606060606
DATA q5hi<>+24(SB)/8, $0x0707070707070707
GLOBL q5hi<>(SB), RODATA|NOPTR, $32
DATA q5bit<>+0(SB)/8, $0x8040201008040201
DATA q5bit<>+8(SB)/8, $0x8040201008040201
DATA q5bit<>+16(SB)/8, $0x8040201008040201
DATA q5bit<>+24(SB)/8, $0x8040201008040201
GLOBL q5bit<>(SB), RODATA|NOPTR, $32
DATA q5x10<>+0(SB)/8, $0x1010101010101010
DATA q5x10<>+8(SB)/8, $0x1010101010101010
DATA q5x10<>+16(SB)/8, $0x1010101010101010
DATA q5x10<>+24(SB)/8, $0x1010101010101010
GLOBL q5x10<>(SB), RODATA|NOPTR, $32

// Word order A A C C B B D D from A B C D (SCALES4).
DATA scl4<>+0(SB)/8, $0x0504050401000100
DATA scl4<>+8(SB)/8, $0x0706070603020302
GLOBL scl4<>(SB), RODATA|NOPTR, $16

// STORE4 stores the lane sums of Y0..Y3 to (DX), (DX+R13), (DX+2·R13),
// (DX+3·R13) and advances DX to the next output column.
#define STORE4 \
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

// UNPACK4 splits the nibbles of the pairs AB (blocks at SI+off, +bl) and
// CD (+2bl, +3bl) into Y4 (AB low), Y5 (AB high), Y6 (CD low), Y7 (CD high).
#define UNPACK4(off, bl) \
	VMOVDQU     off(SI), X4; \
	VINSERTI128 $1, (off+bl)(SI), Y4, Y4; \
	VPSRLW      $4, Y4, Y5; \
	VPAND       Y15, Y4, Y4; \
	VPAND       Y15, Y5, Y5; \
	VMOVDQU     (off+2*bl)(SI), X6; \
	VINSERTI128 $1, (off+3*bl)(SI), Y6, Y6; \
	VPSRLW      $4, Y6, Y7; \
	VPAND       Y15, Y6, Y6; \
	VPAND       Y15, Y7, Y7

// SCALES4 loads the f16 at off of the 4 blocks (bl apart) as floats in the
// lane pattern A A C C B B D D into Y.
#define SCALES4(off, bl, X, Y) \
	MOVWLZX   off(SI), AX; \
	VMOVD     AX, X; \
	VPINSRW   $1, (off+bl)(SI), X, X; \
	VPINSRW   $2, (off+2*bl)(SI), X, X; \
	VPINSRW   $3, (off+3*bl)(SI), X, X; \
	VPSHUFB   scl4<>(SB), X, X; \
	VCVTPH2PS X, Y

// Q4B_SUMS leaves in Y9 the int32 sums of activation row i (quants at
// 128i(DI)) with the unpacked nibbles, lanes A A C C B B D D.
#define Q4B_SUMS(i) \
	VPMADDUBSW (128*i)(DI), Y4, Y9; \
	VPMADDUBSW (128*i+32)(DI), Y5, Y10; \
	VPADDW     Y10, Y9, Y9; \
	VPMADDUBSW (128*i+64)(DI), Y6, Y10; \
	VPMADDUBSW (128*i+96)(DI), Y7, Y11; \
	VPADDW     Y11, Y10, Y10; \
	VPMADDWD   Y14, Y9, Y9; \
	VPMADDWD   Y14, Y10, Y10; \
	VPHADDD    Y10, Y9, Y9

// Q4B_ACC applies row i's correction and scales (aux at 64i(R8)) to Y9 and
// adds it to ACC.
#define Q4B_ACC(i, ACC) \
	VPSUBD      (64*i+32)(R8), Y9, Y9; \
	VCVTDQ2PS   Y9, Y9; \
	VMULPS      (64*i)(R8), Y8, Y10; \
	VFMADD231PS Y10, Y9, ACC

// Q4B_ACCM is Q4B_ACC for the _1 types: no offset correction; the weight
// minimums (Y12, lanes A A C C B B D D) times the activation sums s (aux,
// lanes sA 0 sC 0 sB 0 sD 0) are added once per block.
#define Q4B_ACCM(i, ACC) \
	VCVTDQ2PS   Y9, Y9; \
	VMULPS      (64*i)(R8), Y8, Y10; \
	VFMADD231PS Y10, Y9, ACC; \
	VFMADD231PS (64*i+32)(R8), Y12, ACC

// Q8B_ROW: Q8_0 weights against activation row i (quants at 128i(DI),
// plain block order; scales at 32i(R8) in lane order A B C D A B C D).
// |w| of the 4 blocks is in Y4..Y7; w itself is read again from L1 as the
// sign source, so w = −128 is handled exactly.
#define Q8B_ROW(i, ACC) \
	VMOVDQU     (128*i)(DI), Y9; \
	VPSIGNB     2(SI), Y9, Y9; \
	VPMADDUBSW  Y9, Y4, Y9; \
	VPMADDWD    Y14, Y9, Y9; \
	VMOVDQU     (128*i+32)(DI), Y10; \
	VPSIGNB     36(SI), Y10, Y10; \
	VPMADDUBSW  Y10, Y5, Y10; \
	VPMADDWD    Y14, Y10, Y10; \
	VPHADDD     Y10, Y9, Y9; \
	VMOVDQU     (128*i+64)(DI), Y10; \
	VPSIGNB     70(SI), Y10, Y10; \
	VPMADDUBSW  Y10, Y6, Y10; \
	VPMADDWD    Y14, Y10, Y10; \
	VMOVDQU     (128*i+96)(DI), Y11; \
	VPSIGNB     104(SI), Y11, Y11; \
	VPMADDUBSW  Y11, Y7, Y11; \
	VPMADDWD    Y14, Y11, Y11; \
	VPHADDD     Y11, Y10, Y10; \
	VPHADDD     Y10, Y9, Y9; \
	VCVTDQ2PS   Y9, Y9; \
	VMULPS      (32*i)(R8), Y8, Y10; \
	VFMADD231PS Y10, Y9, ACC

// Q5B_PAIR unpacks the 5-bit quants of the pair at woff (blocks bl apart,
// qh at +qh, nibbles at +qs) into LO (elements 0..15 of both blocks) and
// HI (16..31), as Q5_PAIR does, with the constants read from memory.
#define Q5B_PAIR(woff, bl, qh, qs, LO, XLO, HI) \
	VMOVD        (woff+qh)(SI), X9; \
	VPINSRD      $1, (woff+bl+qh)(SI), X9, X9; \
	VPBROADCASTQ X9, Y9; \
	VPSHUFB      q5lo<>(SB), Y9, Y10; \
	VPSHUFB      q5hi<>(SB), Y9, Y9; \
	VPAND        q5bit<>(SB), Y10, Y10; \
	VPCMPEQB     q5bit<>(SB), Y10, Y10; \
	VPAND        q5x10<>(SB), Y10, Y10; \
	VPAND        q5bit<>(SB), Y9, Y9; \
	VPCMPEQB     q5bit<>(SB), Y9, Y9; \
	VPAND        q5x10<>(SB), Y9, Y9; \
	VMOVDQU      (woff+qs)(SI), XLO; \
	VINSERTI128  $1, (woff+bl+qs)(SI), LO, LO; \
	VPSRLW       $4, LO, HI; \
	VPAND        Y15, LO, LO; \
	VPAND        Y15, HI, HI; \
	VPOR         Y10, LO, LO; \
	VPOR         Y9, HI, HI

// STORE1 stores the lane sum of Y0 at (DX) in the order STORE4 adds lane
// sums (pairs, then pairs of pairs, then the two halves), and advances DX.
#define STORE1 \
	VHADDPS      Y0, Y0, Y0; \
	VHADDPS      Y0, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSS       X0, (DX); \
	ADDQ         $4, DX

// ROWS4 and ROWS1 run a per-row macro BODY(i, ACC) for the rows of a loop.
#define ROWS4(BODY) BODY(0, Y0); BODY(1, Y1); BODY(2, Y2); BODY(3, Y3)
#define ROWS1(BODY) BODY(0, Y0)

// BLOCKLOOP is a whole loop: for each weight row, for each group of 4
// blocks, DECODE (wsize bytes of weights) then ROWS(BODY); x and aux move
// by xstep and astep bytes a group; STORE writes the row's outputs.
#define BLOCKLOOP(DECODE, ROWS, BODY, wsize, xstep, astep, STORE) \
	BATCH4SETUP; \
	TESTQ R10, R10; \
	JZ    done; \
row: \
	BATCH4ROW; \
	TESTQ CX, CX; \
	JZ    rowdone; \
group: \
	DECODE; \
	ROWS(BODY); \
	ADDQ  $wsize, SI; \
	ADDQ  $xstep, DI; \
	ADDQ  $astep, R8; \
	DECQ  CX; \
	JNZ   group; \
rowdone: \
	STORE; \
	ADDQ  R12, R11; \
	DECQ  R10; \
	JNZ   row; \
done: \
	VZEROUPPER; \
	RET

// Per-format group decoding and per-row work.
#define Q8_0DEC \
	VPABSB      2(SI), Y4; \
	VPABSB      36(SI), Y5; \
	VPABSB      70(SI), Y6; \
	VPABSB      104(SI), Y7; \
	MOVWLZX     0(SI), AX; \
	VMOVD       AX, X8; \
	VPINSRW     $1, 34(SI), X8, X8; \
	VPINSRW     $2, 68(SI), X8, X8; \
	VPINSRW     $3, 102(SI), X8, X8; \
	VPUNPCKLQDQ X8, X8, X8; \
	VCVTPH2PS   X8, Y8
#define Q4_0DEC UNPACK4(2, 18); SCALES4(0, 18, X8, Y8)
#define Q4_1DEC UNPACK4(4, 20); SCALES4(0, 20, X8, Y8); SCALES4(2, 20, X12, Y12)
#define Q5_0DEC Q5B_PAIR(0, 22, 2, 6, Y4, X4, Y5); Q5B_PAIR(44, 22, 2, 6, Y6, X6, Y7); SCALES4(0, 22, X8, Y8)
#define Q5_1DEC Q5B_PAIR(0, 24, 4, 8, Y4, X4, Y5); Q5B_PAIR(48, 24, 4, 8, Y6, X6, Y7); SCALES4(0, 24, X8, Y8); SCALES4(2, 24, X12, Y12)
#define Q4OFF(i, ACC) Q4B_SUMS(i); Q4B_ACC(i, ACC)
#define Q4MIN(i, ACC) Q4B_SUMS(i); Q4B_ACCM(i, ACC)

// func dotQ8_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ8_0Rows4(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q8_0DEC, ROWS4, Q8B_ROW, 136, 512, 128, STORE4)

// func dotQ8_0Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ8_0Rows1(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q8_0DEC, ROWS1, Q8B_ROW, 136, 128, 32, STORE1)

// func dotQ4_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_0Rows4(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q4_0DEC, ROWS4, Q4OFF, 72, 512, 256, STORE4)

// func dotQ4_0Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_0Rows1(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q4_0DEC, ROWS1, Q4OFF, 72, 128, 64, STORE1)

// func dotQ4_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_1Rows4(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q4_1DEC, ROWS4, Q4MIN, 80, 512, 256, STORE4)

// func dotQ4_1Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_1Rows1(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q4_1DEC, ROWS1, Q4MIN, 80, 128, 64, STORE1)

// func dotQ5_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_0Rows4(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q5_0DEC, ROWS4, Q4OFF, 88, 512, 256, STORE4)

// func dotQ5_0Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_0Rows1(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q5_0DEC, ROWS1, Q4OFF, 88, 128, 64, STORE1)

// func dotQ5_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_1Rows4(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q5_1DEC, ROWS4, Q4MIN, 96, 512, 256, STORE4)

// func dotQ5_1Rows1(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_1Rows1(SB), NOSPLIT, $0-128
	BLOCKLOOP(Q5_1DEC, ROWS1, Q4MIN, 96, 128, 64, STORE1)
