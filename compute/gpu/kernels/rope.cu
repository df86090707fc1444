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
extern "C" __global__ void rope_f32(float* x, const int* __restrict__ pos, int heads, int hd, int nrot, int neox,
                                    float thetaScale, float freqScale, float ext, float mscale, float corr0,
                                    float corr1, const float* __restrict__ ff, float* x2, int heads2, int hpb) {
    rf_pdl_entry();
    extern __shared__ float cs[];
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
    const int h0 = blockIdx.y * hpb, h1 = min(h0 + hpb, heads + heads2);
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
