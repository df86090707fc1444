#!/bin/bash
# gqa2run.sh: round 2 of the grouped (GQA) decode attention (docs/perf.md,
# "GQA decode attention", "Round 2"): key addressing without a division a
# key, 32-bit slots, K/V loaded a key group ahead (ROCMFORGE_GPU_ATT_PF=0
# turns that off). Checks: the attention tests, the model GPU tests, and
# compute-sanitizer memcheck and racecheck on the attention tests
# (-test.short), run side by side. Then A/B, one after another:
# BenchmarkAttentionBatchDecode (TinyLlama shape) for the per-head kernel
# (ROCMFORGE_GPU_ATT_GROUP=0), the grouped kernel forced for every row count
# (=1), forced without the prefetch, and the previous commit's grouped
# kernel (bin/gqa2/old); `bench --parallel 8,32,64` on a TinyLlama-shape
# Q8_0 synthetic model for =0, the default (at the run grouped from 16 rows; 8 since), =8, the
# default without the prefetch and the previous commit; tg128 default and
# =0. Binaries are built elsewhere and packed into bin/gqa2/bins.tgz:
#
#   CGO_ENABLED=0 go build -ldflags='-s -w' -o bin/gqa2/rocmforge ./cmd/rocmforge
#   CGO_ENABLED=0 go test -c -ldflags='-s -w' -o bin/gqa2/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -ldflags='-s -w' -o bin/gqa2/model.test ./model
#   (the previous commit, from `git archive`: rocmforge and gpu.test into bin/gqa2/old)
#   tar czf bins.tgz rocmforge gpu.test model.test old (in bin/gqa2, then only bins.tgz stays)
#   mkdir -p testdata-gpu/testdata testdata-gpu/models && cp -rL ../shared/testdata/golden testdata-gpu/testdata/ &&
#     cp -L ../shared/models/stories260K.gguf testdata-gpu/models/
#
# Every step's limit is cut to what is left of DEADLINE seconds; a step
# with under 10 s left is skipped. From the repository root:
# bash compute/gpu/gqa2run.sh.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
DEADLINE=${DEADLINE:-330}
ROOT=$(pwd)
BIN=$ROOT/bin/gqa2
mkdir -p "$OUT" "$MODELS"
tar xzf "$BIN/bins.tgz" -C "$BIN" || exit 1
RF=$BIN/rocmforge
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu
S=$OUT/summary.txt
summary() { echo "== $*" | tee -a "$S"; }
count() { echo "$(grep -c -- '--- PASS' "$1") pass, $(grep -c -- '--- FAIL' "$1") fail, $(grep -c -- '--- SKIP' "$1") skip"; }
tmo() {
	local left=$((DEADLINE - SECONDS))
	if [ "$left" -lt 10 ]; then echo 0; elif [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}
# left N: true when a step of up to N seconds may start (timeout 0 would
# mean no limit at all).
left() { [ "$(tmo "$1")" -gt 0 ]; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$S"
tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
M=$MODELS/tiny-Q8_0.gguf
"$RF" synth $tiny --type Q8_0 -o "$M" > "$OUT/synth.log" 2>&1 &
SYNTH=$!

# Compile the kernels once first so the later processes share the cache.
t0=$SECONDS
(cd compute/gpu && timeout "$(tmo 120)" "$BIN/gpu.test" -test.count=1 -test.run '^TestKVWriteAttention$' > "$OUT/warmup.log" 2>&1)
summary "warm-up (kernel compile) in $((SECONDS - t0)) s"
# The model GPU tests alone: TestDecodeAllocsGPU compares the device's
# free memory before and after, which other processes' allocations move
# (it failed so, 4 MiB, in this script's one call, run beside the others).
t0=$SECONDS
(cd model && timeout "$(tmo 150)" "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' > "$OUT/model.log" 2>&1)
summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/model.log")"
grep -E -- '--- FAIL|bit-identical' "$OUT/model.log" | head -12
# The other checks side by side (correctness only; no timing runs meanwhile).
t0=$SECONDS
(cd compute/gpu && timeout "$(tmo 150)" "$BIN/gpu.test" -test.v -test.count=1 \
	-test.run 'Attention|KVWrite|AttSplits|AttDecPlan|GraphStep|Q8Producers|RoPEKV' > "$OUT/tests.log" 2>&1) &
T1=$!
SAN='AttentionGQA|AttentionQ8|KVWriteAttention|AttentionSplitK|AttentionKVTypes'
for tool in memcheck racecheck; do
	(cd compute/gpu && timeout "$(tmo 170)" compute-sanitizer --tool $tool --error-exitcode 3 "$BIN/gpu.test" -test.v \
		-test.count=1 -test.short -test.run "$SAN" > "$OUT/san-$tool.log" 2>&1; echo "rc=$?" >> "$OUT/san-$tool.log") &
done
wait $T1
summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(count "$OUT/tests.log")"
grep -E '^\s*--- FAIL' -A8 "$OUT/tests.log" | head -30
grep -E 'NVRTC|backend .* ready' "$OUT/tests.log" | head -2
wait $(jobs -p | grep -v "^$SYNTH\$")
for tool in memcheck racecheck; do
	f=$OUT/san-$tool.log
	summary "compute-sanitizer $tool $(tail -1 "$f") in $((SECONDS - t0)) s over $(grep -c -- '--- PASS' "$f") passing tests ($(grep -c -- '--- FAIL' "$f") failing): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$f" | tail -1)"
done
cat "$OUT"/san-*.log > "$OUT/san.log" && rm -f "$OUT"/san-*.log

# Attention microbenchmark (TinyLlama shape; one layer a call).
micro() { # name, binary, env
	local t0=$SECONDS
	left 45 || { summary "micro $1 skipped (time)"; return; }
	echo "## $1" >> "$OUT/micro.txt"
	(cd compute/gpu && env X=1 $3 timeout "$(tmo 45)" "$2" -test.run '^$' -test.v \
		-test.bench 'AttentionBatchDecode/tiny' -test.benchtime 100x 2>&1) >> "$OUT/micro.txt"
	summary "micro $1 rc=$? in $((SECONDS - t0)) s"
}
micro "per-head" "$BIN/gpu.test" ROCMFORGE_GPU_ATT_GROUP=0
micro "new forced" "$BIN/gpu.test" ROCMFORGE_GPU_ATT_GROUP=1
micro "new forced no-pf" "$BIN/gpu.test" "ROCMFORGE_GPU_ATT_GROUP=1 ROCMFORGE_GPU_ATT_PF=0"
micro "old forced" "$BIN/old/gpu.test" ROCMFORGE_GPU_ATT_GROUP=1

wait $SYNTH 2>/dev/null
bench() { # name, binary, env, args...
	local name=$1 rf=$2 env=$3; shift 3
	local t0=$SECONDS
	left 60 || { summary "bench $name skipped (time)"; return; }
	echo "## $name" >> "$OUT/bench.jsonl"
	echo "## $name" >> "$OUT/bench-stderr.log"
	env X=1 $env timeout "$(tmo 60)" "$rf" bench --backend cuda --json -m "$M" "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	summary "bench $name rc=$? in $((SECONDS - t0)) s"
}
P="--parallel 8,32,64 -p 128 -n 128 -r 2"
bench "par per-head" "$RF" ROCMFORGE_GPU_ATT_GROUP=0 $P
bench "par new default" "$RF" X=1 $P
bench "par new group8" "$RF" ROCMFORGE_GPU_ATT_GROUP=8 $P
bench "par old default" "$BIN/old/rocmforge" X=1 $P
bench "tg128 new default" "$RF" X=1 -p 0 -n 128 -r 5
bench "tg128 per-head" "$RF" ROCMFORGE_GPU_ATT_GROUP=0 -p 0 -n 128 -r 5
bench "par new no-pf" "$RF" ROCMFORGE_GPU_ATT_PF=0 $P
# Second round of the two that decide the default (order reversed).
bench "par new group8 #2" "$RF" ROCMFORGE_GPU_ATT_GROUP=8 $P
bench "par new default #2" "$RF" X=1 $P
bench "par per-head #2" "$RF" ROCMFORGE_GPU_ATT_GROUP=0 $P

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
        print(f"micro {mode:18s} {m.group(1):22s} {m.group(2)} µs")
PY
summary "total $SECONDS s"
