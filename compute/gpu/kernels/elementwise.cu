// elementwise.cu: activations, residual adds, scaling, bias, row copies,
// softmax and the norms. These are memory-bound, so the math follows the
// reference's float64 formulas (compute/elementwise.go, compute/norm.go)
// and the results match it to float rounding.
#include "common.h"
#include "quant.h"

#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

extern "C" __global__ void add_f32(float* __restrict__ dst, const float* a, const float* b, i64 n) {
    GRID_STRIDE(i, n) dst[i] = a[i] + b[i];
}

extern "C" __global__ void scale_f32(float* x, float s, i64 n) {
    GRID_STRIDE(i, n) x[i] *= s;
}

extern "C" __global__ void softcap_f32(float* x, float c, i64 n) {
    const double cd = c;
    GRID_STRIDE(i, n) x[i] = (float)(cd * tanh((double)x[i] / cd));
}

__device__ __forceinline__ float silu(float g) {
    const double v = g;
    return (float)(v / (1.0 + exp(-v)));
}

__device__ __forceinline__ float gelu_tanh(float x) {
    const double v = x;
    const double sqrt2OverPi = 0.79788456080286535587989211986876;
    return (float)(0.5 * v * (1.0 + tanh(sqrt2OverPi * (v + 0.044715 * v * v * v))));
}

extern "C" __global__ void swiglu_f32(float* dst, const float* gate, const float* up, i64 n) {
    GRID_STRIDE(i, n) dst[i] = (float)((double)silu(gate[i]) * (double)up[i]);
}

// swiglu_h_f32: swiglu_f32 (the same bits), and the result rounded to f16
// (f32_to_f16's rounding) for the batched product that follows (mma.go),
// which then needs no conversion launch.
extern "C" __global__ void swiglu_h_f32(float* dst, const float* gate, const float* up, u16* __restrict__ h, i64 n) {
    GRID_STRIDE(i, n) {
        const float v = (float)((double)silu(gate[i]) * (double)up[i]);
        dst[i] = v;
        h[i] = float_to_half(v);
    }
}

// swiglu_q8_f32: swiglu_f32 (the same bits), and the result as q8 blocks
// for the down projection (mmvq.cu); one warp per 32-element block.
extern "C" __global__ void swiglu_q8_f32(float* __restrict__ dst, const float* __restrict__ gate,
                                         const float* __restrict__ up, i8* __restrict__ xq, float2* __restrict__ xd,
                                         i64 nblocks) {
    rf_pdl_entry();
    const i64 blk = (i64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (blk >= nblocks) return;
    const i64 i = blk * 32 + threadIdx.x % 32;
    const float v = (float)((double)silu(gate[i]) * (double)up[i]);
    dst[i] = v;
    q8_block(v, xq + blk * 32, xd + blk);
}

extern "C" __global__ void geglu_f32(float* dst, const float* gate, const float* up, i64 n) {
    GRID_STRIDE(i, n) dst[i] = (float)((double)gelu_tanh(gate[i]) * (double)up[i]);
}

extern "C" __global__ void gelu_f32(float* x, i64 n) {
    GRID_STRIDE(i, n) x[i] = gelu_tanh(x[i]);
}

// x[r, c] += b[c].
extern "C" __global__ void addbias_f32(float* x, const float* __restrict__ b, i64 n, int cols) {
    GRID_STRIDE(i, n) x[i] += b[i % cols];
}

// copy_cols: dst[r, dstCol+j] = src[r, srcCol+j] for j < cols. Each block
// walks its rows in order and moves a row in chunks of blockDim.x, reading a
// whole chunk before writing it, forward when dst starts before src and
// backward otherwise: memmove semantics when dst and src share storage.
// Launched with one block when the rows themselves may overlap.
extern "C" __global__ void copy_cols_f32(float* dst, const float* src, int rows, int dcols, int scols, int dstCol,
                                         int srcCol, int cols) {
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        float* d = dst + (i64)r * dcols + dstCol;
        const float* s = src + (i64)r * scols + srcCol;
        const bool backward = (const float*)d > s;
        const int chunks = (cols + blockDim.x - 1) / blockDim.x;
        for (int ci = 0; ci < chunks; ci++) {
            const int c = backward ? chunks - 1 - ci : ci;
            const int j = c * blockDim.x + threadIdx.x;
            float v = 0.0f;
            if (j < cols) v = s[j];
            __syncthreads();
            if (j < cols) d[j] = v;
            __syncthreads();
        }
    }
}

// softmax_f32: one block per row, in place; a row of -inf becomes zeros.
extern "C" __global__ void softmax_f32(float* x, int cols) {
    __shared__ float sf[RF_MAX_WARPS];
    __shared__ double sd[RF_MAX_WARPS];
    float* r = x + (i64)blockIdx.x * cols;
    float mx = -RF_INF;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, r[j]);
    mx = block_max(mx, sf);
    if (mx == -RF_INF) {
        for (int j = threadIdx.x; j < cols; j += blockDim.x) r[j] = 0.0f;
        return;
    }
    const double m = mx;
    double s = 0.0;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) s += exp((double)r[j] - m);
    s = block_sum_d(s, sd);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) r[j] = (float)(exp((double)r[j] - m) / s);
}

// rmsnorm_f32: one block per row: x / sqrt(mean(x²) + eps) * w (w may be null).
// NORM_REGS: rows of up to NORM_REGS x the block's threads are normalised
// from registers (one read of each input).
#define NORM_REGS 8

// norm_out writes element j of the row's output and, when q is not null,
// its q8 block for the matrix-vector product that follows (mmvq.cu): with
// d % 32 == 0 and the block a multiple of 32 threads, the 32 lanes that
// write elements 32b..32b+31 together hold block b.
//
// h, when not null, gets the output rounded to f16 (f32_to_f16's rounding)
// for a batched product that follows (mma.go), which then skips its
// conversion launch.
__device__ __forceinline__ void norm_out(float* yr, int j, float y, int d, i8* q, float2* qd, u16* h) {
    yr[j] = y;
    if (q) q8_block(y, q + (i64)blockIdx.x * d + (j & ~31), qd + (i64)blockIdx.x * (d >> 5) + (j >> 5));
    if (h) h[(i64)blockIdx.x * d + j] = float_to_half(y);
}

extern "C" __global__ void rmsnorm_f32(float* dst, const float* x, const float* __restrict__ w, int d, float eps,
                                       i8* q, float2* qd, u16* h) {
    rf_pdl_entry();
    __shared__ double sd[RF_MAX_WARPS];
    const float* xr = x + (i64)blockIdx.x * d;
    float* yr = dst + (i64)blockIdx.x * d;
    if (d <= NORM_REGS * (int)blockDim.x) {
        // Decode-sized rows: every load issued at once, values kept in
        // registers for the second pass (the same arithmetic, in the same
        // order, as the loops below).
        float v[NORM_REGS], wv[NORM_REGS];
#pragma unroll
        for (int i = 0; i < NORM_REGS; i++) {
            const int j = threadIdx.x + i * blockDim.x;
            v[i] = j < d ? xr[j] : 0.0f;
            wv[i] = (w && j < d) ? w[j] : 1.0f;
        }
        double s = 0.0;
#pragma unroll
        for (int i = 0; i < NORM_REGS; i++) {
            const double dv = v[i];
            if (threadIdx.x + i * blockDim.x < d) s += dv * dv;
        }
        s = block_sum_d(s, sd);
        const double scale = 1.0 / sqrt(s / (double)d + (double)eps);
#pragma unroll
        for (int i = 0; i < NORM_REGS; i++) {
            const int j = threadIdx.x + i * blockDim.x;
            if (j >= d) break;
            double y = (double)v[i] * scale;
            if (w) y *= (double)wv[i];
            norm_out(yr, j, (float)y, d, q, qd, h);
        }
        return;
    }
    double s = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        const double v = xr[j];
        s += v * v;
    }
    s = block_sum_d(s, sd);
    const double scale = 1.0 / sqrt(s / (double)d + (double)eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        double y = (double)xr[j] * scale;
        if (w) y *= (double)w[j];
        norm_out(yr, j, (float)y, d, q, qd, h);
    }
}

// add_rmsnorm_f32: one block per row: x += a (the residual add), then
// dst = x / sqrt(mean(x²) + eps) * w. It is add_f32 followed by rmsnorm_f32
// in one pass over the row, with the same arithmetic, so the same bits.
extern "C" __global__ void add_rmsnorm_f32(float* dst, float* x, const float* a, const float* __restrict__ w, int d,
                                           float eps, i8* q, float2* qd, u16* h) {
    rf_pdl_entry();
    __shared__ double sd[RF_MAX_WARPS];
    float* xr = x + (i64)blockIdx.x * d;
    const float* ar = a + (i64)blockIdx.x * d;
    float* yr = dst + (i64)blockIdx.x * d;
    if (d <= NORM_REGS * (int)blockDim.x) {
        // Decode-sized rows: as rmsnorm_f32's register path.
        float xv[NORM_REGS], av[NORM_REGS], wv[NORM_REGS];
#pragma unroll
        for (int i = 0; i < NORM_REGS; i++) {
            const int j = threadIdx.x + i * blockDim.x;
            xv[i] = j < d ? xr[j] : 0.0f;
            av[i] = j < d ? ar[j] : 0.0f;
            wv[i] = (w && j < d) ? w[j] : 1.0f;
        }
        double s = 0.0;
#pragma unroll
        for (int i = 0; i < NORM_REGS; i++) {
            const int j = threadIdx.x + i * blockDim.x;
            xv[i] = xv[i] + av[i];
            if (j < d) {
                xr[j] = xv[i];
                const double dv = xv[i];
                s += dv * dv;
            }
        }
        s = block_sum_d(s, sd);
        const double scale = 1.0 / sqrt(s / (double)d + (double)eps);
#pragma unroll
        for (int i = 0; i < NORM_REGS; i++) {
            const int j = threadIdx.x + i * blockDim.x;
            if (j >= d) break;
            double y = (double)xv[i] * scale;
            if (w) y *= (double)wv[i];
            norm_out(yr, j, (float)y, d, q, qd, h);
        }
        return;
    }
    double s = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        const float sum = xr[j] + ar[j];
        xr[j] = sum;
        const double v = sum;
        s += v * v;
    }
    s = block_sum_d(s, sd);
    const double scale = 1.0 / sqrt(s / (double)d + (double)eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        double y = (double)xr[j] * scale;
        if (w) y *= (double)w[j];
        norm_out(yr, j, (float)y, d, q, qd, h);
    }
}

// layernorm_f32: one block per row: (x - mean) / sqrt(var + eps) * w + b.
extern "C" __global__ void layernorm_f32(float* dst, const float* x, const float* __restrict__ w,
                                         const float* __restrict__ b, int d, float eps) {
    __shared__ double sd[RF_MAX_WARPS];
    const float* xr = x + (i64)blockIdx.x * d;
    float* yr = dst + (i64)blockIdx.x * d;
    double s = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += (double)xr[j];
    const double mean = block_sum_d(s, sd) / (double)d;
    double ss = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        const double c = (double)xr[j] - mean;
        ss += c * c;
    }
    ss = block_sum_d(ss, sd);
    const double scale = 1.0 / sqrt(ss / (double)d + (double)eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        double y = ((double)xr[j] - mean) * scale;
        if (w) y *= (double)w[j];
        if (b) y += (double)b[j];
        yr[j] = (float)y;
    }
}
