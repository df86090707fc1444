#!/bin/bash
# mmarun.sh: the batched-decode run (docs/perf.md, "GPU batched decode (H100,
# 2026-11-26)"). Steps (STEPS env, default "test sanitize micro bench"):
#   test     GPU unit tests (TEST_RUN: a -test.run filter), model GPU tests
#            (golden set, graph steps)
#   sanitize compute-sanitizer memcheck on the mma and cuBLAS-path tests
#   micro    BenchmarkMatMulBatched (mma kernels against cuBLAS, 8-128 tokens),
#            then the mma kernels alone with ROCMFORGE_GPU_MMA_SPLIT at each
#            of $SPLITS (parts of k)
#   bench    rocmforge bench --parallel $LEVELS -p 128 -n 128 -r $REPS, one
#            run per entry of BENCH ("model:name:ENV=V,ENV2=V"; default: each
#            model with cuBLAS for every batch, then with the mma kernels)
# Binaries are built elsewhere into bin/mma:
#
#   CGO_ENABLED=0 go build -o bin/mma/rocmforge ./cmd/rocmforge
#   CGO_ENABLED=0 go test -c -o bin/mma/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -o bin/mma/model.test ./model
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root: bash compute/gpu/mmarun.sh. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/mma
RF=$BIN/rocmforge
STEPS=${STEPS:-test sanitize micro bench}
BENCH=${BENCH:-tiny-Q8_0:cublas:ROCMFORGE_GPU_MMA=0 tiny-Q8_0:mma:X=1 7b-Q4_0:cublas:ROCMFORGE_GPU_MMA=0 7b-Q4_0:mma:X=1}
ROWS=$(for e in $BENCH; do echo "${e%%:*}"; done | sort -u)
SPLITS=${SPLITS:-}
LEVELS=${LEVELS:-1,8,32,64}
REPS=${REPS:-3}
MICRO=${MICRO:-MatMulBatched}
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels
has() { [[ " $STEPS " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"

tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
if has bench; then
	(
		for m in $ROWS; do
			[ -f "$MODELS/$m.gguf" ] && continue
			shape=$tiny; [[ $m == 7b-* ]] && shape=$b7
			"$RF" synth $shape --type "${m#*-}" -o "$MODELS/$m.gguf" 2>&1 | tail -1
		done
	) > "$OUT/synth.log" 2>&1 &
	synth=$!
fi

if has test; then
	t0=$SECONDS
	(cd compute/gpu && timeout 200 "$BIN/gpu.test" -test.v -test.count=1 -test.run "${TEST_RUN:-.}" 2>&1) > "$OUT/gpu-test.log"
	summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
	grep -E '^--- FAIL|^    .*(error|Error|differ|mismatch|want|largest|mma kernels)' "$OUT/gpu-test.log" | head -40
	grep -E '^ *(mma_(async_)?(q4_0s|q8_0s|q4_k|q6_k|f16)_(16|64)) ' "$OUT/gpu-test.log"
	t0=$SECONDS
	(cd model && ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 150 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
	summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail"
	grep -E -- '--- FAIL|exceeds|differ' "$OUT/model-gpu.log" | head -20
fi

if has sanitize; then
	t0=$SECONDS
	(cd compute/gpu && ROCMFORGE_KERNEL_LINEINFO=1 timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 \
		"$BIN/gpu.test" -test.count=1 -test.run "${SANITIZE_RUN:-MatMulMMA|MatMulBLAS|GraphStepBLAS}" 2>&1) > "$OUT/sanitizer-memcheck.log"
	summary "compute-sanitizer memcheck rc=$? in $((SECONDS - t0)) s: $(tail -3 "$OUT/sanitizer-memcheck.log" | tr '\n' ' ')"
fi

if has micro; then
	t0=$SECONDS
	(cd compute/gpu && timeout 200 "$BIN/gpu.test" -test.run '^$' -test.bench "$MICRO" -test.benchtime 20x 2>&1) > "$OUT/micro.log"
	summary "microbenchmarks rc=$? in $((SECONDS - t0)) s"
	for s in $SPLITS; do
		echo "## ROCMFORGE_GPU_MMA_SPLIT=$s" >> "$OUT/micro.log"
		(cd compute/gpu && ROCMFORGE_GPU_MMA_SPLIT=$s timeout 60 "$BIN/gpu.test" -test.run '^$' -test.benchtime 20x \
			-test.bench 'MatMulBatched/Q4_0/(4096x4096|11008x4096|2048x2048)/n(9|32|64)/mma$' 2>&1 | sed "s/mma/mma-s$s/") >> "$OUT/micro.log"
	done
	# One line per shape and batch: µs per call on each path, the best of
	# the others against the mma kernels.
	python3 - "$OUT/micro.log" <<'PY' | tee -a "$OUT/summary.txt"
import re, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"BenchmarkMatMulBatched/(\S+)/n(\d+)/([a-z]+(?:-s\d+)?)(?:-\d+)?\s.*?([\d.]+) µs/call", line)
    if m:
        rows.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = float(m.group(4))
for (shape, n), v in rows.items():
    cells = "  ".join(f"{p} {t:7.1f}" for p, t in v.items())
    best = min((t for p, t in v.items() if not p.startswith("mma")), default=float("nan"))
    print(f"{shape:22s} n{n:<4d} {cells}  (other/mma x{best / v.get('mma', float('nan')):5.2f})")
PY
fi

if has bench; then
	wait $synth
	cat "$OUT/synth.log" >> "$OUT/summary.txt"
	for e in $BENCH; do
		m=${e%%:*}
		v=${e#*:}
		name=${v%%:*}
		envs=$(echo "${v#*:}" | tr ',' ' ')
		t0=$SECONDS
		echo "## $m $name" >> "$OUT/bench.jsonl"
		echo "## $m $name" >> "$OUT/bench-stderr.log"
		env $envs timeout 150 "$RF" bench --backend cuda --json --parallel "$LEVELS" -p 128 -n 128 -r "$REPS" \
			-m "$MODELS/$m.gguf" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
		summary "bench $m $name rc=$? in $((SECONDS - t0)) s"
	done
	grep -iE "error|warn|memory" "$OUT/bench-stderr.log" | head -10
	python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
text = open(sys.argv[1]).read()
for chunk in text.split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:20s} no report ({e.__class__.__name__})"); continue
    for res in r["results"]:
        print(f"{name:20s} {res['test']:6s} gen {res['gen_ts']:7.1f} [{res['min_gen_ts']:.0f}..{res['max_gen_ts']:.0f}]"
              f" decode {res['decode_ts']:7.1f} prompt {res['prompt_ts']:7.0f} total {res['total_s']:.2f} s"
              f" steps {res['steps']:.0f} decode step {res['decode_step_ms']:.2f} ms argmax {res['argmax_share']:.0%}")
PY
fi
