#!/bin/bash
# final2run.sh: the closing integration run of 2026-11-26's second session
# (docs/perf.md, "GPU integration run 2"): GPU tests of compute/gpu/cuda,
# compute/gpu, model and engine; compute-sanitizer memcheck and racecheck on
# the kernel tests; then, on synthetic models of real shapes made here,
# pp512/tg128 on the six rows of targets.md and bench --parallel on
# TinyLlama Q8_0 and 7B Q4_0. Binaries are built elsewhere into bin/final2:
#
#   CGO_ENABLED=0 go build -ldflags='-s -w' -o bin/final2/rocmforge ./cmd/rocmforge
#   for p in compute/gpu/cuda compute/gpu model engine; do
#     CGO_ENABLED=0 go test -c -ldflags='-s -w' -o bin/final2/$(basename $p).test ./$p; done
#   mkdir -p testdata-gpu/testdata testdata-gpu/models && cp -rL ../shared/testdata/golden testdata-gpu/testdata/ &&
#     cp -L ../shared/models/stories260K.gguf testdata-gpu/models/
#
# PHASE=tests runs only the checks, PHASE=bench only the benchmarks (both by
# default). From the repository root: bash compute/gpu/final2run.sh.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
PHASE=${PHASE:-all} # all, tests, bench, or sanitize (the sanitizers alone)
ROOT=$(pwd)
BIN=$ROOT/bin/final2
RF=$BIN/rocmforge
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
count() { echo "$(grep -c -- '--- PASS' "$1") pass, $(grep -c -- '--- FAIL' "$1") fail, $(grep -c -- '--- SKIP' "$1") skip"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"
tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
if [ "$PHASE" = all ] || [ "$PHASE" = bench ]; then
	for spec in "7b Q4_K" "7b Q8_0" "7b Q4_0" "tiny F16" "tiny Q8_0" "tiny Q4_0"; do
		set -- $spec
		shape=$tiny
		[ "$1" = 7b ] && shape=$b7
		"$RF" synth $shape --type "$2" -o "$MODELS/$1-$2.gguf" > "$OUT/synth-$1-$2.log" 2>&1 &
	done
fi

if [ "$PHASE" = all ] || [ "$PHASE" = tests ]; then
	t0=$SECONDS
	(cd compute/gpu/cuda && timeout 60 "$BIN/cuda.test" -test.v -test.count=1 2>&1) > "$OUT/cuda-test.log"
	summary "cuda tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/cuda-test.log")"
	grep -E 'wheel|NVRTC .* from|cuBLAS .* from' "$OUT/cuda-test.log" | head -5
	t0=$SECONDS
	(cd compute/gpu && timeout 200 "$BIN/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
	summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/gpu-test.log")"
	grep -E '^--- FAIL' -A6 "$OUT/gpu-test.log" | head -30
	t0=$SECONDS
	(cd model && timeout 240 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
	summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/model-gpu.log")"
	grep -E -- '--- FAIL|bit-identical|allocations a decode' "$OUT/model-gpu.log" | head -20
	t0=$SECONDS
	(cd engine && timeout 120 "$BIN/engine.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/engine-gpu.log"
	summary "engine GPU tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/engine-gpu.log")"
	grep -E -A4 -- '--- FAIL' "$OUT/engine-gpu.log" | head -10
fi
if [ "$PHASE" != bench ]; then
	for tool in memcheck racecheck; do
		t0=$SECONDS
		(cd compute/gpu && timeout 200 compute-sanitizer --tool $tool --error-exitcode 3 \
			"$BIN/gpu.test" -test.v -test.count=1 -test.short -test.run "${SANITIZE_RUN:-MatMulMMA|MatMulMMQ|MatMulQ8|Q8Producers|F16Producers|NormRowLengths|RoPEPair|RoPEKV|ArgmaxRows|TopK|KVWriteAttention|Attention}" 2>&1) > "$OUT/$tool.log"
		summary "compute-sanitizer $tool rc=$? in $((SECONDS - t0)) s over $(grep -c -- '--- PASS' "$OUT/$tool.log") passing tests ($(grep -c -- '--- FAIL' "$OUT/$tool.log") failing): $(tail -1 "$OUT/$tool.log")"
	done
fi

[ "$PHASE" = tests ] || [ "$PHASE" = sanitize ] && exit 0
wait
cat "$OUT"/synth-*.log | grep -v '^$' | tail -6 >> "$OUT/summary.txt"
bench() { # name, env, args...
	local name=$1 env=$2; shift 2
	local t0=$SECONDS
	echo "## $name" >> "$OUT/bench.jsonl"
	echo "## $name" >> "$OUT/bench-stderr.log"
	env $env timeout 150 "$RF" bench --backend cuda --json "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	summary "bench $name rc=$? in $((SECONDS - t0)) s"
}
for m in tiny-F16 tiny-Q8_0 tiny-Q4_0 7b-Q8_0 7b-Q4_0 7b-Q4_K; do
	bench "$m pp512/tg128" X=1 -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
done
for m in tiny-Q8_0 7b-Q4_0; do
	bench "$m parallel" X=1 -m "$MODELS/$m.gguf" --parallel 1,8,32,64 -p 128 -n 128 -r 2
done
# The producers' f16 copies against a conversion launch before each product.
bench "tiny-Q8_0 parallel no f16 emit" ROCMFORGE_GPU_F16EMIT=0 -m "$MODELS/tiny-Q8_0.gguf" --parallel 8,32,64 -p 128 -n 128 -r 2
bench "7b-Q4_0 parallel no f16 emit" ROCMFORGE_GPU_F16EMIT=0 -m "$MODELS/7b-Q4_0.gguf" --parallel 32,64 -p 128 -n 128 -r 2
# The grouped (GQA) decode attention against the per-head kernel.
bench "tiny-Q8_0 parallel per-head attention" ROCMFORGE_GPU_ATT_GROUP=0 -m "$MODELS/tiny-Q8_0.gguf" --parallel 8,32,64 -p 128 -n 128 -r 2
# The KV type against bench's old default (f32), at 64 sequences.
for m in tiny-Q8_0 7b-Q4_0; do
	bench "$m parallel f32 cache" X=1 -m "$MODELS/$m.gguf" --parallel 64 -p 128 -n 128 -r 2 --kv-type f32
done
python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
for chunk in open(sys.argv[1]).read().split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:32s} no report ({e.__class__.__name__})"); continue
    cells = []
    for res in r.get("results", []):
        keys = [k for k in ("test", "median_ts", "weight_gbps", "decode_ts", "gen_ts", "decode_step_ms", "argmax_share") if k in res]
        cells.append(" ".join(f"{k}={res[k]:.1f}" if isinstance(res[k], float) else f"{k}={res[k]}" for k in keys))
    print(f"{name:32s} kv={r.get('kv_type')} " + " | ".join(cells))
PY
