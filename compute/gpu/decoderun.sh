#!/bin/bash
# decoderun.sh: the batch-1 decode run (docs/perf.md, "GPU decode (H100,
# 2026-11-26)"). Steps (STEPS env, default "test bench"):
#   test     GPU unit tests, model GPU tests (golden set, graph steps)
#   sanitize compute-sanitizer memcheck on the decode kernel tests
#   micro    BenchmarkMatVec (n = 1 and 8)
#   prof     ncu (--clock-control none, gpu__time_duration) over 16 decode
#            steps of tiny-Q4_0 and 7b-Q4_0, summed per kernel per step
#   bench    rocmforge bench -p 512 -n 128 -r 3 on the six rows (VARIANTS
#            env: "name:ENV=V,ENV2=V" pairs, default "new:X=1")
# Binaries are built elsewhere into bin/decode:
#
#   CGO_ENABLED=0 go build -o bin/decode/rocmforge ./cmd/rocmforge
#   CGO_ENABLED=0 go test -c -o bin/decode/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -o bin/decode/model.test ./model
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root: bash compute/gpu/decoderun.sh. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/decode
RF=$BIN/rocmforge
STEPS=${STEPS:-test bench}
VARIANTS=${VARIANTS:-new:X=1}
ROWS=${ROWS:-tiny-F16 tiny-Q8_0 tiny-Q4_0 7b-Q8_0 7b-Q4_0 7b-Q4_K}
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels
has() { [[ " $STEPS " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"

tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
(
	for m in tiny-Q4_0 7b-Q4_0 $ROWS; do
		[ -f "$MODELS/$m.gguf" ] && continue
		shape=$tiny; [[ $m == 7b-* ]] && shape=$b7
		"$RF" synth $shape --type "${m#*-}" -o "$MODELS/$m.gguf" 2>&1 | tail -1
	done
) > "$OUT/synth.log" 2>&1 &
synth=$!

if has test; then
	t0=$SECONDS
	(cd compute/gpu && timeout 150 "$BIN/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
	summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
	grep -E '^--- FAIL|^    .*(error|Error|differ|mismatch|want)' "$OUT/gpu-test.log" | head -20
	t0=$SECONDS
	(cd model && ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 150 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
	summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail"
	grep -E -- '--- FAIL|exceeds|differ' "$OUT/model-gpu.log" | head -20
	for v in ${GRAPH_VARIANTS:-}; do
		name=${v%%:*}; envs=${v#*:}
		(cd model && env ${envs//,/ } ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 60 "$BIN/model.test" -test.v -test.count=1 -test.run 'GraphStepsMatchEager' 2>&1) > "$OUT/model-graph-$name.log"
		summary "graph test $name rc=$?: $(grep -c -- '--- FAIL' "$OUT/model-graph-$name.log") fail; $(grep -E 'bit-identical|want ≤' "$OUT/model-graph-$name.log" | sort | uniq -c | sort -rn | head -4 | tr '\n' ';')"
	done
fi

if has sanitize; then
	t0=$SECONDS
	(cd compute/gpu && ROCMFORGE_KERNEL_LINEINFO=1 timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 \
		"$BIN/gpu.test" -test.count=1 -test.run "${SANITIZE_RUN:-MatMul|Argmax|GraphStep}" 2>&1) > "$OUT/sanitizer-memcheck.log"
	summary "compute-sanitizer memcheck rc=$? in $((SECONDS - t0)) s: $(tail -2 "$OUT/sanitizer-memcheck.log" | tr '\n' ' ')"
fi

if has micro; then
	for v in ${MICRO_VARIANTS:-new:X=1}; do
		name=${v%%:*}; envs=${v#*:}
		t0=$SECONDS
		(cd compute/gpu && env ${envs//,/ } timeout 120 "$BIN/gpu.test" -test.run '^$' -test.bench "${MICRO:-MatVec/}" -test.benchtime 20x 2>&1) > "$OUT/micro-$name.log"
		summary "micro $name rc=$? in $((SECONDS - t0)) s"
		grep -E '^Benchmark' "$OUT/micro-$name.log" | sed -E "s/^Benchmark/$name /; s/[[:space:]]+/ /g; s/ [0-9]+ ns\/op//; s/ [0-9.]+ TFLOP\/s//" | head -60
	done
fi

wait $synth
cat "$OUT/synth.log" >> "$OUT/summary.txt"

if has prof; then
	for m in ${PROF_ROWS:-tiny-Q4_0 7b-Q4_0}; do
		t0=$SECONDS
		for v in ${PROF_VARIANTS:-new:X=1}; do
			name=${v%%:*}; envs=${v#*:}
			env ${envs//,/ } timeout 150 ncu --clock-control none ${NCU_OPTS:-} --metrics gpu__time_duration.sum --csv \
				"$RF" bench --backend cuda -m "$MODELS/$m.gguf" -p 0 -n 16 -r 1 > "$OUT/ncu-$m-$name.csv" 2> "$OUT/ncu-$m-$name.err"
			summary "ncu $m $name rc=$? in $((SECONDS - t0)) s"
			python3 - "$OUT/ncu-$m-$name.csv" 17 <<'PY' | tee -a "$OUT/summary.txt"
import csv, sys, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
hdr = rows[0]; ki = hdr.index("Kernel Name"); mi = hdr.index("Metric Name"); vi = hdr.index("Metric Value"); ui = hdr.index("Metric Unit")
steps = int(sys.argv[2])
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows[1:]:
    if r[mi] != "gpu__time_duration.sum": continue
    v = float(r[vi].replace(",", ""))
    v = {"ns": 1e-3, "nsecond": 1e-3, "us": 1, "usecond": 1, "ms": 1e3, "msecond": 1e3}[r[ui]] * v  # to µs
    k = r[ki].split("(")[0]
    tot[k] += v; cnt[k] += 1
all_us = sum(tot.values())
print(f"  per step ({steps} steps): {all_us/steps:.1f} us over {sum(cnt.values())/steps:.1f} kernels")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:16]:
    print(f"  {k:34s} {v/steps:8.1f} us/step {cnt[k]/steps:6.1f} launches {v/cnt[k]:7.2f} us each")
PY
		done
	done
fi

if has kdetail; then
	# One kernel in detail (speed of light, occupancy, warp stalls).
	t0=$SECONDS
	(cd compute/gpu && timeout 120 ncu --clock-control none --section SpeedOfLight --section Occupancy \
		--section WarpStateStats --section LaunchStats -k "regex:${KDETAIL_KERNEL:-mmvq_q4_0s_1}" -s 2 -c 1 \
		"$BIN/gpu.test" -test.run '^$' -test.bench "${KDETAIL_BENCH:-MatVec/Q4_0/11008x4096/n1}" -test.benchtime 3x 2>&1) > "$OUT/kdetail.log"
	summary "kernel detail rc=$? in $((SECONDS - t0)) s"
	grep -E "DRAM Throughput|Memory Throughput|Duration|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Stall|Warp Cycles Per Issued|Issue Slot|Compute \(SM\)" "$OUT/kdetail.log" | head -30
fi

if has cpuprof; then
	ROCMFORGE_BENCH_CPUPROFILE=$OUT/tg-cpu.pprof timeout 60 "$RF" bench --backend cuda -m "$MODELS/${CPUPROF_ROW:-tiny-Q4_0}.gguf" -p 0 -n 128 -r 3 > "$OUT/cpuprof.log" 2>&1
	summary "cpu profile rc=$?: $(grep -E 'tg128' "$OUT/cpuprof.log" | tr -s ' ' | head -1)"
fi

bench() { # name, env..., -- args
	local name=$1; shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	local t0=$SECONDS
	echo "## $name" >> "$OUT/bench.jsonl"
	echo "## $name" >> "$OUT/bench-stderr.log"
	env "${envs[@]}" timeout 100 "$RF" bench --backend cuda --json "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	echo "bench $name rc=$? in $((SECONDS - t0)) s" >> "$OUT/summary.txt"
}
if has bench; then
	for round in $(seq ${ROUNDS:-1}); do
		for m in $ROWS; do
			for v in $VARIANTS; do
				name=${v%%:*}; envs=${v#*:}
				bench "$m $name" ${envs//,/ } -- -m "$MODELS/$m.gguf" -p ${PP:-512} -n 128 -r 3
			done
		done
	done
	grep -i "error\|panic" "$OUT/bench-stderr.log" | head -10
	python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
text = open(sys.argv[1]).read()
for chunk in text.split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:22s} no report ({e.__class__.__name__})"); continue
    cells = []
    for res in r["results"]:
        roof = f" roof {100*res['median_ts']*r['weight_bytes']/2979e9:.1f}%" if res["n_gen"] else ""
        cells.append(f"{res['test']} {res['median_ts']:.1f} [{res['min_ts']:.1f}..{res['max_ts']:.1f}]{roof}")
    print(f"{name:22s} {r['weight_bytes']/2**30:.2f} GiB  " + "  ".join(cells))
PY
fi
