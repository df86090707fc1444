#!/bin/bash
# gqarun.sh: the grouped (GQA) decode attention kernel's device run
# (docs/perf.md, "GQA decode attention"): the attention tests (each runs
# the grouped and the per-head kernel), the model GPU tests, compute-sanitizer
# memcheck and racecheck on the attention tests (-test.short), then A/B with
# ROCMFORGE_GPU_ATT_GROUP=0 (per-head kernel only) against the default (and
# =1, grouped for every GQA call): BenchmarkAttentionBatchDecode, `bench
# --parallel 8,32,64` and tg128 on a TinyLlama-shape Q8_0 synthetic model,
# and an ncu look at both kernels. Binaries are built elsewhere into bin/gqa:
#
#   CGO_ENABLED=0 go build -ldflags='-s -w' -o bin/gqa/rocmforge ./cmd/rocmforge
#   CGO_ENABLED=0 go test -c -ldflags='-s -w' -o bin/gqa/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -ldflags='-s -w' -o bin/gqa/model.test ./model
#   mkdir -p testdata-gpu/testdata testdata-gpu/models && cp -rL ../shared/testdata/golden testdata-gpu/testdata/ &&
#     cp -L ../shared/models/stories260K.gguf testdata-gpu/models/
#
# Every step's time limit is cut to what is left of DEADLINE seconds (the
# call's limit less a margin); a step with under 10 s left is skipped. At
# most 8 files go to $OUT. From the repository root: bash compute/gpu/gqarun.sh.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
DEADLINE=${DEADLINE:-400}
ROOT=$(pwd)
BIN=$ROOT/bin/gqa
RF=$BIN/rocmforge
mkdir -p "$OUT" "$MODELS"
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu
S=$OUT/summary.txt
summary() { echo "== $*" | tee -a "$S"; }
count() { echo "$(grep -c -- '--- PASS' "$1") pass, $(grep -c -- '--- FAIL' "$1") fail, $(grep -c -- '--- SKIP' "$1") skip"; }
# tmo N: N seconds, or what is left before DEADLINE if less; 0 when under 10.
tmo() {
	local left=$((DEADLINE - SECONDS))
	if [ "$left" -lt 10 ]; then echo 0; elif [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$S"
tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
M=$MODELS/tiny-Q8_0.gguf
"$RF" synth $tiny --type Q8_0 -o "$M" > "$OUT/bench-stderr.log" 2>&1 &
SYNTH=$!

t0=$SECONDS
(cd compute/gpu && timeout "$(tmo 120)" "$BIN/gpu.test" -test.v -test.count=1 \
	-test.run 'Attention|KVWrite|AttSplits|AttDecPlan|GraphStep|Q8Producers|RoPEKV' 2>&1) > "$OUT/tests.log"
summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/tests.log")"
grep -E '^\s*--- FAIL' -A8 "$OUT/tests.log" | head -40
grep -E 'NVRTC|backend .* ready' "$OUT/tests.log" | head -2

t0=$SECONDS
(cd model && timeout "$(tmo 120)" "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model.log"
summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/model.log")"
grep -E -- '--- FAIL|bit-identical' "$OUT/model.log" | head -12

# Attention microbenchmark: per-head only, default, grouped for every GQA call.
for v in ROCMFORGE_GPU_ATT_GROUP=0 default ROCMFORGE_GPU_ATT_GROUP=1; do
	t0=$SECONDS
	echo "## $v" >> "$OUT/micro.txt"
	(cd compute/gpu && env X=1 ${v/default/X=1} timeout "$(tmo 60)" "$BIN/gpu.test" -test.run '^$' -test.v \
		-test.bench 'AttentionBatchDecode' -test.benchtime 100x 2>&1) >> "$OUT/micro.txt"
	summary "micro $v rc=$? in $((SECONDS - t0)) s"
done

wait $SYNTH
bench() { # name, env, args...
	local name=$1 env=$2; shift 2
	local t0=$SECONDS
	echo "## $name" >> "$OUT/bench.jsonl"
	echo "## $name" >> "$OUT/bench-stderr.log"
	env $env timeout "$(tmo 90)" "$RF" bench --backend cuda --json -m "$M" "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	summary "bench $name rc=$? in $((SECONDS - t0)) s"
}
bench "par off" ROCMFORGE_GPU_ATT_GROUP=0 --parallel 8,32,64 -p 128 -n 128 -r 2
bench "par on" X=1 --parallel 8,32,64 -p 128 -n 128 -r 2
for round in 1 2; do
	bench "tg128 off $round" ROCMFORGE_GPU_ATT_GROUP=0 -p 0 -n 128 -r 3
	bench "tg128 on $round" X=1 -p 0 -n 128 -r 3
	bench "tg128 forced $round" ROCMFORGE_GPU_ATT_GROUP=1 -p 0 -n 128 -r 3
done

for tool in memcheck racecheck; do
	t0=$SECONDS
	echo "## $tool" >> "$OUT/san.log"
	(cd compute/gpu && timeout "$(tmo 70)" compute-sanitizer --tool $tool --error-exitcode 3 "$BIN/gpu.test" -test.count=1 \
		-test.short -test.run 'AttentionGQA|AttentionQ8|KVWriteAttentionGrouped|AttentionSplitK' 2>&1) >> "$OUT/san.log"
	summary "compute-sanitizer $tool rc=$? in $((SECONDS - t0)) s: $(tail -2 "$OUT/san.log" | tr '\n' ' ')"
done

# ncu: the per-head and the grouped kernel on the 64-sequence F16 case.
for v in ROCMFORGE_GPU_ATT_GROUP=0 default; do
	t0=$SECONDS
	echo "## $v" >> "$OUT/ncu.txt"
	(cd compute/gpu && env X=1 ${v/default/X=1} timeout "$(tmo 45)" ncu --clock-control none \
		--kernel-name regex:'attention_(f16|g8v2_f16)' --launch-skip 8 --launch-count 1 \
		--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
		"$BIN/gpu.test" -test.run '^$' -test.bench 'AttentionBatchDecode/tiny/seqs64/F16$' -test.benchtime 2x 2>&1) >> "$OUT/ncu.txt"
	summary "ncu $v rc=$? in $((SECONDS - t0)) s"
done

python3 - "$OUT/bench.jsonl" "$OUT/micro.txt" <<'PY' | tee -a "$S"
import json, re, sys
for chunk in open(sys.argv[1]).read().split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:22s} no report ({e.__class__.__name__})"); continue
    cells = []
    for res in r.get("results", []):
        keys = [k for k in ("test", "parallel", "median_ts", "decode_ts", "decode_step_ms") if k in res]
        cells.append(" ".join(f"{k}={res[k]:.2f}" if isinstance(res[k], float) else f"{k}={res[k]}" for k in keys))
    print(f"{name:22s} kv={r.get('kv_type')} " + " | ".join(cells))
mode = ""
for line in open(sys.argv[2]):
    if line.startswith("## "):
        mode = line[3:].strip()
    m = re.match(r"BenchmarkAttentionBatchDecode/(\S+?)-\d+\s+\d+\s+.*?([\d.]+) µs/call", line)
    if m:
        print(f"micro {mode:28s} {m.group(1):22s} {m.group(2)} µs")
PY
