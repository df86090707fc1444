#!/bin/bash
# tcrun.sh: the tensor-core prefill run (docs/perf.md, "GPU prefill with
# tensor cores"): GPU unit tests, the model's GPU tests, the prefill
# microbenchmarks (matmul kernel vs cuBLAS by batch size, attention), then
# pp512/tg128 on synthetic TinyLlama- and 7B-shaped Q4_0 models with the
# new paths off, cuBLAS only, and cuBLAS plus the tiled attention kernel.
# Binaries are built elsewhere into bin/tc:
#
#   CGO_ENABLED=0 go build -o bin/tc/rocmforge ./cmd/rocmforge
#   CGO_ENABLED=0 go test -c -o bin/tc/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -o bin/tc/model.test ./model
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root: bash compute/gpu/tcrun.sh. Logs go to
# $OUT (/tmp/gpu-out).
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/tc
RF=$BIN/rocmforge
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"
ls /usr/local/cuda*/lib64/libcublas.so.* /opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib/libcublas.so.* 2>/dev/null | head -4 | tee -a "$OUT/summary.txt"

tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
(
	for spec in "tiny Q4_0" "7b Q4_0" "tiny F16" "7b Q8_0" "7b Q4_K"; do
		set -- $spec
		shape=$tiny; [ "$1" = 7b ] && shape=$b7
		"$RF" synth $shape --type "$2" -o "$MODELS/$1-$2.gguf" 2>&1 | tail -1
	done
) > "$OUT/synth.log" 2>&1 &
synth=$!

t0=$SECONDS
(cd compute/gpu && timeout 100 "$BIN/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
grep -E '^--- FAIL|^    .*(error|Error|differ|largest|cuBLAS|tiled)' "$OUT/gpu-test.log" | head -30
grep -E 'attention_tile|attention_f32|tohalf_q4_0s|tohalf_q4_k |f32_to_f16' "$OUT/gpu-test.log"

t0=$SECONDS
(cd model && ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 120 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail"
grep -E -- '--- FAIL|exceeds|greedy step' "$OUT/model-gpu.log" | head -20

t0=$SECONDS
(cd compute/gpu && timeout 100 "$BIN/gpu.test" -test.run '^$' -test.bench 'MatMulPrefill|AttentionPrefill' -test.benchtime 10x 2>&1) > "$OUT/bench.log"
summary "microbenchmarks rc=$? in $((SECONDS - t0)) s"
grep -E '^Benchmark' "$OUT/bench.log" | sed -E 's/^Benchmark//; s/[[:space:]]+/ /g; s/ [0-9]+ ns\/op//' | head -70

wait $synth
cat "$OUT/synth.log" >> "$OUT/summary.txt"

bench() { # name, env..., -- args
	local name=$1; shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	local t0=$SECONDS
	echo "## $name" >> "$OUT/bench.jsonl"
	echo "## $name" >> "$OUT/bench-stderr.log"
	env "${envs[@]}" timeout 90 "$RF" bench --backend cuda --json "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	summary "bench $name rc=$? in $((SECONDS - t0)) s"
}
for m in tiny-Q4_0 7b-Q4_0; do
	bench "$m off" ROCMFORGE_GPU_CUBLAS=0 ROCMFORGE_GPU_ATT_TILE=0 -- -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
	bench "$m cublas" ROCMFORGE_GPU_ATT_TILE=0 -- -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
	bench "$m cublas+tile" X=1 -- -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
done
for m in tiny-F16 7b-Q8_0 7b-Q4_K; do
	bench "$m off" ROCMFORGE_GPU_CUBLAS=0 ROCMFORGE_GPU_ATT_TILE=0 -- -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
	bench "$m cublas+tile" X=1 -- -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
done
grep -i "error\|warn" "$OUT/bench-stderr.log" | head -10

python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
text = open(sys.argv[1]).read()
for chunk in text.split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:22s} no report ({e.__class__.__name__})"); continue
    cells = [f"{res['test']} {res['median_ts']:.1f} [{res['min_ts']:.1f}..{res['max_ts']:.1f}]" for res in r["results"]]
    print(f"{name:22s} " + "  ".join(cells))
PY

# The new kernels under compute-sanitizer memcheck (last: it may be cut short).
t0=$SECONDS
(cd compute/gpu && ROCMFORGE_KERNEL_LINEINFO=1 timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 \
	"$BIN/gpu.test" -test.count=1 -test.run 'MatMulBLAS|GraphStepBLAS|KVWriteAttention' 2>&1) > "$OUT/sanitizer-memcheck.log"
summary "compute-sanitizer memcheck rc=$? in $((SECONDS - t0)) s: $(tail -3 "$OUT/sanitizer-memcheck.log" | tr '\n' ' ')"
