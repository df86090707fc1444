#!/bin/bash
# lead2run.sh: attention as a PDL kernel that also writes the output
# projection's q8 blocks (docs/perf.md, "Decode attention epilogue"):
# tests, compute-sanitizer on TestAttentionQ8, the model and engine GPU
# tests (with an allocation profile), then tg128 A/B rounds on synthetic
# models: default, ROCMFORGE_GPU_ATT_Q8=0, ROCMFORGE_GPU_ATT_PDL=0.
# Binaries in bin/lead2 (built from HEAD); from the repository root.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/lead2
RF=$BIN/rocmforge
mkdir -p "$OUT" "$MODELS"
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu
count() { echo "$(grep -c -- '--- PASS' "$1") pass, $(grep -c -- '--- FAIL' "$1") fail, $(grep -c -- '--- SKIP' "$1") skip"; }
nvidia-smi --query-gpu=name --format=csv,noheader
tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
for spec in "7b Q4_0" "7b Q8_0" "tiny F16" "tiny Q8_0" "tiny Q4_0"; do
	set -- $spec
	shape=$tiny
	[ "$1" = 7b ] && shape=$b7
	"$RF" synth $shape --type "$2" -o "$MODELS/$1-$2.gguf" > "$OUT/synth-$1-$2.log" 2>&1 &
done
t0=$SECONDS
(cd compute/gpu && timeout 150 "$BIN/gpu.test" -test.v -test.count=1 -test.run 'Attention|Q8Producers|MatMulQ8|RoPEKV|Graph|TopK|Argmax|KVWrite' 2>&1) > "$OUT/gpu.log"
echo "gpu tests rc=$? $((SECONDS - t0)) s: $(count "$OUT/gpu.log")"; grep -E '^--- FAIL' -A8 "$OUT/gpu.log" | head -30
for tool in memcheck racecheck; do
	(cd compute/gpu && timeout 120 compute-sanitizer --tool $tool --error-exitcode 3 "$BIN/gpu.test" -test.count=1 -test.short -test.run 'AttentionQ8' 2>&1) > "$OUT/$tool.log"
	echo "$tool rc=$?: $(tail -2 "$OUT/$tool.log" | tr '\n' ' ')"
done
t0=$SECONDS
(cd model && timeout 200 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' -test.memprofile "$OUT/mem.out" -test.memprofilerate 1 2>&1) > "$OUT/model.log"
echo "model GPU rc=$? $((SECONDS - t0)) s: $(count "$OUT/model.log")"; grep -E -- '--- FAIL|allocations a decode|free device' "$OUT/model.log" | head
(cd engine && timeout 100 "$BIN/engine.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/engine.log"
echo "engine GPU rc=$?: $(count "$OUT/engine.log")"
wait
for round in 1 2; do
	for m in tiny-Q4_0 tiny-Q8_0 tiny-F16 7b-Q4_0 7b-Q8_0; do
		for v in default ROCMFORGE_GPU_ATT_Q8=0 ROCMFORGE_GPU_ATT_PDL=0; do
			r=$(env X=1 ${v/default/X=1} timeout 90 "$RF" bench --backend cuda --json -m "$MODELS/$m.gguf" -p 0 -n 128 -r 3 2>>"$OUT/bench-stderr.log" |
				python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join("%.1f"%x["median_ts"] for x in r["results"]))')
			echo "$round $m $v $r" | tee -a "$OUT/tg.txt"
		done
	done
done
