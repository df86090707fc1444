#!/bin/bash
# leadrun.sh: the lead's check call of 2026-11-26 (second session): the CUDA
# libraries from NVIDIA's Python wheels alone, the GPU graph test with
# padded decode buckets, and a Go heap allocation profile of replayed decode
# steps (TestDecodeAllocsGPU). Binaries in bin/lead (model.test unstripped,
# for pprof). From the repository root; logs to $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
ROOT=$(pwd)
BIN=$ROOT/bin/lead
mkdir -p "$OUT"
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu
nvidia-smi --query-gpu=name --format=csv,noheader
(cd compute/gpu/cuda && timeout 60 "$BIN/cuda.test" -test.v -test.count=1 -test.run Python 2>&1) > "$OUT/cuda.log"
echo "cuda rc=$?"; grep -E -- '--- |load_test' "$OUT/cuda.log"
(cd model && timeout 200 "$BIN/model.test" -test.v -test.count=1 -test.run 'GraphStepsMatchEagerGPU|DecodeAllocsGPU' \
	-test.memprofile "$OUT/mem.out" -test.memprofilerate 1 2>&1) > "$OUT/model.log"
echo "model rc=$?"; grep -E -- '--- |graph steps|bit-identical|allocations|free device' "$OUT/model.log"
