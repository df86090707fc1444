// mmq.cu: y_i[n, m_i] = x[n, k] · w_i[m_i, k]ᵀ for up to three Q4_0 or Q8_0
// weights of one input (Q, K and V; gate and up) on the tensor cores, for
// batched decode (8 to ~128 tokens). Successor of mma.cu's kernels for
// these two layouts, with what that kernel's profile said cost most:
//
// - The weights never pass through shared memory. Each thread loads the raw
//   bytes its mma.sync A fragments need (4 rows, one 32-element block of the
//   chunk each) and dequantizes them in registers, just before the product.
//   The k order inside a 128-column chunk is permuted so that this is
//   possible (a dot product does not care about the order, as long as the
//   activations follow the same permutation): in k16 step s of a chunk, the
//   lanes with lane%4 == q hold elements 4s..4s+3 of block q (Q4_0: the low
//   nibbles of quant word s for s < 4, the high ones of word s-4 after;
//   Q8_0: quant word s), two f16 pairs per row, which are the A fragment's
//   columns 2q, 2q+1 and 2q+8, 2q+9 (mma.cu: the weight tile was written to
//   and read back from shared memory, 2 of the 3 shared-memory passes a
//   chunk, the multiprocessor's bottleneck).
// - Split-k parts are the blocks of one thread block cluster (gridDim.z =
//   S, __cluster_dims__(1, 1, S), sm_90): at the end each part puts its f32
//   tile in its own shared memory and part z sums rows [z·R, z·R+R) of the
//   tile over the parts in order 0..S-1, reading the others' shared memory
//   (DSMEM), and writes y: no partial sums in global memory and no second
//   kernel (mma.cu's mma_reduce moved as many bytes as the weights at 64
//   tokens). The order is fixed, so a step gives the same bits every time.
// - One launch serves up to three weights (blockIdx.x runs over the row
//   tiles of each in turn), so the activations are converted once (the
//   f32_to_f16 kernel) for Q, K and V.
//
// Layout of the f16 activations in shared memory, per chunk: 16-byte units
// (t, n, q) = elements 8t..8t+7 of block q for token n, at byte
// ((t·BN + n)·4 + q)·16 + t·32 (the t·32 skew keeps the stores of 8
// consecutive units on distinct banks; the reads of a warp are 512
// consecutive bytes). One 16-byte load gives a lane its B fragments for
// steps 2t and 2t+1. Two buffers: one barrier a chunk.
//
// Each block is 4 warps, 128 weight rows (32 a warp: two m16 tiles) by BN
// tokens (8, 16, 32 or 64; more tokens take more blocks along y). k must be
// a multiple of 128 (the host checks; other k take mma.cu's kernels); m
// and n are any size (rows and tokens past the edges are zero and never
// stored). The rounding is the cuBLAS path's and mma.cu's: each weight
// element is dq<T> rounded to f16, the activations are f16, the products
// accumulate in f32 (in another order than mma.cu's, so the bits differ).
// sm_90 only (clusters); elsewhere the kernels are empty and never launched.
#include "common.h"
#include "quant.h"

#define MMQ_BM 128       // weight rows per block
#define MMQ_BK 128       // columns per chunk
#define MMQ_THREADS 128  // 4 warps
#define MMQ_RLD 132      // floats per token row of the f32 tile the parts sum (+4: distinct banks)
#define MMQ_STAGES 3     // chunks in flight in the cp.async kernels

#if !defined(RF_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define RF_MMQ 1
#define MMQ_CLUSTER(S) __cluster_dims__(1, 1, S)
#else
#define MMQ_CLUSTER(S)
#endif

// Bytes of one activation buffer (units plus the skew).
#define MMQ_XS_BYTES(BN) (4 * (BN) * 64 + 4 * 32)

#ifdef RF_MMQ
#include "mma_sync.h"

__device__ __forceinline__ u32 mmq_word(const uint4& v, int i) {
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.aligned;\n\tbarrier.cluster.wait.aligned;" ::: "memory");
}

__device__ __forceinline__ u32 cluster_rank() {
    u32 r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}

// ld_cluster4 reads 4 floats at shared address a (this block's space) of
// the block of cluster rank r.
__device__ __forceinline__ float4 ld_cluster4(u32 a, u32 r) {
    u32 ra;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(a), "r"(r));
    float4 v;
    asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "r"(ra)
                 : "memory");
    return v;
}
#endif

// MQ<T> holds one thread's raw weight bytes for a chunk (rows j = 0..3:
// row 32·warp + 16·(j/2) + 8·(j%2) + lane/4 of the tile, block lane%4 of the
// chunk) and dequantizes them: pair(j, s, hi) is the f16 pair of elements
// 4s + 2·hi, 4s + 2·hi + 1 of that row's block, equal to dq<T> rounded to
// f16 (the exact product q·d rounded once).
template <int T>
struct MQ;

#ifdef RF_MMQ
template <>
struct MQ<T_Q4_0S> {
    static constexpr int QU = 1;  // 16-byte quant units of a block
    uint4 q[4];
    u32 d2[4];  // the scale in both halves
    // stage reads the thread's bytes back from a cp.async stage
    // (mmq_matmul_async): scale word j holds blocks q & ~1 and q | 1.
    __device__ __forceinline__ void stage(const u8* st, int wq, int tid, int qq) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            q[j] = *(const uint4*)(st + (j * 128 + tid) * 16);
            const u32 w = *(const u32*)(st + wq + (j * 128 + tid) * 4), d = qq & 1 ? w >> 16 : w & 0xffffu;
            d2[j] = d | (d << 16);
        }
    }
    __device__ __forceinline__ void load(const u8* __restrict__ w, const u8* __restrict__ aux, const i64 blk[4],
                                         const bool ok[4]) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            q[j] = ok[j] ? __ldg((const uint4*)(w + blk[j] * 16)) : make_uint4(0, 0, 0, 0);
            const u32 d = ok[j] ? (u32)__ldg((const u16*)aux + blk[j]) : 0u;
            d2[j] = d | (d << 16);
        }
    }
    __device__ __forceinline__ u32 pair(int j, int s, int hi) const {
        const u32 v = (mmq_word(q[j], s & 3) >> (s & 4)) & 0x0f0f0f0fu;
        return hmul2(hsub2(__byte_perm(v, 0x64, hi ? 0x4342 : 0x4140), 0x64086408u), d2[j]);
    }
};

template <>
struct MQ<T_Q8_0S> {
    static constexpr int QU = 2;
    uint4 q[4][2];
    u32 d2[4];
    __device__ __forceinline__ void stage(const u8* st, int wq, int tid, int qq) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            q[j][0] = *(const uint4*)(st + ((2 * j) * 128 + tid) * 16);
            q[j][1] = *(const uint4*)(st + ((2 * j + 1) * 128 + tid) * 16);
            const u32 w = *(const u32*)(st + wq + (j * 128 + tid) * 4), d = qq & 1 ? w >> 16 : w & 0xffffu;
            d2[j] = d | (d << 16);
        }
    }
    __device__ __forceinline__ void load(const u8* __restrict__ w, const u8* __restrict__ aux, const i64 blk[4],
                                         const bool ok[4]) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const uint4* p = (const uint4*)(w + blk[j] * 32);
            q[j][0] = ok[j] ? __ldg(p) : make_uint4(0x80808080u, 0x80808080u, 0x80808080u, 0x80808080u);
            q[j][1] = ok[j] ? __ldg(p + 1) : make_uint4(0x80808080u, 0x80808080u, 0x80808080u, 0x80808080u);
            const u32 d = ok[j] ? (u32)__ldg((const u16*)aux + blk[j]) : 0u;
            d2[j] = d | (d << 16);
        }
    }
    __device__ __forceinline__ u32 pair(int j, int s, int hi) const {
        const u32 v = mmq_word(q[j][s >> 2], s & 3) ^ 0x80808080u;
        return hmul2(hsub2(__byte_perm(v, 0x64, hi ? 0x4342 : 0x4140), 0x64806480u), d2[j]);
    }
};
#endif

// MmqW is one weight of a launch.
struct MmqW {
    const u8* w;
    const u8* aux;
    float* y;
    int m;
};

#ifdef RF_MMQ
// MmqBlock is what every thread of a block derives from its position: the
// weight and row tile, the token tile, the chunks of its part, and the
// thread's 4 weight rows (their first block of k, whether inside m).
struct MmqBlock {
    MmqW W;
    int row0, tok0, c0, c1, z;
    i64 blk[4];
    bool ok[4];
    __device__ __forceinline__ MmqBlock(MmqW w0, MmqW w1, MmqW w2, int tiles0, int tiles01, int bn, int splits,
                                        int k, int warp, int g, int q) {
        int tile = blockIdx.x;
        W = w0;
        if (tile >= tiles01) {
            W = w2;
            tile -= tiles01;
        } else if (tile >= tiles0) {
            W = w1;
            tile -= tiles0;
        }
        row0 = tile * MMQ_BM, tok0 = blockIdx.y * bn;
        const int chunks = k / MMQ_BK, per = (chunks + splits - 1) / splits;
        z = splits > 1 ? (int)cluster_rank() : 0;
        c0 = min(chunks, z * per), c1 = min(chunks, c0 + per);
        const i64 nb = k >> 5;  // blocks a row
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int r = row0 + 32 * warp + 16 * (j >> 1) + 8 * (j & 1) + g;
            ok[j] = r < W.m;
            blk[j] = (i64)min(r, W.m - 1) * nb + q;
        }
    }
};

// mmq_chunk multiplies one chunk: the thread's dequantized rows of wc by
// the activations in xb (one buffer, the unit layout above), into acc.
template <int T, int BN>
__device__ __forceinline__ void mmq_chunk(float (&acc)[2][BN / 8][4], const MQ<T>& wc, const u8* xb, int g, int q) {
#pragma unroll
    for (int t = 0; t < 4; t++) {
        u32 a[2][2][4];  // [step 2t + st][mt][fragment register]
#pragma unroll
        for (int st = 0; st < 2; st++)
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                const int s = 2 * t + st;
                a[st][mt][0] = wc.pair(2 * mt, s, 0);
                a[st][mt][1] = wc.pair(2 * mt + 1, s, 0);
                a[st][mt][2] = wc.pair(2 * mt, s, 1);
                a[st][mt][3] = wc.pair(2 * mt + 1, s, 1);
            }
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) {
            const uint4 b = *(const uint4*)(xb + ((t * BN + nt * 8 + g) * 4 + q) * 16 + t * 32);
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                mma_16816(acc[mt][nt], a[0][mt], b.x, b.y);
                mma_16816(acc[mt][nt], a[1][mt], b.z, b.w);
            }
        }
    }
}

// mmq_finish writes the block's result: acc[mt][nt][i] is row 32·warp +
// 16·mt + g (+8 for i >= 2), token 8·nt + 2q (+1 for odd i). Unsplit, to y
// directly; split, through shared memory (red, free for it: the caller has
// passed a barrier after its last chunk) and the cluster's sum.
template <int BN, int S>
__device__ __forceinline__ void mmq_finish(const float (&acc)[2][BN / 8][4], const MmqBlock& B, float* red, int n,
                                           int tid, int warp, int g, int q) {
    const int m = B.W.m;
    if (S == 1) {
#pragma unroll
        for (int mt = 0; mt < 2; mt++)
#pragma unroll
            for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int r = B.row0 + 32 * warp + 16 * mt + g + ((i >> 1) << 3);
                    const int t = B.tok0 + nt * 8 + 2 * q + (i & 1);
                    if (r < m && t < n) B.W.y[(i64)t * m + r] = acc[mt][nt][i];
                }
        return;
    }
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                red[(nt * 8 + 2 * q + (i & 1)) * MMQ_RLD + 32 * warp + 16 * mt + g + ((i >> 1) << 3)] = acc[mt][nt][i];
    cluster_sync();
    constexpr int R = ((MMQ_BM + S - 1) / S + 3) & ~3;  // rows a part sums, a multiple of 4
    const int r0 = B.z * R, rows = min(R, MMQ_BM - r0);
    const u32 base = smem_addr(red);
    for (int e = tid; e < BN * (R / 4); e += MMQ_THREADS) {
        const int tl = e / (R / 4), rl = r0 + (e % (R / 4)) * 4;
        if (rl - r0 >= rows) continue;
        const u32 a = base + (u32)(tl * MMQ_RLD + rl) * 4u;
        float4 s = ld_cluster4(a, 0);
#pragma unroll
        for (int p = 1; p < S; p++) {
            const float4 v = ld_cluster4(a, p);
            s.x += v.x, s.y += v.y, s.z += v.z, s.w += v.w;
        }
        const int t = B.tok0 + tl, r = B.row0 + rl;
        if (t < n) {
            float* yr = B.W.y + (i64)t * m + r;
            if (r < m) yr[0] = s.x;
            if (r + 1 < m) yr[1] = s.y;
            if (r + 2 < m) yr[2] = s.z;
            if (r + 3 < m) yr[3] = s.w;
        }
    }
    cluster_sync();  // no block leaves while another still reads its tile
}
#endif

// mmq_matmul: the weights' raw bytes and the activations come one chunk
// ahead in registers (the register-staged version; ROCMFORGE_GPU_MMQ_ASYNC=0).
template <int T, int BN, int S>
__device__ void mmq_matmul(MmqW w0, MmqW w1, MmqW w2, int tiles0, int tiles01, const u16* __restrict__ x, int k,
                           int n) {
#ifdef RF_MMQ
    constexpr int NT = BN / 8;                  // n8 tiles
    constexpr int GX = BN * 16 / MMQ_THREADS;  // activation units per thread per chunk (16 a token)
    static_assert(GX >= 1 && GX * MMQ_THREADS == BN * 16, "BN must be a multiple of 8");
    constexpr int XSB = MMQ_XS_BYTES(BN);
    extern __shared__ uint4 mmq_smem[];
    u8* xs = (u8*)mmq_smem;  // [2][XSB]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, q = lane & 3;
    const MmqBlock B(w0, w1, w2, tiles0, tiles01, BN, S, k, warp, g, q);
    float acc[2][NT][4];
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
        for (int b = 0; b < NT; b++)
#pragma unroll
            for (int c = 0; c < 4; c++) acc[a][b][c] = 0.0f;

    MQ<T> wn;
    uint4 xr[GX];
    auto load = [&](int ch) {
        i64 bk[4];
#pragma unroll
        for (int j = 0; j < 4; j++) bk[j] = B.blk[j] + 4 * ch;
        wn.load(B.W.w, B.W.aux, bk, B.ok);
        const int kb = ch * MMQ_BK;
#pragma unroll
        for (int i = 0; i < GX; i++) {
            const int u = i * MMQ_THREADS + tid, t = B.tok0 + (u >> 4);
            xr[i] = t < n ? *(const uint4*)(x + (i64)t * k + kb + ((u & 15) << 3)) : make_uint4(0, 0, 0, 0);
        }
    };
    if (B.c0 < B.c1) load(B.c0);
    for (int ch = B.c0; ch < B.c1; ch++) {
        u8* xb = xs + ((ch - B.c0) & 1) * XSB;
#pragma unroll
        for (int i = 0; i < GX; i++) {
            const int u = i * MMQ_THREADS + tid, nn = u >> 4, qq = (u >> 2) & 3, t = u & 3;
            *(uint4*)(xb + ((t * BN + nn) * 4 + qq) * 16 + t * 32) = xr[i];
        }
        const MQ<T> wc = wn;
        __syncthreads();
        if (ch + 1 < B.c1) load(ch + 1);  // in flight while the tensor cores work
        mmq_chunk<T, BN>(acc, wc, xb, g, q);
    }
    if (S > 1) __syncthreads();  // the buffers become the tile the parts sum
    mmq_finish<BN, S>(acc, B, (float*)mmq_smem, n, tid, warp, g, q);
#endif
}


// mmq_matmul_async is mmq_matmul with every byte staged by cp.async
// MMQ_STAGES - 1 chunks ahead (the default): the weights' raw bytes into
// per-thread slots of a stage (each thread copies and later reads only its
// own, so they need no barrier: quant unit (j, h) of thread tid at
// ((j·QU + h)·128 + tid)·16, the 4-byte word holding its scale of row j at
// WQ + (j·128 + tid)·4), the activations into the unit layout (the barrier
// at the top of each chunk publishes them). More bytes in flight than one
// chunk in registers, fewer registers.
template <int T, int BN, int S>
__device__ void mmq_matmul_async(MmqW w0, MmqW w1, MmqW w2, int tiles0, int tiles01, const u16* __restrict__ x,
                                 int k, int n) {
#ifdef RF_MMQ
    constexpr int NT = BN / 8;
    constexpr int GX = BN * 16 / MMQ_THREADS;
    static_assert(GX >= 1 && GX * MMQ_THREADS == BN * 16, "BN must be a multiple of 8");
    constexpr int XSB = MMQ_XS_BYTES(BN);
    constexpr int QU = MQ<T>::QU;                        // 16-byte quant units of one row's block
    constexpr int WQ = 4 * QU * MMQ_THREADS * 16;        // quant bytes of a stage
    constexpr int WSB = WQ + 4 * MMQ_THREADS * 4;        // and the scales
    extern __shared__ uint4 mmq_smem[];
    u8* xs = (u8*)mmq_smem;              // [MMQ_STAGES][XSB]
    u8* ws = xs + MMQ_STAGES * XSB;      // [MMQ_STAGES][WSB]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, q = lane & 3;
    const MmqBlock B(w0, w1, w2, tiles0, tiles01, BN, S, k, warp, g, q);
    float acc[2][NT][4];
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
        for (int b = 0; b < NT; b++)
#pragma unroll
            for (int c = 0; c < 4; c++) acc[a][b][c] = 0.0f;

    // Every call commits a group, empty past the part's last chunk, so that
    // wait_group counts the same in every iteration.
    auto issue = [&](int ch) {
        if (ch < B.c1) {
            const int si = (ch - B.c0) % MMQ_STAGES;
            u8* wst = ws + si * WSB;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const i64 bk = B.blk[j] + 4 * ch;
#pragma unroll
                for (int h = 0; h < QU; h++)
                    cp_async16(wst + ((j * QU + h) * MMQ_THREADS + tid) * 16, B.W.w + bk * (16 * QU) + 16 * h,
                               B.ok[j] ? 16 : 0);
                cp_async4(wst + WQ + (j * MMQ_THREADS + tid) * 4, B.W.aux + (bk & ~(i64)1) * 2, B.ok[j] ? 4 : 0);
            }
            u8* xb = xs + si * XSB;
            const int kb = ch * MMQ_BK;
#pragma unroll
            for (int i = 0; i < GX; i++) {
                const int u = i * MMQ_THREADS + tid, nn = u >> 4, qq = (u >> 2) & 3, t = u & 3, tk = B.tok0 + nn;
                cp_async16(xb + ((t * BN + nn) * 4 + qq) * 16 + t * 32,
                           x + (i64)min(tk, n - 1) * k + kb + ((u & 15) << 3), tk < n ? 16 : 0);
            }
        }
        cp_async_commit();
    };
#pragma unroll
    for (int s = 0; s < MMQ_STAGES - 1; s++) issue(B.c0 + s);
    for (int ch = B.c0; ch < B.c1; ch++) {
        // This thread's copies for chunk ch are done (later ones may still
        // be in flight); after the barrier everyone's are, and every warp
        // has finished chunk ch - 1, whose stage the next issue refills.
        cp_async_wait<MMQ_STAGES - 2>();
        __syncthreads();
        issue(ch + MMQ_STAGES - 1);
        const int si = (ch - B.c0) % MMQ_STAGES;
        MQ<T> wc;
        wc.stage(ws + si * WSB, WQ, tid, q);
        mmq_chunk<T, BN>(acc, wc, xs + si * XSB, g, q);
    }
    cp_async_wait<0>();
    if (S > 1) __syncthreads();  // the stages become the tile the parts sum
    mmq_finish<BN, S>(acc, B, (float*)mmq_smem, n, tid, warp, g, q);
#endif
}

#define MMQ_KERNEL(TNAME, T, BN, S)                                                                           \
    extern "C" __global__ void __launch_bounds__(MMQ_THREADS) MMQ_CLUSTER(S) mmq_##TNAME##_##BN##_s##S(       \
        const u8* w0, const u8* a0, float* y0, int m0, const u8* w1, const u8* a1, float* y1, int m1,          \
        const u8* w2, const u8* a2, float* y2, int m2, int tiles0, int tiles01, const u16* x, int k, int n) {  \
        mmq_matmul<T, BN, S>(MmqW{w0, a0, y0, m0}, MmqW{w1, a1, y1, m1}, MmqW{w2, a2, y2, m2}, tiles0,         \
                             tiles01, x, k, n);                                                               \
    }                                                                                                         \
    extern "C" __global__ void __launch_bounds__(MMQ_THREADS) MMQ_CLUSTER(S) mmqa_##TNAME##_##BN##_s##S(      \
        const u8* w0, const u8* a0, float* y0, int m0, const u8* w1, const u8* a1, float* y1, int m1,          \
        const u8* w2, const u8* a2, float* y2, int m2, int tiles0, int tiles01, const u16* x, int k, int n) {  \
        mmq_matmul_async<T, BN, S>(MmqW{w0, a0, y0, m0}, MmqW{w1, a1, y1, m1}, MmqW{w2, a2, y2, m2}, tiles0,   \
                                   tiles01, x, k, n);                                                         \
    }
#define MMQ_SPLITS(TNAME, T, BN) \
    MMQ_KERNEL(TNAME, T, BN, 1)  \
    MMQ_KERNEL(TNAME, T, BN, 2) MMQ_KERNEL(TNAME, T, BN, 3) MMQ_KERNEL(TNAME, T, BN, 4) MMQ_KERNEL(TNAME, T, BN, 8)
#define MMQ_TYPE(TNAME, T) \
    MMQ_SPLITS(TNAME, T, 8) MMQ_SPLITS(TNAME, T, 16) MMQ_SPLITS(TNAME, T, 32) MMQ_SPLITS(TNAME, T, 64)

MMQ_TYPE(q4_0s, T_Q4_0S)
MMQ_TYPE(q8_0s, T_Q8_0S)
