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

ATT_KERNELS(f32, T_F32)
ATT_KERNELS(f16, T_F16)
ATT_KERNELS(q8_0s, T_Q8_0S)
