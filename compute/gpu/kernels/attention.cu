// attention.cu: paged scaled-dot-product attention (compute.AttentionHead)
// and the KV-cache write.
//
// One block per (query row, head). The block's warps take the visible keys
// round-robin, read each through the sequence's block table, and keep a
// running (max, sum, weighted V) per warp (online softmax); the warps'
// partial results are merged at the end. GQA reads the shared KV head in
// place. Float arithmetic.
//
// KV pools are F32, F16 or Q8_0 (compute.KVType), templated on the type id
// of quant.h. Element e of a pool (row-major, e = slot*cols + col) is
// K[e] for F32, the half K[e] for F16, and for Q8_0, stored split like the
// Q8_0 weights (layout q8_0s), the quant byte K[e] times the f16 scale
// aux[e/32]: exact, as compute.KVRow. The write converts rows as
// compute.EncodeKVRow (F16 to nearest even, ggml's Q8_0 quantizer).
#include "common.h"
#include "quant.h"

// Added to a query row's sequence index in rowSeq when attention_tile, not
// attention_dec, computes the row.
#define AT_TILED (1 << 30)

// kv_at is element e of a pool of type T.
template <int T>
__device__ __forceinline__ float kv_at(const void* __restrict__ base, const u8* __restrict__ aux, i64 e) {
    if (T == T_F32) return ((const float*)base)[e];
    if (T == T_F16) return half_to_float(((const u16*)base)[e]);
    return (float)((const i8*)base)[e] * half_to_float(((const u16*)aux)[e >> 5]);
}

// kv_at4 is elements e..e+3 (e a multiple of 4) of a pool of type T, in
// one 16-, 8- or 4-byte load (plus the Q8_0 scale, shared by the four).
template <int T>
__device__ __forceinline__ float4 kv_at4(const void* __restrict__ base, const u8* __restrict__ aux, i64 e) {
    if (T == T_F32) return *(const float4*)((const float*)base + e);
    if (T == T_F16) {
        const uint2 u = *(const uint2*)((const u16*)base + e);
        return make_float4(half_to_float((u16)(u.x & 0xffffu)), half_to_float((u16)(u.x >> 16)),
                           half_to_float((u16)(u.y & 0xffffu)), half_to_float((u16)(u.y >> 16)));
    }
    const int u = *(const int*)((const i8*)base + e);
    const float d = half_to_float(((const u16*)aux)[e >> 5]);
    return make_float4((float)(i8)(u & 0xff) * d, (float)(i8)((u >> 8) & 0xff) * d, (float)(i8)((u >> 16) & 0xff) * d,
                       (float)(i8)(u >> 24) * d);
}

// Per-lane V accumulators: head_dim_v <= ATT_NV * WARP_SIZE.
#define ATT_NV 16
// Keys a warp of the decode kernel reads at once.
#define ATT_KG 4

// kv_vec sets x to elements e..e+VW-1 (e a multiple of VW, VW 2 or 4) of a
// pool of type T, in one load (plus the Q8_0 scale, shared by them).
template <int T, int VW>
__device__ __forceinline__ void kv_vec(const void* __restrict__ base, const u8* __restrict__ aux, i64 e, float* x) {
    if (VW == 4) {
        const float4 v = kv_at4<T>(base, aux, e);
        x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
    } else if (T == T_F32) {
        const float2 v = *(const float2*)((const float*)base + e);
        x[0] = v.x, x[1] = v.y;
    } else if (T == T_F16) {
        const u32 u = *(const u32*)((const u16*)base + e);
        x[0] = half_to_float((u16)(u & 0xffffu)), x[1] = half_to_float((u16)(u >> 16));
    } else {
        const u16 u = *(const u16*)((const i8*)base + e);
        const float d = half_to_float(((const u16*)aux)[e >> 5]);
        x[0] = (float)(i8)(u & 0xff) * d, x[1] = (float)(i8)(u >> 8) * d;
    }
}

// att_store writes element d of a head's output (oh, at element base of
// the output [n, nHead*hdv]) and, when xq is set, the q8 activation block
// holding it (mmvq.cu's layout, as quantize_q8_f32 writes it), so that the
// attention output projection needs no quantize launch. With xq every 32
// consecutive threads must call it together for one 32-element block
// (hdv % 32 == 0, blockDim.x a multiple of 32).
__device__ __forceinline__ void att_store(float* __restrict__ oh, i64 base, int d, float v, i8* __restrict__ xq,
                                          float2* __restrict__ xd) {
    oh[d] = v;
    if (xq != nullptr) {
        const i64 e = base + d - (int)(threadIdx.x % 32);
        q8_block(v, xq + e, xd + (e >> 5));
    }
}

// rowSeq[i]: the sequence owning query row i, or -1 (row gets zeros), or
// AT_TILED + s when the tiled kernel computes the row (a batch mixing
// prompts and decodes runs both kernels; each leaves the other's rows alone).
// seqInfo[2s], seqInfo[2s+1]: CtxLen and the offset of the sequence's block
// table in blocks. Dynamic shared memory: (hd + warps*(hdv+2)) floats.
//
// Split-K (gridDim.z > 1, part non-null): block z takes the z-th of
// gridDim.z equal runs of the row's visible keys and writes its partial
// result, (max, sum, unnormalised weighted V) relative to its own max, to
// part[((i*nHead + h)*gridDim.z + z)*(hdv+2)]; attention_combine merges
// them. A block with no visible key writes max -inf.
//
// VW > 0 (hd == hdv == VW*WARP_SIZE, VW 2 or 4): lane owns elements
// [lane*VW, lane*VW+VW) of each K and V row and reads them in one load, its
// part of q in registers; VW = 0: any head dims, element d on lane d%WARP_SIZE.
template <int T, int VW>
__device__ void attention_dec(float* __restrict__ out, const float* __restrict__ q, const void* __restrict__ K,
                              const u8* __restrict__ Kaux, const void* __restrict__ V, const u8* __restrict__ Vaux,
                              const int* __restrict__ pos, const int* __restrict__ rowSeq,
                              const int* __restrict__ seqInfo, const int* __restrict__ blocks, int nHead, int nKV,
                              int hd, int hdv, int bs, float scale, int causal, int window, float softcap,
                              float* __restrict__ part, i8* __restrict__ xq, float2* __restrict__ xd) {
    extern __shared__ float smem[];
    const int i = blockIdx.x, h = blockIdx.y;
    const int warps = blockDim.x / WARP_SIZE, warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
    const bool split = part != nullptr;
    const i64 obase = ((i64)i * nHead + h) * hdv;
    float* oh = out + obase;
    float* ph = split ? part + (((i64)i * nHead + h) * gridDim.z + blockIdx.z) * (hdv + 2) : nullptr;
    const int s = rowSeq[i];
    if (s >= AT_TILED) return;  // attention_tile's row
    if (s < 0) {
        if (split) {
            for (int d = threadIdx.x; d < hdv + 2; d += blockDim.x) ph[d] = d == 0 ? -RF_INF : 0.0f;
        } else {
            for (int d = threadIdx.x; d < hdv; d += blockDim.x) att_store(oh, obase, d, 0.0f, xq, xd);
        }
        return;
    }
    const int ctx = seqInfo[2 * s];
    const int* bt = blocks + seqInfo[2 * s + 1];
    const int qp = pos[i];
    const int kvh = h / (nHead / nKV);
    int lo = 0, hi = ctx - 1;
    if (causal) hi = min(hi, qp);
    if (window > 0) lo = max(lo, qp - window + 1);
    if (split && lo <= hi) {
        const int chunk = (hi - lo + gridDim.z) / gridDim.z;  // ceil(keys / splits)
        const int zlo = lo + (int)blockIdx.z * chunk;
        hi = min(hi, zlo + chunk - 1);
        lo = zlo;
    }

    float* sq = smem;              // [hd]
    float* sm = sq + hd;           // [warps] running max
    float* sl = sm + warps;        // [warps] running sum
    float* sacc = sl + warps;      // [warps][hdv]
    const float* qh = q + ((i64)i * nHead + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) sq[d] = qh[d];
    __syncthreads();
    float qv[VW > 0 ? VW : 1];
#pragma unroll
    for (int e = 0; e < VW; e++) qv[e] = sq[lane * VW + e];

    const i64 kStride = (i64)nKV * hd, vStride = (i64)nKV * hdv;
    float m = -RF_INF, l = 0.0f, acc[ATT_NV];
#pragma unroll
    for (int r = 0; r < ATT_NV; r++) acc[r] = 0.0f;
    // Each warp takes ATT_KG consecutive keys at a time (groups round-robin
    // over the warps), so that ATT_KG rows' loads are in flight at once: a
    // key at a time is one dependent chain of global loads per warp, and the
    // kernel waited on memory latency, not bandwidth. Keys past hi in the
    // last group read key hi again and weigh 0.
    for (int j0 = lo + warp * ATT_KG; j0 <= hi; j0 += warps * ATT_KG) {
        i64 kb[ATT_KG], vb[ATT_KG];
#pragma unroll
        for (int u = 0; u < ATT_KG; u++) {
            const int j = min(j0 + u, hi);
            const i64 slot = (i64)bt[j / bs] * bs + j % bs;
            kb[u] = slot * kStride + (i64)kvh * hd;
            vb[u] = slot * vStride + (i64)kvh * hdv;
        }
        float dot[ATT_KG];
#pragma unroll
        for (int u = 0; u < ATT_KG; u++) dot[u] = 0.0f;
        if (VW > 0) {
#pragma unroll
            for (int u = 0; u < ATT_KG; u++) {
                float kx[VW > 0 ? VW : 1];
                kv_vec<T, VW>(K, Kaux, kb[u] + lane * VW, kx);
#pragma unroll
                for (int e = 0; e < VW; e++) dot[u] += qv[e] * kx[e];
            }
        } else {
            for (int d = lane; d < hd; d += WARP_SIZE) {
                const float qd = sq[d];
#pragma unroll
                for (int u = 0; u < ATT_KG; u++) dot[u] += qd * kv_at<T>(K, Kaux, kb[u] + d);
            }
        }
        float sc[ATT_KG], mn = m;
#pragma unroll
        for (int u = 0; u < ATT_KG; u++) {
            float x = scale * warp_sum(dot[u]);
            if (softcap > 0.0f) x = softcap * tanhf(x / softcap);
            sc[u] = j0 + u <= hi ? x : -RF_INF;
            mn = fmaxf(mn, sc[u]);
        }
        const float corr = expf(m - mn);  // 0 on the first group (m = -inf)
        float p[ATT_KG];
        l *= corr;
#pragma unroll
        for (int u = 0; u < ATT_KG; u++) {
            p[u] = expf(sc[u] - mn);
            l += p[u];
        }
        if (VW > 0) {
            float vx[ATT_KG][VW > 0 ? VW : 1];
#pragma unroll
            for (int u = 0; u < ATT_KG; u++) kv_vec<T, VW>(V, Vaux, vb[u] + lane * VW, vx[u]);
#pragma unroll
            for (int e = 0; e < VW; e++) {
                float a = acc[e] * corr;
#pragma unroll
                for (int u = 0; u < ATT_KG; u++) a += p[u] * vx[u][e];
                acc[e] = a;
            }
        } else {
#pragma unroll
            for (int r = 0; r < ATT_NV; r++) {
                const int d = lane + r * WARP_SIZE;
                if (d < hdv) {
                    float a = acc[r] * corr;
#pragma unroll
                    for (int u = 0; u < ATT_KG; u++) a += p[u] * kv_at<T>(V, Vaux, vb[u] + d);
                    acc[r] = a;
                }
            }
        }
        m = mn;
    }
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
    if (VW > 0) {
#pragma unroll
        for (int e = 0; e < VW; e++) sacc[warp * hdv + lane * VW + e] = acc[e];
    } else {
#pragma unroll
        for (int r = 0; r < ATT_NV; r++) {
            const int d = lane + r * WARP_SIZE;
            if (d < hdv) sacc[warp * hdv + d] = acc[r];
        }
    }
    __syncthreads();
    float M = -RF_INF;
    for (int w = 0; w < warps; w++) M = fmaxf(M, sm[w]);
    if (M == -RF_INF) {  // every key masked (or none in this split)
        if (split) {
            for (int d = threadIdx.x; d < hdv + 2; d += blockDim.x) ph[d] = d == 0 ? -RF_INF : 0.0f;
        } else {
            for (int d = threadIdx.x; d < hdv; d += blockDim.x) att_store(oh, obase, d, 0.0f, xq, xd);
        }
        return;
    }
    float L = 0.0f;
    for (int w = 0; w < warps; w++) L += sl[w] * expf(sm[w] - M);
    if (split && threadIdx.x == 0) {
        ph[0] = M;
        ph[1] = L;
    }
    for (int d = threadIdx.x; d < hdv; d += blockDim.x) {
        float o = 0.0f;
        for (int w = 0; w < warps; w++) o += sacc[w * hdv + d] * expf(sm[w] - M);
        if (split) {
            ph[2 + d] = o;
        } else {
            att_store(oh, obase, d, o / L, xq, xd);
        }
    }
}

// Grouped decode (attention_g<GM>v<VW>_<t>): one block per (query row, KV
// head, split) computes up to GM of the query heads that share the KV head
// (GQA), so each K and V row is read once per row and block instead of once
// per query head. Block y takes KV head y / chunks and its query heads
// [c*GM, c*GM+GM) (c = y % chunks, chunks = ceil(G/GM), G = nHead/nKV); slots
// past G compute on zero queries and store nothing. Key ranges, split-K
// partials (per (row, query head), as attention_dec writes them, for
// attention_combine), rows of no sequence (zeros), AT_TILED rows (skipped)
// and the q8 epilogue are as in attention_dec.
//
// The warps take ATT_KG consecutive keys at a time, round-robin, as there;
// each lane holds its elements of the K rows and of all GM queries, so a
// group gives GM*ATT_KG partial dot products per lane. A transposing
// reduction sums them over the warp (each step keeps half of the values and
// trades the other half with the partner lane: GM*ATT_KG-1 shuffles plus the
// remaining butterfly steps, instead of log2(WARP_SIZE) a value), leaving
// on lane l the score of value l >> SH: head (l >> SH) / ATT_KG, key
// (l >> SH) % ATT_KG. A head's running max and the lanes' shares of its sum
// stay on its lanes; the weights and each head's rescale factor reach every
// lane through the warp's slice of shared memory for the p·V update, lane
// owning V elements as in attention_dec (VW, or d % WARP_SIZE with
// head_dim_v <= ATG_NV*WARP_SIZE). The warps' results merge per head.
//
// A key's slot is 32-bit (attDec keeps pools of more slots on
// attention_dec) and each K or V row address one wide multiply-add from
// it; the block-table position of a warp's next key group is carried from
// group to group, so no key is divided by the block size. PF (the VW
// paths): a key group's K and V are loaded a group ahead, into registers
// in their stored form, while the group before computes.
//
// Dynamic shared memory (floats): warps*(GM*ATT_KG+8) + GM*hd +
// warps*GM*(hdv+2).
#define ATG_NV 4
// Most threads a grouped block (the kernels' launch bound).
#define ATG_THREADS 256

__device__ constexpr int att_log2(int x) { return x <= 1 ? 0 : 1 + att_log2(x / 2); }

// warp_tsum_step is one step of warp_tsum: v[0..NV) becomes NV/2 sums, a
// lane with bit O set keeping the upper half of each pair, its partner
// (lane ^ O) the lower. Recursive on constants so that every index is a
// compile-time one (a loop over NV was left rolled by NVRTC, with the
// array indexed through branches).
template <int NV, int O, int N>
__device__ __forceinline__ void warp_tsum_step(float (&v)[N], int lane) {
    if constexpr (NV > 1) {
        const bool up = (lane & O) != 0;
#pragma unroll
        for (int k = 0; k < NV / 2; k++) {
            const float send = up ? v[k] : v[k + NV / 2];
            const float keep = up ? v[k + NV / 2] : v[k];
            v[k] = keep + SHFL_XOR(send, O);
        }
        warp_tsum_step<NV / 2, O / 2>(v, lane);
    }
}

// warp_tsum sums each of v[0..N) over the warp (N a power of two, at most
// WARP_SIZE) and returns, on lane l, the sum of v[l >> log2(WARP_SIZE/N)].
// v is clobbered.
template <int N>
__device__ __forceinline__ float warp_tsum(float (&v)[N], int lane) {
    warp_tsum_step<N, WARP_SIZE / 2>(v, lane);
    float x = v[0];
#pragma unroll
    for (int o = WARP_SIZE / (2 * N); o > 0; o >>= 1) x += SHFL_XOR(x, o);
    return x;
}

// kv_esz is the bytes of an element of a pool of type T.
template <int T>
__device__ constexpr int kv_esz() {
    return T == T_F32 ? 4 : T == T_F16 ? 2 : 1;
}

// A lane's VW (2 or 4) consecutive elements of a pool row of type T, as
// loaded (kv_raw_load) and converted later (kv_raw_get), so that a key
// group's loads can be issued a group ahead: KV_RW words (for Q8_0 the
// quants, then the scale).
template <int T, int VW>
__device__ constexpr int kv_raw_words() {
    return T == T_F32 ? VW : T == T_F16 ? VW / 2 : 2;
}

// kv_raw_load loads the elements at p (a byte address, VW-element aligned;
// sc: their Q8_0 scale) into w, read-only.
template <int T, int VW>
__device__ __forceinline__ void kv_raw_load(const char* p, const u16* sc, u32* w) {
    if constexpr (T == T_F32 && VW == 4) {
        const uint4 u = __ldg((const uint4*)p);
        w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
    } else if constexpr ((T == T_F32 && VW == 2) || (T == T_F16 && VW == 4)) {
        const uint2 u = __ldg((const uint2*)p);
        w[0] = u.x, w[1] = u.y;
    } else if constexpr (T == T_F16) {
        w[0] = __ldg((const u32*)p);
    } else {
        w[0] = VW == 4 ? __ldg((const u32*)p) : (u32)__ldg((const u16*)p);
        w[1] = __ldg(sc);
    }
}

// kv_raw_get converts kv_raw_load's words to floats.
template <int T, int VW>
__device__ __forceinline__ void kv_raw_get(const u32* w, float* x) {
    if constexpr (T == T_F32) {
#pragma unroll
        for (int e = 0; e < VW; e++) x[e] = __uint_as_float(w[e]);
    } else if constexpr (T == T_F16) {
#pragma unroll
        for (int e = 0; e < VW; e++) x[e] = half_to_float((u16)(w[e / 2] >> (16 * (e % 2))));
    } else {
        const float d = half_to_float((u16)w[1]);
#pragma unroll
        for (int e = 0; e < VW; e++) x[e] = (float)(i8)(w[0] >> (8 * e)) * d;
    }
}

// kv_el_p is element d of a pool row segment of type T at p (a byte
// address); for Q8_0 its scale is sc[(c + d) >> 5], sc the row's scales
// and c the segment's first column.
template <int T>
__device__ __forceinline__ float kv_el_p(const char* p, const u16* sc, int c, int d) {
    if constexpr (T == T_F32) return __ldg((const float*)p + d);
    if constexpr (T == T_F16) return half_to_float(__ldg((const u16*)p + d));
    return (float)__ldg((const i8*)p + d) * half_to_float(__ldg(sc + ((c + d) >> 5)));
}

// att_opaque returns p, hidden from the optimizer, so that a base address
// kept in registers is not split back into a kernel parameter plus an
// offset (which costs two 64-bit adds a key instead of one multiply-add).
// NVIDIA only: the "l" constraint is PTX's; HIP gets p unchanged.
__device__ __forceinline__ const char* att_opaque(const char* p) {
#ifndef RF_HIP
    asm("" : "+l"(p));
#endif
    return p;
}

template <int T, int VW, int GM, bool PF>
__device__ void attention_grp(float* __restrict__ out, const float* __restrict__ q, const void* __restrict__ K,
                              const u8* __restrict__ Kaux, const void* __restrict__ V, const u8* __restrict__ Vaux,
                              const int* __restrict__ pos, const int* __restrict__ rowSeq,
                              const int* __restrict__ seqInfo, const int* __restrict__ blocks, int nHead, int nKV,
                              int hd, int hdv, int bs, float scale, int causal, int window, float softcap,
                              float* __restrict__ part, i8* __restrict__ xq, float2* __restrict__ xd) {
    constexpr int N = GM * ATT_KG;                         // values a lane holds per key group
    constexpr int SH = att_log2(WARP_SIZE / N);            // lane l holds value l >> SH after warp_tsum
    constexpr int NA = VW > 0 ? VW : ATG_NV;               // V accumulators a head per lane
    static_assert(N <= WARP_SIZE && (N & (N - 1)) == 0, "GM*ATT_KG: a power of two within a warp");
    static_assert(!PF || VW > 0, "prefetch: the VW paths only");
    extern __shared__ float smem[];
    const int i = blockIdx.x;
    const int G = nHead / nKV, chunks = (G + GM - 1) / GM, c = (int)blockIdx.y % chunks;
    const int kvh = (int)blockIdx.y / chunks, h0 = kvh * G + c * GM, ng = min(GM, G - c * GM);
    const int warps = blockDim.x / WARP_SIZE, warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
    const bool split = part != nullptr;
    const int s = rowSeq[i];
    if (s >= AT_TILED) return;  // attention_tile's row
    // A row of no sequence takes no key: the merge below writes zeros (or
    // empty partials).
    int lo = 1, hi = 0;
    const int* bt = blocks;
    if (s >= 0) {
        const int ctx = seqInfo[2 * s];
        bt = blocks + seqInfo[2 * s + 1];
        const int qp = pos[i];
        lo = 0, hi = ctx - 1;
        if (causal) hi = min(hi, qp);
        if (window > 0) lo = max(lo, qp - window + 1);
        if (split && lo <= hi) {
            const int chunk = (hi - lo + gridDim.z) / gridDim.z;  // ceil(keys / splits)
            const int zlo = lo + (int)blockIdx.z * chunk;
            hi = min(hi, zlo + chunk - 1);
            lo = zlo;
        }
    }

    float* sx = smem;                     // [warps][N + 8]: a key group's weights, then GM rescale factors
    float* sq = sx + warps * (N + 8);     // [GM][hd]
    float* sacc = sq + GM * hd;           // [warps][GM][hdv]
    float* sm = sacc + warps * GM * hdv;  // [warps][GM] running max
    float* sl = sm + warps * GM;          // [warps][GM] running sum
    const float* qb = q + ((i64)i * nHead + h0) * hd;  // the block's heads are consecutive
    for (int e = threadIdx.x; e < GM * hd; e += blockDim.x) sq[e] = e < ng * hd ? qb[e] : 0.0f;
    __syncthreads();
    float qv[GM][VW > 0 ? VW : 1];
#pragma unroll
    for (int g = 0; g < GM; g++)
#pragma unroll
        for (int e = 0; e < VW; e++) qv[g][e] = sq[g * hd + lane * VW + e];

    // Key addressing. A key's slot is 32-bit (attDec keeps pools of more
    // than 2^31-1 slots on attention_dec) and its K and V rows' addresses
    // are one wide multiply-add from it (kRow, vRow: bytes a pool row);
    // the block-table position (blk0, off0) of key j0 is carried from group
    // to group (one division before the loop, none a key), the position of
    // key j0+u stepped from it.
    constexpr int ES = kv_esz<T>();
    const u32 ubs = (u32)bs, kRow = (u32)(nKV * hd) * ES, vRow = (u32)(nKV * hdv) * ES;
    const u32 kSc = (u32)(nKV * hd) / 32, vSc = (u32)(nKV * hdv) / 32;  // Q8_0 scales a row
    const int kc = kvh * hd + (VW > 0 ? lane * VW : 0), vc = kvh * hdv + (VW > 0 ? lane * VW : 0);
    const char* Kb = att_opaque((const char*)K + (i64)kc * ES);  // this lane's (VW) or the head's (VW = 0) first element
    const char* Vb = att_opaque((const char*)V + (i64)vc * ES);
    const u16* Ks = (const u16*)Kaux + (VW > 0 ? kc >> 5 : 0);  // the scale of that element (VW > 0) or the row's first
    const u16* Vs = (const u16*)Vaux + (VW > 0 ? vc >> 5 : 0);
    const u32 step = (u32)(warps * ATT_KG), stepB = step / ubs, stepO = step % ubs;
    int j0 = lo + warp * ATT_KG;  // >= 0
    u32 blk0 = (u32)j0 / ubs, off0 = (u32)j0 % ubs;
    float acc[GM][NA];
#pragma unroll
    for (int g = 0; g < GM; g++)
#pragma unroll
        for (int r = 0; r < NA; r++) acc[g][r] = 0.0f;
    const int idx = lane >> SH, gl = idx / ATT_KG, ul = idx % ATT_KG;
    // Head gl's running max (the same on its lanes) and this lane's share of
    // its running sum (key ul of each group; lanes equal in l >> SH hold
    // copies).
    float m = -RF_INF, l = 0.0f;
    float* wx = sx + warp * (N + 8);
    // key_slots sets sl to the slots of keys jj.. jj+ATT_KG-1 (keys past hi:
    // key hi again, weight 0), (bk, of) the block-table position of key jj.
    auto key_slots = [&](int jj, u32 bk, u32 of, u32 (&sl)[ATT_KG]) {
#pragma unroll
        for (int u = 0; u < ATT_KG; u++) {
            if (u > 0) {
                const bool adv = jj + u <= hi, wrap = of + 1 == ubs;
                bk += adv && wrap ? 1u : 0u;
                of = adv ? (wrap ? 0u : of + 1) : of;
            }
            sl[u] = (u32)bt[bk] * ubs + of;
        }
    };
    // next_group moves (blk0, off0) on by a round of the warps' groups.
    auto next_group = [&]() {
        off0 += stepO, blk0 += stepB;
        if (off0 >= ubs) off0 -= ubs, blk0++;
    };
    constexpr int RW = VW > 0 ? kv_raw_words<T, VW>() : 1;
    // load_raw loads the lane's K and V elements of the keys at slots sl.
    auto load_raw = [&](const u32 (&sl)[ATT_KG], u32 (&kw)[ATT_KG][RW], u32 (&vw)[ATT_KG][RW]) {
        if constexpr (VW > 0) {
#pragma unroll
            for (int u = 0; u < ATT_KG; u++) {
                kv_raw_load<T, VW>(Kb + (u64)sl[u] * kRow, Ks + (u64)sl[u] * kSc, kw[u]);
                kv_raw_load<T, VW>(Vb + (u64)sl[u] * vRow, Vs + (u64)sl[u] * vSc, vw[u]);
            }
        }
    };
    // The group's K and V elements (VW > 0) and, with PF, the next group's,
    // loaded while this group computes.
    u32 kr[ATT_KG][RW], vr[ATT_KG][RW], nkr[ATT_KG][RW] = {}, nvr[ATT_KG][RW] = {};
    if constexpr (PF) {
        if (j0 <= hi) {
            u32 sl[ATT_KG];
            key_slots(j0, blk0, off0, sl);
            load_raw(sl, kr, vr);
        }
        next_group();
    }
    for (; j0 <= hi; j0 += (int)step) {
        u32 sl[ATT_KG];
        if constexpr (PF) {
            if (j0 + (int)step <= hi) {
                key_slots(j0 + (int)step, blk0, off0, sl);
                load_raw(sl, nkr, nvr);
            }
        } else {
            key_slots(j0, blk0, off0, sl);
            load_raw(sl, kr, vr);
        }
        next_group();
        float dot[N];
#pragma unroll
        for (int v = 0; v < N; v++) dot[v] = 0.0f;
        float vx[ATT_KG][VW > 0 ? VW : 1];
        if constexpr (VW > 0) {
#pragma unroll
            for (int u = 0; u < ATT_KG; u++) {
                float kx[VW];
                kv_raw_get<T, VW>(kr[u], kx);
                kv_raw_get<T, VW>(vr[u], vx[u]);
#pragma unroll
                for (int g = 0; g < GM; g++)
#pragma unroll
                    for (int e = 0; e < VW; e++) dot[g * ATT_KG + u] += qv[g][e] * kx[e];
            }
        } else {
            for (int d = lane; d < hd; d += WARP_SIZE) {
                float kx[ATT_KG];
#pragma unroll
                for (int u = 0; u < ATT_KG; u++) kx[u] = kv_el_p<T>(Kb + (u64)sl[u] * kRow, Ks + (u64)sl[u] * kSc, kvh * hd, d);
#pragma unroll
                for (int g = 0; g < GM; g++) {
                    const float qd = sq[g * hd + d];
#pragma unroll
                    for (int u = 0; u < ATT_KG; u++) dot[g * ATT_KG + u] += qd * kx[u];
                }
            }
        }
        float x = scale * warp_tsum<N>(dot, lane);
        if (softcap > 0.0f) x = softcap * tanhf(x / softcap);
        if (j0 + ul > hi) x = -RF_INF;
        float mx = x;
#pragma unroll
        for (int o = 1 << SH; o < (ATT_KG << SH); o <<= 1) mx = fmaxf(mx, SHFL_XOR(mx, o));
        const float mn = fmaxf(m, mx);  // finite: key j0 is visible
        const float corr = expf(m - mn);  // 0 on the first group (m = -inf)
        const float p = expf(x - mn);
        l = l * corr + p;
        m = mn;
        if ((lane & ((1 << SH) - 1)) == 0) {
            wx[idx] = p;
            if (ul == 0) wx[N + gl] = corr;
        }
        __syncwarp();
        float pw[N], cw[GM];
#pragma unroll
        for (int v = 0; v < N; v += 4) {
            const float4 t = *(const float4*)(wx + v);
            pw[v] = t.x, pw[v + 1] = t.y, pw[v + 2] = t.z, pw[v + 3] = t.w;
        }
#pragma unroll
        for (int g = 0; g < GM; g++) cw[g] = wx[N + g];
        __syncwarp();  // read before the next group's writes
        if constexpr (VW > 0) {
#pragma unroll
            for (int g = 0; g < GM; g++)
#pragma unroll
                for (int e = 0; e < VW; e++) {
                    float a = acc[g][e] * cw[g];
#pragma unroll
                    for (int u = 0; u < ATT_KG; u++) a += pw[g * ATT_KG + u] * vx[u][e];
                    acc[g][e] = a;
                }
        } else {
#pragma unroll
            for (int r = 0; r < ATG_NV; r++) {
                const int d = lane + r * WARP_SIZE;
                if (d < hdv) {
                    float vv[ATT_KG];
#pragma unroll
                    for (int u = 0; u < ATT_KG; u++) vv[u] = kv_el_p<T>(Vb + (u64)sl[u] * vRow, Vs + (u64)sl[u] * vSc, kvh * hdv, d);
#pragma unroll
                    for (int g = 0; g < GM; g++) {
                        float a = acc[g][r] * cw[g];
#pragma unroll
                        for (int u = 0; u < ATT_KG; u++) a += pw[g * ATT_KG + u] * vv[u];
                        acc[g][r] = a;
                    }
                }
            }
        }
        if constexpr (PF) {
#pragma unroll
            for (int u = 0; u < ATT_KG; u++)
#pragma unroll
                for (int w = 0; w < RW; w++) kr[u][w] = nkr[u][w], vr[u][w] = nvr[u][w];
        }
    }
    // Head gl's sum over its keys' lanes (copies left out).
    float lt = l;
#pragma unroll
    for (int o = 1 << SH; o < (ATT_KG << SH); o <<= 1) lt += SHFL_XOR(lt, o);
    if ((lane & ((ATT_KG << SH) - 1)) == 0) {
        sm[warp * GM + gl] = m;
        sl[warp * GM + gl] = lt;
    }
#pragma unroll
    for (int g = 0; g < GM; g++) {
        float* wa = sacc + (warp * GM + g) * hdv;
        if constexpr (VW > 0) {
#pragma unroll
            for (int e = 0; e < VW; e++) wa[lane * VW + e] = acc[g][e];
        } else {
#pragma unroll
            for (int r = 0; r < ATG_NV; r++) {
                const int d = lane + r * WARP_SIZE;
                if (d < hdv) wa[d] = acc[g][r];
            }
        }
    }
    __syncthreads();
    // Element t of the block's ng*hdv outputs: head g = t / hdv, element d.
    // Whole warps share g when hdv % 32 == 0 (att_store's q8 blocks).
    const i64 obase = ((i64)i * nHead + h0) * hdv;
    for (int t = threadIdx.x; t < ng * hdv; t += blockDim.x) {
        const int g = t / hdv, d = t - g * hdv;
        float M = -RF_INF;
        for (int w = 0; w < warps; w++) M = fmaxf(M, sm[w * GM + g]);
        float L = 0.0f, o = 0.0f;
        if (M != -RF_INF) {  // else every key masked, or none in this split
            for (int w = 0; w < warps; w++) {
                const float f = expf(sm[w * GM + g] - M);
                L += sl[w * GM + g] * f;
                o += sacc[(w * GM + g) * hdv + d] * f;
            }
        }
        if (split) {
            float* ph = part + (((i64)i * nHead + h0 + g) * gridDim.z + blockIdx.z) * (hdv + 2);
            if (d == 0) ph[0] = M, ph[1] = L;
            ph[2 + d] = o;
        } else {
            att_store(out + obase, obase, t, M == -RF_INF ? 0.0f : o / L, xq, xd);
        }
    }
}

// attention_combine merges the nSplit partial results of each (row, head)
// (grid: rows × heads): out = Σ_z acc_z·e^(m_z−M) / Σ_z l_z·e^(m_z−M),
// M = max_z m_z; zeros when every part saw no key.
extern "C" __global__ void attention_combine(float* __restrict__ out, const float* __restrict__ part, int nHead,
                                             int hdv, int nSplit, i8* __restrict__ xq, float2* __restrict__ xd) {
    rf_pdl_entry();
    const int i = blockIdx.x, h = blockIdx.y;
    const float* ph = part + ((i64)i * nHead + h) * nSplit * (hdv + 2);
    const i64 obase = ((i64)i * nHead + h) * hdv;
    float* oh = out + obase;
    float M = -RF_INF;
    for (int z = 0; z < nSplit; z++) M = fmaxf(M, ph[z * (hdv + 2)]);
    if (M == -RF_INF) {
        for (int d = threadIdx.x; d < hdv; d += blockDim.x) att_store(oh, obase, d, 0.0f, xq, xd);
        return;
    }
    float L = 0.0f;
    for (int z = 0; z < nSplit; z++) {
        const float mz = ph[z * (hdv + 2)];
        if (mz != -RF_INF) L += ph[z * (hdv + 2) + 1] * expf(mz - M);
    }
    for (int d = threadIdx.x; d < hdv; d += blockDim.x) {
        float o = 0.0f;
        for (int z = 0; z < nSplit; z++) {
            const float mz = ph[z * (hdv + 2)];
            if (mz != -RF_INF) o += ph[z * (hdv + 2) + 2 + d] * expf(mz - M);
        }
        att_store(oh, obase, d, o / L, xq, xd);
    }
}

// kvwrite: row r of k and v goes to row slots[r] of the pools, converted
// to the pool type (one thread per element; for Q8_0 one thread per
// 32-element block, ggml's quantize_row_q8_0_ref: d = amax/127, q =
// roundf(x/d) with id = 1/d, d stored as f16). Kaux/Vaux: the Q8_0 scales.
template <int T>
__device__ void kvwrite_row(void* __restrict__ P, u8* __restrict__ aux, const float* __restrict__ x, i64 s, int c) {
    if (T == T_Q8_0S) {
        for (int b = threadIdx.x; b < c / 32; b += blockDim.x) {
            const float* xb = x + b * 32;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
            const float d = amax / 127.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            i8* qb = (i8*)P + s * c + b * 32;
            for (int j = 0; j < 32; j++) qb[j] = (i8)roundf(__fmul_rn(xb[j], id));
            ((u16*)aux)[(s * c) / 32 + b] = float_to_half(d);
        }
    } else {
        for (int e = threadIdx.x; e < c; e += blockDim.x) {
            if (T == T_F32) {
                ((float*)P)[s * c + e] = x[e];
            } else {
                ((u16*)P)[s * c + e] = float_to_half(x[e]);
            }
        }
    }
}

template <int T>
__device__ void kvwrite(void* __restrict__ K, u8* __restrict__ Kaux, void* __restrict__ V, u8* __restrict__ Vaux,
                        const float* __restrict__ k, const float* __restrict__ v, const int* __restrict__ slots, int kc,
                        int vc) {
    const int r = blockIdx.x;
    const i64 s = slots[r];
    kvwrite_row<T>(K, Kaux, k + (i64)r * kc, s, kc);
    kvwrite_row<T>(V, Vaux, v + (i64)r * vc, s, vc);
}

// attention_tile_<type>: the same attention for prompts (many query rows), one
// block of AT_WARPS warps per (tile of AT_QT consecutive query rows, head),
// so each K/V row is read once per tile instead of once per query row. The
// tile's queries sit in shared memory; keys stream through it AT_KT at a
// time (through the block table), lane j scoring key j against each of the
// warp's AT_RPW rows; online softmax per row (running max per tile, per-lane
// partial sums reduced at the end); then p·V with p broadcast from shared
// memory. The rows of one sequence are consecutive, so a tile holds a few
// runs of rows of the same sequence (segments), processed one after another.
// CUDA warps only (AT_KT == 32 lanes); hd and hdv multiples of 4, at most
// AT_MAXD. Dynamic shared memory (floats): AT_QT*(hd+4) + AT_KT*(hd+4) +
// AT_KT*hdv + AT_WARPS*AT_RPW*AT_KT.
#define AT_WARPS 4
#define AT_RPW 8
#define AT_QT (AT_WARPS * AT_RPW)
#define AT_KT 32
#define AT_MAXD 128
#define AT_NC (AT_MAXD / 32)

template <int T>
__device__ void attention_tile(float* __restrict__ out, const float* __restrict__ q, const void* __restrict__ K,
                               const u8* __restrict__ Kaux, const void* __restrict__ V, const u8* __restrict__ Vaux,
                               const int* __restrict__ pos, const int* __restrict__ rowSeq,
                               const int* __restrict__ seqInfo, const int* __restrict__ blocks, int nHead, int nKV,
                               int hd, int hdv, int bs, float scale, int causal, int window, float softcap, int n) {
#if WARP_SIZE == 32
    extern __shared__ float smem[];
    const int hdp = hd + 4;
    float* sq = smem;                 // [AT_QT][hdp]
    float* sk = sq + AT_QT * hdp;     // [AT_KT][hdp]
    float* sv = sk + AT_KT * hdp;     // [AT_KT][hdv]
    float* sp = sv + AT_KT * hdv;     // [AT_WARPS][AT_RPW][AT_KT]
    const int i0 = blockIdx.x * AT_QT, h = blockIdx.y;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int kvh = h / (nHead / nKV);
    const i64 kStride = (i64)nKV * hd, vStride = (i64)nKV * hdv;
    const int hd4 = hd >> 2, hdv4 = hdv >> 2;

    for (int e = tid; e < AT_QT * hd4; e += blockDim.x) {
        const int r = e / hd4, d = (e % hd4) * 4, i = i0 + r;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (i < n) v = *(const float4*)(q + ((i64)i * nHead + h) * hd + d);
        *(float4*)(sq + r * hdp + d) = v;
    }

    int r0 = 0;
    while (r0 < AT_QT && i0 + r0 < n) {
        int s = rowSeq[i0 + r0];
        int r1 = r0 + 1;
        while (r1 < AT_QT && i0 + r1 < n && rowSeq[i0 + r1] == s) r1++;
        if (s >= 0 && s < AT_TILED) {  // attention_dec's rows
            r0 = r1;
            continue;
        }
        if (s >= AT_TILED) s -= AT_TILED;
        if (s < 0) {
            for (int e = tid; e < (r1 - r0) * hdv; e += blockDim.x) {
                const int i = i0 + r0 + e / hdv;
                out[((i64)i * nHead + h) * hdv + e % hdv] = 0.0f;
            }
            r0 = r1;
            continue;
        }
        const int ctx = seqInfo[2 * s];
        const int* bt = blocks + seqInfo[2 * s + 1];
        // Key range of the segment, and of each of this warp's rows.
        int klo = ctx, khi = -1;
        for (int r = r0; r < r1; r++) {
            const int qp = pos[i0 + r];
            const int lo = window > 0 ? max(0, qp - window + 1) : 0;
            const int hi = causal ? min(ctx - 1, qp) : ctx - 1;
            klo = min(klo, lo);
            khi = max(khi, hi);
        }
        int rlo[AT_RPW], rhi[AT_RPW];
        float m[AT_RPW], l[AT_RPW], acc[AT_RPW][AT_NC];
#pragma unroll
        for (int rr = 0; rr < AT_RPW; rr++) {
            const int r = warp * AT_RPW + rr;
            rlo[rr] = 1;
            rhi[rr] = 0;  // empty: rows outside the segment take no keys
            if (r >= r0 && r < r1) {
                const int qp = pos[i0 + r];
                rlo[rr] = window > 0 ? max(0, qp - window + 1) : 0;
                rhi[rr] = causal ? min(ctx - 1, qp) : ctx - 1;
            }
            m[rr] = -RF_INF;
            l[rr] = 0.0f;
#pragma unroll
            for (int c = 0; c < AT_NC; c++) acc[rr][c] = 0.0f;
        }
        const bool warpActive = warp * AT_RPW < r1 && warp * AT_RPW + AT_RPW > r0;

        for (int kt = klo; kt <= khi; kt += AT_KT) {
            __syncthreads();  // the previous tile (and sq on the first pass) are done with
            for (int e = tid; e < AT_KT * hd4; e += blockDim.x) {
                const int j = e / hd4, d = (e % hd4) * 4, key = kt + j;
                float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
                if (key <= khi) {
                    const i64 slot = (i64)bt[key / bs] * bs + key % bs;
                    v = kv_at4<T>(K, Kaux, slot * kStride + (i64)kvh * hd + d);
                }
                *(float4*)(sk + j * hdp + d) = v;
            }
            for (int e = tid; e < AT_KT * hdv4; e += blockDim.x) {
                const int j = e / hdv4, d = (e % hdv4) * 4, key = kt + j;
                float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
                if (key <= khi) {
                    const i64 slot = (i64)bt[key / bs] * bs + key % bs;
                    v = kv_at4<T>(V, Vaux, slot * vStride + (i64)kvh * hdv + d);
                }
                *(float4*)(sv + j * hdv + d) = v;
            }
            __syncthreads();
            if (!warpActive) continue;

            // Scores: lane = key kt + lane, against each of the warp's rows.
            float dot[AT_RPW];
#pragma unroll
            for (int rr = 0; rr < AT_RPW; rr++) dot[rr] = 0.0f;
            const float* kr = sk + lane * hdp;
            const float* qw = sq + warp * AT_RPW * hdp;
            for (int d = 0; d < hd; d += 4) {
                const float4 kv = *(const float4*)(kr + d);
#pragma unroll
                for (int rr = 0; rr < AT_RPW; rr++) {
                    const float4 qv = *(const float4*)(qw + rr * hdp + d);
                    dot[rr] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                }
            }
            const int key = kt + lane;
            float* pw = sp + warp * AT_RPW * AT_KT;
#pragma unroll
            for (int rr = 0; rr < AT_RPW; rr++) {
                const bool ok = key >= rlo[rr] && key <= rhi[rr];
                float sc = scale * dot[rr];
                if (softcap > 0.0f) sc = softcap * tanhf(sc / softcap);
                sc = ok ? sc : -RF_INF;
                const float mn = fmaxf(m[rr], warp_max(sc));
                float p = 0.0f, corr = 1.0f;
                if (mn != -RF_INF) {
                    corr = expf(m[rr] - mn);  // 0 while m is still -inf
                    p = ok ? expf(sc - mn) : 0.0f;
                }
                l[rr] = l[rr] * corr + p;
#pragma unroll
                for (int c = 0; c < AT_NC; c++) acc[rr][c] *= corr;
                m[rr] = mn;
                pw[rr * AT_KT + lane] = p;
            }
            __syncwarp();
            // p·V: lane owns dims lane + 32c.
            for (int j = 0; j < AT_KT; j += 4) {
                float v[4][AT_NC];
#pragma unroll
                for (int jj = 0; jj < 4; jj++)
#pragma unroll
                    for (int c = 0; c < AT_NC; c++) {
                        const int d = lane + 32 * c;
                        v[jj][c] = d < hdv ? sv[(j + jj) * hdv + d] : 0.0f;
                    }
#pragma unroll
                for (int rr = 0; rr < AT_RPW; rr++) {
                    const float4 p4 = *(const float4*)(pw + rr * AT_KT + j);
#pragma unroll
                    for (int c = 0; c < AT_NC; c++)
                        acc[rr][c] += p4.x * v[0][c] + p4.y * v[1][c] + p4.z * v[2][c] + p4.w * v[3][c];
                }
            }
            __syncwarp();
        }
        if (warpActive) {
#pragma unroll
            for (int rr = 0; rr < AT_RPW; rr++) {
                const int r = warp * AT_RPW + rr;
                const float L = warp_sum(l[rr]);
                if (r < r0 || r >= r1) continue;
                float* oh = out + ((i64)(i0 + r) * nHead + h) * hdv;
                const bool none = m[rr] == -RF_INF;  // every key masked: zeros, as attention_f32
#pragma unroll
                for (int c = 0; c < AT_NC; c++) {
                    const int d = lane + 32 * c;
                    if (d < hdv) oh[d] = none ? 0.0f : acc[rr][c] / L;
                }
            }
        }
        r0 = r1;
    }
#endif
}

// The kernels of each pool type: attention_<t> (decode, and the split-K
// partials when launched with gridDim.z > 1 and part; launched with
// programmatic dependent launch, see rf_pdl_entry), attention_tile_<t>
// and kvwrite_<t>, t the layout name of compute/gpu (f32, f16, q8_0s).
#define ATT_KERNELS(TNAME, T)                                                                                       \
    extern "C" __global__ void attention_##TNAME(                                                                   \
        float* out, const float* q, const void* K, const u8* Kaux, const void* V, const u8* Vaux, const int* pos,   \
        const int* rowSeq, const int* seqInfo, const int* blocks, int nHead, int nKV, int hd, int hdv, int bs,      \
        float scale, int causal, int window, float softcap, float* part, i8* xq, float2* xd) {                      \
        rf_pdl_entry();                                                                                             \
        if (hd == hdv && hd == 4 * WARP_SIZE)                                                                       \
            attention_dec<T, 4>(out, q, K, Kaux, V, Vaux, pos, rowSeq, seqInfo, blocks, nHead, nKV, hd, hdv, bs,    \
                                scale, causal, window, softcap, part, xq, xd);                                      \
        else if (hd == hdv && hd == 2 * WARP_SIZE)                                                                  \
            attention_dec<T, 2>(out, q, K, Kaux, V, Vaux, pos, rowSeq, seqInfo, blocks, nHead, nKV, hd, hdv, bs,    \
                                scale, causal, window, softcap, part, xq, xd);                                      \
        else                                                                                                        \
            attention_dec<T, 0>(out, q, K, Kaux, V, Vaux, pos, rowSeq, seqInfo, blocks, nHead, nKV, hd, hdv, bs,    \
                                scale, causal, window, softcap, part, xq, xd);                                      \
    }                                                                                                               \
    extern "C" __global__ void __launch_bounds__(AT_WARPS * 32) attention_tile_##TNAME(                             \
        float* out, const float* q, const void* K, const u8* Kaux, const void* V, const u8* Vaux, const int* pos,   \
        const int* rowSeq, const int* seqInfo, const int* blocks, int nHead, int nKV, int hd, int hdv, int bs,      \
        float scale, int causal, int window, float softcap, int n) {                                                \
        attention_tile<T>(out, q, K, Kaux, V, Vaux, pos, rowSeq, seqInfo, blocks, nHead, nKV, hd, hdv, bs, scale,   \
                          causal, window, softcap, n);                                                              \
    }                                                                                                               \
    extern "C" __global__ void kvwrite_##TNAME(void* K, u8* Kaux, void* V, u8* Vaux, const float* k,                 \
                                               const float* v, const int* slots, int kc, int vc) {                  \
        kvwrite<T>(K, Kaux, V, Vaux, k, v, slots, kc, vc);                                                          \
    }

// attention_g<GM>v<VW>_<t>: the grouped decode kernel of each group size
// (GM 2, 4, 8), head-dim path (VW 4 and 2: hd == hdv == VW*WARP_SIZE; 0:
// any, hdv <= ATG_NV*WARP_SIZE) and pool type, each its own function so that
// each gets the registers it needs; launched with programmatic dependent
// launch, as attention_<t>. attention_g<GM>v<VW>p_<t> (VW 2 and 4): the
// same, each key group's K and V loads issued a group ahead.
#define ATG_KERNEL(TNAME, T, GM, VW, PF, SFX)                                                                       \
    extern "C" __global__ void __launch_bounds__(ATG_THREADS) attention_g##GM##v##VW##SFX##_##TNAME(                 \
        float* out, const float* q, const void* K, const u8* Kaux, const void* V, const u8* Vaux, const int* pos,   \
        const int* rowSeq, const int* seqInfo, const int* blocks, int nHead, int nKV, int hd, int hdv, int bs,      \
        float scale, int causal, int window, float softcap, float* part, i8* xq, float2* xd) {                      \
        rf_pdl_entry();                                                                                             \
        attention_grp<T, VW, GM, PF>(out, q, K, Kaux, V, Vaux, pos, rowSeq, seqInfo, blocks, nHead, nKV, hd, hdv,   \
                                     bs, scale, causal, window, softcap, part, xq, xd);                             \
    }
#define ATG_KERNELS(TNAME, T)                                                                                       \
    ATG_KERNEL(TNAME, T, 2, 0, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 2, 2, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 2, 4, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 4, 0, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 4, 2, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 4, 4, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 8, 0, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 8, 2, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 8, 4, false, )                                                                             \
    ATG_KERNEL(TNAME, T, 2, 2, true, p)                                                                             \
    ATG_KERNEL(TNAME, T, 2, 4, true, p)                                                                             \
    ATG_KERNEL(TNAME, T, 4, 2, true, p)                                                                             \
    ATG_KERNEL(TNAME, T, 4, 4, true, p)                                                                             \
    ATG_KERNEL(TNAME, T, 8, 2, true, p)                                                                             \
    ATG_KERNEL(TNAME, T, 8, 4, true, p)

ATT_KERNELS(f32, T_F32)
ATT_KERNELS(f16, T_F16)
ATT_KERNELS(q8_0s, T_Q8_0S)
ATG_KERNELS(f32, T_F32)
ATG_KERNELS(f16, T_F16)
ATG_KERNELS(q8_0s, T_Q8_0S)
