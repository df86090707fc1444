#!/bin/bash
# batchrun.sh: batched decode, round 2 (docs/perf.md, "Batched decode, round
# 2"). Steps (STEPS env, default "race micro prof bench small"):
#   test     GPU unit tests (TEST_RUN filter), model GPU tests (golden set,
#            graph-vs-eager steps), engine GPU tests
#   race     compute-sanitizer racecheck, then memcheck, on RACE_RUN
#            (default MatMulMMA) with -test.short
#   micro    the benchmarks of MICRO (-test.bench patterns, space-separated):
#            MatMulBatched, MatMulMulti, AttentionBatchDecode
#   prof     (last) ncu (--clock-control none --cache-control none, one
#            metric: gpu__time_duration.sum) over PROF_COUNT kernels after
#            the first N (PROF_ROWS: "model:N"; past the prefill, whether the
#            engine ran it in 4 steps or, slowed down, in 128 capped ones) of
#            bench --parallel 64 -p 128 -n $PROF_N -r 1
#            --no-warmup for each model of PROF_ROWS (ncu costs ~4 ms a
#            profiled kernel: profiling the whole run takes minutes and
#            slows the host enough to change the engine's schedule); the
#            kernels are cut into steps at the token embedding, and the steps
#            where 64 rows decode are summed per kernel (µs a step)
#   bench    bench --parallel $LEVELS -p 128 -n 128 -r $REPS, one run per
#            entry of BENCH ("model:name:ENV=V,ENV2=V")
#   small    the same for SMALL at SMALL_LEVELS (4-8 sequences: mmvq
#            against the mmq kernels, ROCMFORGE_GPU_MMQ_MIN)
# Binaries are built elsewhere into bin/batch:
#
#   CGO_ENABLED=0 go build -o bin/batch/rocmforge ./cmd/rocmforge
#   for p in compute/gpu model engine; do CGO_ENABLED=0 go test -c -o bin/batch/$(basename $p).test ./$p; done
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root: bash compute/gpu/batchrun.sh. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/batch
RF=$BIN/rocmforge
STEPS=${STEPS:-race micro prof bench small}
RACE_RUN=${RACE_RUN:-MatMulMMA}
MICRO=${MICRO:-MatMulBatched/Q4_0/(4096x4096|11008x4096)/n(8|16|64)/(mma|mmq.*|matvec)$ MatMulBatched/Q8_0/2048x2048/n(8|16|64)/(mma|mmq|matvec)$ MatMulMulti AttentionBatchDecode}
PROF_ROWS=${PROF_ROWS:-7b-Q4_0:80000 tiny-Q8_0:55000}  # model:kernel launches to skip
PROF_N=${PROF_N:-256}
PROF_COUNT=${PROF_COUNT:-2000}  # kernel launches to profile after the skipped ones
PROF_ENV=${PROF_ENV:-X=1}
BENCH=${BENCH:-tiny-Q8_0:mmq:X=1 tiny-Q8_0:mma:ROCMFORGE_GPU_MMQ=0 7b-Q4_0:mmq:X=1 7b-Q4_0:mma:ROCMFORGE_GPU_MMQ=0}
LEVELS=${LEVELS:-8,32,64}
REPS=${REPS:-2}
SMALL=${SMALL:-tiny-Q8_0:default:X=1 tiny-Q8_0:mmq:ROCMFORGE_GPU_MMQ_MIN=5 7b-Q4_0:default:X=1 7b-Q4_0:mmvq:ROCMFORGE_GPU_MMQ_MIN=0}
SMALL_LEVELS=${SMALL_LEVELS:-4,6,8}
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels ROCMFORGE_SHARED=$ROOT/testdata-gpu
has() { [[ " $STEPS " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"

tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
ROWS=$(for e in $PROF_ROWS $BENCH $SMALL; do echo "${e%%:*}"; done | sort -u)
if has prof || has bench || has small; then
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
	grep -E '^--- FAIL|^    .*(error|Error|differ|mismatch|want|largest)' "$OUT/gpu-test.log" | head -40
	t0=$SECONDS
	(cd model && timeout 200 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
	summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail, $(grep -c -- '--- SKIP' "$OUT/model-gpu.log") skip"
	grep -E -- '--- FAIL|exceeds|differ|bit-identical' "$OUT/model-gpu.log" | head -20
	t0=$SECONDS
	(cd engine && timeout 100 "$BIN/engine.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/engine-gpu.log"
	summary "engine GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/engine-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/engine-gpu.log") fail, $(grep -c -- '--- SKIP' "$OUT/engine-gpu.log") skip"
	grep -E -- '--- FAIL' -A5 "$OUT/engine-gpu.log" | head -10
fi

if has race; then
	for tool in racecheck memcheck; do
		t0=$SECONDS
		(cd compute/gpu && timeout "${RACE_TIMEOUT:-150}" compute-sanitizer --tool $tool --error-exitcode 3 \
			"$BIN/gpu.test" -test.count=1 -test.short -test.v -test.run "$RACE_RUN" 2>&1) > "$OUT/sanitizer-$tool.log"
		summary "compute-sanitizer $tool ($RACE_RUN, short) rc=$? in $((SECONDS - t0)) s: $(grep -E '^(--- |ok|FAIL|PASS)' "$OUT/sanitizer-$tool.log" | tr '\n' ' ' | cut -c1-200) $(grep -E 'ERROR SUMMARY|hazard' "$OUT/sanitizer-$tool.log" | tail -2 | tr '\n' ' ')"
	done
fi

[ -n "${synth:-}" ] && { wait $synth; cat "$OUT/synth.log" >> "$OUT/summary.txt"; }

runbench() { # list, levels
	local list=$1 levels=$2
	for e in $list; do
		m=${e%%:*}
		v=${e#*:}
		name=${v%%:*}
		envs=$(echo "${v#*:}" | tr ',' ' ')
		t0=$SECONDS
		echo "## $m $name" >> "$OUT/bench.jsonl"
		echo "## $m $name" >> "$OUT/bench-stderr.log"
		env $envs timeout 150 "$RF" bench --backend cuda --json --parallel "$levels" -p 128 -n 128 -r "$REPS" \
			-m "$MODELS/$m.gguf" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
		summary "bench $m $name rc=$? in $((SECONDS - t0)) s"
	done
}
has bench && runbench "$BENCH" "$LEVELS"
has small && runbench "$SMALL" "$SMALL_LEVELS"
if has bench || has small; then
	grep -iE "error|warn|memory" "$OUT/bench-stderr.log" | head -10
	python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
for chunk in open(sys.argv[1]).read().split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:22s} no report ({e.__class__.__name__})"); continue
    for res in r["results"]:
        print(f"{name:22s} {res['test']:6s} decode {res['decode_ts']:8.1f} gen {res['gen_ts']:8.1f} [{res['min_gen_ts']:.0f}..{res['max_gen_ts']:.0f}]"
              f" prompt {res['prompt_ts']:7.0f} decode step {res['decode_step_ms']:6.2f} ms argmax {res['argmax_share']:.0%}")
PY
fi

if has micro; then
	t0=$SECONDS
	for pat in $MICRO; do
		(cd compute/gpu && timeout 150 "$BIN/gpu.test" -test.run '^$' -test.bench "$pat" -test.benchtime 20x 2>&1) >> "$OUT/micro.log"
	done
	summary "microbenchmarks rc=$? in $((SECONDS - t0)) s"
	python3 - "$OUT/micro.log" <<'PY' | tee -a "$OUT/summary.txt"
import re, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"Benchmark(\w+)/(\S+)/(\S+?)(?:-\d+)?\s+\d+\s+(.*)", line)
    if not m:
        continue
    met = {u: float(v) for v, u in re.findall(r"([\d.]+) (\S+)", m.group(4))}
    if "µs/call" not in met:
        continue
    cell = f"{m.group(3)} {met['µs/call']:.1f}"
    if m.group(1) == "AttentionBatchDecode":
        cell += f" ({met.get('GB/s', 0):.0f} GB/s)"
    rows.setdefault((m.group(1), m.group(2)), []).append(cell)
for (b, shape), cells in rows.items():
    print(f"{b[:14]:14s} {shape:26s} " + "  ".join(cells))
PY
fi

if has prof; then
	for e in $PROF_ROWS; do
		m=${e%%:*} skip=${e#*:}
		t0=$SECONDS
		env $PROF_ENV timeout "${PROF_TIMEOUT:-150}" ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
			--launch-skip "$skip" --launch-count "$PROF_COUNT" \
			"$RF" bench --backend cuda --json -m "$MODELS/$m.gguf" --parallel 64 -p 128 -n "$PROF_N" -r 1 --no-warmup \
			> "$OUT/ncu-$m.csv" 2> "$OUT/ncu-$m.err"
		summary "ncu $m rc=$? in $((SECONDS - t0)) s"
		python3 - "$OUT/ncu-$m.csv" <<'PY' | tee -a "$OUT/summary.txt"
import csv, sys, collections, re
lines = [l for l in open(sys.argv[1]) if l.startswith('"')]
rows = list(csv.reader(lines))
if not rows:
    print("no ncu rows"); sys.exit()
hdr = rows[0]
ki, gi, mi, vi, ui = (hdr.index(c) for c in ("Kernel Name", "Grid Size", "Metric Name", "Metric Value", "Metric Unit"))
scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
ks = [(r[ki], r[gi], float(r[vi].replace(",", "")) * scale.get(r[ui], 1.0)) for r in rows[1:] if r[mi] == "gpu__time_duration.sum"]
steps, cur = [], None
for name, grid, us in ks:
    if name.startswith("embedding_") and not name.startswith("embedding_f32"):
        cur = []
        steps.append(cur)
    if cur is not None:
        cur.append((name, grid, us))
def rows64(step):
    g = [grid for name, grid, _ in step if re.match(r"attention_(f32|f16|q8_0s)$", name)]
    return bool(g) and all(x.strip("()").split(",")[0].strip() == "64" for x in g)
steps = steps[:-1]  # the last is cut short by --launch-count
dec = [s for s in steps if rows64(s)]
print(f"{len(ks)} kernels, {len(steps)} whole steps, {len(dec)} with 64 decode rows")
if not dec:
    sys.exit()
tot = collections.defaultdict(float); cnt = collections.Counter()
for s in dec:
    for name, grid, us in s:
        key = re.sub(r"_(16|32|64)$", "_BN", name) if name.startswith("mma_") else name
        tot[key] += us; cnt[key] += 1
n = len(dec)
allus = sum(tot.values()) / n
print(f"over {n} steps: {allus:.0f} us of kernel time a step, {sum(cnt.values())/n:.0f} kernels a step")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
    print(f"  {k[:60]:60s} {v/n:8.1f} us/step {cnt[k]/n:6.1f} launches {v/cnt[k]:7.2f} us each {100*v/n/allus:5.1f} %")
PY
		grep -E '"decode_step_ms"|"decode_ts"' "$OUT/ncu-$m.csv" | tr -s ' ' | tr '\n' ' ' | tee -a "$OUT/summary.txt"; echo
	done
fi
