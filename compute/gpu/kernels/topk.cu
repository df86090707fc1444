// topk.cu: each row's top-k candidates and log-sum-exp for sampling
// (compute.TopKer; compute.TopKRow is the definition).
//
// One block per row. The k-th largest value is found by a radix select over
// order-preserving 32-bit keys of the floats: a 256-bin histogram of the top
// 8 bits, pick the bin holding the k-th largest, then the next 8 bits of the
// keys in that bin, and so on, at most 4 passes over the row (which sits in
// L2 after the LM head wrote it), stopping early once a bin holds exactly
// the candidates still needed. A last pass gathers every element above the
// threshold and the lowest-index ties at it, and the (<= k) candidates are
// ranked in shared memory by (value descending, index ascending). The first
// pass also accumulates the row's log-sum-exp (an online max and sum).
#include "common.h"

#define TOPK_MAX 256  // compute.MaxTopK
#define TOPK_THREADS 1024

// topk_key maps a float to a u32 whose unsigned order is the float order;
// -0 is folded onto +0 because the sampler compares them equal. Never called
// for NaN.
__device__ __forceinline__ u32 topk_key(float v) {
    const u32 u = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// topk_valid: a candidate is neither NaN nor -Inf (+Inf is, the largest).
__device__ __forceinline__ bool topk_valid(float v) { return v > -RF_INF; }

// topk_load reads this thread's VEC consecutive elements starting at j0;
// past the row they read as -Inf, which no pass counts.
template <int VEC>
__device__ __forceinline__ void topk_load(const float* __restrict__ r, int m, int j0, float (&v)[VEC]) {
    if constexpr (VEC == 4) {
        if (j0 < m) {  // m % 4 == 0: the whole vector is in the row
            const float4 q = *(const float4*)(r + j0);
            v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
        } else {
            v[0] = v[1] = v[2] = v[3] = -RF_INF;
        }
    } else {
#pragma unroll
        for (int e = 0; e < VEC; e++) v[e] = j0 + e < m ? r[j0 + e] : -RF_INF;
    }
}

// lse_add folds (om, os) — a max and the sum of exp(x - max) — into (m, s).
__device__ __forceinline__ void lse_add(float& m, float& s, float om, float os) {
    if (om > m) {
        s = s * expf(m - om) + os;  // m = -Inf: s is 0
        m = om;
    } else if (om > -RF_INF) {
        s += os * expf(om - m);
    }
}

// topk_scan returns the exclusive prefix sum of v over the block in thread
// order and sets *total; every thread must call it. ws holds RF_MAX_WARPS+1
// ints of shared scratch.
__device__ int topk_scan(int v, int* ws, int* total) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int nw = blockDim.x / WARP_SIZE;
    int incl = v;
#pragma unroll
    for (int o = 1; o < WARP_SIZE; o <<= 1) {
        const int y = SHFL_IDX(incl, lane >= o ? lane - o : 0);
        if (lane >= o) incl += y;
    }
    if (lane == WARP_SIZE - 1) ws[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        const int w = lane < nw ? ws[lane] : 0;
        int wi = w;
#pragma unroll
        for (int o = 1; o < WARP_SIZE; o <<= 1) {
            const int y = SHFL_IDX(wi, lane >= o ? lane - o : 0);
            if (lane >= o) wi += y;
        }
        __syncwarp();
        if (lane < nw) ws[lane] = wi - w;
        if (lane == nw - 1) ws[RF_MAX_WARPS] = wi;
    }
    __syncthreads();
    const int r = ws[warp] + incl - v;
    *total = ws[RF_MAX_WARPS];
    __syncthreads();  // ws is reused by the next call
    return r;
}

// topk_state is the radix select's progress, in shared memory: the keys
// still in play are those with (key & mask) == prefix; need of them are
// wanted; done once the rest of the selection needs no more digits.
struct topk_state {
    u32 prefix, mask;
    int need, done;
};

// topk_pick runs on warp 0 after a histogram pass over the digit at shift:
// it finds the bin holding the need-th largest key still in play. first:
// the first pass, where a row of no more than need candidates takes them all.
__device__ void topk_pick(const u32* hist, int shift, bool first, topk_state* st) {
    const int lane = threadIdx.x;
    const int per = 256 / WARP_SIZE;
    const int hi = 255 - lane * per;  // this lane's bins, descending: hi .. hi-per+1
    int own = 0;
    for (int i = 0; i < per; i++) own += (int)hist[hi - i];
    int incl = own;  // keys in this lane's bins and all higher ones
#pragma unroll
    for (int o = 1; o < WARP_SIZE; o <<= 1) {
        const int y = SHFL_IDX(incl, lane >= o ? lane - o : 0);
        if (lane >= o) incl += y;
    }
    const int total = SHFL_IDX(incl, WARP_SIZE - 1);
    const int need = st->need;
    __syncwarp();  // every lane has read need before one lane writes it
    if (first && total <= need) {
        if (lane == 0) st->done = 1;  // prefix = mask = 0: every candidate is a "tie", all taken
        return;
    }
    const int excl = incl - own;
    if (excl < need && incl >= need) {  // exactly one lane
        int above = excl, b = hi;
        for (int i = 0; i < per; i++) {
            const int c = (int)hist[hi - i];
            if (above + c >= need) {
                b = hi - i;
                break;
            }
            above += c;
        }
        const int left = need - above;
        st->prefix |= (u32)b << shift;
        st->mask |= 255u << shift;
        st->need = left;
        st->done = ((int)hist[b] == left) || shift == 0;
    }
}

template <int VEC>
__device__ void topk_row(const float* __restrict__ r, int m, int k, int* __restrict__ ids, float* __restrict__ vals,
                         float* __restrict__ lse) {
    __shared__ u32 hist[256];
    __shared__ u32 ckey[TOPK_MAX];
    __shared__ int cid[TOPK_MAX];
    __shared__ float cval[TOPK_MAX];
    __shared__ int ws[RF_MAX_WARPS + 1];
    __shared__ float wm[RF_MAX_WARPS], wsum[RF_MAX_WARPS];
    __shared__ topk_state st;
    __shared__ int ccount;
    const int tid = threadIdx.x, lane = tid % WARP_SIZE, warp = tid / WARP_SIZE;
    const int tile = blockDim.x * VEC;

    for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
    if (tid == 0) st.prefix = 0, st.mask = 0, st.need = k, st.done = 0, ccount = 0;
    __syncthreads();

    // Pass 1: the top digit's histogram, the log-sum-exp, NaN/+Inf.
    float tm = -RF_INF, ts = 0.0f;
    int bad = 0;
    for (int base = 0; base < m; base += tile) {
        float v[VEC];
        topk_load<VEC>(r, m, base + tid * VEC, v);
#pragma unroll
        for (int e = 0; e < VEC; e++) {
            const float x = v[e];
            bad |= !(x <= 3.402823466e38f);  // NaN or +Inf
            if (topk_valid(x)) {
                atomicAdd(&hist[topk_key(x) >> 24], 1u);
                if (x <= 3.402823466e38f) lse_add(tm, ts, x, 1.0f);
            }
        }
    }
    bad = __syncthreads_or(bad);
#pragma unroll
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) {
        const float om = SHFL_XOR(tm, o), os = SHFL_XOR(ts, o);
        lse_add(tm, ts, om, os);
    }
    if (lane == 0) wm[warp] = tm, wsum[warp] = ts;
    if (warp == 0) topk_pick(hist, 24, true, &st);
    __syncthreads();
    if (tid == 0) {
        for (int w = 1; w < (int)(blockDim.x / WARP_SIZE); w++) lse_add(tm, ts, wm[w], wsum[w]);
        lse[blockIdx.x] = bad ? __int_as_float(0x7fc00000) : (tm > -RF_INF ? tm + logf(ts) : -RF_INF);
    }

    // Passes 2-4: the next digits of the keys in the chosen bins.
    for (int shift = 16; shift >= 0 && !st.done; shift -= 8) {
        const u32 prefix = st.prefix, mask = st.mask;
        for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        for (int base = 0; base < m; base += tile) {
            float v[VEC];
            topk_load<VEC>(r, m, base + tid * VEC, v);
#pragma unroll
            for (int e = 0; e < VEC; e++) {
                if (!topk_valid(v[e])) continue;
                const u32 key = topk_key(v[e]);
                if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
            }
        }
        __syncthreads();
        if (warp == 0) topk_pick(hist, shift, false, &st);
        __syncthreads();
    }

    // Gather: keys above the threshold in any order, ties at it in index
    // order until need of them are taken.
    const u32 prefix = st.prefix, mask = st.mask;
    const int need = st.need;
    int taken = 0;  // ties taken so far; the same in every thread
    for (int base = 0; base < m; base += tile) {
        float v[VEC];
        topk_load<VEC>(r, m, base + tid * VEC, v);
        int tie = 0;  // bit e: element e ties at the threshold
#pragma unroll
        for (int e = 0; e < VEC; e++) {
            if (!topk_valid(v[e])) continue;
            const u32 key = topk_key(v[e]), mk = key & mask;
            if (mk > prefix) {
                const int p = atomicAdd(&ccount, 1);
                if (p < TOPK_MAX) ckey[p] = key, cid[p] = base + tid * VEC + e, cval[p] = v[e];
            } else if (mk == prefix) {
                tie |= 1 << e;
            }
        }
        if (taken < need) {
            int total;
            int rank = taken + topk_scan(__popc(tie), ws, &total);
#pragma unroll
            for (int e = 0; e < VEC; e++) {
                if (!(tie >> e & 1)) continue;
                if (rank < need) {
                    const int p = atomicAdd(&ccount, 1);
                    if (p < TOPK_MAX) ckey[p] = topk_key(v[e]), cid[p] = base + tid * VEC + e, cval[p] = v[e];
                }
                rank++;
            }
            taken += total;
        }
    }
    __syncthreads();

    // Rank the candidates: (key descending, index ascending) is a total
    // order, so each one's rank is the number that beat it.
    const int cnt = min(ccount, min(k, TOPK_MAX));
    for (int i = tid; i < k; i += blockDim.x) {
        if (i < cnt) {
            const u32 ki = ckey[i];
            const int ii = cid[i];
            int rank = 0;
            for (int j = 0; j < cnt; j++) {
                const u32 kj = ckey[j];
                rank += kj > ki || (kj == ki && cid[j] < ii);
            }
            ids[rank] = ii;
            vals[rank] = cval[i];
        } else {
            ids[i] = -1;
            vals[i] = -RF_INF;
        }
    }
}

// topk_f32: block b takes row b of x [n, m]: ids[b*k ..] and vals[b*k ..]
// get its k best (value descending, index ascending; -1/-Inf past the
// row's candidates), lse[b] its log-sum-exp (NaN if it holds NaN or +Inf).
// Launched with TOPK_THREADS threads and 1 <= k <= TOPK_MAX.
extern "C" __global__ void __launch_bounds__(TOPK_THREADS) topk_f32(const float* __restrict__ x, int m, int k,
                                                                     int* __restrict__ ids,
                                                                     float* __restrict__ vals,
                                                                     float* __restrict__ lse) {
    const float* r = x + (i64)blockIdx.x * m;
    int* id = ids + (i64)blockIdx.x * k;
    float* va = vals + (i64)blockIdx.x * k;
    if ((m & 3) == 0) {
        topk_row<4>(r, m, k, id, va, lse);  // rows are 16-byte aligned
    } else {
        topk_row<1>(r, m, k, id, va, lse);
    }
}
