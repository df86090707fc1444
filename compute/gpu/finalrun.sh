#!/bin/bash
# finalrun.sh: the integration run after the parallel changes of 2026-11-26
# (docs/perf.md, "GPU integration run"): every GPU test of compute/gpu,
# model and engine, compute-sanitizer memcheck on the attention tests, then
# on synthetic TinyLlama-shape Q8_0 and 7B-shape Q4_0 models: pp512/tg128
# and bench --parallel 1,8,32,64 with graph steps of up to 64 tokens (the
# default) against up to 16 (ROCMFORGE_GRAPH_TOKENS=16, the old limit).
# Binaries are built elsewhere into bin/final:
#
#   CGO_ENABLED=0 go build -o bin/final/rocmforge ./cmd/rocmforge
#   for p in compute/gpu model engine; do CGO_ENABLED=0 go test -c -o bin/final/$(basename $p).test ./$p; done
#   mkdir -p testdata-gpu/testdata testdata-gpu/models && cp -rL ../shared/testdata/golden testdata-gpu/testdata/ &&
#     cp -L ../shared/models/stories260K.gguf testdata-gpu/models/
#
# then, from the repository root: bash compute/gpu/finalrun.sh. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/final
RF=$BIN/rocmforge
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"
tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
(
	"$RF" synth $tiny --type Q8_0 -o "$MODELS/tiny-Q8_0.gguf" 2>&1 | tail -1
	"$RF" synth $b7 --type Q4_0 -o "$MODELS/7b-Q4_0.gguf" 2>&1 | tail -1
) > "$OUT/synth.log" 2>&1 &
synth=$!

t0=$SECONDS
(cd compute/gpu && timeout 150 "$BIN/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
grep -E '^--- FAIL' -A6 "$OUT/gpu-test.log" | head -30
t0=$SECONDS
(cd model && timeout 200 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail, $(grep -c -- '--- SKIP' "$OUT/model-gpu.log") skip"
grep -E -- '--- FAIL|graph steps|bit-identical' "$OUT/model-gpu.log" | head -20
t0=$SECONDS
(cd engine && timeout 100 "$BIN/engine.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/engine-gpu.log"
summary "engine GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/engine-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/engine-gpu.log") fail, $(grep -c -- '--- SKIP' "$OUT/engine-gpu.log") skip"
grep -E -- '--- FAIL|logprob|tokens' "$OUT/engine-gpu.log" | head -10
t0=$SECONDS
(cd compute/gpu && timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 \
	"$BIN/gpu.test" -test.count=1 -test.short -test.run 'KVWriteAttention|RoPEFreqFactors|ArgmaxRows' 2>&1) > "$OUT/memcheck.log"
summary "compute-sanitizer memcheck rc=$? in $((SECONDS - t0)) s: $(tail -2 "$OUT/memcheck.log" | tr '\n' ' ')"

wait $synth
cat "$OUT/synth.log" >> "$OUT/summary.txt"
bench() { # name, env, args...
	local name=$1 env=$2; shift 2
	local t0=$SECONDS
	echo "## $name" >> "$OUT/bench.jsonl"
	echo "## $name" >> "$OUT/bench-stderr.log"
	env $env timeout 150 "$RF" bench --backend cuda --json "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	summary "bench $name rc=$? in $((SECONDS - t0)) s"
}
for m in tiny-Q8_0 7b-Q4_0; do
	bench "$m pp512/tg128" X=1 -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
	bench "$m parallel graphs<=64" X=1 -m "$MODELS/$m.gguf" --parallel 1,8,32,64 -p 128 -n 128 -r 2
	bench "$m parallel graphs<=16" ROCMFORGE_GRAPH_TOKENS=16 -m "$MODELS/$m.gguf" --parallel 8,32,64 -p 128 -n 128 -r 2
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
    print(f"{name:32s} " + " | ".join(cells))
PY
