// mma.cu: y[n, m] = x[n, k] · w[m, k]ᵀ on the tensor cores for batches of
// 9 to ~128 tokens (batched decode), reading each weight byte once per call.
//
// One block is 4 warps and owns 128 weight rows (32 a warp) by BN tokens
// (16, 32 or 64; more tokens take more blocks along y). It walks k in
// chunks of 128 columns: the chunk of the weight is dequantized to f16 into
// shared memory (each weight element once, exactly as the cuBLAS path's
// tohalf_* rounds it), the chunk of the activations (already f16, from
// f32_to_f16) is copied beside it, and each warp multiplies with
// mma.sync.m16n8k16 (f16 operands, f32 accumulation), operands fetched by
// ldmatrix. The next chunk's weight bytes and activations are loaded into
// registers before the current chunk's products are issued, so the loads
// overlap the tensor-core work.
//
// Small grids split k (gridDim.z parts) to fill the GPU: each part writes
// its f32 partial tile to part[z][n][m], and mma_reduce sums the parts in
// order z = 0, 1, ... into y (a fixed order: a step gives the same bits
// every time). A first version let the last part of each tile to finish
// (an atomic counter) do the sum: one block reading every part's tile
// was latency-bound, ~1-4 µs per part at 4096x4096.
//
// Requirements (the host checks them): k % 8 == 0; m, n, k any other size
// (rows, tokens and columns past the edges are zero in shared memory and
// never stored). sm_80 or newer; under HIP, or an older architecture, the
// kernels are empty and the host never launches them.
#include "common.h"
#include "quant.h"

#define MMA_BM 128                  // weight rows per block
#define MMA_BK 128                  // columns per chunk
#define MMA_THREADS 128             // 4 warps of 32
#define MMA_LD (MMA_BK + 8)         // halves per shared row: +16 bytes keeps ldmatrix rows on distinct banks
#define MMA_GW (MMA_BM * MMA_BK / 8 / MMA_THREADS)  // 8-element weight groups per thread per chunk

#if !defined(RF_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define RF_MMA 1
#endif

#ifdef RF_MMA
#include "mma_sync.h"

__device__ __forceinline__ void ldsm_x4(u32 r[4], const u16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}

#endif

// WTile<T> loads 8 consecutive weight elements (row, col..col+7; col % 8 == 0)
// as raw bytes (load, issued early) and turns them into 8 f16 (cvt), equal
// to dq<T> rounded to f16. The generic version does all its work in load.
template <int T>
struct WTile {
    typedef uint4 Raw;
    static __device__ __forceinline__ Raw zero() { return make_uint4(0, 0, 0, 0); }
    static __device__ __forceinline__ Raw load(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                               int row, int col, int k) {
        u32 p[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const u32 lo = float_to_half(dq<T>(w, aux, row, col | (2 * j), rowBytes, k));
            const u32 hi = float_to_half(dq<T>(w, aux, row, col | (2 * j + 1), rowBytes, k));
            p[j] = lo | (hi << 16);
        }
        return make_uint4(p[0], p[1], p[2], p[3]);
    }
    static __device__ __forceinline__ uint4 cvt(const Raw& r, int) { return r; }
};

template <>
struct WTile<T_F16> {
    typedef uint4 Raw;
    static __device__ __forceinline__ Raw zero() { return make_uint4(0, 0, 0, 0); }
    static __device__ __forceinline__ Raw load(const u8* __restrict__ w, const u8*, i64 rowBytes, int row, int col,
                                               int) {
        return *(const uint4*)(w + (i64)row * rowBytes + 2 * (i64)col);
    }
    static __device__ __forceinline__ uint4 cvt(const Raw& r, int) { return r; }
};

#ifdef RF_MMA
// Q4_0, split layout: 16 quant bytes a block (element j < 16 the low
// nibble of byte j, j >= 16 the high nibble of byte j-16), f16 scales in aux.
// Nibble q becomes the f16 1024 + q by byte permutation, minus 1032 is q - 8
// exactly, times d is one rounding of the exact product: dq's value rounded
// to f16.
template <>
struct WTile<T_Q4_0S> {
    struct Raw {
        uint2 q;
        u32 d;
    };
    static __device__ __forceinline__ Raw zero() { return Raw{make_uint2(0, 0), 0}; }
    static __device__ __forceinline__ Raw load(const u8* __restrict__ w, const u8* __restrict__ aux, i64, int row,
                                               int col, int k) {
        const i64 blk = (i64)row * (k >> 5) + (col >> 5);
        Raw r;
        r.q = *(const uint2*)(w + blk * 16 + (col & 15));
        r.d = ((const u16*)aux)[blk];
        return r;
    }
    static __device__ __forceinline__ uint4 cvt(const Raw& r, int col) {
        const int sh = col & 16 ? 4 : 0;
        const u32 lo = (r.q.x >> sh) & 0x0f0f0f0fu, hi = (r.q.y >> sh) & 0x0f0f0f0fu;
        const u32 d2 = r.d | (r.d << 16), off = 0x64086408u;  // 1032, 1032
        return make_uint4(hmul2(hsub2(__byte_perm(lo, 0x64, 0x4140), off), d2),
                          hmul2(hsub2(__byte_perm(lo, 0x64, 0x4342), off), d2),
                          hmul2(hsub2(__byte_perm(hi, 0x64, 0x4140), off), d2),
                          hmul2(hsub2(__byte_perm(hi, 0x64, 0x4342), off), d2));
    }
};

// Q8_0, split layout: 32 signed quant bytes a block. q + 128 (flip the sign
// bit) becomes the f16 1024 + q + 128; minus 1152 is q exactly.
template <>
struct WTile<T_Q8_0S> {
    struct Raw {
        uint2 q;
        u32 d;
    };
    static __device__ __forceinline__ Raw zero() { return Raw{make_uint2(0x80808080u, 0x80808080u), 0}; }
    static __device__ __forceinline__ Raw load(const u8* __restrict__ w, const u8* __restrict__ aux, i64, int row,
                                               int col, int k) {
        const i64 blk = (i64)row * (k >> 5) + (col >> 5);
        Raw r;
        r.q = *(const uint2*)(w + blk * 32 + (col & 31));
        r.d = ((const u16*)aux)[blk];
        return r;
    }
    static __device__ __forceinline__ uint4 cvt(const Raw& r, int) {
        const u32 lo = r.q.x ^ 0x80808080u, hi = r.q.y ^ 0x80808080u;
        const u32 d2 = r.d | (r.d << 16), off = 0x64806480u;  // 1152, 1152
        return make_uint4(hmul2(hsub2(__byte_perm(lo, 0x64, 0x4140), off), d2),
                          hmul2(hsub2(__byte_perm(lo, 0x64, 0x4342), off), d2),
                          hmul2(hsub2(__byte_perm(hi, 0x64, 0x4140), off), d2),
                          hmul2(hsub2(__byte_perm(hi, 0x64, 0x4342), off), d2));
    }
};
#endif

// Q4_K: 8 elements share a sub-block's scale and min (d·sc, dmin·m in f32,
// rounded as dq does); the quants are 8 bytes, low or high nibbles.
template <>
struct WTile<T_Q4_K> {
    struct Raw {
        uint2 q;
        float d1, m1;
    };
    static __device__ __forceinline__ Raw zero() { return Raw{make_uint2(0, 0), 0.0f, 0.0f}; }
    static __device__ __forceinline__ Raw load(const u8* __restrict__ w, const u8*, i64 rowBytes, int row, int col,
                                               int) {
        const u8* b = w + (i64)row * rowBytes + (col >> 8) * 144;
        const int e = col & 255, g = e >> 6, l = e & 31;
        int sc, mn;
        scale_min_k4(2 * g + ((e >> 5) & 1), b + 4, &sc, &mn);
        const u32 dm = *(const u32*)b;
        Raw r;
        r.q = *(const uint2*)(b + 16 + 32 * g + l);
        r.d1 = mul_rn(half_to_float((u16)dm), (float)sc);
        r.m1 = mul_rn(half_to_float((u16)(dm >> 16)), (float)mn);
        return r;
    }
    static __device__ __forceinline__ uint4 cvt(const Raw& r, int col) {
        const int sh = col & 32 ? 4 : 0;
        const u32 lo = (r.q.x >> sh) & 0x0f0f0f0fu, hi = (r.q.y >> sh) & 0x0f0f0f0fu;
        u32 p[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const u32 v = j < 2 ? lo : hi;
            const float q0 = byte_as_magic(v, 2 * (j & 1)) - 8388608.0f;
            const float q1 = byte_as_magic(v, 2 * (j & 1) + 1) - 8388608.0f;
            p[j] = (u32)float_to_half(sub_rn(mul_rn(r.d1, q0), r.m1)) |
                   ((u32)float_to_half(sub_rn(mul_rn(r.d1, q1), r.m1)) << 16);
        }
        return make_uint4(p[0], p[1], p[2], p[3]);
    }
};

// Q6_K: 210-byte blocks (2-byte aligned, hence 16-bit loads); 8 elements
// share one scale, their low 4 bits come from 8 ql bytes and their high 2
// from 8 qh bytes.
template <>
struct WTile<T_Q6_K> {
    struct Raw {
        uint2 ql, qh;
        float d1;
    };
    static __device__ __forceinline__ Raw zero() { return Raw{make_uint2(0, 0), make_uint2(0, 0), 0.0f}; }
    static __device__ __forceinline__ Raw load(const u8* __restrict__ w, const u8*, i64 rowBytes, int row, int col,
                                               int) {
        const u8* b = w + (i64)row * rowBytes + (col >> 8) * 210;
        const int e = col & 255, h = e >> 7, qd = (e & 127) >> 5, l = e & 31;
        const u16* ql = (const u16*)(b + 64 * h + l + ((qd & 1) << 5));
        const u16* qh = (const u16*)(b + 128 + 32 * h + l);
        Raw r;
        r.ql = make_uint2(ql[0] | ((u32)ql[1] << 16), ql[2] | ((u32)ql[3] << 16));
        r.qh = make_uint2(qh[0] | ((u32)qh[1] << 16), qh[2] | ((u32)qh[3] << 16));
        const float sc = (float)(i8)b[192 + 8 * h + (l >> 4) + 2 * qd];
        r.d1 = mul_rn(half_to_float(*(const u16*)(b + 208)), sc);
        return r;
    }
    static __device__ __forceinline__ uint4 cvt(const Raw& r, int col) {
        const int qd = (col & 127) >> 5, sl = qd & 2 ? 4 : 0, sh = 2 * qd;
        u32 p[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const u32 lq = j < 2 ? r.ql.x : r.ql.y, hq = j < 2 ? r.qh.x : r.qh.y;
            // Byte i: (low nibble | high 2 bits << 4), as 2^23 + value.
            const u32 v = ((lq >> sl) & 0x0f0f0f0fu) | (((hq >> sh) & 0x03030303u) << 4);
            const float q0 = byte_as_magic(v, 2 * (j & 1)) - (8388608.0f + 32.0f);
            const float q1 = byte_as_magic(v, 2 * (j & 1) + 1) - (8388608.0f + 32.0f);
            p[j] = (u32)float_to_half(mul_rn(r.d1, q0)) | ((u32)float_to_half(mul_rn(r.d1, q1)) << 16);
        }
        return make_uint4(p[0], p[1], p[2], p[3]);
    }
};

#ifdef RF_MMA
// mma_chunk multiplies one chunk: the warp's 32 weight rows of ws by the
// BN tokens of xs, into acc.
template <int BN>
__device__ __forceinline__ void mma_chunk(float (&acc)[2][BN / 8][4], const u16* ws, const u16* xs, int warp,
                                          int lane) {
#pragma unroll
    for (int kk = 0; kk < MMA_BK; kk += 16) {
        u32 a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; mt++)
            ldsm_x4(a[mt], ws + (warp * 32 + mt * 16 + (lane & 15)) * MMA_LD + kk + ((lane >> 4) << 3));
#pragma unroll
        for (int np = 0; np < BN / 16; np++) {
            u32 b[4];
            ldsm_x4(b, xs + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * MMA_LD + kk + (((lane >> 3) & 1) << 3));
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                mma_16816(acc[mt][2 * np], a[mt], b[0], b[1]);
                mma_16816(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
            }
        }
    }
}

// mma_store writes acc to y, or to the block's part of the partial sums
// when k is split. acc[mt][nt][i] is weight row warp*32 + mt*16 + lane/4
// (+8 for i >= 2), token nt*8 + 2*(lane%4) (+1 for odd i).
template <int BN>
__device__ __forceinline__ void mma_store(const float (&acc)[2][BN / 8][4], float* y, float* part, int row0,
                                          int tok0, int warp, int lane, int m, int n) {
    float* out = gridDim.z == 1 ? y : part + (i64)blockIdx.z * n * m;
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = row0 + warp * 32 + mt * 16 + (lane >> 2) + ((i >> 1) << 3);
                const int t = tok0 + nt * 8 + ((lane & 3) << 1) + (i & 1);
                if (r < m && t < n) out[(i64)t * m + r] = acc[mt][nt][i];
            }
}
#endif

template <int T, int BN>
__device__ void mma_matmul(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                           const u16* __restrict__ x, float* __restrict__ y, float* __restrict__ part, int m,
                           int k, int n) {
#ifdef RF_MMA
    typedef WTile<T> W;
    typedef typename W::Raw Raw;
    constexpr int GX = BN * MMA_BK / 8 / MMA_THREADS;  // 8-half activation groups per thread per chunk
    constexpr int NT = BN / 8;                          // n8 tiles
    extern __shared__ uint4 mma_smem[];
    u16* ws = (u16*)mma_smem;        // [MMA_BM][MMA_LD]
    u16* xs = ws + MMA_BM * MMA_LD;  // [BN][MMA_LD]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int row0 = blockIdx.x * MMA_BM, tok0 = blockIdx.y * BN;
    const int chunks = (k + MMA_BK - 1) / MMA_BK;
    const int per = (chunks + gridDim.z - 1) / gridDim.z;
    const int c0 = blockIdx.z * per, c1 = min(chunks, c0 + per);

    float acc[2][NT][4];
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
        for (int b = 0; b < NT; b++)
#pragma unroll
            for (int c = 0; c < 4; c++) acc[a][b][c] = 0.0f;

    Raw wr[MMA_GW];
    uint4 xr[GX];
    // Group g of a chunk: row g / 16, columns (g % 16) * 8 .. + 7.
    auto load = [&](int ch) {
        const int kb = ch * MMA_BK;
#pragma unroll
        for (int i = 0; i < MMA_GW; i++) {
            const int g = i * MMA_THREADS + tid, r = row0 + (g >> 4), col = kb + ((g & 15) << 3);
            wr[i] = r < m && col < k ? W::load(w, aux, rowBytes, r, col, k) : W::zero();
        }
#pragma unroll
        for (int i = 0; i < GX; i++) {
            const int g = i * MMA_THREADS + tid, t = tok0 + (g >> 4), col = kb + ((g & 15) << 3);
            xr[i] = t < n && col < k ? *(const uint4*)(x + (i64)t * k + col) : make_uint4(0, 0, 0, 0);
        }
    };
    if (c0 < c1) load(c0);
    for (int ch = c0; ch < c1; ch++) {
#pragma unroll
        for (int i = 0; i < MMA_GW; i++) {
            const int g = i * MMA_THREADS + tid;
            *(uint4*)(ws + (g >> 4) * MMA_LD + ((g & 15) << 3)) = W::cvt(wr[i], (g & 15) << 3);
        }
#pragma unroll
        for (int i = 0; i < GX; i++) {
            const int g = i * MMA_THREADS + tid;
            *(uint4*)(xs + (g >> 4) * MMA_LD + ((g & 15) << 3)) = xr[i];
        }
        __syncthreads();
        if (ch + 1 < c1) load(ch + 1);  // in flight while the tensor cores work
        mma_chunk<BN>(acc, ws, xs, warp, lane);
        __syncthreads();
    }
    mma_store<BN>(acc, y, part, row0, tok0, warp, lane, m, n);
#endif
}

#ifdef RF_MMA
// WAsync<T> stages the raw bytes of one chunk (128 columns) of the block's
// 128 weight rows in shared memory, q (QB bytes a row) and d (DB bytes a
// row), with cp.async (issue: every thread its share of 16- or 8-byte
// copies), and reads one 8-element group back as WTile<T>::Raw. It needs k
// to be a multiple of KMOD (whole, aligned chunks); STAGES chunks are in
// flight.
template <int T>
struct WAsync;

template <>
struct WAsync<T_Q4_0S> {
    static constexpr int QB = 64, DB = 8, STAGES = 4, KMOD = 128;
    static __device__ __forceinline__ void issue(u8* q, u8* d, const u8* __restrict__ w,
                                                 const u8* __restrict__ aux, i64, int row0, int m, int k, int ch,
                                                 int tid) {
        const i64 nb = k >> 5;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int ci = i * MMA_THREADS + tid, r = ci >> 2, gr = row0 + r;
            cp_async16(q + r * QB + (ci & 3) * 16, w + ((i64)min(gr, m - 1) * nb + ch * 4 + (ci & 3)) * 16,
                       gr < m ? 16 : 0);
        }
        const int gr = row0 + tid;
        cp_async8(d + tid * DB, aux + ((i64)min(gr, m - 1) * nb + ch * 4) * 2, gr < m ? 8 : 0);
    }
    static __device__ __forceinline__ WTile<T_Q4_0S>::Raw raw(const u8* q, const u8* d, int r, int cc, int) {
        WTile<T_Q4_0S>::Raw x;
        x.q = *(const uint2*)(q + r * QB + (cc >> 5) * 16 + (cc & 15));
        x.d = ((const u16*)(d + r * DB))[cc >> 5];
        return x;
    }
};

template <>
struct WAsync<T_Q8_0S> {
    static constexpr int QB = 128, DB = 8, STAGES = 3, KMOD = 128;
    static __device__ __forceinline__ void issue(u8* q, u8* d, const u8* __restrict__ w,
                                                 const u8* __restrict__ aux, i64, int row0, int m, int k, int ch,
                                                 int tid) {
        const i64 nb = k >> 5;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int ci = i * MMA_THREADS + tid, r = ci >> 3, gr = row0 + r;
            cp_async16(q + r * QB + (ci & 7) * 16, w + ((i64)min(gr, m - 1) * nb + ch * 4) * 32 + (ci & 7) * 16,
                       gr < m ? 16 : 0);
        }
        const int gr = row0 + tid;
        cp_async8(d + tid * DB, aux + ((i64)min(gr, m - 1) * nb + ch * 4) * 2, gr < m ? 8 : 0);
    }
    static __device__ __forceinline__ WTile<T_Q8_0S>::Raw raw(const u8* q, const u8* d, int r, int cc, int) {
        WTile<T_Q8_0S>::Raw x;
        x.q = *(const uint2*)(q + r * QB + cc);
        x.d = ((const u16*)(d + r * DB))[cc >> 5];
        return x;
    }
};

// Q4_K: a chunk is half a 256-element super-block: its 16-byte header (d,
// dmin, the 12 scale bytes) and the 64 quant bytes of that half.
template <>
struct WAsync<T_Q4_K> {
    static constexpr int QB = 80, DB = 0, STAGES = 4, KMOD = 256;
    static __device__ __forceinline__ void issue(u8* q, u8*, const u8* __restrict__ w, const u8*, i64 rowBytes,
                                                 int row0, int m, int, int ch, int tid) {
#pragma unroll
        for (int i = 0; i < 5; i++) {
            const int ci = i * MMA_THREADS + tid, r = ci / 5, part = ci % 5, gr = row0 + r;
            const u8* b = w + (i64)min(gr, m - 1) * rowBytes + (ch >> 1) * 144;
            cp_async16(q + r * QB + part * 16, part == 0 ? b : b + 16 + 64 * (ch & 1) + (part - 1) * 16,
                       gr < m ? 16 : 0);
        }
    }
    static __device__ __forceinline__ WTile<T_Q4_K>::Raw raw(const u8* q, const u8*, int r, int cc, int ch) {
        const u8* h = q + r * QB;
        int sc, mn;
        scale_min_k4(4 * (ch & 1) + 2 * (cc >> 6) + ((cc >> 5) & 1), h + 4, &sc, &mn);
        const u32 dm = *(const u32*)h;
        WTile<T_Q4_K>::Raw x;
        x.q = *(const uint2*)(h + 16 + 32 * (cc >> 6) + (cc & 31));
        x.d1 = mul_rn(half_to_float((u16)dm), (float)sc);
        x.m1 = mul_rn(half_to_float((u16)(dm >> 16)), (float)mn);
        return x;
    }
};
#endif

// mma_matmul_async is mma_matmul with the weight bytes staged by cp.async
// STAGES chunks ahead instead of one chunk ahead in registers (more bytes
// in flight, fewer registers); the activations still come one chunk ahead
// in registers (they are L2 hits).
template <int T, int BN>
__device__ void mma_matmul_async(const u8* __restrict__ w, const u8* __restrict__ aux, i64 rowBytes,
                                 const u16* __restrict__ x, float* __restrict__ y, float* __restrict__ part, int m,
                                 int k, int n) {
#ifdef RF_MMA
    typedef WTile<T> W;
    typedef WAsync<T> A;
    constexpr int SB = MMA_BM * (A::QB + A::DB);        // bytes a stage
    constexpr int GX = BN * MMA_BK / 8 / MMA_THREADS;  // 8-half activation groups per thread per chunk
    constexpr int NT = BN / 8;
    extern __shared__ uint4 mma_smem[];
    u8* raw = (u8*)mma_smem;                     // [STAGES][SB]
    u16* ws = (u16*)(raw + A::STAGES * SB);      // [MMA_BM][MMA_LD]
    u16* xs = ws + MMA_BM * MMA_LD;              // [BN][MMA_LD]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int row0 = blockIdx.x * MMA_BM, tok0 = blockIdx.y * BN;
    const int chunks = k / MMA_BK;
    const int per = (chunks + gridDim.z - 1) / gridDim.z;
    const int c0 = blockIdx.z * per, c1 = min(chunks, c0 + per);

    float acc[2][NT][4];
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
        for (int b = 0; b < NT; b++)
#pragma unroll
            for (int c = 0; c < 4; c++) acc[a][b][c] = 0.0f;

    // Every call commits a group, empty past c1, so that wait_group counts
    // the same in every iteration.
    auto issue = [&](int ch) {
        if (ch < c1) {
            u8* st = raw + ((ch - c0) % A::STAGES) * SB;
            A::issue(st, st + MMA_BM * A::QB, w, aux, rowBytes, row0, m, k, ch, tid);
        }
        cp_async_commit();
    };
    uint4 xr[GX];
    auto loadx = [&](int ch) {
        const int kb = ch * MMA_BK;
#pragma unroll
        for (int i = 0; i < GX; i++) {
            const int g = i * MMA_THREADS + tid, t = tok0 + (g >> 4), col = kb + ((g & 15) << 3);
            xr[i] = t < n ? *(const uint4*)(x + (i64)t * k + col) : make_uint4(0, 0, 0, 0);
        }
    };
#pragma unroll
    for (int s = 0; s < A::STAGES - 1; s++) issue(c0 + s);
    if (c0 < c1) loadx(c0);
    for (int ch = c0; ch < c1; ch++) {
        // Chunk ch's copies are done (later ones may still be in flight),
        // and every warp has finished the previous chunk's products.
        cp_async_wait<A::STAGES - 2>();
        __syncthreads();
        const u8* st = raw + ((ch - c0) % A::STAGES) * SB;
#pragma unroll
        for (int i = 0; i < MMA_GW; i++) {
            const int g = i * MMA_THREADS + tid, r = g >> 4, cc = (g & 15) << 3;
            *(uint4*)(ws + r * MMA_LD + cc) = W::cvt(A::raw(st, st + MMA_BM * A::QB, r, cc, ch), cc);
        }
#pragma unroll
        for (int i = 0; i < GX; i++) {
            const int g = i * MMA_THREADS + tid;
            *(uint4*)(xs + (g >> 4) * MMA_LD + ((g & 15) << 3)) = xr[i];
        }
        __syncthreads();
        issue(ch + A::STAGES - 1);  // into the stage converted last iteration
        if (ch + 1 < c1) loadx(ch + 1);
        mma_chunk<BN>(acc, ws, xs, warp, lane);
    }
    cp_async_wait<0>();
    mma_store<BN>(acc, y, part, row0, tok0, warp, lane, m, n);
#endif
}

#define MMA_KERNEL(TNAME, T, BN)                                                                              \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS)                                                 \
        mma_##TNAME##_##BN(const u8* w, const u8* aux, i64 rowBytes, const u16* x, float* y, float* part,    \
                           int m, int k, int n) {                                                             \
        mma_matmul<T, BN>(w, aux, rowBytes, x, y, part, m, k, n);                                             \
    }
#define MMA_TYPE(TNAME, T) MMA_KERNEL(TNAME, T, 16) MMA_KERNEL(TNAME, T, 32) MMA_KERNEL(TNAME, T, 64)

MMA_TYPE(f16, T_F16)
MMA_TYPE(q4_0s, T_Q4_0S)
MMA_TYPE(q8_0s, T_Q8_0S)
MMA_TYPE(q4_1, T_Q4_1)
MMA_TYPE(q5_0, T_Q5_0)
MMA_TYPE(q5_1, T_Q5_1)
MMA_TYPE(q2_k, T_Q2_K)
MMA_TYPE(q3_k, T_Q3_K)
MMA_TYPE(q4_k, T_Q4_K)
MMA_TYPE(q5_k, T_Q5_K)
MMA_TYPE(q6_k, T_Q6_K)

#define MMA_ASYNC_KERNEL(TNAME, T, BN)                                                                        \
    extern "C" __global__ void __launch_bounds__(MMA_THREADS)                                                 \
        mma_async_##TNAME##_##BN(const u8* w, const u8* aux, i64 rowBytes, const u16* x, float* y,           \
                                 float* part, int m, int k, int n) {                                          \
        mma_matmul_async<T, BN>(w, aux, rowBytes, x, y, part, m, k, n);                                       \
    }
#define MMA_ASYNC_TYPE(TNAME, T) \
    MMA_ASYNC_KERNEL(TNAME, T, 16) MMA_ASYNC_KERNEL(TNAME, T, 32) MMA_ASYNC_KERNEL(TNAME, T, 64)

MMA_ASYNC_TYPE(q4_0s, T_Q4_0S)
MMA_ASYNC_TYPE(q8_0s, T_Q8_0S)
MMA_ASYNC_TYPE(q4_k, T_Q4_K)

// mma_reduce: y[i] = part[0][i] + part[1][i] + ... + part[parts-1][i], in
// that order, for the nm elements of y.
extern "C" __global__ void mma_reduce(const float* __restrict__ part, float* __restrict__ y, int parts, i64 nm) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < nm; i += (i64)gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int z = 0; z < parts; z++) s += part[z * nm + i];
        y[i] = s;
    }
}
