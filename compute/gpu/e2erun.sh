#!/bin/bash
# e2erun.sh: end-to-end GPU run on a machine with an NVIDIA GPU: the GPU unit
# tests, the model's GPU golden and graph tests, then `rocmforge bench` on
# synthetic TinyLlama- and 7B-shaped models (docs/perf.md, "GPU end-to-end").
# Binaries are built elsewhere into bin/e2e:
#
#   CGO_ENABLED=0 go build -o bin/e2e/rocmforge ./cmd/rocmforge
#   CGO_ENABLED=0 go test -c -o bin/e2e/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -o bin/e2e/model.test ./model
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root: bash compute/gpu/e2erun.sh. Models go to
# $MODELS (/tmp/m); logs to $OUT (/tmp/gpu-out): summary.txt, gpu-test.log,
# model-gpu.log, bench.jsonl (one JSON report per run, each after a
# "## name" line), bench-stderr.log.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
RF=$ROOT/bin/e2e/rocmforge
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"

# Synthetic models, in the background while the tests run.
tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
(
	for spec in "7b Q4_K" "tiny F16" "tiny Q8_0" "tiny Q4_0" "7b Q8_0" "7b Q4_0"; do
		set -- $spec
		shape=$tiny; [ "$1" = 7b ] && shape=$b7
		"$RF" synth $shape --type "$2" -o "$MODELS/$1-$2.gguf" 2>&1 | tail -1
	done
) > "$OUT/synth.log" 2>&1 &
synth=$!

t0=$SECONDS
(cd compute/gpu && timeout 110 "$ROOT/bin/e2e/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
grep -E '^--- FAIL|^    .*(error|Error|differ)' "$OUT/gpu-test.log" | head -20

t0=$SECONDS
(cd model && ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 150 "$ROOT/bin/e2e/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail"
grep -E -- '--- FAIL|graph steps|bit-identical|differ' "$OUT/model-gpu.log" | head -30

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
	env "${envs[@]}" timeout 100 "$RF" bench --backend cuda --json "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	summary "bench $name rc=$? in $((SECONDS - t0)) s"
}
for m in tiny-F16 tiny-Q8_0 tiny-Q4_0 7b-Q8_0 7b-Q4_0 7b-Q4_K; do
	bench "$m" X=1 -- -m "$MODELS/$m.gguf" -p 512 -n 128 -r 3
done
# Decode alone: without graphs, without the fused add+norm, with 4-warp
# attention blocks (the old kernel launch) instead of up to 16.
for m in tiny-Q8_0 tiny-Q4_0 7b-Q4_0; do
	bench "$m nographs" ROCMFORGE_CUDA_GRAPHS=0 -- -m "$MODELS/$m.gguf" -p 0 -n 128 -r 3
done
for m in tiny-Q4_0 7b-Q4_0; do
	bench "$m nofuse" ROCMFORGE_GPU_FUSE=0 -- -m "$MODELS/$m.gguf" -p 0 -n 128 -r 3
	bench "$m att4" ROCMFORGE_GPU_ATT_WARPS=4 -- -m "$MODELS/$m.gguf" -p 0 -n 128 -r 3
done
grep -i "memory\|error" "$OUT/bench-stderr.log" | head -20

python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
text = open(sys.argv[1]).read()
for chunk in text.split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:20s} no report ({e.__class__.__name__})"); continue
    cells = []
    for res in r["results"]:
        gb = f" {res['weight_gbps']:.0f} GB/s" if res.get("weight_gbps") else ""
        cells.append(f"{res['test']} {res['median_ts']:.1f} [{res['min_ts']:.1f}..{res['max_ts']:.1f}]{gb}")
    print(f"{name:20s} {r['weight_bytes']/2**30:.2f} GiB  " + "  ".join(cells))
PY
