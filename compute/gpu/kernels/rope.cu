// rope.cu: rotary position embedding, in place on x [n, heads, hd]; exactly
// the float32 arithmetic of compute.RoPECache/RoPEApply (ggml's CPU rope):
// the angle of pair i is pos multiplied by thetaScale i times, each product
// rounded, cos/sin in double then rounded, and every product rounded before
// its sum (the _rn intrinsics keep the compiler from fusing them).
#include "common.h"
#include "quant.h"

// Grid (tokens, head chunks): block (tok, c) rotates heads [c*hpb, c*hpb+hpb)
// of the heads + heads2 of x [n, heads, hd] and then x2 [n, heads2, hd] (Q
// and K in one launch; heads2 0 for one tensor), so a decode step's rotation
// spreads over several multiprocessors. cs holds cos, sin of each rotary
// pair (nrot floats), computed by every block. ext != 0 enables YaRN;
// mscale already includes YaRN's magnitude factor. ff, when not null, holds
// a divisor of each pair's angle (Llama 3's rope_freqs).
// rope_rotate is rope_f32's work for block (tok, chunk): the cos/sin table
// of the token's position, then the pairs of the Q (x) and K (x2) heads
// among heads [h0, h1) of the list Q heads, K heads (and, for rope_kv, V
// heads after them, which it leaves alone).
__device__ __forceinline__ void rope_rotate(float* cs, float* x, const int* __restrict__ pos, int heads, int hd,
                                            int nrot, int neox, float thetaScale, float freqScale, float ext,
                                            float mscale, float corr0, float corr1, const float* __restrict__ ff,
                                            float* x2, int heads2, int h0, int h1) {
    const int tok = blockIdx.x, half = nrot / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float theta = (float)pos[tok];
        for (int j = 0; j < i; j++) theta = __fmul_rn(theta, thetaScale);
        if (ff != nullptr) theta = __fdiv_rn(theta, ff[i]);
        const float interp = __fmul_rn(freqScale, theta);
        float t = interp;
        if (ext != 0.0f) {
            const float y = __fdiv_rn(__fsub_rn((float)i, corr0), fmaxf(0.001f, __fsub_rn(corr1, corr0)));
            const float ramp = __fmul_rn(__fsub_rn(1.0f, fminf(1.0f, fmaxf(0.0f, y))), ext);
            t = __fadd_rn(__fmul_rn(interp, __fsub_rn(1.0f, ramp)), __fmul_rn(theta, ramp));
        }
        cs[2 * i] = __fmul_rn((float)cos((double)t), mscale);
        cs[2 * i + 1] = __fmul_rn((float)sin((double)t), mscale);
    }
    __syncthreads();
    h1 = min(h1, heads + heads2);
    for (int e = threadIdx.x; e < (h1 - h0) * half; e += blockDim.x) {
        const int h = h0 + e / half, i = e % half;
        float* head = h < heads ? x + ((i64)tok * heads + h) * hd : x2 + ((i64)tok * heads2 + h - heads) * hd;
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = head[a], x1 = head[b];
        head[a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        head[b] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    }
}

extern "C" __global__ void rope_f32(float* x, const int* __restrict__ pos, int heads, int hd, int nrot, int neox,
                                    float thetaScale, float freqScale, float ext, float mscale, float corr0,
                                    float corr1, const float* __restrict__ ff, float* x2, int heads2, int hpb) {
    rf_pdl_entry();
    extern __shared__ float cs[];
    const int h0 = blockIdx.y * hpb;
    rope_rotate(cs, x, pos, heads, hd, nrot, neox, thetaScale, freqScale, ext, mscale, corr0, corr1, ff, x2, heads2,
                h0, h0 + hpb);
}

// kv_store writes the c elements of src into row s of a KV pool of type T
// (f32, f16, or split Q8_0: int8 values in P, one f16 scale per 32 in aux)
// starting at column col (col and c multiples of 32 for Q8_0), spread over
// the block's threads, exactly as attention.cu's kvwrite_row converts (so
// compute.EncodeKVRow's bytes): for Q8_0 d = amax/127, q = roundf(x/d) with
// id = 1/d, d stored as f16.
template <int T>
__device__ __forceinline__ void kv_store(void* __restrict__ P, u8* __restrict__ aux, const float* src, i64 s,
                                         int rowCols, int col, int c) {
    if (T == T_Q8_0S) {
        for (int b = threadIdx.x; b < c / 32; b += blockDim.x) {
            const float* xb = src + b * 32;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
            const float d = amax / 127.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            i8* qb = (i8*)P + s * rowCols + col + b * 32;
            for (int j = 0; j < 32; j++) qb[j] = (i8)roundf(__fmul_rn(xb[j], id));
            ((u16*)aux)[(s * rowCols + col) / 32 + b] = float_to_half(d);
        }
    } else {
        for (int e = threadIdx.x; e < c; e += blockDim.x) {
            if (T == T_F32) {
                ((float*)P)[s * rowCols + col + e] = src[e];
            } else {
                ((u16*)P)[s * rowCols + col + e] = float_to_half(src[e]);
            }
        }
    }
}

// rope_kv_<t>: rope_f32 of Q (x) and K (x2), and KVWrite of the rotated K
// and of V (v [n, heads3, hdv]) into pools of type t, in one launch: block
// (tok, chunk) takes heads [h0, h0+hpb) of the list Q heads, K heads, V
// heads; it rotates its Q and K heads, then (after a barrier, so the
// rotated values its threads wrote are visible to all of them) stores its K
// and V heads into row slots[tok] of the pools. For Q8_0 pools hd and hdv
// are multiples of 32 (the host checks), so no block straddles two heads.
template <int T>
__device__ __forceinline__ void rope_kv(float* x, const int* __restrict__ pos, int heads, int hd, int nrot, int neox,
                                        float thetaScale, float freqScale, float ext, float mscale, float corr0,
                                        float corr1, const float* __restrict__ ff, float* x2, int heads2, int hpb,
                                        const float* __restrict__ v, int heads3, int hdv, void* K, u8* Kaux, void* V,
                                        u8* Vaux, const int* __restrict__ slots) {
    rf_pdl_entry();
    extern __shared__ float cs[];
    const int tok = blockIdx.x, h0 = blockIdx.y * hpb, h1 = min(h0 + hpb, heads + heads2 + heads3);
    rope_rotate(cs, x, pos, heads, hd, nrot, neox, thetaScale, freqScale, ext, mscale, corr0, corr1, ff, x2, heads2,
                h0, h1);
    __syncthreads();
    const i64 s = slots[tok];
    for (int h = max(h0, heads); h < h1; h++) {
        if (h < heads + heads2) {
            const int hk = h - heads;
            kv_store<T>(K, Kaux, x2 + ((i64)tok * heads2 + hk) * hd, s, heads2 * hd, hk * hd, hd);
        } else {
            const int hv = h - heads - heads2;
            kv_store<T>(V, Vaux, v + ((i64)tok * heads3 + hv) * hdv, s, heads3 * hdv, hv * hdv, hdv);
        }
    }
}

#define ROPE_KV(TNAME, T)                                                                                            \
    extern "C" __global__ void rope_kv_##TNAME(                                                                      \
        float* x, const int* __restrict__ pos, int heads, int hd, int nrot, int neox, float thetaScale,              \
        float freqScale, float ext, float mscale, float corr0, float corr1, const float* __restrict__ ff, float* x2, \
        int heads2, int hpb, const float* __restrict__ v, int heads3, int hdv, void* K, u8* Kaux, void* V,           \
        u8* Vaux, const int* __restrict__ slots) {                                                                   \
        rope_kv<T>(x, pos, heads, hd, nrot, neox, thetaScale, freqScale, ext, mscale, corr0, corr1, ff, x2, heads2,  \
                   hpb, v, heads3, hdv, K, Kaux, V, Vaux, slots);                                                    \
    }

ROPE_KV(f32, T_F32)
ROPE_KV(f16, T_F16)
ROPE_KV(q8_0s, T_Q8_0S)
