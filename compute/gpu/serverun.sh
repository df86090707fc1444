#!/bin/bash
# serverun.sh: `rocmforge serve` on the GPU under `rocmforge loadgen`
# (docs/perf.md, "Serving on the GPU"): a synthetic TinyLlama-shape Q8_0
# model, greedy and sampled (temperature 1) load at 1, 8, 32 and 64
# clients, and the sampled load again with one sampling goroutine
# (ROCMFORGE_SAMPLE_WORKERS=1, the engine before parallel sampling).
# The binary is built elsewhere: CGO_ENABLED=0 go build -o bin/serve/rocmforge ./cmd/rocmforge
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
RF=$(pwd)/bin/serve/rocmforge
mkdir -p "$OUT" "$MODELS"
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$OUT/summary.txt"
"$RF" synth --layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000 --type Q8_0 -o "$MODELS/tiny-Q8_0.gguf" 2>&1 | tail -1
port=8080
start_server() { # env...
	env "$@" "$RF" serve -m "$MODELS/tiny-Q8_0.gguf" --port $port >> "$OUT/serve.log" 2>&1 &
	server=$!
	# A fresh machine compiles every kernel first (about a minute with
	# NVRTC 13; cached on disk for later starts).
	for _ in $(seq 480); do
		curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	summary "server did not become ready"; kill $server; return 1
}
load() { # name, levels, args...
	local name=$1 levels=$2; shift 2
	echo "## $name" >> "$OUT/loadgen.txt"
	timeout 240 "$RF" loadgen --url "http://127.0.0.1:$port" -c "$levels" --requests-per-client 2 \
		--prompt-tokens 128 --max-tokens 128 "$@" >> "$OUT/loadgen.txt" 2>> "$OUT/loadgen-stderr.log"
	summary "loadgen $name rc=$?"
}
start_server X=1 && {
	grep -m1 'model ready' "$OUT/serve.log" | tee -a "$OUT/summary.txt"
	load "greedy" 1,8,32,64 --temperature 0
	load "temperature 1" 8,32,64 --temperature 1
	kill -INT $server; wait $server; summary "server exit $?"
}
port=8081
start_server ROCMFORGE_SAMPLE_WORKERS=1 && {
	load "temperature 1, one sampling goroutine" 8,32,64 --temperature 1
	kill -INT $server; wait $server; summary "server exit $?"
}
cat "$OUT/loadgen.txt"
grep -ciE 'panic|error' "$OUT/serve.log" | sed 's/^/serve.log error\/panic lines: /'
