// rf_fuse.h: programmatic dependent launch split in two, so that a decode
// kernel can ask L2 for its weights while its predecessor still runs, and
// that L2 prefetch (mmvq.cu, matmul.cu's matvecm_*).
#ifndef RF_FUSE_H
#define RF_FUSE_H
#include "common.h"

// rf_pdl_launch lets the next kernel (launched with programmatic dependent
// launch) be scheduled once every block of this one has run it. rf_pdl_wait
// waits until the previous kernel has finished and its writes are visible.
// Between the two a kernel may only read memory no kernel of the step
// writes (the weights). rf_pdl_launch(); rf_pdl_wait() is quant.h's
// rf_pdl_entry. No-ops before sm_90 and on HIP.
__device__ __forceinline__ void rf_pdl_launch() {
#if !defined(RF_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void rf_pdl_wait() {
#if !defined(RF_HIP) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// rf_prefetch_l2 asks L2 for the bytes [p, p+bytes), one prefetch every
// step bytes (a power of two), spread over the block's threads. Only
// addresses inside the range are touched (the first is rounded down to a
// multiple of step, which stays inside an allocation: device allocations
// are aligned far beyond it). A hint: nothing waits for it.
__device__ __forceinline__ void rf_prefetch_l2(const void* p, i64 bytes, int step) {
#if !defined(RF_HIP)
    const u64 end = (u64)p + (u64)bytes;
    for (u64 a = ((u64)p & ~(u64)(step - 1)) + (u64)threadIdx.x * step; a < end; a += (u64)blockDim.x * step)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(a));
#endif
}

#endif  // RF_FUSE_H
