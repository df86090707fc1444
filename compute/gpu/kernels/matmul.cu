// matmul.cu: y[n, m] = x[n, k] · w[m, k]ᵀ for weights of any GGML type.
//
// matvec_*: small n (decode). One warp per weight row; the lanes stride over
// the row's blocks, so each weight byte is read once (wide, coalesced loads)
// for all n <= NT token rows at once; partial sums meet by warp shuffles.
// Float accumulation. x rows past n are clamped to row n-1 and their sums
// dropped, so no lane ever branches on the token count.
//
// gemm_*: larger n. 64x64 output tiles, weights dequantized into shared
// memory with dq<T> (any type), float FMA, 4x4 outputs per thread.
#include "common.h"
#include "quant.h"
#include "rf_fuse.h"

#define MV_WARPS 4  // warps (rows) per block

// xrow returns token t's activation row, clamped to the last valid row.
__device__ __forceinline__ const float* xrow(const float* x, int t, int n, int k) {
    return x + (i64)min(t, n - 1) * k;
}

template <int NT>
__device__ __forceinline__ void mv_store(float* y, const float* acc, int row, int m, int n) {
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float s = warp_sum(acc[t]);
        if (threadIdx.x % WARP_SIZE == 0 && t < n) y[(i64)t * m + row] = s;
    }
}

#define MV_PROLOGUE                                                 \
    rf_pdl_entry();                                                 \
    const int row = blk * MV_WARPS + threadIdx.x / WARP_SIZE;       \
    const int lane = threadIdx.x % WARP_SIZE;                       \
    if (row >= m) return;                                           \
    float acc[NT];                                                  \
    _Pragma("unroll") for (int t = 0; t < NT; t++) acc[t] = 0.0f;

// MV_PROLOGUE_PF is MV_PROLOGUE that first, when pf != 0, prefetches the
// block's weight rows (ESIZE bytes an element, a request every pf bytes)
// into L2 while the previous kernel may still run (rf_fuse.h).
#define MV_PROLOGUE_PF(ESIZE)                                                                              \
    rf_pdl_launch();                                                                                       \
    if (pf)                                                                                                \
        rf_prefetch_l2(w + (i64)blk * MV_WARPS * k * (ESIZE),                                              \
                       (i64)min(MV_WARPS, m - blk * MV_WARPS) * k * (ESIZE), pf);                          \
    rf_pdl_wait();                                                                                         \
    const int row = blk * MV_WARPS + threadIdx.x / WARP_SIZE;                                              \
    const int lane = threadIdx.x % WARP_SIZE;                                                              \
    if (row >= m) return;                                                                                  \
    float acc[NT];                                                                                         \
    _Pragma("unroll") for (int t = 0; t < NT; t++) acc[t] = 0.0f;

// F32 weights, k % 4 == 0: 16-byte loads of weights and activations.
template <int NT>
__device__ void mv_f32(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int m, int k, int n,
                       int blk, int pf) {
    MV_PROLOGUE_PF(4)
    const float4* wr = (const float4*)(w + (i64)row * k * 4);
    const int nc = k >> 2;
#pragma unroll 4
    for (int c = lane; c < nc; c += WARP_SIZE) {
        const float4 wv = wr[c];
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float4 xv = ((const float4*)xrow(x, t, n, k))[c];
            acc[t] += wv.x * xv.x + wv.y * xv.y + wv.z * xv.z + wv.w * xv.w;
        }
    }
    mv_store<NT>(y, acc, row, m, n);
}

// F16/BF16 weights, k % 8 == 0: one 16-byte load is 8 weights.
template <int NT, bool BF>
__device__ void mv_f16(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int m, int k, int n,
                       int blk, int pf) {
    MV_PROLOGUE_PF(2)
    const uint4* wr = (const uint4*)(w + (i64)row * k * 2);
    const int nc = k >> 3;
#pragma unroll 2
    for (int c = lane; c < nc; c += WARP_SIZE) {
        const uint4 wv = wr[c];
        const u32 ww[4] = {wv.x, wv.y, wv.z, wv.w};
        float wf[8];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (BF) {
                wf[2 * i] = __uint_as_float(ww[i] << 16);
                wf[2 * i + 1] = __uint_as_float(ww[i] & 0xffff0000u);
            } else {
                wf[2 * i] = half_to_float((u16)(ww[i] & 0xffff));
                wf[2 * i + 1] = half_to_float((u16)(ww[i] >> 16));
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float4* xr = (const float4*)xrow(x, t, n, k) + 2 * c;
            const float4 a = xr[0], b = xr[1];
            acc[t] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w +
                      wf[4] * b.x + wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
        }
    }
    mv_store<NT>(y, acc, row, m, n);
}

// Any type, one element at a time through dq<T> (lanes over columns).
template <int T, int NT>
__device__ void mv_generic(const u8* __restrict__ w, const u8* __restrict__ aux, const float* __restrict__ x,
                           float* __restrict__ y, int m, int k, int n, i64 rowBytes) {
    const int blk = blockIdx.x;
    MV_PROLOGUE
#pragma unroll 4
    for (int c = lane; c < k; c += WARP_SIZE) {
        const float wv = dq<T>(w, aux, row, c, rowBytes, k);
#pragma unroll
        for (int t = 0; t < NT; t++) acc[t] += wv * xrow(x, t, n, k)[c];
    }
    mv_store<NT>(y, acc, row, m, n);
}

#define MV_ARGS \
    const u8 *__restrict__ w, const u8 *__restrict__ aux, i64 rowBytes, const float *__restrict__ x, float *__restrict__ y, int m, int k, int n
#define MV_BOUNDS __launch_bounds__(MV_WARPS * WARP_SIZE)

#define MV_FAST(NT)                                                                                                      \
    extern "C" __global__ void MV_BOUNDS matvec_f32_##NT(MV_ARGS) { mv_f32<NT>(w, x, y, m, k, n, blockIdx.x, 0); }                  \
    extern "C" __global__ void MV_BOUNDS matvec_f16_##NT(MV_ARGS) { mv_f16<NT, false>(w, x, y, m, k, n, blockIdx.x, 0); }           \
    extern "C" __global__ void MV_BOUNDS matvec_bf16_##NT(MV_ARGS) { mv_f16<NT, true>(w, x, y, m, k, n, blockIdx.x, 0); }           \
    extern "C" __global__ void MV_BOUNDS matvecm_f32_##NT(MVM_ARGS) { MVM_SELECT mv_f32<NT>(w, x, y, m, k, n, blk, pf); }           \
    extern "C" __global__ void MV_BOUNDS matvecm_f16_##NT(MVM_ARGS) { MVM_SELECT mv_f16<NT, false>(w, x, y, m, k, n, blk, pf); }    \
    extern "C" __global__ void MV_BOUNDS matvecm_bf16_##NT(MVM_ARGS) { MVM_SELECT mv_f16<NT, true>(w, x, y, m, k, n, blk, pf); }

// matvecm_*: up to three float weights that share x (Q, K, V; gate, up) in
// one launch: blocks [0, nb0) do weight 0, the next nb1 weight 1, the rest
// weight 2 (the argument order of mmvq.cu's kernels).
#define MVM_ARGS                                                                                                    \
    const u8 *w0, const u8 *a0, i64 rb0, float *y0, int m0, int nb0, const u8 *w1, const u8 *a1, i64 rb1, float *y1, \
        int m1, int nb1, const u8 *w2, const u8 *a2, i64 rb2, float *y2, int m2, const float *__restrict__ x, int k, int n, \
        int pf
#define MVM_SELECT                                                    \
    int blk = blockIdx.x;                                             \
    const u8* w = w0;                                                 \
    float* y = y0;                                                    \
    int m = m0;                                                       \
    if (blk >= nb0 + nb1) {                                           \
        w = w2, y = y2, m = m2, blk -= nb0 + nb1;                     \
    } else if (blk >= nb0) {                                          \
        w = w1, y = y1, m = m1, blk -= nb0;                           \
    }

MV_FAST(1)
MV_FAST(2)
MV_FAST(4)
MV_FAST(8)

// Quantized matrix-vector: a block of MQ_WARPS warps owns R weight rows; its
// threads walk the rows' k dimension together in "items" of 8 or 16
// elements, lane after lane, so that weights and activations are read with
// coalesced loads (consecutive lanes, consecutive addresses). One item's
// activations are loaded once and used for all R rows (fewer activation
// bytes per weight byte: they come from L1/L2 but their load bandwidth is
// what limits these kernels). Per-warp sums meet in shared memory.
#define MQ_WARPS 4

template <int T>
struct QItem;

// scale_min_k4_regs is get_scale_min_k4 on the 12 scale bytes held in three
// words (a run-time index into a byte array would go to local memory).
__device__ __forceinline__ void scale_min_k4_regs(int j, u32 s0, u32 s1, u32 s2, int* sc, int* m) {
    if (j < 4) {
        *sc = (s0 >> (8 * j)) & 63;
        *m = (s1 >> (8 * j)) & 63;
    } else {
        const int sh = 8 * (j - 4);
        const u32 b8 = (s2 >> sh) & 0xff, b0 = (s0 >> sh) & 0xff, b4 = (s1 >> sh) & 0xff;
        *sc = (b8 & 0x0f) | ((b0 >> 6) << 4);
        *m = (b8 >> 4) | ((b4 >> 6) << 4);
    }
}

// Q4_0 split: item = two 32-bit words (one 8-byte load) of a block's 16
// quant bytes, h = it&1: elements 8h..8h+7 (low nibbles) and 16+8h..16+8h+7
// (high nibbles) of block it/2.
template <>
struct QItem<T_Q4_0S> {
    static constexpr int E = 16;
    static __device__ __forceinline__ int items(int k) { return k >> 4; }
    template <int NT>
    static __device__ __forceinline__ void load_x(const float* const* xr, int it, float (*xv)[16]) {
        const int base = (it >> 1) * 32 + (it & 1) * 8;
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float4 a = *(const float4*)(xr[t] + base + (i & 1) * 4 + (i >> 1) * 16);
                xv[t][4 * i] = a.x, xv[t][4 * i + 1] = a.y, xv[t][4 * i + 2] = a.z, xv[t][4 * i + 3] = a.w;
            }
    }
    struct Prep {};
    template <int R>
    static __device__ __forceinline__ Prep prep(const u8*, i64, int, int, int) { return Prep{}; }
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int r, int k, int it, const Prep&, const float (*xv)[16],
                                               float* acc) {
        const int nb = k >> 5;
        const uint2 q = ((const uint2*)(w + (i64)row * nb * 16))[it];
        const float d = half_to_float(((const u16*)aux)[(i64)row * nb + (it >> 1)]);
        const u32 qq[2] = {q.x, q.y};
        float wf[16];  // [0..7] low nibbles (elements 8h..), [8..15] high (16+8h..)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const u32 lo = qq[i] & 0x0f0f0f0fu, hi = (qq[i] >> 4) & 0x0f0f0f0fu;
#pragma unroll
            for (int e = 0; e < 4; e++) {
                wf[4 * i + e] = byte_as_magic(lo, e) - 8388616.0f;  // 2^23 + 8
                wf[8 + 4 * i + e] = byte_as_magic(hi, e) - 8388616.0f;
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = 0.0f;
#pragma unroll
            for (int e = 0; e < 16; e++) s += wf[e] * xv[t][e];
            acc[t] += d * s;
        }
    }
};

// Q8_0 split: item = 16 consecutive int8 quants (one 16-byte load), half
// it&1 of block it/2.
template <>
struct QItem<T_Q8_0S> {
    static constexpr int E = 16;
    static __device__ __forceinline__ int items(int k) { return k >> 4; }
    template <int NT>
    static __device__ __forceinline__ void load_x(const float* const* xr, int it, float (*xv)[16]) {
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float4 a = *(const float4*)(xr[t] + 16 * it + 4 * i);
                xv[t][4 * i] = a.x, xv[t][4 * i + 1] = a.y, xv[t][4 * i + 2] = a.z, xv[t][4 * i + 3] = a.w;
            }
    }
    struct Prep {};
    template <int R>
    static __device__ __forceinline__ Prep prep(const u8*, i64, int, int, int) { return Prep{}; }
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int r, int k, int it, const Prep&, const float (*xv)[16],
                                               float* acc) {
        const int nb = k >> 5;
        const uint4 q = ((const uint4*)(w + (i64)row * nb * 32))[it];
        const float d = half_to_float(((const u16*)aux)[(i64)row * nb + (it >> 1)]);
        const u32 qq[4] = {q.x ^ 0x80808080u, q.y ^ 0x80808080u, q.z ^ 0x80808080u, q.w ^ 0x80808080u};
        float wf[16];
#pragma unroll
        for (int e = 0; e < 16; e++) wf[e] = byte_as_magic(qq[e >> 2], e & 3) - 8388736.0f;  // 2^23 + 128
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = 0.0f;
#pragma unroll
            for (int e = 0; e < 16; e++) s += wf[e] * xv[t][e];
            acc[t] += d * s;
        }
    }
};

// Pseudo-types: the split layouts read in 8-element items.
#define T_Q4_0S8 1102
#define T_Q8_0S8 1108

// Q4_0 split, 8-element items (for 4 and 8 tokens, where 16-element items
// take too many registers): item = one 32-bit word of a block's 16 quant bytes: elements
// 4w..4w+3 (low nibbles) and 16+4w..16+4w+3 (high nibbles) of block it/4.
template <>
struct QItem<T_Q4_0S8> {
    static constexpr int E = 8;
    static __device__ __forceinline__ int items(int k) { return k >> 3; }
    template <int NT>
    static __device__ __forceinline__ void load_x(const float* const* xr, int it, float (*xv)[8]) {
        const int base = (it >> 2) * 32 + (it & 3) * 4;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float4 a = *(const float4*)(xr[t] + base), b = *(const float4*)(xr[t] + base + 16);
            xv[t][0] = a.x, xv[t][1] = a.y, xv[t][2] = a.z, xv[t][3] = a.w;
            xv[t][4] = b.x, xv[t][5] = b.y, xv[t][6] = b.z, xv[t][7] = b.w;
        }
    }
    struct Prep {};
    template <int R>
    static __device__ __forceinline__ Prep prep(const u8*, i64, int, int, int) { return Prep{}; }
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int r, int k, int it, const Prep&, const float (*xv)[8],
                                               float* acc) {
        const int nb = k >> 5;
        const u32 q = ((const u32*)(w + (i64)row * nb * 16))[it];
        const float d = half_to_float(((const u16*)aux)[(i64)row * nb + (it >> 2)]);
        const u32 lo = q & 0x0f0f0f0fu, hi = (q >> 4) & 0x0f0f0f0fu;
        float wf[8];
#pragma unroll
        for (int b = 0; b < 4; b++) {
            wf[b] = byte_as_magic(lo, b) - 8388616.0f;  // 2^23 + 8
            wf[4 + b] = byte_as_magic(hi, b) - 8388616.0f;
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; e++) s += wf[e] * xv[t][e];
            acc[t] += d * s;
        }
    }
};

// Q8_0 split, 8-element items (4 and 8 tokens): 8 consecutive int8 quants (an 8-byte load).
template <>
struct QItem<T_Q8_0S8> {
    static constexpr int E = 8;
    static __device__ __forceinline__ int items(int k) { return k >> 3; }
    template <int NT>
    static __device__ __forceinline__ void load_x(const float* const* xr, int it, float (*xv)[8]) {
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float4 a = *(const float4*)(xr[t] + 8 * it), b = *(const float4*)(xr[t] + 8 * it + 4);
            xv[t][0] = a.x, xv[t][1] = a.y, xv[t][2] = a.z, xv[t][3] = a.w;
            xv[t][4] = b.x, xv[t][5] = b.y, xv[t][6] = b.z, xv[t][7] = b.w;
        }
    }
    struct Prep {};
    template <int R>
    static __device__ __forceinline__ Prep prep(const u8*, i64, int, int, int) { return Prep{}; }
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int r, int k, int it, const Prep&, const float (*xv)[8],
                                               float* acc) {
        const int nb = k >> 5;
        const uint2 q = ((const uint2*)(w + (i64)row * nb * 32))[it];
        const float d = half_to_float(((const u16*)aux)[(i64)row * nb + (it >> 2)]);
        const u32 q0 = q.x ^ 0x80808080u, q1 = q.y ^ 0x80808080u;  // int8 -> biased uint8
        float wf[8];
#pragma unroll
        for (int b = 0; b < 4; b++) {
            wf[b] = byte_as_magic(q0, b) - 8388736.0f;  // 2^23 + 128
            wf[4 + b] = byte_as_magic(q1, b) - 8388736.0f;
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; e++) s += wf[e] * xv[t][e];
            acc[t] += d * s;
        }
    }
};

// spread4 moves bit i of a 4-bit value to bit 0 of byte i.
__device__ __forceinline__ u32 spread4(u32 b) { return (b * 0x00204081u) & 0x01010101u; }

// Q4_K/Q5_K: item = words 2p, 2p+1 (one 8-byte load) of group g of
// super-block ib (it = 16ib + 4g + p): elements 64g+8p..+7 (low nibbles,
// sub-block 2g) and 64g+32+8p..+7 (high nibbles, sub-block 2g+1). The 4
// lanes of a group need the same two (scale, min) pairs of each row: lane p
// decodes them for rows p and p+4 (prep), the others read them by shuffle.
template <bool Q5>
struct QItemK {
    static constexpr int E = 16;
    static constexpr int BS = Q5 ? 176 : 144;
    static __device__ __forceinline__ int items(int k) { return k >> 4; }
    template <int NT>
    static __device__ __forceinline__ void load_x(const float* const* xr, int it, float (*xv)[16]) {
        const int base = (it >> 4) * 256 + ((it >> 2) & 3) * 64 + (it & 3) * 8;
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float4 a = *(const float4*)(xr[t] + base + (i & 1) * 4 + (i >> 1) * 32);
                xv[t][4 * i] = a.x, xv[t][4 * i + 1] = a.y, xv[t][4 * i + 2] = a.z, xv[t][4 * i + 3] = a.w;
            }
    }
    struct Prep {
        float d1[2], m1[2], d2[2], m2[2];
    };
    template <int R>
    static __device__ __forceinline__ Prep prep(const u8* __restrict__ w, i64 rowBytes, int row0, int m, int it) {
        Prep p;
        const int pl = it & 3, g = (it >> 2) & 3;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            p.d1[h] = p.m1[h] = p.d2[h] = p.m2[h] = 0.f;
            if (4 * h + pl < R) {
                const u8* b = w + (i64)min(row0 + 4 * h + pl, m - 1) * rowBytes + (it >> 4) * BS;
                const u32 dd = *(const u32*)b;
                const u32 s0 = *(const u32*)(b + 4), s1 = *(const u32*)(b + 8), s2 = *(const u32*)(b + 12);
                int sc1, mn1, sc2, mn2;
                scale_min_k4_regs(2 * g, s0, s1, s2, &sc1, &mn1);
                scale_min_k4_regs(2 * g + 1, s0, s1, s2, &sc2, &mn2);
                const float d = half_to_float((u16)(dd & 0xffff)), dmin = half_to_float((u16)(dd >> 16));
                p.d1[h] = d * (float)sc1, p.m1[h] = dmin * (float)mn1;
                p.d2[h] = d * (float)sc2, p.m2[h] = dmin * (float)mn2;
            }
        }
        return p;
    }
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int r, int k, int it, const Prep& p, const float (*xv)[16],
                                               float* acc) {
        const int g = (it >> 2) & 3, pl = it & 3;
        const int src = ((threadIdx.x % WARP_SIZE) & ~3) + (r & 3);  // the lane that decoded row r
        const int h = r >> 2;
        const float d1 = SHFL_IDX(p.d1[h], src), m1 = SHFL_IDX(p.m1[h], src);
        const float d2 = SHFL_IDX(p.d2[h], src), m2 = SHFL_IDX(p.m2[h], src);
        const u8* b = w + (i64)row * rowBytes + (it >> 4) * BS;
        const uint2 q = *(const uint2*)(b + (Q5 ? 48 : 16) + 32 * g + 8 * pl);
        uint2 qh;
        if (Q5) qh = *(const uint2*)(b + 16 + 8 * pl);
        const u32 qq[2] = {q.x, q.y};
        float wl[8], wh[8];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            u32 lo = qq[i] & 0x0f0f0f0fu, hi = (qq[i] >> 4) & 0x0f0f0f0fu;
            if (Q5) {
                // qh[l] holds the fifth bit: bit 2g for low nibbles, 2g+1 for high.
                const u32 hb = i ? qh.y : qh.x;
                lo |= ((hb >> (2 * g)) & 0x01010101u) << 4;
                hi |= ((hb >> (2 * g + 1)) & 0x01010101u) << 4;
            }
#pragma unroll
            for (int e = 0; e < 4; e++) {
                wl[4 * i + e] = byte_as_magic(lo, e) - 8388608.0f;
                wh[4 * i + e] = byte_as_magic(hi, e) - 8388608.0f;
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float ql = 0.f, xl = 0.f, qs = 0.f, xs = 0.f;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                ql += wl[e] * xv[t][e];
                xl += xv[t][e];
                qs += wh[e] * xv[t][8 + e];
                xs += xv[t][8 + e];
            }
            acc[t] += d1 * ql - m1 * xl + d2 * qs - m2 * xs;
        }
    }
};
template <>
struct QItem<T_Q4_K> : QItemK<false> {};
template <>
struct QItem<T_Q5_K> : QItemK<true> {};

// Q4_1, Q5_0, Q5_1: item = 32-bit word w of a block's quants (it = 4b + w):
// elements 4w..4w+3 (low nibbles) and 16+4w..16+4w+3 (high nibbles); the
// Q5 types add a fifth bit from qh (bit j for element j).
template <int T>
struct QItemLegacy {
    static constexpr int E = 8;
    static constexpr int BS = T == T_Q4_1 ? 20 : (T == T_Q5_0 ? 22 : 24);
    static __device__ __forceinline__ int items(int k) { return k >> 3; }
    template <int NT>
    static __device__ __forceinline__ void load_x(const float* const* xr, int it, float (*xv)[8]) {
        const int base = (it >> 2) * 32 + (it & 3) * 4;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float4 a = *(const float4*)(xr[t] + base), b = *(const float4*)(xr[t] + base + 16);
            xv[t][0] = a.x, xv[t][1] = a.y, xv[t][2] = a.z, xv[t][3] = a.w;
            xv[t][4] = b.x, xv[t][5] = b.y, xv[t][6] = b.z, xv[t][7] = b.w;
        }
    }
    struct Prep {};
    template <int R>
    static __device__ __forceinline__ Prep prep(const u8*, i64, int, int, int) { return Prep{}; }
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int r, int k, int it, const Prep&, const float (*xv)[8],
                                               float* acc) {
        const int wd = it & 3;
        const u8* b = w + (i64)row * rowBytes + (it >> 2) * BS;
        float d, mn = 0.f;
        u32 q, lo, hi;
        if (T == T_Q5_0) {  // 2-byte aligned blocks
            d = half_to_float(load_u16(b));
            const u32 qh = load_u32_a2(b + 2);
            q = load_u32_a2(b + 6 + 4 * wd);
            lo = (q & 0x0f0f0f0fu) | (spread4((qh >> (4 * wd)) & 15) << 4);
            hi = ((q >> 4) & 0x0f0f0f0fu) | (spread4((qh >> (16 + 4 * wd)) & 15) << 4);
        } else {
            const u32 dm = *(const u32*)b;
            d = half_to_float((u16)(dm & 0xffff)), mn = half_to_float((u16)(dm >> 16));
            if (T == T_Q4_1) {
                q = *(const u32*)(b + 4 + 4 * wd);
                lo = q & 0x0f0f0f0fu, hi = (q >> 4) & 0x0f0f0f0fu;
            } else {
                const u32 qh = *(const u32*)(b + 4);
                q = *(const u32*)(b + 8 + 4 * wd);
                lo = (q & 0x0f0f0f0fu) | (spread4((qh >> (4 * wd)) & 15) << 4);
                hi = ((q >> 4) & 0x0f0f0f0fu) | (spread4((qh >> (16 + 4 * wd)) & 15) << 4);
            }
        }
        const float bias = T == T_Q5_0 ? 8388624.0f : 8388608.0f;  // 2^23 (+16 for Q5_0)
        float wf[8];
#pragma unroll
        for (int e = 0; e < 4; e++) {
            wf[e] = byte_as_magic(lo, e) - bias;
            wf[4 + e] = byte_as_magic(hi, e) - bias;
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = 0.f, sx = 0.f;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                s += wf[e] * xv[t][e];
                if (T != T_Q5_0) sx += xv[t][e];
            }
            acc[t] += d * s + mn * sx;
        }
    }
};
template <>
struct QItem<T_Q4_1> : QItemLegacy<T_Q4_1> {};
template <>
struct QItem<T_Q5_0> : QItemLegacy<T_Q5_0> {};
template <>
struct QItem<T_Q5_1> : QItemLegacy<T_Q5_1> {};

// Q6_K: item = 4 consecutive l of one 128-element half h (it = 16ib + 8h + t,
// l = 4t..4t+3) and the 4 quarters qd: elements 128h + 32qd + l.
template <>
struct QItem<T_Q6_K> {
    static constexpr int E = 16;
    static __device__ __forceinline__ int items(int k) { return k >> 4; }
    template <int NT>
    static __device__ __forceinline__ void load_x(const float* const* xr, int it, float (*xv)[16]) {
        const int base = (it >> 4) * 256 + ((it >> 3) & 1) * 128 + (it & 7) * 4;
#pragma unroll
        for (int t = 0; t < NT; t++) {
#pragma unroll
            for (int qd = 0; qd < 4; qd++) {
                const float4 a = *(const float4*)(xr[t] + base + 32 * qd);
                xv[t][4 * qd] = a.x, xv[t][4 * qd + 1] = a.y, xv[t][4 * qd + 2] = a.z, xv[t][4 * qd + 3] = a.w;
            }
        }
    }
    struct Prep {};
    template <int R>
    static __device__ __forceinline__ Prep prep(const u8*, i64, int, int, int) { return Prep{}; }
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int r, int k, int it, const Prep&, const float (*xv)[16],
                                               float* acc) {
        const int ib = it >> 4, h = (it >> 3) & 1, l0 = (it & 7) * 4;
        const u8* b = w + (i64)row * rowBytes + ib * 210;
        const u32 qa = load_u32_a2(b + 64 * h + l0), qb = load_u32_a2(b + 64 * h + 32 + l0);
        const u32 qh = load_u32_a2(b + 128 + 32 * h + l0);
        const float d = half_to_float(load_u16(b + 208));
        const i8* sc = (const i8*)(b + 192 + 8 * h + (l0 >> 4));
        float ds[4];
#pragma unroll
        for (int qd = 0; qd < 4; qd++) ds[qd] = d * (float)sc[2 * qd];
        // 6-bit quants of quarter qd, element j, biased by +32 (subtracted below).
        const u32 v0 = (qa & 0x0f0f0f0fu) | ((qh << 4) & 0x30303030u);
        const u32 v1 = (qb & 0x0f0f0f0fu) | ((qh << 2) & 0x30303030u);
        const u32 v2 = ((qa >> 4) & 0x0f0f0f0fu) | (qh & 0x30303030u);
        const u32 v3 = ((qb >> 4) & 0x0f0f0f0fu) | ((qh >> 2) & 0x30303030u);
        const u32 vv[4] = {v0, v1, v2, v3};
        float wf[16];
#pragma unroll
        for (int qd = 0; qd < 4; qd++)
#pragma unroll
            for (int e = 0; e < 4; e++) wf[4 * qd + e] = byte_as_magic(vv[qd], e) - 8388640.0f;  // 2^23 + 32
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float s = 0.f;
#pragma unroll
            for (int qd = 0; qd < 4; qd++) {
                float p = 0.f;
#pragma unroll
                for (int e = 0; e < 4; e++) p += wf[4 * qd + e] * xv[t][4 * qd + e];
                s += ds[qd] * p;
            }
            acc[t] += s;
        }
    }
};

template <int T, int NT, int R>
__device__ void mv_quant(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                         const float* __restrict__ x, float* __restrict__ y, int m, int k, int n) {
    rf_pdl_entry();
    typedef QItem<T> Q;
    __shared__ float red[MQ_WARPS][R * NT];
    const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
    const int row0 = blockIdx.x * R;
    const float* xr[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) xr[t] = xrow(x, t, n, k);
    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
    const int items = Q::items(k);
    // Warp-uniform trip count (the K-quant items shuffle between lanes):
    // lanes past the last item re-read the last one with zero activations.
#pragma unroll 2
    for (int it0 = warp * WARP_SIZE; it0 < items; it0 += MQ_WARPS * WARP_SIZE) {
        const int it = min(it0 + lane, items - 1);
        float xv[NT][Q::E];
        Q::template load_x<NT>(xr, it, xv);
        if (it0 + lane >= items) {
#pragma unroll
            for (int t = 0; t < NT; t++)
#pragma unroll
                for (int e = 0; e < Q::E; e++) xv[t][e] = 0.0f;
        }
        const typename Q::Prep p = Q::template prep<R>(w, rowBytes, row0, m, it);
#pragma unroll
        for (int r = 0; r < R; r++)
            Q::template dot<NT>(w, aux, rowBytes, min(row0 + r, m - 1), r, k, it, p, xv, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float s = warp_sum(acc[r][t]);
            if (lane == 0) red[warp][r * NT + t] = s;
        }
    __syncthreads();
    for (int i = threadIdx.x; i < R * NT; i += blockDim.x) {
        const int r = i / NT, t = i % NT;
        float s = 0.0f;
#pragma unroll
        for (int wi = 0; wi < MQ_WARPS; wi++) s += red[wi][i];
        if (row0 + r < m && t < n) y[(i64)t * m + row0 + r] = s;
    }
}

// Rows per block for each token count: fewer rows for more tokens keeps the
// accumulators (R x NT) and activations (NT x item) in registers.
#define MQ_BOUNDS __launch_bounds__(MQ_WARPS * WARP_SIZE)
#define MQ(TNAME, T)                                                                                              \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_1(MV_ARGS) { mv_quant<T, 1, 8>(w, aux, rowBytes, x, y, m, k, n); } \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_2(MV_ARGS) { mv_quant<T, 2, 8>(w, aux, rowBytes, x, y, m, k, n); } \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_4(MV_ARGS) { mv_quant<T, 4, 4>(w, aux, rowBytes, x, y, m, k, n); } \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_8(MV_ARGS) { mv_quant<T, 8, 2>(w, aux, rowBytes, x, y, m, k, n); }

// MQ2 is MQ with a second item type (T8) for 4 and 8 tokens.
#define MQ2(TNAME, T, T8)                                                                                         \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_1(MV_ARGS) { mv_quant<T, 1, 8>(w, aux, rowBytes, x, y, m, k, n); } \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_2(MV_ARGS) { mv_quant<T, 2, 8>(w, aux, rowBytes, x, y, m, k, n); } \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_4(MV_ARGS) { mv_quant<T8, 4, 4>(w, aux, rowBytes, x, y, m, k, n); } \
    extern "C" __global__ void MQ_BOUNDS matvec_##TNAME##_8(MV_ARGS) { mv_quant<T8, 8, 2>(w, aux, rowBytes, x, y, m, k, n); }

MQ2(q4_0s, T_Q4_0S, T_Q4_0S8)
MQ2(q8_0s, T_Q8_0S, T_Q8_0S8)
MQ(q4_1, T_Q4_1)
MQ(q5_0, T_Q5_0)
MQ(q5_1, T_Q5_1)
MQ(q4_k, T_Q4_K)
MQ(q5_k, T_Q5_K)
MQ(q6_k, T_Q6_K)

#define MV_GEN(TNAME, T)                                                                                             \
    extern "C" __global__ void MV_BOUNDS matvec_gen_##TNAME##_1(MV_ARGS) { mv_generic<T, 1>(w, aux, x, y, m, k, n, rowBytes); } \
    extern "C" __global__ void MV_BOUNDS matvec_gen_##TNAME##_8(MV_ARGS) { mv_generic<T, 8>(w, aux, x, y, m, k, n, rowBytes); }

MV_GEN(f32, T_F32)
MV_GEN(f16, T_F16)
MV_GEN(bf16, T_BF16)
MV_GEN(q4_0s, T_Q4_0S)
MV_GEN(q8_0s, T_Q8_0S)
MV_GEN(q4_1, T_Q4_1)
MV_GEN(q5_0, T_Q5_0)
MV_GEN(q5_1, T_Q5_1)
MV_GEN(q8_1, T_Q8_1)
MV_GEN(q2_k, T_Q2_K)
MV_GEN(q3_k, T_Q3_K)
MV_GEN(q4_k, T_Q4_K)
MV_GEN(q5_k, T_Q5_K)
MV_GEN(q6_k, T_Q6_K)
MV_GEN(q8_k, T_Q8_K)

// Tiled matmul for larger n: block (16, 16) threads, tile 64 weight rows x 64
// tokens x 32 k; each thread owns 4 rows x 4 tokens of the output.
#define GM_BM 64
#define GM_BN 64
#define GM_BK 32

template <int T>
__device__ void gemm_tile(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes, const float* __restrict__ x,
                          float* __restrict__ y, int m, int k, int n) {
    __shared__ float ws[GM_BK][GM_BM + 4];
    __shared__ float xs[GM_BK][GM_BN + 4];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const int m0 = blockIdx.x * GM_BM, n0 = blockIdx.y * GM_BN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < k; k0 += GM_BK) {
#pragma unroll
        for (int i = 0; i < (GM_BM * GM_BK) / 256; i++) {
            const int idx = tid + 256 * i, r = idx / GM_BK, kk = idx % GM_BK;
            const int gr = m0 + r, gk = k0 + kk;
            ws[kk][r] = (gr < m && gk < k) ? dq<T>(w, aux, gr, gk, rowBytes, k) : 0.f;
            const int gt = n0 + r;
            xs[kk][r] = (gt < n && gk < k) ? x[(i64)gt * k + gk] : 0.f;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < GM_BK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = ws[kk][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = xs[kk][tx * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int t = n0 + tx * 4 + j;
        if (t >= n) continue;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = m0 + ty * 4 + i;
            if (r < m) y[(i64)t * m + r] = acc[i][j];
        }
    }
}

#define GEMM(TNAME, T)                                                                             \
    extern "C" __global__ void __launch_bounds__(256) gemm_##TNAME(MV_ARGS) { gemm_tile<T>(w, aux, rowBytes, x, y, m, k, n); }

GEMM(f32, T_F32)
GEMM(f16, T_F16)
GEMM(bf16, T_BF16)
GEMM(q4_0s, T_Q4_0S)
GEMM(q8_0s, T_Q8_0S)
GEMM(q4_1, T_Q4_1)
GEMM(q5_0, T_Q5_0)
GEMM(q5_1, T_Q5_1)
GEMM(q8_1, T_Q8_1)
GEMM(q2_k, T_Q2_K)
GEMM(q3_k, T_Q3_K)
GEMM(q4_k, T_Q4_K)
GEMM(q5_k, T_Q5_K)
GEMM(q6_k, T_Q6_K)
GEMM(q8_k, T_Q8_K)
