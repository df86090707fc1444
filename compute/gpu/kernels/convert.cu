// convert.cu: operands for the tensor-core (cuBLAS) matmul of large batches.
//
// tohalf_*: a whole weight [rows, d] of any quantized layout to row-major
// f16, element (r, c) = dq<T>(r, c) rounded to f16 (|v| > 65504 would become
// infinity; GGML weights are far below that). Each thread writes 8
// consecutive elements (one 16-byte store); every quantized type's block is
// a multiple of 8 elements, so d % 8 == 0.
//
// f32_to_f16 / f32_to_bf16: activations, rounded to nearest even.
#include "common.h"
#include "quant.h"

template <int T>
__device__ void to_half(u16* __restrict__ dst, const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                        int rows, int d) {
    const int d8 = d >> 3;
    for (int row = blockIdx.y; row < rows; row += gridDim.y) {
        for (int c8 = blockIdx.x * blockDim.x + threadIdx.x; c8 < d8; c8 += gridDim.x * blockDim.x) {
            // col is a multiple of 8, so col + j stays in col's block and the
            // compiler can share the block's scale loads across the 8 calls.
            const int col = c8 << 3;
            u32 p[4];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const u32 lo = float_to_half(dq<T>(w, aux, row, col | (2 * j), rowBytes, d));
                const u32 hi = float_to_half(dq<T>(w, aux, row, col | (2 * j + 1), rowBytes, d));
                p[j] = lo | (hi << 16);
            }
            *(uint4*)(dst + (i64)row * d + col) = make_uint4(p[0], p[1], p[2], p[3]);
        }
    }
}

#define TOHALF(TNAME, T)                                                                                     \
    extern "C" __global__ void __launch_bounds__(256)                                                        \
        tohalf_##TNAME(u16* dst, const u8* w, const u8* aux, i64 rowBytes, int rows, int d) {                \
        to_half<T>(dst, w, aux, rowBytes, rows, d);                                                          \
    }

TOHALF(q4_0s, T_Q4_0S)
TOHALF(q8_0s, T_Q8_0S)
TOHALF(q4_1, T_Q4_1)
TOHALF(q5_0, T_Q5_0)
TOHALF(q5_1, T_Q5_1)
TOHALF(q8_1, T_Q8_1)
TOHALF(q2_k, T_Q2_K)
TOHALF(q3_k, T_Q3_K)
TOHALF(q4_k, T_Q4_K)
TOHALF(q5_k, T_Q5_K)
TOHALF(q6_k, T_Q6_K)
TOHALF(q8_k, T_Q8_K)

extern "C" __global__ void f32_to_f16(u16* __restrict__ dst, const float* __restrict__ src, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        dst[i] = float_to_half(src[i]);
}

extern "C" __global__ void f32_to_bf16(u16* __restrict__ dst, const float* __restrict__ src, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        dst[i] = float_to_bf16(src[i]);
}
