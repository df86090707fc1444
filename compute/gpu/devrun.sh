#!/bin/bash
# devrun.sh runs the GPU tests, compute-sanitizer and the benchmarks on a
# machine with an NVIDIA GPU, from test binaries built elsewhere:
#
#   CGO_ENABLED=0 go test -c -o bin/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -o bin/model.test ./model
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root on the GPU machine: bash compute/gpu/devrun.sh [steps]
# Steps (default all): test model sanitize bench. Logs go to $OUT (or /tmp/gpu-out).
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
ROOT=$(pwd)
STEPS=${*:-test model sanitize bench}
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt"

for step in $STEPS; do
	case $step in
	test)
		(cd compute/gpu && timeout 300 "$ROOT/bin/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
		summary "gpu tests rc=$?: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
		grep -E '^(--- FAIL|    .*(error|Error))' "$OUT/gpu-test.log" | head -40
		;;
	model)
		(cd model && ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 300 "$ROOT/bin/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
		summary "model GPU tests rc=$?: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail"
		grep -E -- '--- FAIL|max\|Δ\||greedy' "$OUT/model-gpu.log" | head -60
		;;
	sanitize)
		for tool in memcheck racecheck; do
			(cd compute/gpu && ROCMFORGE_KERNEL_LINEINFO=1 timeout 400 compute-sanitizer --tool $tool --error-exitcode 3 \
				"$ROOT/bin/gpu.test" -test.count=1 -test.run 'Elementwise|Norms|Copy|Embedding|MatMul|RoPE|KVWrite|Staging|Memory' 2>&1) > "$OUT/sanitizer-$tool.log"
			summary "compute-sanitizer $tool rc=$?: $(tail -3 "$OUT/sanitizer-$tool.log" | tr '\n' ' ')"
		done
		;;
	bench)
		(cd compute/gpu && timeout 400 "$ROOT/bin/gpu.test" -test.run '^$' -test.bench . -test.benchtime 20x 2>&1) > "$OUT/bench.log"
		summary "bench rc=$?"
		grep -E 'Benchmark|GB/s' "$OUT/bench.log" | head -80
		;;
	esac
done
cat "$OUT/summary.txt"
