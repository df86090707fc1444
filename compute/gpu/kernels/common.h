// common.h: the few differences between CUDA (NVRTC) and HIP (hipRTC) that
// the kernels touch, plus shared helpers. Nothing here assumes a 32-wide
// warp: the host passes -DWARP_SIZE=<device warp size> when compiling.
#pragma once

#if defined(__HIPCC__) || defined(__HIP_PLATFORM_AMD__)
#define RF_HIP 1
#endif

#ifndef WARP_SIZE
#error "WARP_SIZE must be defined by the host (-DWARP_SIZE=32 or 64)"
#endif

#ifdef RF_HIP
// hipRTC pre-includes the HIP runtime; hipcc (the compile check,
// scripts/hip-check.sh) needs it for __forceinline__, shuffles and math.
#if !defined(__HIPCC_RTC__)
#include <hip/hip_runtime.h>
#endif
// A WARP_SIZE other than the target's wavefront (64 on CDNA, 32 on RDNA by
// default) would silently break every shuffle reduction. Clang 20 deprecates
// the macro (hence the pragmas) and clang 22 drops it; the check then lapses
// and the host's WARP_SIZE from the device attribute is all there is.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-pragma"
#if defined(__AMDGCN_WAVEFRONT_SIZE) && __AMDGCN_WAVEFRONT_SIZE != WARP_SIZE
#error "WARP_SIZE does not match the target's wavefront size"
#endif
#pragma clang diagnostic pop
// HIP's __fmul_rn/__fadd_rn/__fsub_rn are plain operators that clang fuses
// into FMAs after inlining (HIP compiles with fp-contract=fast-honor-pragmas),
// unlike CUDA's, which never fuse. The kernels use them to get products
// rounded before sums, as the Go reference does, so route them to versions
// compiled with contraction off.
__device__ __forceinline__ float rf_fadd_rn(float a, float b) {
#pragma clang fp contract(off)
    return a + b;
}
__device__ __forceinline__ float rf_fsub_rn(float a, float b) {
#pragma clang fp contract(off)
    return a - b;
}
__device__ __forceinline__ float rf_fmul_rn(float a, float b) {
#pragma clang fp contract(off)
    return a * b;
}
#define __fadd_rn rf_fadd_rn
#define __fsub_rn rf_fsub_rn
#define __fmul_rn rf_fmul_rn
#endif

// Largest block the kernels are launched with; sizes shared reduction scratch.
#define RF_MAX_THREADS 1024
#define RF_MAX_WARPS (RF_MAX_THREADS / WARP_SIZE)

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef short i16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;

#ifdef RF_HIP
#define SHFL_XOR(v, m) __shfl_xor((v), (m), WARP_SIZE)
#define SHFL_IDX(v, src) __shfl((v), (src), WARP_SIZE)
// Older HIP releases lack __syncwarp: a wavefront executes in lockstep, so
// a wave barrier (which also orders its LDS accesses) stands in for it.
#if !defined(__syncwarp)
#define __syncwarp() __builtin_amdgcn_wave_barrier()
#endif
#else
#define SHFL_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m), WARP_SIZE)
#define SHFL_IDX(v, src) __shfl_sync(0xffffffffu, (v), (src), WARP_SIZE)
#endif

#define RF_INF __int_as_float(0x7f800000)

// half_to_float converts IEEE binary16 bits to float (exact).
__device__ __forceinline__ float half_to_float(u16 h) {
#ifdef RF_HIP
    return (float)__builtin_bit_cast(_Float16, h);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#endif
}

// bf16_to_float converts bfloat16 bits to float (exact).
__device__ __forceinline__ float bf16_to_float(u16 h) {
    return __uint_as_float(((u32)h) << 16);
}

// float_to_half rounds a float to IEEE binary16 bits (to nearest even;
// overflow gives infinity).
__device__ __forceinline__ u16 float_to_half(float f) {
#ifdef RF_HIP
    return __builtin_bit_cast(u16, (_Float16)f);
#else
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#endif
}

// float_to_bf16 rounds a float to bfloat16 bits (to nearest even; NaN stays
// NaN).
__device__ __forceinline__ u16 float_to_bf16(float f) {
    u32 u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (u16)(u >> 16);
}

// Unaligned little-endian loads from byte pointers (GGML blocks are packed).
__device__ __forceinline__ u16 load_u16(const u8* p) {
    return (u16)p[0] | ((u16)p[1] << 8);
}
__device__ __forceinline__ u32 load_u32_a2(const u8* p) {  // p is 2-byte aligned
    const u16* q = (const u16*)p;
    return (u32)q[0] | ((u32)q[1] << 16);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) v += SHFL_XOR(v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) v = fmaxf(v, SHFL_XOR(v, o));
    return v;
}

// block_sum returns the sum of v over the block to every thread. scratch
// holds RF_MAX_WARPS floats; the block size is a multiple of WARP_SIZE.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int nwarps = blockDim.x / WARP_SIZE;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int nwarps = blockDim.x / WARP_SIZE;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : -RF_INF;
    return warp_max(v);
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) v += SHFL_XOR(v, o);
    return v;
}

// block_sum_d is block_sum in double; scratch holds RF_MAX_WARPS doubles.
__device__ __forceinline__ double block_sum_d(double v, double* scratch) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int nwarps = blockDim.x / WARP_SIZE;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : 0.0;
    return warp_sum_d(v);
}
