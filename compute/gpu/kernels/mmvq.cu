// mmvq.cu: matrix-vector products of quantized weights against activations
// quantized once per step to 8-bit blocks (llama.cpp's MMVQ idea): integer
// dot products (dp4a) instead of unpacking every weight to float, and a
// quarter of the activation bytes.
//
// Activations: q8 blocks of 32 (quantize_q8_f32, or the norm and SwiGLU
// kernels that emit them as a by-product): xq holds the int8 values, row t
// at xq + t*k, and xd one float2 per block: (d, d * sum of the int8 values),
// with x ≈ d * q, d = max|x| / 127.
//
// mmvq_<layout>_<NT>: y[t, r] = Σ_k w[r, k] x[t, k] for NT ≤ 8 tokens and up
// to three weights of one layout that share the input (Q, K, V; gate, up):
// blocks [0, nb0) do weight 0, [nb0, nb0+nb1) weight 1, the rest weight 2.
// A block of MMVQ_THREADS threads owns R rows per row group; its threads
// split into groups of tpr (32, 64 or 128, set by the host from k), each
// group walking the k dimension of its R rows in "units" (32 elements for
// Q4_0/Q8_0, 64 for Q4_K), lanes on consecutive units, so weight loads are
// 16-byte and coalesced. A unit's activations are loaded once for all R rows.
//
// pf != 0: before waiting for the previous kernel, the block asks L2 for
// its weight rows (pf bytes between prefetches; the weights never depend on
// that kernel), so that under programmatic dependent launch the fetch
// overlaps the previous kernel's tail (rf_fuse.h).
#include "common.h"
#include "quant.h"
#include "rf_fuse.h"

#define MMVQ_THREADS 128

__device__ __forceinline__ int dp4a(int a, int b, int c) {
#ifdef RF_HIP
    // Portable (no dot4 instruction on every target); HIP is unrun so far.
    return c + (i8)a * (i8)b + (i8)(a >> 8) * (i8)(b >> 8) + (i8)(a >> 16) * (i8)(b >> 16) +
           (i8)(a >> 24) * (i8)(b >> 24);
#else
    // PTX rather than __dp4a, which NVRTC 11.x does not declare.
    int r;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
#endif
}

// quantize_q8_f32: x [n, k] (k % 32 == 0) to q8 blocks; one warp per block.
extern "C" __global__ void quantize_q8_f32(const float* __restrict__ x, i8* __restrict__ xq, float2* __restrict__ xd,
                                           int n, int k) {
    rf_pdl_entry();
    const int nb = k >> 5;
    const i64 blk = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (blk >= (i64)n * nb) return;
    const float v = x[blk * 32 + threadIdx.x % 32];
    q8_block(v, xq + blk * 32, xd + blk);
}

// Activations of one unit for one token: XB q8 blocks.
template <int XB>
struct XU {
    int q[XB][8];
    float2 ds[XB];
};

template <int XB>
__device__ __forceinline__ void load_xu(const i8* __restrict__ xq, const float2* __restrict__ xd, int blk, XU<XB>& x) {
#pragma unroll
    for (int b = 0; b < XB; b++) {
        const int4* p = (const int4*)(xq + (i64)(blk + b) * 32);
        const int4 a = p[0], c = p[1];
        x.q[b][0] = a.x, x.q[b][1] = a.y, x.q[b][2] = a.z, x.q[b][3] = a.w;
        x.q[b][4] = c.x, x.q[b][5] = c.y, x.q[b][6] = c.z, x.q[b][7] = c.w;
        x.ds[b] = xd[blk + b];
    }
}

template <int T>
struct QV;

// Q4_0 split: unit = one block: 16 quant bytes (byte j: element j in the low
// nibble, 16+j in the high) and an f16 scale in aux. Σ (q-8)·x = Σ q·x - 8 Σ x.
template <>
struct QV<T_Q4_0S> {
    static constexpr int U = 32, XB = 1;
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64, int row,
                                               int k, int u, const XU<1>* x, float* acc) {
        const int nb = k >> 5;
        const uint4 q = ((const uint4*)(w + (i64)row * nb * 16))[u];
        const float d = half_to_float(((const u16*)aux)[(i64)row * nb + u]);
        const int lo[4] = {(int)(q.x & 0x0f0f0f0fu), (int)(q.y & 0x0f0f0f0fu), (int)(q.z & 0x0f0f0f0fu),
                           (int)(q.w & 0x0f0f0f0fu)};
        const int hi[4] = {(int)((q.x >> 4) & 0x0f0f0f0fu), (int)((q.y >> 4) & 0x0f0f0f0fu),
                           (int)((q.z >> 4) & 0x0f0f0f0fu), (int)((q.w >> 4) & 0x0f0f0f0fu)};
#pragma unroll
        for (int t = 0; t < NT; t++) {
            int s = 0;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                s = dp4a(lo[i], x[t].q[0][i], s);
                s = dp4a(hi[i], x[t].q[0][4 + i], s);
            }
            acc[t] += d * (x[t].ds[0].x * (float)s - 8.0f * x[t].ds[0].y);
        }
    }
};

// Q8_0 split: unit = one block: 32 int8 quants and an f16 scale in aux.
template <>
struct QV<T_Q8_0S> {
    static constexpr int U = 32, XB = 1;
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__ aux, i64, int row,
                                               int k, int u, const XU<1>* x, float* acc) {
        const int nb = k >> 5;
        const int4* p = (const int4*)(w + ((i64)row * nb + u) * 32);
        const int4 a = p[0], c = p[1];
        const float d = half_to_float(((const u16*)aux)[(i64)row * nb + u]);
        const int q[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
#pragma unroll
        for (int t = 0; t < NT; t++) {
            int s = 0;
#pragma unroll
            for (int i = 0; i < 8; i++) s = dp4a(q[i], x[t].q[0][i], s);
            acc[t] += d * x[t].ds[0].x * (float)s;
        }
    }
};

// Q4_K: unit = sub-blocks 2g and 2g+1 of super-block ib (u = 4ib + g): the
// 32 quant bytes at 16 + 32g (low nibbles: sub-block 2g, high: 2g+1), their
// 6-bit scales and mins. Σ (d·sc·q - dmin·m)·x over a sub-block.
template <>
struct QV<T_Q4_K> {
    static constexpr int U = 64, XB = 2;
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__, i64 rowBytes, int row,
                                               int, int u, const XU<2>* x, float* acc) {
        const int ib = u >> 2, g = u & 3;
        const u8* b = w + (i64)row * rowBytes + (i64)ib * 144;
        const u32* b32 = (const u32*)b;
        const u32 dm = b32[0], s0 = b32[1], s1 = b32[2], s2 = b32[3];
        const uint4* qp = (const uint4*)(b + 16 + 32 * g);
        const uint4 qa = qp[0], qb = qp[1];
        const u32 qw[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
        int sc1, m1, sc2, m2;
        scale_min_k4_regs(2 * g, s0, s1, s2, &sc1, &m1);
        scale_min_k4_regs(2 * g + 1, s0, s1, s2, &sc2, &m2);
        const float d = half_to_float((u16)(dm & 0xffff)), dmin = half_to_float((u16)(dm >> 16));
        const float d1 = d * (float)sc1, d2 = d * (float)sc2, mn1 = dmin * (float)m1, mn2 = dmin * (float)m2;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            int sa = 0, sb = 0;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                sa = dp4a((int)(qw[i] & 0x0f0f0f0fu), x[t].q[0][i], sa);
                sb = dp4a((int)((qw[i] >> 4) & 0x0f0f0f0fu), x[t].q[1][i], sb);
            }
            acc[t] += d1 * x[t].ds[0].x * (float)sa - mn1 * x[t].ds[0].y + d2 * x[t].ds[1].x * (float)sb -
                      mn2 * x[t].ds[1].y;
        }
    }

    // scale_min_k4_regs is get_scale_min_k4 on the 12 scale bytes in three words.
    static __device__ __forceinline__ void scale_min_k4_regs(int j, u32 s0, u32 s1, u32 s2, int* sc, int* m) {
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
};

// load32_a2 loads the 32 bytes at p, which is only 2-byte aligned, as 8
// words: 9 aligned loads and funnel shifts (no branch on the alignment, so
// the lanes of a warp stay together). The 4 bytes past p+32 must be readable.
__device__ __forceinline__ void load32_a2(const u8* p, u32* out) {
    const u32* a = (const u32*)((u64)p & ~(u64)3);
    const u32 sh = ((u32)(u64)p & 3u) * 8u;
    u32 w[9];
#pragma unroll
    for (int i = 0; i < 9; i++) w[i] = a[i];
#pragma unroll
    for (int i = 0; i < 8; i++) out[i] = __funnelshift_r(w[i], w[i + 1], sh);
}

// Q6_K: unit = the 32 elements of quarter qd of half h of super-block ib
// (u = 8ib + 4h + qd): low 4 bits from ql (nibble qd>>1 of the 32 bytes at
// 64h + 32(qd&1)), high 2 from qh (bits 2qd of the 32 bytes at 128 + 32h),
// one int8 scale per 16 elements, value d·sc·(q - 32). Blocks are 210
// bytes, so only 2-byte aligned.
template <>
struct QV<T_Q6_K> {
    static constexpr int U = 32, XB = 1;
    template <int NT>
    static __device__ __forceinline__ void dot(const u8* __restrict__ w, const u8* __restrict__, i64 rowBytes, int row,
                                               int, int u, const XU<1>* x, float* acc) {
        const int ib = u >> 3, h = (u >> 2) & 1, qd = u & 3;
        const u8* b = w + (i64)row * rowBytes + (i64)ib * 210;
        u32 ql[8], qh[8];
        load32_a2(b + 64 * h + 32 * (qd & 1), ql);
        load32_a2(b + 128 + 32 * h, qh);
        const float d = half_to_float(load_u16(b + 208));
        const float sa = d * (float)(i8)b[192 + 8 * h + 2 * qd], sb = d * (float)(i8)b[192 + 8 * h + 2 * qd + 1];
        const int lsh = (qd & 2) * 2, hsh = 2 * qd;
        const int M32 = (int)0xe0e0e0e0u;  // four int8 -32
        int v[8];
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (int)(((ql[i] >> lsh) & 0x0f0f0f0fu) | (((qh[i] >> hsh) & 0x03030303u) << 4));
#pragma unroll
        for (int t = 0; t < NT; t++) {
            int s0 = 0, s1 = 0;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                s0 = dp4a(v[i], x[t].q[0][i], s0);
                s0 = dp4a(M32, x[t].q[0][i], s0);  // - 32 Σx
                s1 = dp4a(v[4 + i], x[t].q[0][4 + i], s1);
                s1 = dp4a(M32, x[t].q[0][4 + i], s1);
            }
            acc[t] += x[t].ds[0].x * (sa * (float)s0 + sb * (float)s1);
        }
    }
};

// One weight of a (possibly fused) launch.
struct MWeight {
    const u8* w;
    const u8* aux;
    i64 rowBytes;
    float* y;
    int m;
};

template <int T, int NT, int R>
__device__ __forceinline__ void mmvq(const MWeight& W, int blk, const i8* __restrict__ xq,
                                     const float2* __restrict__ xd, int k, int n, int tpr) {
    typedef QV<T> Q;
    __shared__ float red[MMVQ_THREADS / WARP_SIZE][R * NT];
    const int tid = threadIdx.x, warp = tid / WARP_SIZE, lane = tid % WARP_SIZE;
    const int groups = MMVQ_THREADS / tpr, g = tid / tpr, gt = tid % tpr;
    const int row0 = (blk * groups + g) * R;
    const int units = k / Q::U, nb = k >> 5;
    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
    int rows[R];
#pragma unroll
    for (int r = 0; r < R; r++) rows[r] = min(row0 + r, W.m - 1);
#pragma unroll 2
    for (int u = gt; u < units; u += tpr) {
        XU<Q::XB> x[NT];
#pragma unroll
        for (int t = 0; t < NT; t++) load_xu<Q::XB>(xq + (i64)min(t, n - 1) * k, xd + (i64)min(t, n - 1) * nb,
                                                    u * Q::XB, x[t]);
#pragma unroll
        for (int r = 0; r < R; r++) Q::template dot<NT>(W.w, W.aux, W.rowBytes, rows[r], k, u, x, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float s = warp_sum(acc[r][t]);
            if (lane == 0) red[warp][r * NT + t] = s;
        }
    __syncthreads();
    const int wpg = tpr / WARP_SIZE;  // warps per row group (tpr >= WARP_SIZE)
    for (int i = tid; i < groups * R * NT; i += MMVQ_THREADS) {
        const int gg = i / (R * NT), j = i % (R * NT), r = j / NT, t = j % NT;
        float s = 0.0f;
        for (int wi = 0; wi < wpg; wi++) s += red[gg * wpg + wi][j];
        const int row = (blk * groups + gg) * R + r;
        if (row < W.m && t < n) W.y[(i64)t * W.m + row] = s;
    }
}

// mmvq_prefetch asks L2 for the weight bytes of the block's rows, one
// request every step bytes (every layout stores a row's bytes contiguously;
// the split ones keep their f16 scales apart, in aux).
template <int T>
__device__ __forceinline__ void mmvq_prefetch(const MWeight& W, int blk, int k, int tpr, int R, int step) {
    const int rows = (MMVQ_THREADS / tpr) * R, r0 = blk * rows, nr = min(rows, W.m - r0);
    if (nr <= 0) return;
    const int nb = k >> 5;
    if (T == T_Q4_0S || T == T_Q8_0S) {
        const i64 qb = (i64)nb * (T == T_Q4_0S ? 16 : 32);
        rf_prefetch_l2(W.w + (i64)r0 * qb, (i64)nr * qb, step);
        rf_prefetch_l2(W.aux + (i64)r0 * nb * 2, (i64)nr * nb * 2, step);
    } else {
        rf_prefetch_l2(W.w + (i64)r0 * W.rowBytes, (i64)nr * W.rowBytes, step);
    }
}

#define MMVQ_ARGS                                                                                                    \
    const u8 *w0, const u8 *a0, i64 rb0, float *y0, int m0, int nb0, const u8 *w1, const u8 *a1, i64 rb1, float *y1, \
        int m1, int nb1, const u8 *w2, const u8 *a2, i64 rb2, float *y2, int m2, const i8 *__restrict__ xq,           \
        const float2 *__restrict__ xd, int k, int n, int tpr, int pf

template <int T, int NT, int R>
__device__ __forceinline__ void mmvq_multi(MMVQ_ARGS) {
    rf_pdl_launch();
    int blk = blockIdx.x;
    MWeight W;
    if (blk < nb0) {
        W = MWeight{w0, a0, rb0, y0, m0};
    } else if (blk < nb0 + nb1) {
        W = MWeight{w1, a1, rb1, y1, m1};
        blk -= nb0;
    } else {
        W = MWeight{w2, a2, rb2, y2, m2};
        blk -= nb0 + nb1;
    }
    if (pf) mmvq_prefetch<T>(W, blk, k, tpr, R, pf);
    rf_pdl_wait();
    mmvq<T, NT, R>(W, blk, xq, xd, k, n, tpr);
}

// Rows per thread group for each token count: R x NT accumulators and NT
// units of activations stay in registers.
#define MMVQ_B __launch_bounds__(MMVQ_THREADS)
#define MMVQ(TNAME, T)                                                                                         \
    extern "C" __global__ void MMVQ_B mmvq_##TNAME##_1(MMVQ_ARGS) {                                            \
        mmvq_multi<T, 1, 4>(w0, a0, rb0, y0, m0, nb0, w1, a1, rb1, y1, m1, nb1, w2, a2, rb2, y2, m2, xq, xd, k, n, tpr, pf); \
    }                                                                                                          \
    extern "C" __global__ void MMVQ_B mmvq_##TNAME##_1r8(MMVQ_ARGS) {                                          \
        mmvq_multi<T, 1, 8>(w0, a0, rb0, y0, m0, nb0, w1, a1, rb1, y1, m1, nb1, w2, a2, rb2, y2, m2, xq, xd, k, n, tpr, pf); \
    }                                                                                                          \
    extern "C" __global__ void MMVQ_B mmvq_##TNAME##_2(MMVQ_ARGS) {                                            \
        mmvq_multi<T, 2, 4>(w0, a0, rb0, y0, m0, nb0, w1, a1, rb1, y1, m1, nb1, w2, a2, rb2, y2, m2, xq, xd, k, n, tpr, pf); \
    }                                                                                                          \
    extern "C" __global__ void MMVQ_B mmvq_##TNAME##_4(MMVQ_ARGS) {                                            \
        mmvq_multi<T, 4, 2>(w0, a0, rb0, y0, m0, nb0, w1, a1, rb1, y1, m1, nb1, w2, a2, rb2, y2, m2, xq, xd, k, n, tpr, pf); \
    }                                                                                                          \
    extern "C" __global__ void MMVQ_B mmvq_##TNAME##_8(MMVQ_ARGS) {                                            \
        mmvq_multi<T, 8, 2>(w0, a0, rb0, y0, m0, nb0, w1, a1, rb1, y1, m1, nb1, w2, a2, rb2, y2, m2, xq, xd, k, n, tpr, pf); \
    }

MMVQ(q4_0s, T_Q4_0S)
MMVQ(q8_0s, T_Q8_0S)
MMVQ(q4_k, T_Q4_K)
MMVQ(q6_k, T_Q6_K)

// argmax_f32: one block per row of x [n, m]: the lowest index of the row's
// largest value, NaN and -Inf never chosen; -1 when nothing else is there.
extern "C" __global__ void argmax_f32(const float* __restrict__ x, int* __restrict__ out, int m) {
    rf_pdl_entry();
    __shared__ float sv[RF_MAX_WARPS];
    __shared__ int si[RF_MAX_WARPS];
    const float* r = x + (i64)blockIdx.x * m;
    float best = -RF_INF;
    int bi = -1;
    if ((m & 3) == 0) {
        // 16-byte loads, several in flight (rows are 16-byte aligned).
        const float4* r4 = (const float4*)r;
#pragma unroll 4
        for (int j = threadIdx.x; j < m / 4; j += blockDim.x) {
            const float4 v = r4[j];
            if (v.x > best) best = v.x, bi = 4 * j;  // false for NaN; -Inf never beats -Inf
            if (v.y > best) best = v.y, bi = 4 * j + 1;
            if (v.z > best) best = v.z, bi = 4 * j + 2;
            if (v.w > best) best = v.w, bi = 4 * j + 3;
        }
    } else {
        for (int j = threadIdx.x; j < m; j += blockDim.x) {
            const float v = r[j];
            if (v > best) best = v, bi = j;
        }
    }
    // Each thread's candidates come in increasing j, so ties keep the lowest.
#pragma unroll
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) {
        const float ov = SHFL_XOR(best, o);
        const int oi = SHFL_XOR(bi, o);
        if (oi >= 0 && (bi < 0 || ov > best || (ov == best && oi < bi))) best = ov, bi = oi;
    }
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    if (lane == 0) sv[warp] = best, si[warp] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x / WARP_SIZE); w++) {
            const float ov = sv[w];
            const int oi = si[w];
            if (oi >= 0 && (bi < 0 || ov > best || (ov == best && oi < bi))) best = ov, bi = oi;
        }
        out[blockIdx.x] = bi;
    }
}
