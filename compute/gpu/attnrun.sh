#!/bin/bash
# attnrun.sh: the GPU attention and KV-type run (docs/perf.md, "GPU
# attention and KV types"): the GPU unit tests, compute-sanitizer memcheck
# and racecheck on the attention tests, the model's GPU tests (goldens, the
# F16/Q8_0 cache goldens, CopyBlock), then the decode attention
# microbenchmark (TinyLlama and 7B shapes, contexts 128/1024/4096, F32/F16/
# Q8_0 pools, split-K off/on) and the 512-token prefill over each pool type.
# Binaries are built elsewhere into bin/attn:
#
#   CGO_ENABLED=0 go test -c -o bin/attn/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -o bin/attn/model.test ./model
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root: bash compute/gpu/attnrun.sh. Logs go to
# $OUT (/tmp/gpu-out). STAGES (default "test model bench san") picks the
# parts and their order.
set -u
OUT=${OUT:-/tmp/gpu-out}
STAGES=${STAGES:-test model bench san}
ROOT=$(pwd)
BIN=$ROOT/bin/attn
mkdir -p "$OUT"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"

stage_test() {
	t0=$SECONDS
	(cd compute/gpu && timeout 150 "$BIN/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
	summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
	grep -E '^--- FAIL|^    .*(error|Error|differ|holds|split)' "$OUT/gpu-test.log" | head -30
	grep -E '(attention|kvwrite)_' "$OUT/gpu-test.log" | head -12
}

stage_san() {
	for tool in memcheck racecheck; do
		t0=$SECONDS
		(cd compute/gpu && timeout 130 compute-sanitizer --tool $tool --error-exitcode 9 \
			"$BIN/gpu.test" -test.v -test.short -test.count=1 -test.run 'AttentionKVTypes|AttentionSplitK|KVPoolErrors' 2>&1) > "$OUT/san-$tool.log"
		summary "compute-sanitizer $tool rc=$? in $((SECONDS - t0)) s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san-$tool.log" | tail -1)"
		grep -E '^(--- |ok|FAIL|PASS)|Invalid|Race|hazard|no usable' "$OUT/san-$tool.log" | head -8
	done
}

stage_model() {
	t0=$SECONDS
	(cd model && ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 150 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
	summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail"
	grep -E -- '--- FAIL|exceeds|greedy step|cache: .*max' "$OUT/model-gpu.log" | head -30
}

stage_bench() {
	t0=$SECONDS
	(cd compute/gpu && timeout 150 "$BIN/gpu.test" -test.run '^$' -test.bench 'AttentionDecode|AttentionPrefillKV' -test.benchtime 100x 2>&1) > "$OUT/bench.log"
	summary "microbenchmarks rc=$? in $((SECONDS - t0)) s"
	grep -E '^Benchmark' "$OUT/bench.log" | sed -E 's/^Benchmark//; s/[[:space:]]+/ /g; s/ [0-9]+ ns\/op//'
	grep -E 'pools, ' "$OUT/bench.log" | sort | uniq -c | head -8
}
for st in $STAGES; do "stage_$st"; done
cat "$OUT/summary.txt"
