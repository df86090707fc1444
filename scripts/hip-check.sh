#!/usr/bin/env bash
# hip-check.sh: compile every GPU kernel (compute/gpu/kernels/*.cu) with hipcc
# for AMD targets, so a kernel change that breaks the HIP build is caught on
# machines without an AMD GPU. Nothing is run; code objects are thrown away
# (set HIP_CHECK_OUT=dir to keep them).
#
# Targets: gfx90a (CDNA2), gfx940 (CDNA3-class) and gfx1030 (RDNA2) must be
# known to the compiler; gfx942 (CDNA3) and gfx1100 (RDNA3) are tried and
# reported "skipped: ..." when the compiler lacks them. WARP_SIZE is 64 on
# CDNA and 32 on RDNA (wave32, hipcc's default there); the other -D and -std
# options are read from the Go code that passes them to NVRTC.
#
# When the compiler knows a target but has no device libraries for it (Debian's
# ROCm 5.2 and gfx1100), the kernels are compiled with -nogpulib if that links,
# else against a copy of the device libraries plus a generated
# oclc_isa_version file ("ok (synth isa)"): a codegen check only.
#
# A last row checks that common.h's HIP versions of __fmul_rn/__fadd_rn/__fsub_rn
# are not fused into FMAs (HIP's own are), against a control that is.
#
# Installs hipcc with apt-get when missing (Debian/Ubuntu, as root or with
# passwordless sudo). Exit status: 0 all compiled (or skipped with a reason),
# 1 a kernel failed for a target the compiler supports, 2 setup failure.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
KDIR=${HIP_CHECK_KERNELS:-compute/gpu/kernels} # another directory: for testing this script
HIPCC=${HIPCC:-hipcc}
JOBS=${HIP_CHECK_JOBS:-$(nproc 2>/dev/null || echo 2)}

die() { echo "hip-check: $*" >&2; exit 2; }

# --- compiler ---------------------------------------------------------------
if ! command -v "$HIPCC" >/dev/null 2>&1; then
	SUDO=""
	if [ "$(id -u)" != 0 ]; then
		sudo -n true 2>/dev/null || die "$HIPCC not found and cannot install it (not root, no passwordless sudo)"
		SUDO="sudo -n"
	fi
	command -v apt-get >/dev/null || die "$HIPCC not found and apt-get is not available to install it"
	echo "hip-check: installing hipcc with apt-get"
	aptlog=$(mktemp)
	if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq update &&
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y -o Dpkg::Use-Pty=0 hipcc; } >"$aptlog" 2>&1; then
		tail -20 "$aptlog" >&2
		die "apt-get install hipcc failed"
	fi
	rm -f "$aptlog"
	command -v "$HIPCC" >/dev/null || die "hipcc installed but $HIPCC is not on PATH"
	echo "hip-check: hipcc installed in $((SECONDS - start)) s"
fi
echo "hip-check: $("$HIPCC" --version 2>/dev/null | grep -iE 'HIP version|clang version' | paste -sd ';' -)"

# --- options the Go code gives NVRTC ----------------------------------------
# Quoted literals such as "-DFOO=1" and "--std=c++17" in compute/gpu/*.go.
# WARP_SIZE is set per target here; any other -D whose value is computed at
# run time ("-DX=%d") needs a value chosen here, so stop rather than guess.
gofiles=$(ls compute/gpu/*.go 2>/dev/null | grep -v '_test\.go$')
[ -n "$gofiles" ] || die "no compute/gpu/*.go to read the kernel compile options from"
DFLAGS=()
while read -r lit; do
	[ -n "$lit" ] || continue
	opt=${lit//\"/}
	case $opt in
	-DWARP_SIZE*) ;;
	*%*) die "compute/gpu passes $opt to NVRTC with a run-time value; teach scripts/hip-check.sh what to use" ;;
	*) DFLAGS+=("$opt") ;;
	esac
done < <(grep -ohE '"(-D[A-Za-z_][A-Za-z0-9_]*(=[^"]*)?|--?std=[^"]*)"' $gofiles | sort -u)
echo "hip-check: options from compute/gpu: ${DFLAGS[*]:-(none)} -DWARP_SIZE=<per target>"

kernels=()
for f in "$KDIR"/*.cu; do [ -e "$f" ] && kernels+=("$(basename "$f")"); done
[ ${#kernels[@]} -gt 0 ] || die "no kernels in $KDIR"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUTDIR=${HIP_CHECK_OUT:-$TMP/out}
mkdir -p "$OUTDIR" "$TMP/res" "$TMP/log"

# --- targets ----------------------------------------------------------------
# name:warp:family:required
TARGETS=(gfx90a:64:CDNA2:1 gfx940:64:CDNA3:1 gfx942:64:CDNA3:0 gfx1030:32:RDNA2:1 gfx1100:32:RDNA3:0)

cat >"$TMP/probe.hip" <<'EOF'
#include <hip/hip_runtime.h>
extern "C" __global__ void probe(float* x) { x[threadIdx.x] = sqrtf(x[threadIdx.x]); }
EOF

# Where the device libraries and the LLVM tools are, from the compiler's own
# command lines for a target it has libraries for.
"$HIPCC" --genco --offload-arch=gfx90a -v -o "$TMP/probe.o" "$TMP/probe.hip" >"$TMP/verbose.txt" 2>&1
DEVLIBS=$(grep -oE '[^ "]*/ockl\.bc' "$TMP/verbose.txt" | head -1 | xargs -r dirname)
CLANGBIN=$(grep -oE '"?[^ "]*/clang(-[0-9]+)?"? -cc1' "$TMP/verbose.txt" | head -1 | sed 's/"//g; s/ -cc1$//' | xargs -r dirname)

# synth_isa_libs TARGET: a copy of the device libraries (symlinks) plus an
# oclc_isa_version file for TARGET made from another one; prints its dir.
synth_isa_libs() {
	local t=$1 digits=${1#gfx} dir=$TMP/devlibs-$1 tmpl ver
	[ -n "$DEVLIBS" ] && [ -x "$CLANGBIN/llvm-dis" ] && [ -x "$CLANGBIN/llvm-as" ] || return 1
	[[ $digits =~ ^[0-9]{4}$ ]] || return 1 # gfxMMmS: version MM*1000 + m*100 + S
	ver=$((10#${digits:0:2} * 1000 + 10#${digits:2:1} * 100 + 10#${digits:3:1}))
	tmpl=$(ls "$DEVLIBS"/oclc_isa_version_*.bc 2>/dev/null | head -1)
	[ -n "$tmpl" ] || return 1
	mkdir -p "$dir" && ln -sf "$DEVLIBS"/*.bc "$dir"/ &&
		"$CLANGBIN/llvm-dis" "$tmpl" -o - | sed -E "s/constant i32 [0-9]+/constant i32 $ver/" |
		"$CLANGBIN/llvm-as" -o "$dir/oclc_isa_version_$digits.bc" - || return 1
	echo "$dir"
}

# Per target: MODE[t] (extra flags), LABEL[t] (what "ok" means) or SKIP[t].
declare -A MODE LABEL SKIP WARP
failed_setup=0
for spec in "${TARGETS[@]}"; do
	IFS=: read -r t w fam req <<<"$spec"
	WARP[$t]=$w
	plog=$TMP/log/probe-$t.txt
	if "$HIPCC" --genco --offload-arch="$t" -o "$TMP/probe-$t.o" "$TMP/probe.hip" >"$plog" 2>&1; then
		MODE[$t]="" LABEL[$t]="ok"
	elif grep -qiE 'invalid target ID|unknown target|not a recognized processor|unsupported (cuda|hip|gpu) arch' "$plog"; then
		SKIP[$t]="skipped: compiler lacks target"
	elif grep -qi 'cannot find ROCm device library' "$plog"; then
		if "$HIPCC" --genco --offload-arch="$t" -nogpulib -o "$TMP/probe-$t.o" "$TMP/probe.hip" >>"$plog" 2>&1; then
			MODE[$t]="-nogpulib" LABEL[$t]="ok (nogpulib)"
		elif d=$(synth_isa_libs "$t") &&
			"$HIPCC" --genco --offload-arch="$t" --rocm-device-lib-path="$d" -o "$TMP/probe-$t.o" "$TMP/probe.hip" >>"$plog" 2>&1; then
			MODE[$t]="--rocm-device-lib-path=$d" LABEL[$t]="ok (synth isa)"
		else
			SKIP[$t]="skipped: no device libs"
		fi
	else
		SKIP[$t]="FAIL (toolchain)"
		failed_setup=1
		echo "hip-check: $t: hipcc cannot compile a trivial kernel:" >&2
		sed 's/^/    /' "$plog" | head -20 >&2
	fi
	if [ "$req" = 1 ] && [ -n "${SKIP[$t]:-}" ]; then
		echo "hip-check: $t ($fam) is required but ${SKIP[$t]}" >&2
		failed_setup=1
	fi
done

# --- compile ----------------------------------------------------------------
# compile KERNEL TARGET: writes ok/FAIL to res/KERNEL.TARGET.
compile() {
	local k=$1 t=$2 log=$TMP/log/$1.$2.txt
	# shellcheck disable=SC2086 # MODE is zero or one word
	if "$HIPCC" --genco --offload-arch="$t" ${MODE[$t]} -DWARP_SIZE="${WARP[$t]}" "${DFLAGS[@]}" \
		-o "$OUTDIR/${k%.cu}-$t.hsaco" "$KDIR/$k" >"$log" 2>&1; then
		echo ok >"$TMP/res/$k.$t"
	else
		echo FAIL >"$TMP/res/$k.$t"
	fi
}

# rn_probe TARGET: the _rn operations through common.h must stay unfused;
# the control (plain a*b+c) must fuse, or the check proves nothing.
cat >"$TMP/rn_probe.cu" <<'EOF'
#include "common.h"
extern "C" __global__ void rn_probe(float* y, const float* a, const float* b, const float* c) {
    const int i = threadIdx.x;
    y[i] = __fadd_rn(__fmul_rn(a[i], b[i]), c[i]);
    y[i + 1024] = __fsub_rn(__fmul_rn(a[i], c[i]), __fmul_rn(b[i], c[i]));
}
EOF
cat >"$TMP/rn_control.cu" <<'EOF'
#include "common.h"
extern "C" __global__ void rn_control(float* y, const float* a, const float* b, const float* c) {
    const int i = threadIdx.x;
    y[i] = a[i] * b[i] + c[i];
}
EOF
FMA_RE='^[[:space:]]*v_(pk_)?(fma|fmac|mad|mac|fma_mix|fmamk|fmaak)[a-z_]*_f32'
rn_probe() {
	local t=$1 log=$TMP/log/rn-probe.$1.txt n_probe n_ctl
	# shellcheck disable=SC2086
	if ! "$HIPCC" --cuda-device-only -S -Wno-unused-command-line-argument --offload-arch="$t" ${MODE[$t]} -DWARP_SIZE="${WARP[$t]}" "${DFLAGS[@]}" \
		-I"$KDIR" -o "$TMP/rn_probe.$t.s" "$TMP/rn_probe.cu" >"$log" 2>&1 ||
		! "$HIPCC" --cuda-device-only -S -Wno-unused-command-line-argument --offload-arch="$t" ${MODE[$t]} -DWARP_SIZE="${WARP[$t]}" "${DFLAGS[@]}" \
			-I"$KDIR" -o "$TMP/rn_control.$t.s" "$TMP/rn_control.cu" >>"$log" 2>&1; then
		echo FAIL >"$TMP/res/rn-probe.$t"
		return
	fi
	n_probe=$(grep -cE "$FMA_RE" "$TMP/rn_probe.$t.s")
	n_ctl=$(grep -cE "$FMA_RE" "$TMP/rn_control.$t.s")
	if [ "$n_ctl" = 0 ]; then
		echo "skipped: control not fused" >"$TMP/res/rn-probe.$t"
	elif [ "$n_probe" = 0 ]; then
		echo ok >"$TMP/res/rn-probe.$t"
	else
		{ echo "fused multiply-add in the _rn probe:"; grep -E "$FMA_RE" "$TMP/rn_probe.$t.s"; } >>"$log"
		echo FAIL >"$TMP/res/rn-probe.$t"
	fi
}

throttle() { while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done; }
targets=()
for spec in "${TARGETS[@]}"; do targets+=("${spec%%:*}"); done
# Biggest first so the long matmul compiles overlap the small ones.
mapfile -t order < <(cd "$KDIR" && ls -S "${kernels[@]}")
for k in "${order[@]}"; do
	for t in "${targets[@]}"; do
		[ -n "${SKIP[$t]:-}" ] && continue
		throttle
		compile "$k" "$t" &
	done
done
for t in "${targets[@]}"; do
	[ -n "${SKIP[$t]:-}" ] && continue
	throttle
	rn_probe "$t" &
done
wait

# --- report -----------------------------------------------------------------
status=$failed_setup
printf '\n%-16s' "kernel"
for t in "${targets[@]}"; do printf ' %-30s' "$t (wave${WARP[$t]})"; done
printf '\n'
for k in "${kernels[@]}" rn-probe; do
	printf '%-16s' "$k"
	for t in "${targets[@]}"; do
		if [ -n "${SKIP[$t]:-}" ]; then
			cell=${SKIP[$t]}
		else
			cell=$(cat "$TMP/res/$k.$t" 2>/dev/null || echo "FAIL (no result)")
			[ "$cell" = ok ] && cell=${LABEL[$t]}
		fi
		case $cell in FAIL*) status=1 ;; esac
		printf ' %-30s' "$cell"
	done
	printf '\n'
done

for f in "$TMP"/res/*; do
	[ "$(cat "$f")" = FAIL ] || continue
	name=$(basename "$f")
	echo
	echo "--- FAIL $name:"
	head -40 "$TMP/log/$name.txt"
done
# Compiler warnings about the kernels themselves (not hipcc's link chatter).
warn=$(for f in "$TMP"/log/*.cu.*.txt; do
	t=${f%.txt} t=${t##*.}
	grep -E '\.(cu|h):[0-9]+:[0-9]+: warning:' "$f" | sed "s/^/$t: /"
done 2>/dev/null | sort -u)
if [ -n "$warn" ]; then
	echo
	echo "warnings:"
	echo "$warn" | head -40
fi
echo
echo "hip-check: $((SECONDS - start)) s with $JOBS jobs; $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
