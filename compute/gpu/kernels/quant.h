// quant.h: GGML weight layouts on the device, one element at a time.
//
// dq<T>(w, aux, row, col, rowBytes, ncols) is element (row, col) of a weight
// of type T, computed exactly as package ggml's Dequantize does (products
// rounded before sums: __fmul_rn/__fadd_rn stop the compiler from fusing
// them into FMAs). It is the definition the fast dot products below must
// agree with, and what embedding lookups and the tiled matmul use.
//
// Layouts: w points at the tensor, rows rowBytes apart, in GGUF block
// layout; except the split layouts Q4_0S and Q8_0S, which the backend makes
// at upload so that quants are 16-byte aligned: w holds every block's quants
// (16 or 32 bytes a block, rows contiguous) and aux every block's f16 scale.
#pragma once
#include "common.h"

// GGML type ids (ggml/types.go).
#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q5_0 6
#define T_Q5_1 7
#define T_Q8_0 8
#define T_Q8_1 9
#define T_Q2_K 10
#define T_Q3_K 11
#define T_Q4_K 12
#define T_Q5_K 13
#define T_Q6_K 14
#define T_Q8_K 15
#define T_BF16 30
// Device-only split layouts.
#define T_Q4_0S 102
#define T_Q8_0S 108

// rf_pdl_entry starts a kernel that the host may launch with programmatic
// dependent launch (gpu.go's pdlKernel lists them): it lets the next kernel
// be scheduled once every block of this one has started, then waits until
// the previous kernel has finished and its writes are visible. Nothing may
// touch global memory before it. A no-op before sm_90 and on HIP.
__device__ __forceinline__ void rf_pdl_entry() {
#if !defined(RF_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }

// scale_min_k4 is ggml's get_scale_min_k4 for the 12-byte scales of Q4_K/Q5_K.
__device__ __forceinline__ void scale_min_k4(int j, const u8* q, int* sc, int* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

template <int T>
__device__ __forceinline__ float dq(const u8* __restrict__ w, const u8* __restrict__ aux, i64 row, int col,
                                    i64 rowBytes, int ncols) {
    const u8* r = w + row * rowBytes;
    if (T == T_F32) {
        return ((const float*)r)[col];
    } else if (T == T_F16) {
        return half_to_float(((const u16*)r)[col]);
    } else if (T == T_BF16) {
        return bf16_to_float(((const u16*)r)[col]);
    } else if (T == T_Q4_0 || T == T_Q4_0S) {
        const int j = col & 31;
        const u8* qs;
        float d;
        if (T == T_Q4_0) {
            const u8* b = r + (col >> 5) * 18;
            d = half_to_float(load_u16(b));
            qs = b + 2;
        } else {
            const i64 blk = row * (ncols >> 5) + (col >> 5);
            qs = w + blk * 16;
            d = half_to_float(((const u16*)aux)[blk]);
        }
        const int q = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
        return (float)(q - 8) * d;
    } else if (T == T_Q8_0 || T == T_Q8_0S) {
        const int j = col & 31;
        if (T == T_Q8_0) {
            const u8* b = r + (col >> 5) * 34;
            return (float)(i8)b[2 + j] * half_to_float(load_u16(b));
        } else {
            const i64 blk = row * (ncols >> 5) + (col >> 5);
            return (float)(i8)w[blk * 32 + j] * half_to_float(((const u16*)aux)[blk]);
        }
    } else if (T == T_Q8_1) {
        const u8* b = r + (col >> 5) * 36;
        return (float)(i8)b[4 + (col & 31)] * half_to_float(load_u16(b));
    } else if (T == T_Q4_1) {
        const u8* b = r + (col >> 5) * 20;
        const int j = col & 31;
        const float d = half_to_float(load_u16(b)), m = half_to_float(load_u16(b + 2));
        const int q = j < 16 ? (b[4 + j] & 15) : (b[4 + j - 16] >> 4);
        return add_rn(mul_rn((float)q, d), m);
    } else if (T == T_Q5_0 || T == T_Q5_1) {
        const int bs = T == T_Q5_0 ? 22 : 24;
        const u8* b = r + (col >> 5) * bs;
        const int j = col & 31;
        const float d = half_to_float(load_u16(b));
        const u8* qhp = b + (T == T_Q5_0 ? 2 : 4);
        const u32 qh = (u32)qhp[0] | ((u32)qhp[1] << 8) | ((u32)qhp[2] << 16) | ((u32)qhp[3] << 24);
        const u8* qs = qhp + 4;
        int q;
        if (j < 16) {
            q = (qs[j] & 15) | (((qh >> j) << 4) & 0x10);
        } else {
            q = (qs[j - 16] >> 4) | ((qh >> (j - 16 + 12)) & 0x10);
        }
        if (T == T_Q5_0) return (float)(q - 16) * d;
        return add_rn(mul_rn((float)q, d), half_to_float(load_u16(b + 2)));
    } else if (T == T_Q2_K) {
        const u8* b = r + (col >> 8) * 84;
        const int e = col & 255, n = e >> 7, k = (e & 127) >> 5, sub = (e & 31) >> 4, l = e & 15;
        const int sc = b[n * 8 + k * 2 + sub];
        const float d = half_to_float(load_u16(b + 80)), dmin = half_to_float(load_u16(b + 82));
        const float dl = mul_rn(d, (float)(sc & 15)), ml = mul_rn(dmin, (float)(sc >> 4));
        const int q = (b[16 + n * 32 + 16 * sub + l] >> (2 * k)) & 3;
        return sub_rn(mul_rn(dl, (float)q), ml);
    } else if (T == T_Q3_K) {
        const u8* b = r + (col >> 8) * 110;
        const int e = col & 255, n = e >> 7, k = (e & 127) >> 5, sub = (e & 31) >> 4, l = e & 15;
        const int is = n * 8 + k * 2 + sub;
        const u8* s = b + 96;
        const int lo = is < 8 ? (s[is] & 15) : (s[is - 8] >> 4);
        const int hi = (s[8 + (is & 3)] >> (2 * (is >> 2))) & 3;
        const float dl = mul_rn(half_to_float(load_u16(b + 108)), (float)((lo | (hi << 4)) - 32));
        int v = (b[32 + n * 32 + 16 * sub + l] >> (2 * k)) & 3;
        if ((b[16 * sub + l] & (1 << (n * 4 + k))) == 0) v -= 4;
        return mul_rn(dl, (float)v);
    } else if (T == T_Q4_K || T == T_Q5_K) {
        const int bs = T == T_Q4_K ? 144 : 176;
        const u8* b = r + (col >> 8) * bs;
        const int e = col & 255, g = e >> 6, hi = (e >> 5) & 1, l = e & 31;
        int sc, m;
        scale_min_k4(2 * g + hi, b + 4, &sc, &m);
        const float d1 = mul_rn(half_to_float(load_u16(b)), (float)sc);
        const float m1 = mul_rn(half_to_float(load_u16(b + 2)), (float)m);
        const u8* qs = b + (T == T_Q4_K ? 16 : 48) + 32 * g;
        int q = hi ? (qs[l] >> 4) : (qs[l] & 15);
        if (T == T_Q5_K) {
            if (b[16 + l] & (1 << (2 * g + hi))) q += 16;
        }
        return sub_rn(mul_rn(d1, (float)q), m1);
    } else if (T == T_Q6_K) {
        const u8* b = r + (col >> 8) * 210;
        const int e = col & 255, h = e >> 7, qd = (e & 127) >> 5, l = e & 31;
        const u8 qlb = b[64 * h + l + ((qd & 1) ? 32 : 0)];
        const int lo = (qd & 2) ? (qlb >> 4) : (qlb & 15);
        const int hb = (b[128 + 32 * h + l] >> (2 * qd)) & 3;
        const int q = (lo | (hb << 4)) - 32;
        const float sc = (float)(i8)b[192 + 8 * h + (l >> 4) + 2 * qd];
        return mul_rn(mul_rn(half_to_float(load_u16(b + 208)), sc), (float)q);
    } else if (T == T_Q8_K) {
        const u8* b = r + (col >> 8) * 292;
        const float d = __uint_as_float((u32)b[0] | ((u32)b[1] << 8) | ((u32)b[2] << 16) | ((u32)b[3] << 24));
        return mul_rn(d, (float)(i8)b[4 + (col & 255)]);
    }
    return __int_as_float(0x7fc00000);  // unknown type: NaN, never silently zero
}

// byte_to_float_biased turns byte i of u into (float)(byte) exactly, via the
// float 2^23 + byte (no integer-to-float conversion instruction). Subtract
// 8388608 + bias afterwards.
__device__ __forceinline__ float byte_as_magic(u32 u, int i) {
    // Selector: byte i of u, two zero bytes, 0x4B (the exponent of 2^23).
    return __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7440 | i));
}

// q8_block quantizes v, this lane's element of a 32-element block held by
// 32 consecutive lanes, into mmvq.cu's activation block (q, ds): lane 0
// writes (d, d*Σq).
__device__ __forceinline__ void q8_block(float v, i8* __restrict__ q, float2* __restrict__ ds) {
    // Offsets below 32 keep the reductions inside each 32-lane half of a
    // 64-wide wavefront too.
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, SHFL_XOR(amax, o));
    const float d = amax / 127.0f;
    const int qi = amax == 0.0f ? 0 : __float2int_rn(v / d);
    q[threadIdx.x % 32] = (i8)qi;
    int s = qi;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += SHFL_XOR(s, o);
    if (threadIdx.x % 32 == 0) *ds = make_float2(d, d * (float)s);
}
