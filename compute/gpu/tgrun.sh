#!/bin/bash
# tgrun.sh: decode latency, round 2 (docs/perf.md, "Decode latency, round 2"):
# RoPE + KV write in one launch and the weight prefetch before the
# programmatic-dependent-launch wait.
# Steps (STEPS env, default "test sanitize bench"):
#   test      GPU unit tests, model GPU tests (golden set, graph steps)
#   sanitize  compute-sanitizer memcheck and racecheck on the changed kernels'
#             tests (in the background while the model tests run)
#   micro     BenchmarkMatVec (MICRO) for each of MICRO_VARIANTS
#   prof      ncu (gpu__time_duration) over 16 decode steps of PROF_ROWS,
#             after the benchmarks, if the run is younger than PROF_BEFORE s
#   bench     rocmforge bench -p 0 -n 128 -r 3 on ROWS for each of VARIANTS
#             ("name:ENV=V,ENV2=V"; VARIANTS_7B for the 7B rows), ROUNDS
#             times, interleaved (VARIANTS_AGAIN after the first round)
# Binaries are built elsewhere into bin/tg:
#
#   CGO_ENABLED=0 go build -ldflags=-s -o bin/tg/rocmforge ./cmd/rocmforge
#   CGO_ENABLED=0 go test -c -ldflags=-s -o bin/tg/gpu.test ./compute/gpu
#   CGO_ENABLED=0 go test -c -ldflags=-s -o bin/tg/model.test ./model
#   mkdir -p testdata-gpu/testdata && cp -rL ../shared/testdata/golden testdata-gpu/testdata/
#
# then, from the repository root: bash compute/gpu/tgrun.sh. Logs go to $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
MODELS=${MODELS:-/tmp/m}
ROOT=$(pwd)
BIN=$ROOT/bin/tg
RF=$BIN/rocmforge
STEPS=${STEPS:-test sanitize bench}
OFF=ROCMFORGE_GPU_ROPE_KV=0,ROCMFORGE_GPU_PREFETCH=0
VARIANTS=${VARIANTS:-base:$OFF new:X=1}
ROWS=${ROWS:-tiny-F16 tiny-Q8_0 tiny-Q4_0 7b-Q8_0 7b-Q4_0}
mkdir -p "$OUT" "$MODELS"
summary() { echo "== $*" | tee -a "$OUT/summary.txt"; }
export ROCMFORGE_KERNEL_CACHE=/tmp/rf-kernels
has() { [[ " $STEPS " == *" $1 "* ]]; }
t00=$SECONDS

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"

tiny="--layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000"
b7="--layers 32 --embd 4096 --heads 32 --kv-heads 32 --ff 11008 --vocab 32000"
(
	for m in $ROWS; do
		[ -f "$MODELS/$m.gguf" ] && continue
		shape=$tiny; [[ $m == 7b-* ]] && shape=$b7
		t0=$SECONDS
		"$RF" synth $shape --type "${m#*-}" -o "$MODELS/$m.gguf" 2>&1 | tail -1
		echo "synth $m in $((SECONDS - t0)) s"
	done
) > "$OUT/synth.log" 2>&1 &
synth=$!

san=""
if has test; then
	t0=$SECONDS
	(cd compute/gpu && timeout 170 "$BIN/gpu.test" -test.v -test.count=1 2>&1) > "$OUT/gpu-test.log"
	summary "gpu tests rc=$? in $((SECONDS - t0)) s: $(grep -c '^--- PASS' "$OUT/gpu-test.log") pass, $(grep -c '^--- FAIL' "$OUT/gpu-test.log") fail, $(grep -c '^--- SKIP' "$OUT/gpu-test.log") skip"
	grep -E '^--- FAIL' -A8 "$OUT/gpu-test.log" | head -40
	grep -E '^(--- |    ).*(MatMulAddRMSNorm|RoPEKVWrite)' "$OUT/gpu-test.log" | head -6
fi
if has sanitize; then
	# Both tools at once, in the background (the kernel cache is warm now).
	(
		cd compute/gpu
		t0=$SECONDS
		timeout 200 compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/gpu.test" -test.count=1 -test.short \
			-test.run "${MEMCHECK_RUN:-MatMulAddRMSNorm|RoPEKVWrite|MatMulQ8|Q8Producers|MatMulMultiFloat|RoPEPair}" > "$OUT/memcheck.log" 2>&1
		echo "== compute-sanitizer memcheck rc=$? in $((SECONDS - t0)) s: $(grep -E 'ERROR SUMMARY|^(ok|PASS|FAIL)' "$OUT/memcheck.log" | tr '\n' ' ')" >> "$OUT/sanitize.txt"
	) &
	san="$!"
	(
		cd compute/gpu
		t0=$SECONDS
		timeout 200 compute-sanitizer --tool racecheck --error-exitcode 3 "$BIN/gpu.test" -test.count=1 -test.short \
			-test.run "${RACECHECK_RUN:-MatMulAddRMSNorm|RoPEKVWrite|MatMulQ8|Q8Producers|NormRowLengths|RoPEPair}" > "$OUT/racecheck.log" 2>&1
		echo "== compute-sanitizer racecheck rc=$? in $((SECONDS - t0)) s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^(ok|PASS|FAIL)' "$OUT/racecheck.log" | tr '\n' ' ')" >> "$OUT/sanitize.txt"
	) &
	san="$san $!"
fi
if has test; then
	t0=$SECONDS
	(cd model && ROCMFORGE_SHARED="$ROOT/testdata-gpu" timeout 170 "$BIN/model.test" -test.v -test.count=1 -test.run 'GPU' 2>&1) > "$OUT/model-gpu.log"
	summary "model GPU tests rc=$? in $((SECONDS - t0)) s: $(grep -c -- '--- PASS' "$OUT/model-gpu.log") pass, $(grep -c -- '--- FAIL' "$OUT/model-gpu.log") fail, $(grep -c -- '--- SKIP' "$OUT/model-gpu.log") skip"
	grep -E -- '--- FAIL|exceeds|differ' "$OUT/model-gpu.log" | head -20
	grep -E 'bit-identical|graph steps' "$OUT/model-gpu.log" | sort | uniq -c | sort -rn | head -6
fi
[ -n "$san" ] && wait $san
[ -f "$OUT/sanitize.txt" ] && cat "$OUT/sanitize.txt" | tee -a "$OUT/summary.txt"
grep -E '========= (Invalid|Race|Error|.*hazard)' "$OUT/memcheck.log" "$OUT/racecheck.log" 2>/dev/null | sort | uniq -c | head -10
summary "tests done at $((SECONDS - t00)) s"

if has micro; then
	for v in ${MICRO_VARIANTS:-pf:X=1 nopf:ROCMFORGE_GPU_PREFETCH=0}; do
		name=${v%%:*}; envs=${v#*:}
		(cd compute/gpu && env ${envs//,/ } timeout 60 "$BIN/gpu.test" -test.run '^$' -test.bench "${MICRO:-MatVec/(Q4_0|Q8_0|F16|Q4_K)/.*/n1}" -test.benchtime 20x 2>&1) > "$OUT/micro-$name.log"
		grep -E '^Benchmark' "$OUT/micro-$name.log" | sed -E "s/^BenchmarkMatVec/$name /; s/[[:space:]]+/ /g; s/ [0-9]+ ns\/op//" | tee -a "$OUT/summary.txt" | head -20
	done
fi

wait $synth
cat "$OUT/synth.log" >> "$OUT/summary.txt"
summary "models ready at $((SECONDS - t00)) s"
bench() { # name, env..., -- args
	local name=$1; shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	local t0=$SECONDS
	echo "## $name" >> "$OUT/bench.jsonl"
	echo "## $name" >> "$OUT/bench-stderr.log"
	env "${envs[@]}" timeout 60 "$RF" bench --backend cuda --json "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench-stderr.log"
	echo "bench $name rc=$? in $((SECONDS - t0)) s" >> "$OUT/summary.txt"
}
if has bench; then
	for round in $(seq ${ROUNDS:-1}); do
		for m in $ROWS; do
			vs=$VARIANTS
			[[ $m == 7b-* ]] && vs=${VARIANTS_7B:-$VARIANTS}
			[ "$round" -gt 1 ] && vs=${VARIANTS_AGAIN:-$vs}
			for v in $vs; do
				name=${v%%:*}; envs=${v#*:}
				bench "$m $name" ${envs//,/ } -- -m "$MODELS/$m.gguf" -p 0 -n 128 -r 3
			done
		done
	done
	grep -i "error\|panic" "$OUT/bench-stderr.log" | head -10
	python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys, collections
text = open(sys.argv[1]).read()
runs = collections.defaultdict(list)
for chunk in text.split("## ")[1:]:
    name, _, body = chunk.partition("\n")
    try:
        r = json.loads(body)
    except Exception as e:
        print(f"{name:24s} no report ({e.__class__.__name__})"); continue
    for res in r["results"]:
        if res["n_gen"]:
            runs[name].append((res['median_ts'], res['min_ts'], res['max_ts'], r['weight_bytes']))
med = lambda v: sorted(v)[len(v) // 2]
base = {}
for name, rs in runs.items():
    row, var = name.split(" ", 1)
    m = med([r[0] for r in rs])
    if var == "base":
        base[row] = m
    cells = " ".join(f"{r[0]:.1f}[{r[1]:.0f}..{r[2]:.0f}]" for r in rs)
    rel = f" x{m / base[row]:.3f}" if row in base else ""
    print(f"{name:22s} tg128 med {m:7.1f}{rel:7s} roof {100*m*rs[0][3]/2979e9:4.1f}%  runs {cells}")
PY
fi
if has prof && [ $((SECONDS - t00)) -lt ${PROF_BEFORE:-330} ]; then
	for m in ${PROF_ROWS:-tiny-Q4_0}; do
		for v in ${PROF_VARIANTS:-new:X=1}; do
			name=${v%%:*}; envs=${v#*:}
			t0=$SECONDS
			env ${envs//,/ } timeout 120 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
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
    v = {"ns": 1e-3, "nsecond": 1e-3, "us": 1, "usecond": 1, "ms": 1e3, "msecond": 1e3}[r[ui]] * v
    k = r[ki].split("(")[0]
    tot[k] += v; cnt[k] += 1
print(f"  per step ({steps} steps): {sum(tot.values())/steps:.1f} us over {sum(cnt.values())/steps:.1f} kernels")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:14]:
    print(f"  {k:34s} {v/steps:8.1f} us/step {cnt[k]/steps:6.1f} launches {v/cnt[k]:7.2f} us each")
PY
		done
	done
fi

summary "all done at $((SECONDS - t00)) s"
