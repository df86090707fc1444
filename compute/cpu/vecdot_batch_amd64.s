//go:build amd64 && !purego

#include "textflag.h"

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
	Q4B_SUMS(0)
	Q4B_ACC(0, Y0)
	Q4B_SUMS(1)
	Q4B_ACC(1, Y1)
	Q4B_SUMS(2)
	Q4B_ACC(2, Y2)
	Q4B_SUMS(3)
	Q4B_ACC(3, Y3)
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
