//go:build amd64 && !purego

#include "textflag.h"

// AVX2 + FMA + F16C row loops. See vecdot_amd64.go for the contract.
//
// The 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) go 8 blocks
// at a time: each block's 32 products become 8 int32 lanes (VPMADDUBSW, then
// VPMADDWD by ones), the 8 blocks' vectors are reduced so that lane i holds
// block i's exact integer sum, and one VCVTDQ2PS + VFMADD231PS applies the 8
// scales d_w·d_x. The 8 weight scales (f16, one per block) are gathered with
// VPINSRW and widened with one VCVTPH2PS; the activation scales come as f32
// from aux, so no scalar f16 conversion is left in the loop.
//
// Register use in the grouped loops:
//   DX  dst pointer        R10 rows left      R11 weight row   R12 stride
//   R13 groups per row     SI  weight block   DI  x block      R8 aux
//   CX  groups left        Y0-Y7 block sums   Y8-Y12 scratch
//   Y13 row accumulator    Y14 int16 ones     Y15 byte mask 0x0F

// REDUCE8 leaves in Y0 lane i the sum of the 8 int32 lanes of Yi (i < 8).
#define REDUCE8 \
	VPHADDD Y1, Y0, Y0; \
	VPHADDD Y3, Y2, Y2; \
	VPHADDD Y5, Y4, Y4; \
	VPHADDD Y7, Y6, Y6; \
	VPHADDD Y2, Y0, Y0; \
	VPHADDD Y6, Y4, Y4; \
	VPERM2I128 $0x20, Y4, Y0, Y1; \
	VPERM2I128 $0x31, Y4, Y0, Y2; \
	VPADDD Y2, Y1, Y0

// GATHER8H loads the 8 f16 values at off + i*bl (SI) (i < 8) as 8 floats in Y.
#define GATHER8H(off, bl, X, Y) \
	MOVWLZX off(SI), AX; \
	VMOVD AX, X; \
	VPINSRW $1, (off+bl)(SI), X, X; \
	VPINSRW $2, (off+2*bl)(SI), X, X; \
	VPINSRW $3, (off+3*bl)(SI), X, X; \
	VPINSRW $4, (off+4*bl)(SI), X, X; \
	VPINSRW $5, (off+5*bl)(SI), X, X; \
	VPINSRW $6, (off+6*bl)(SI), X, X; \
	VPINSRW $7, (off+7*bl)(SI), X, X; \
	VCVTPH2PS X, Y

// HSUMSTORE adds the 8 lanes of Y13 and stores the sum at (DX).
#define HSUMSTORE \
	VEXTRACTF128 $1, Y13, X1; \
	VADDPS X1, X13, X13; \
	VHADDPS X13, X13, X13; \
	VHADDPS X13, X13, X13; \
	VMOVSS X13, (DX)

// ROWSETUP loads the arguments shared by the grouped loops and the ones vector.
#define ROWSETUP \
	MOVQ dst_base+0(FP), DX; \
	MOVQ dst_len+8(FP), R10; \
	MOVQ w_base+24(FP), R11; \
	MOVQ stride+48(FP), R12; \
	MOVQ groups+104(FP), R13; \
	MOVL $0x00010001, AX; \
	VMOVD AX, X14; \
	VPBROADCASTD X14, Y14

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

// ROWSTART points SI/DI/R8/CX at the start of the row and clears the sum.
#define ROWSTART \
	MOVQ R11, SI; \
	MOVQ x_base+56(FP), DI; \
	MOVQ aux_base+80(FP), R8; \
	MOVQ R13, CX; \
	VXORPS Y13, Y13, Y13

// Q8_0 block at weight offset woff, x offset xoff: R = 8 int32 partial sums
// of w·x. Signed × signed goes through VPMADDUBSW as |w| × (x·sign(w)).
#define Q8_0_BLOCK(woff, xoff, R) \
	VMOVDQU woff(SI), Y8; \
	VMOVDQU xoff(DI), Y9; \
	VPSIGNB Y8, Y9, Y9; \
	VPABSB Y8, Y8; \
	VPMADDUBSW Y9, Y8, Y8; \
	VPMADDWD Y14, Y8, R

// func dotQ8_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ8_0Rows(SB), NOSPLIT, $0-112
	ROWSETUP
	TESTQ R10, R10
	JZ    q80done

q80row:
	ROWSTART
	TESTQ CX, CX
	JZ    q80rowdone

q80group:
	Q8_0_BLOCK(2, 2, Y0)
	Q8_0_BLOCK(36, 36, Y1)
	Q8_0_BLOCK(70, 70, Y2)
	Q8_0_BLOCK(104, 104, Y3)
	Q8_0_BLOCK(138, 138, Y4)
	Q8_0_BLOCK(172, 172, Y5)
	Q8_0_BLOCK(206, 206, Y6)
	Q8_0_BLOCK(240, 240, Y7)
	REDUCE8
	GATHER8H(0, 34, X10, Y10)
	VMULPS      (R8), Y10, Y10
	VCVTDQ2PS   Y0, Y0
	VFMADD231PS Y10, Y0, Y13
	ADDQ        $272, SI
	ADDQ        $272, DI
	ADDQ        $64, R8
	DECQ        CX
	JNZ         q80group

q80rowdone:
	HSUMSTORE
	ADDQ $4, DX
	ADDQ R12, R11
	DECQ R10
	JNZ  q80row

q80done:
	VZEROUPPER
	RET

// The 4- and 5-bit formats read activations in a pair layout (prepPairs):
// for blocks A, B the 64 bytes are A[0:16] B[0:16] A[16:32] B[16:32], so
// the low nibbles of A and B (loaded into the two 128-bit lanes of one
// register) meet their activations in one 32-byte load and the high
// nibbles in the next. A pair's sums come out as 4 lanes for A and 4 for B,
// and REDUCE4 leaves the 8 block sums in the lane order 0 2 4 6 1 3 5 7,
// which aux and the scale gathers follow.

// REDUCE4 leaves in Y0 the block sums of the pairs Y0..Y3 in lane order
// 0 2 4 6 1 3 5 7.
#define REDUCE4 \
	VPHADDD Y1, Y0, Y0; \
	VPHADDD Y3, Y2, Y2; \
	VPHADDD Y2, Y0, Y0

// GATHER8HP is GATHER8H in the pair lane order 0 2 4 6 1 3 5 7.
#define GATHER8HP(off, bl, X, Y) \
	MOVWLZX off(SI), AX; \
	VMOVD AX, X; \
	VPINSRW $1, (off+2*bl)(SI), X, X; \
	VPINSRW $2, (off+4*bl)(SI), X, X; \
	VPINSRW $3, (off+6*bl)(SI), X, X; \
	VPINSRW $4, (off+bl)(SI), X, X; \
	VPINSRW $5, (off+3*bl)(SI), X, X; \
	VPINSRW $6, (off+5*bl)(SI), X, X; \
	VPINSRW $7, (off+7*bl)(SI), X, X; \
	VCVTPH2PS X, Y

// Q4_0 pair: blocks at woff and woff+18 (nibbles 2 bytes in), activations
// at xoff in the pair layout. Nibbles are used unsigned (0..15); the -8
// offset is applied after the reduction as -8·Σq_x.
#define Q4_0_PAIR(woff, xoff, R) \
	VMOVDQU     (woff+2)(SI), X8; \
	VINSERTI128 $1, (woff+20)(SI), Y8, Y8; \
	VPSRLW      $4, Y8, Y9; \
	VPAND       Y15, Y8, Y8; \
	VPAND       Y15, Y9, Y9; \
	VPMADDUBSW  xoff(DI), Y8, Y8; \
	VPMADDUBSW  (xoff+32)(DI), Y9, Y9; \
	VPADDW      Y9, Y8, Y8; \
	VPMADDWD    Y14, Y8, R

// func dotQ4_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_0Rows(SB), NOSPLIT, $0-112
	ROWSETUP
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	TESTQ        R10, R10
	JZ           q40done

q40row:
	ROWSTART
	TESTQ CX, CX
	JZ    q40rowdone

q40group:
	Q4_0_PAIR(0, 0, Y0)
	Q4_0_PAIR(36, 64, Y1)
	Q4_0_PAIR(72, 128, Y2)
	Q4_0_PAIR(108, 192, Y3)
	REDUCE4
	VMOVDQU     32(R8), Y1
	VPSLLD      $3, Y1, Y1
	VPSUBD      Y1, Y0, Y0
	GATHER8HP(0, 18, X10, Y10)
	VMULPS      (R8), Y10, Y10
	VCVTDQ2PS   Y0, Y0
	VFMADD231PS Y10, Y0, Y13
	ADDQ        $144, SI
	ADDQ        $256, DI
	ADDQ        $64, R8
	DECQ        CX
	JNZ         q40group

q40rowdone:
	HSUMSTORE
	ADDQ $4, DX
	ADDQ R12, R11
	DECQ R10
	JNZ  q40row

q40done:
	VZEROUPPER
	RET

// GROUPEND applies d_w·d_x (weight scales gathered in pair order from
// SI+0, blocks bl bytes apart; activation scales at 0(R8)) to the block
// sums in Y0 and adds them to Y13.
#define GROUPEND(bl) \
	GATHER8HP(0, bl, X10, Y10); \
	VMULPS      (R8), Y10, Y10; \
	VCVTDQ2PS   Y0, Y0; \
	VFMADD231PS Y10, Y0, Y13

// MINTERM adds m_w·s_x: weight minimums gathered in pair order from SI+2,
// activation s at 32(R8).
#define MINTERM(bl) \
	GATHER8HP(2, bl, X11, Y11); \
	VFMADD231PS 32(R8), Y11, Y13

// Q4_1 pair: as Q4_0_PAIR with nibbles 4 bytes into 20-byte blocks.
#define Q4_1_PAIR(woff, xoff, R) \
	VMOVDQU     (woff+4)(SI), X8; \
	VINSERTI128 $1, (woff+24)(SI), Y8, Y8; \
	VPSRLW      $4, Y8, Y9; \
	VPAND       Y15, Y8, Y8; \
	VPAND       Y15, Y9, Y9; \
	VPMADDUBSW  xoff(DI), Y8, Y8; \
	VPMADDUBSW  (xoff+32)(DI), Y9, Y9; \
	VPADDW      Y9, Y8, Y8; \
	VPMADDWD    Y14, Y8, R

// PAIRSETUP is ROWSETUP plus the 0x0F byte mask in Y15.
#define PAIRSETUP \
	ROWSETUP; \
	MOVL         $0x0f0f0f0f, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

// func dotQ4_1Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_1Rows(SB), NOSPLIT, $0-112
	PAIRSETUP
	TESTQ R10, R10
	JZ    q41done

q41row:
	ROWSTART
	TESTQ CX, CX
	JZ    q41rowdone

q41group:
	Q4_1_PAIR(0, 0, Y0)
	Q4_1_PAIR(40, 64, Y1)
	Q4_1_PAIR(80, 128, Y2)
	Q4_1_PAIR(120, 192, Y3)
	REDUCE4
	GROUPEND(20)
	MINTERM(20)
	ADDQ $160, SI
	ADDQ $256, DI
	ADDQ $64, R8
	DECQ CX
	JNZ  q41group

q41rowdone:
	HSUMSTORE
	ADDQ $4, DX
	ADDQ R12, R11
	DECQ R10
	JNZ  q41row

q41done:
	VZEROUPPER
	RET

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

// Q5SETUP is PAIRSETUP plus the fifth-bit constants: Y4 q5lo, Y5 q5hi,
// Y6 q5bit, Y7 bytes of 0x10.
#define Q5SETUP \
	PAIRSETUP; \
	VMOVDQU      q5lo<>(SB), Y4; \
	VMOVDQU      q5hi<>(SB), Y5; \
	VMOVDQU      q5bit<>(SB), Y6; \
	MOVL         $0x10101010, AX; \
	VMOVD        AX, X7; \
	VPBROADCASTD X7, Y7

// Q5_PAIR: blocks of bl bytes at woff and woff+bl with qh at +qh and the
// nibbles at +qs; the 5-bit quants are used unsigned (0..31).
#define Q5_PAIR(woff, bl, qh, qs, xoff, R) \
	VMOVD        (woff+qh)(SI), X10; \
	VPINSRD      $1, (woff+bl+qh)(SI), X10, X10; \
	VPBROADCASTQ X10, Y10; \
	VPSHUFB      Y4, Y10, Y11; \
	VPSHUFB      Y5, Y10, Y10; \
	VPAND        Y6, Y11, Y11; \
	VPCMPEQB     Y6, Y11, Y11; \
	VPAND        Y7, Y11, Y11; \
	VPAND        Y6, Y10, Y10; \
	VPCMPEQB     Y6, Y10, Y10; \
	VPAND        Y7, Y10, Y10; \
	VMOVDQU      (woff+qs)(SI), X8; \
	VINSERTI128  $1, (woff+bl+qs)(SI), Y8, Y8; \
	VPSRLW       $4, Y8, Y9; \
	VPAND        Y15, Y8, Y8; \
	VPAND        Y15, Y9, Y9; \
	VPOR         Y11, Y8, Y8; \
	VPOR         Y10, Y9, Y9; \
	VPMADDUBSW   xoff(DI), Y8, Y8; \
	VPMADDUBSW   (xoff+32)(DI), Y9, Y9; \
	VPADDW       Y9, Y8, Y8; \
	VPMADDWD     Y14, Y8, R

// func dotQ5_0Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_0Rows(SB), NOSPLIT, $0-112
	Q5SETUP
	TESTQ R10, R10
	JZ    q50done

q50row:
	ROWSTART
	TESTQ CX, CX
	JZ    q50rowdone

q50group:
	Q5_PAIR(0, 22, 2, 6, 0, Y0)
	Q5_PAIR(44, 22, 2, 6, 64, Y1)
	Q5_PAIR(88, 22, 2, 6, 128, Y2)
	Q5_PAIR(132, 22, 2, 6, 192, Y3)
	REDUCE4
	VMOVDQU 32(R8), Y1
	VPSLLD  $4, Y1, Y1
	VPSUBD  Y1, Y0, Y0
	GROUPEND(22)
	ADDQ    $176, SI
	ADDQ    $256, DI
	ADDQ    $64, R8
	DECQ    CX
	JNZ     q50group

q50rowdone:
	HSUMSTORE
	ADDQ $4, DX
	ADDQ R12, R11
	DECQ R10
	JNZ  q50row

q50done:
	VZEROUPPER
	RET

// func dotQ5_1Rows(dst []float32, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_1Rows(SB), NOSPLIT, $0-112
	Q5SETUP
	TESTQ R10, R10
	JZ    q51done

q51row:
	ROWSTART
	TESTQ CX, CX
	JZ    q51rowdone

q51group:
	Q5_PAIR(0, 24, 4, 8, 0, Y0)
	Q5_PAIR(48, 24, 4, 8, 64, Y1)
	Q5_PAIR(96, 24, 4, 8, 128, Y2)
	Q5_PAIR(144, 24, 4, 8, 192, Y3)
	REDUCE4
	GROUPEND(24)
	MINTERM(24)
	ADDQ $192, SI
	ADDQ $256, DI
	ADDQ $64, R8
	DECQ CX
	JNZ  q51group

q51rowdone:
	HSUMSTORE
	ADDQ $4, DX
	ADDQ R12, R11
	DECQ R10
	JNZ  q51row

q51done:
	VZEROUPPER
	RET

// Batched loops: one weight row against 4 activation rows, so the weight
// decoding (nibble unpacking, scale gathering) is shared by the 4. They go
// 4 blocks at a time: per activation row, the two pairs' int32 vectors are
// combined with one VPHADDD into [A A C C | B B D D] (two lanes per block)
// and scaled by a vector of the same lane pattern, so no further reduction
// is needed. The batch layout (packQ4Batch) puts, per 4-block group, the
// 4 rows' pair-layout quants (128 bytes each) one after the other, and per
// row 8 activation scales and 8 int32 corrections in that lane pattern.

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
	VPBROADCASTW off(SI), X; \
	VPINSRW      $2, (off+2*bl)(SI), X, X; \
	VPINSRW      $3, (off+2*bl)(SI), X, X; \
	VPINSRW      $4, (off+bl)(SI), X, X; \
	VPINSRW      $5, (off+bl)(SI), X, X; \
	VPINSRW      $6, (off+3*bl)(SI), X, X; \
	VPINSRW      $7, (off+3*bl)(SI), X, X; \
	VCVTPH2PS    X, Y

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

// func dotQ8_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ8_0Rows4(SB), NOSPLIT, $0-128
	BATCH4SETUP
	TESTQ R10, R10
	JZ    q80b4done

q80b4row:
	BATCH4ROW
	TESTQ CX, CX
	JZ    q80b4rowdone

q80b4group:
	VPABSB      2(SI), Y4
	VPABSB      36(SI), Y5
	VPABSB      70(SI), Y6
	VPABSB      104(SI), Y7
	// Weight scales in lane order A B C D A B C D.
	MOVWLZX     0(SI), AX
	VMOVD       AX, X8
	VPINSRW     $1, 34(SI), X8, X8
	VPINSRW     $2, 68(SI), X8, X8
	VPINSRW     $3, 102(SI), X8, X8
	VPUNPCKLQDQ X8, X8, X8
	VCVTPH2PS   X8, Y8
	Q8B_ROW(0, Y0)
	Q8B_ROW(1, Y1)
	Q8B_ROW(2, Y2)
	Q8B_ROW(3, Y3)
	ADDQ        $136, SI
	ADDQ        $512, DI
	ADDQ        $128, R8
	DECQ        CX
	JNZ         q80b4group

q80b4rowdone:
	STORE4
	ADDQ R12, R11
	DECQ R10
	JNZ  q80b4row

q80b4done:
	VZEROUPPER
	RET

// Q4B_ACCM is Q4B_ACC for the _1 types: no offset correction; the weight
// minimums (Y12, lanes A A C C B B D D) times the activation sums s (aux,
// lanes sA 0 sC 0 sB 0 sD 0) are added once per block.
#define Q4B_ACCM(i, ACC) \
	VCVTDQ2PS   Y9, Y9; \
	VMULPS      (64*i)(R8), Y8, Y10; \
	VFMADD231PS Y10, Y9, ACC; \
	VFMADD231PS (64*i+32)(R8), Y12, ACC

// Q4B_ROWS runs the 4 activation rows with accumulate macro ACCM.
#define Q4B_ROWS(ACCM) \
	Q4B_SUMS(0); \
	ACCM(0, Y0); \
	Q4B_SUMS(1); \
	ACCM(1, Y1); \
	Q4B_SUMS(2); \
	ACCM(2, Y2); \
	Q4B_SUMS(3); \
	ACCM(3, Y3)

// func dotQ4_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_0Rows4(SB), NOSPLIT, $0-128
	BATCH4SETUP
	TESTQ R10, R10
	JZ    q40b4done

q40b4row:
	BATCH4ROW
	TESTQ CX, CX
	JZ    q40b4rowdone

q40b4group:
	UNPACK4(2, 18)
	SCALES4(0, 18, X8, Y8)
	Q4B_ROWS(Q4B_ACC)
	ADDQ $72, SI
	ADDQ $512, DI
	ADDQ $256, R8
	DECQ CX
	JNZ  q40b4group

q40b4rowdone:
	STORE4
	ADDQ R12, R11
	DECQ R10
	JNZ  q40b4row

q40b4done:
	VZEROUPPER
	RET

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

// func dotQ4_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ4_1Rows4(SB), NOSPLIT, $0-128
	BATCH4SETUP
	TESTQ R10, R10
	JZ    q41b4done

q41b4row:
	BATCH4ROW
	TESTQ CX, CX
	JZ    q41b4rowdone

q41b4group:
	UNPACK4(4, 20)
	SCALES4(0, 20, X8, Y8)
	SCALES4(2, 20, X12, Y12)
	Q4B_ROWS(Q4B_ACCM)
	ADDQ $80, SI
	ADDQ $512, DI
	ADDQ $256, R8
	DECQ CX
	JNZ  q41b4group

q41b4rowdone:
	STORE4
	ADDQ R12, R11
	DECQ R10
	JNZ  q41b4row

q41b4done:
	VZEROUPPER
	RET

// func dotQ5_0Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_0Rows4(SB), NOSPLIT, $0-128
	BATCH4SETUP
	TESTQ R10, R10
	JZ    q50b4done

q50b4row:
	BATCH4ROW
	TESTQ CX, CX
	JZ    q50b4rowdone

q50b4group:
	Q5B_PAIR(0, 22, 2, 6, Y4, X4, Y5)
	Q5B_PAIR(44, 22, 2, 6, Y6, X6, Y7)
	SCALES4(0, 22, X8, Y8)
	Q4B_ROWS(Q4B_ACC)
	ADDQ $88, SI
	ADDQ $512, DI
	ADDQ $256, R8
	DECQ CX
	JNZ  q50b4group

q50b4rowdone:
	STORE4
	ADDQ R12, R11
	DECQ R10
	JNZ  q50b4row

q50b4done:
	VZEROUPPER
	RET

// func dotQ5_1Rows4(dst []float32, m int, rows int, w []byte, stride int, x []byte, aux []float32, groups int)
TEXT ·dotQ5_1Rows4(SB), NOSPLIT, $0-128
	BATCH4SETUP
	TESTQ R10, R10
	JZ    q51b4done

q51b4row:
	BATCH4ROW
	TESTQ CX, CX
	JZ    q51b4rowdone

q51b4group:
	Q5B_PAIR(0, 24, 4, 8, Y4, X4, Y5)
	Q5B_PAIR(48, 24, 4, 8, Y6, X6, Y7)
	SCALES4(0, 24, X8, Y8)
	SCALES4(2, 24, X12, Y12)
	Q4B_ROWS(Q4B_ACCM)
	ADDQ $96, SI
	ADDQ $512, DI
	ADDQ $256, R8
	DECQ CX
	JNZ  q51b4group

q51b4rowdone:
	STORE4
	ADDQ R12, R11
	DECQ R10
	JNZ  q51b4row

q51b4done:
	VZEROUPPER
	RET
