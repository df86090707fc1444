// embedding.cu: dst[i, :] = row ids[i] of a table of any GGML type,
// dequantized exactly as package ggml does (dq<T> in quant.h).
#include "common.h"
#include "quant.h"

template <int T>
__device__ void embed(float* __restrict__ dst, const u8* __restrict__ table, const u8* __restrict__ aux,
                      i64 rowBytes, const int* __restrict__ ids, int n, int d) {
    for (int i = blockIdx.y; i < n; i += gridDim.y) {
        const i64 id = ids[i];
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < d; c += gridDim.x * blockDim.x)
            dst[(i64)i * d + c] = dq<T>(table, aux, id, c, rowBytes, d);
    }
}

#define EMBED(TNAME, T)                                                                                        \
    extern "C" __global__ void embedding_##TNAME(float* dst, const u8* table, const u8* aux, i64 rowBytes,     \
                                                 const int* ids, int n, int d) {                              \
        embed<T>(dst, table, aux, rowBytes, ids, n, d);                                                        \
    }

EMBED(f32, T_F32)
EMBED(f16, T_F16)
EMBED(bf16, T_BF16)
EMBED(q4_0s, T_Q4_0S)
EMBED(q8_0s, T_Q8_0S)
EMBED(q4_1, T_Q4_1)
EMBED(q5_0, T_Q5_0)
EMBED(q5_1, T_Q5_1)
EMBED(q8_1, T_Q8_1)
EMBED(q2_k, T_Q2_K)
EMBED(q3_k, T_Q3_K)
EMBED(q4_k, T_Q4_K)
EMBED(q5_k, T_Q5_K)
EMBED(q6_k, T_Q6_K)
EMBED(q8_k, T_Q8_K)

// dequant_rows writes rows [0, rows) of a weight as F32 (used to keep an F32
// copy of small vectors such as norm weights stored as F16).
#define DEQUANT(TNAME, T)                                                                                        \
    extern "C" __global__ void dequant_##TNAME(float* dst, const u8* w, const u8* aux, i64 rowBytes, int rows, \
                                               int d) {                                                       \
        const i64 n = (i64)rows * d;                                                                           \
        for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (i64)gridDim.x * blockDim.x)      \
            dst[e] = dq<T>(w, aux, e / d, (int)(e % d), rowBytes, d);                                          \
    }

DEQUANT(f16, T_F16)
DEQUANT(bf16, T_BF16)
DEQUANT(q4_0s, T_Q4_0S)
DEQUANT(q8_0s, T_Q8_0S)
DEQUANT(q4_1, T_Q4_1)
DEQUANT(q5_0, T_Q5_0)
DEQUANT(q5_1, T_Q5_1)
DEQUANT(q8_1, T_Q8_1)
DEQUANT(q2_k, T_Q2_K)
DEQUANT(q3_k, T_Q3_K)
DEQUANT(q4_k, T_Q4_K)
DEQUANT(q5_k, T_Q5_K)
DEQUANT(q6_k, T_Q6_K)
DEQUANT(q8_k, T_Q8_K)
