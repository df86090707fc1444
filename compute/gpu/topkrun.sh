#!/bin/bash
# topkrun.sh: the device top-k for sampled steps (docs/perf.md, "Device
# top-k sampling"): the TopKRows tests with ArgmaxRows and the graph tests,
# compute-sanitizer memcheck and racecheck on TestTopKRows, model and engine
# GPU tests, the TopKRows micro-benchmark, then `rocmforge serve` on a
# synthetic TinyLlama-shape Q8_0 model under `rocmforge loadgen`
# (temperature 1, top_k 40, 8/32/64 clients) with the device top-k (the
# default) and with ROCMFORGE_DEVICE_TOPK=0 (whole rows read and sampled
# on the host), default again last for the noise. Binaries are built
# elsewhere into bin/topk:
#
#   CGO_ENABLED=0 go build -o bin/topk/rocmforge ./cmd/rocmforge
#   for p in compute/gpu model engine; do CGO_ENABLED=0 go test -c -o bin/topk/$(basename $p).test ./$p; done
#   mkdir -p testdata-gpu/testdata testdata-gpu/models && cp -rL ../shared/testdata/golden testdata-gpu/testdata/ &&
#     cp -L ../shared/models/stories260K.gguf testdata-gpu/models/
#
# then, from the repository root: bash compute/gpu/topkrun.sh. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/topk
RF=$BIN/rocmforge
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
counts() { echo "$(grep -c -- '--- PASS' "$1") pass, $(grep -c -- '--- FAIL' "$1") fail, $(grep -c -- '--- SKIP' "$1") skip"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"
"$RF" synth --layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000 --type Q8_0 \
	-o "$MODELS/tiny-Q8_0.gguf" > "$OUT/synth.log" 2>&1 &
synth=$!

# 1. The kernel tests; this also fills the kernel cache for what follows.
t0=$SECONDS
(cd compute/gpu && timeout 150 "$BIN/gpu.test" -test.v -test.count=1 -test.run 'TopK|ArgmaxRows|Graph' 2>&1) > "$OUT/gpu-test.log"
summary "gpu tests (TopK|ArgmaxRows|Graph) rc=$? in $((SECONDS - t0)) s: $(counts "$OUT/gpu-test.log")"
grep -E -- '--- FAIL' -A8 "$OUT/gpu-test.log" | head -30
grep -E -- '--- (PASS|FAIL).*TopK|TopKRows inside|seed' "$OUT/gpu-test.log" | head -12

# 2. Sanitizers, model and engine GPU tests side by side (no timing here).
t0=$SECONDS
(
	cd compute/gpu
	timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 \
		"$BIN/gpu.test" -test.count=1 -test.short -test.v -test.run 'TestTopKRows$' > "$OUT/memcheck.log" 2>&1
	echo "memcheck rc=$?" >> "$OUT/sanitize.txt"
	timeout 200 compute-sanitizer --tool racecheck --error-exitcode 3 \
		"$BIN/gpu.test" -test.count=1 -test.short -test.v -test.run 'TestTopKRows$' > "$OUT/racecheck.log" 2>&1
	echo "racecheck rc=$?" >> "$OUT/sanitize.txt"
) &
san=$!
(cd model && timeout 200 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' > "$OUT/model-gpu.log" 2>&1; echo "model rc=$?" >> "$OUT/sanitize.txt") &
mdl=$!
(cd engine && timeout 150 "$BIN/engine.test" -test.v -test.count=1 -test.run 'GPU' > "$OUT/engine-gpu.log" 2>&1; echo "engine rc=$?" >> "$OUT/sanitize.txt") &
eng=$!
wait $san $mdl $eng
summary "checks in $((SECONDS - t0)) s: $(tr '\n' ' ' < "$OUT/sanitize.txt")"
summary "memcheck: $(grep -E 'ERROR SUMMARY|^(ok|PASS|FAIL)' "$OUT/memcheck.log" | tr '\n' ' ')"
summary "racecheck: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|^(ok|PASS|FAIL)' "$OUT/racecheck.log" | tr '\n' ' ')"
summary "model GPU tests: $(counts "$OUT/model-gpu.log")"
grep -E -- '--- FAIL' -A6 "$OUT/model-gpu.log" | head -20
grep -E -- 'TopK|graph steps:' "$OUT/model-gpu.log" | head -8
summary "engine GPU tests: $(counts "$OUT/engine-gpu.log")"
grep -E -- '--- FAIL|TopKRows calls|max \|Δ logprob\|' "$OUT/engine-gpu.log" | head -14

# 3. TopKRows against reading the rows back (the copy it replaces).
(cd compute/gpu && timeout 60 "$BIN/gpu.test" -test.run '^$' -test.bench 'TopKRows' -test.benchtime 300x 2>&1) > "$OUT/bench.log"
grep -E '^Benchmark' "$OUT/bench.log" | tee -a "$OUT/summary.txt"

# 4. Serving A/B.
wait $synth
tail -1 "$OUT/synth.log" | tee -a "$OUT/summary.txt"
port=8090
start_server() { # env...
	port=$((port + 1))
	env "$@" "$RF" serve -m "$MODELS/tiny-Q8_0.gguf" --port $port >> "$OUT/serve.log" 2>&1 &
	server=$!
	for _ in $(seq 240); do
		curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	summary "server did not become ready"; kill $server; return 1
}
load() { # name, levels, args...
	local name=$1 levels=$2; shift 2
	local t0=$SECONDS
	echo "## $name" >> "$OUT/loadgen.txt"
	timeout 120 "$RF" loadgen --url "http://127.0.0.1:$port" -c "$levels" --requests-per-client 2 \
		--prompt-tokens 128 --max-tokens 128 "$@" >> "$OUT/loadgen.txt" 2>> "$OUT/loadgen-stderr.log"
	summary "loadgen $name rc=$? in $((SECONDS - t0)) s"
}
serve_ab() { # name, env...
	local name=$1; shift
	start_server "$@" && {
		load "$name: temperature 1, top_k 40" 8,32,64 --temperature 1 --top-k 40
		[ "$name" = "device top-k" ] && [ ! -e "$OUT/greedy.done" ] && touch "$OUT/greedy.done" &&
			load "$name: greedy (device argmax)" 64 --temperature 0
		kill -INT $server; wait $server; summary "server ($name) exit $?"
	}
}
serve_ab "device top-k" X=1
serve_ab "ROCMFORGE_DEVICE_TOPK=0" ROCMFORGE_DEVICE_TOPK=0
if [ $SECONDS -lt 330 ]; then
	serve_ab "device top-k (again)" X=1
fi
cat "$OUT/loadgen.txt"
summary "serve.log error/panic lines: $(grep -ciE 'panic|error' "$OUT/serve.log")"
summary "total $SECONDS s"
