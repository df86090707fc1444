// attention.cu: paged scaled-dot-product attention (compute.AttentionHead)
// and the KV-cache write.
//
// One block per (query row, head). The block's warps take the visible keys
// round-robin, read each through the sequence's block table, and keep a
// running (max, sum, weighted V) per warp (online softmax); the warps'
// partial results are merged at the end. GQA reads the shared KV head in
// place. Float arithmetic.
#include "common.h"

// Per-lane V accumulators: head_dim_v <= ATT_NV * WARP_SIZE.
#define ATT_NV 16

// rowSeq[i]: the sequence owning query row i, or -1 (row gets zeros).
// seqInfo[2s], seqInfo[2s+1]: CtxLen and the offset of the sequence's block
// table in blocks. Dynamic shared memory: (hd + warps*(hdv+2)) floats.
extern "C" __global__ void attention_f32(float* __restrict__ out, const float* __restrict__ q,
                                         const float* __restrict__ K, const float* __restrict__ V,
                                         const int* __restrict__ pos, const int* __restrict__ rowSeq,
                                         const int* __restrict__ seqInfo, const int* __restrict__ blocks, int nHead,
                                         int nKV, int hd, int hdv, int bs, float scale, int causal, int window,
                                         float softcap) {
    extern __shared__ float smem[];
    const int i = blockIdx.x, h = blockIdx.y;
    const int warps = blockDim.x / WARP_SIZE, warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
    float* oh = out + ((i64)i * nHead + h) * hdv;
    const int s = rowSeq[i];
    if (s < 0) {
        for (int d = threadIdx.x; d < hdv; d += blockDim.x) oh[d] = 0.0f;
        return;
    }
    const int ctx = seqInfo[2 * s];
    const int* bt = blocks + seqInfo[2 * s + 1];
    const int qp = pos[i];
    const int kvh = h / (nHead / nKV);
    int lo = 0, hi = ctx - 1;
    if (causal) hi = min(hi, qp);
    if (window > 0) lo = max(lo, qp - window + 1);

    float* sq = smem;              // [hd]
    float* sm = sq + hd;           // [warps] running max
    float* sl = sm + warps;        // [warps] running sum
    float* sacc = sl + warps;      // [warps][hdv]
    const float* qh = q + ((i64)i * nHead + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) sq[d] = qh[d];
    __syncthreads();

    const i64 kStride = (i64)nKV * hd, vStride = (i64)nKV * hdv;
    float m = -RF_INF, l = 0.0f, acc[ATT_NV];
#pragma unroll
    for (int r = 0; r < ATT_NV; r++) acc[r] = 0.0f;
    for (int j = lo + warp; j <= hi; j += warps) {
        const i64 slot = (i64)bt[j / bs] * bs + j % bs;
        const float* kp = K + slot * kStride + (i64)kvh * hd;
        float dot = 0.0f;
        for (int d = lane; d < hd; d += WARP_SIZE) dot += sq[d] * kp[d];
        dot = warp_sum(dot);
        float sc = scale * dot;
        if (softcap > 0.0f) sc = softcap * tanhf(sc / softcap);
        const float mn = fmaxf(m, sc);
        const float corr = expf(m - mn), p = expf(sc - mn);
        l = l * corr + p;
        const float* vp = V + slot * vStride + (i64)kvh * hdv;
#pragma unroll
        for (int r = 0; r < ATT_NV; r++) {
            const int d = lane + r * WARP_SIZE;
            if (d < hdv) acc[r] = acc[r] * corr + p * vp[d];
        }
        m = mn;
    }
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
#pragma unroll
    for (int r = 0; r < ATT_NV; r++) {
        const int d = lane + r * WARP_SIZE;
        if (d < hdv) sacc[warp * hdv + d] = acc[r];
    }
    __syncthreads();
    float M = -RF_INF;
    for (int w = 0; w < warps; w++) M = fmaxf(M, sm[w]);
    if (M == -RF_INF) {  // every key masked
        for (int d = threadIdx.x; d < hdv; d += blockDim.x) oh[d] = 0.0f;
        return;
    }
    float L = 0.0f;
    for (int w = 0; w < warps; w++) L += sl[w] * expf(sm[w] - M);
    for (int d = threadIdx.x; d < hdv; d += blockDim.x) {
        float o = 0.0f;
        for (int w = 0; w < warps; w++) o += sacc[w * hdv + d] * expf(sm[w] - M);
        oh[d] = o / L;
    }
}

// kvwrite_f32: row r of k and v goes to row slots[r] of the pools.
extern "C" __global__ void kvwrite_f32(float* __restrict__ K, float* __restrict__ V, const float* __restrict__ k,
                                       const float* __restrict__ v, const int* __restrict__ slots, int kc, int vc) {
    const int r = blockIdx.x;
    const i64 s = slots[r];
    for (int c = threadIdx.x; c < kc; c += blockDim.x) K[s * kc + c] = k[(i64)r * kc + c];
    for (int c = threadIdx.x; c < vc; c += blockDim.x) V[s * vc + c] = v[(i64)r * vc + c];
}
