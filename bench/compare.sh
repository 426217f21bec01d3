#!/usr/bin/env bash
# bp against the peer benchmarks (issue 4), in ONE run with the same CPU pinning.
#
#   bash bench/compare.sh [tag] [peers...]
#
# For every configuration and thread count it runs every peer one after another (bp
# included), so that drift in the machine's speed affects all of them alike; every
# process runs under `taskset -c 0-(T-1)` (the peers and bp also pin themselves to the
# same CPUs). Each round first measures the practical fp32 GEMM peak (gemm_peak.py,
# 2048², every importable lib) at each thread count. Results go to
# $RESULTS/<tag>.jsonl (machine facts on the first line, stderr of the runs in
# $RESULTS/<tag>.log); then bench/report.py prints the markdown table to stdout and
# writes $RESULTS/<tag>.svg.
#
# tag    name of the run (default: the date, e.g. 20261127-101500)
# peers  any of bp numpy torch jax torch-compile candle (default: bp jax torch numpy).
#        A peer that cannot run (library not importable, binary missing) is reported and
#        skipped; a single failed run is recorded and the sweep goes on.
#
# Environment:
#   PY=python        Python with numpy/torch/jax/threadpoolctl (default /tmp/peers/bin/python
#                    when it exists, else python3)
#   MIN_TIME=S       --min-time of every process (default: the scripts' own, 2.0 s)
#   REPEATS=N        --repeats of every process (default: the scripts' own, 3)
#   ROUNDS=N         how many times to run the whole sweep; the report takes the median
#                    over rounds (default 1)
#   RESULTS=DIR      output directory (default /tmp/bp-compare)
#   THREADS="1 2"    thread counts (default "1 2"; counts above nproc are skipped)
#   CONFIGS="..."    a subset of: tiny-b1 tiny-b32 small medium large (default all)
#   GEMM_LIBS="..."  libs for the GEMM peak (default "numpy torch jax"; "" skips it)
#   BUILD=1          run `cargo build --release --example bench` first (default 0: use the
#                    binary as it is; its age is recorded in the machine facts)
#   TIMEOUT=S        kill a single process after S seconds (default 900)
#   CANDLE_TARGET=D  where run_all.sh built rust-candle (default /tmp/bp-candle-target)
#   PEER_DIR=D       the peer scripts (default /work/shared/bench)
#
# A full comparison takes ~10 minutes of both cores per round: run nothing else meanwhile.
# Examples:
#   bash bench/compare.sh                                  # everything, defaults
#   ROUNDS=3 bash bench/compare.sh issue4 bp jax torch numpy
#   MIN_TIME=0.05 REPEATS=1 bash bench/compare.sh smoke bp numpy   # a quick smoke test
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)
peerdir=${PEER_DIR:-/work/shared/bench}
if [[ -z ${PY:-} ]]; then
  if [[ -x /tmp/peers/bin/python ]]; then PY=/tmp/peers/bin/python; else PY=python3; fi
fi
results=${RESULTS:-/tmp/bp-compare}
rounds=${ROUNDS:-1}
threads_list=${THREADS:-1 2}
gemm_libs=${GEMM_LIBS-numpy torch jax}
timeout_s=${TIMEOUT:-900}
tag=${1:-$(date +%Y%m%d-%H%M%S)}
shift || true
peers=${*:-bp jax torch numpy}

die() { echo "compare.sh: $*" >&2; exit 2; }
note() { echo "compare.sh: $*" >&2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$rounds'"
[[ $tag != -* && $tag != */* ]] || die "bad tag '$tag' (see -h)"
[[ -d $peerdir ]] || die "peer scripts not found in $peerdir (set PEER_DIR)"
command -v taskset >/dev/null || die "taskset is needed (util-linux)"

all_configs=(
  "tiny-b1    2,8,1            1"
  "tiny-b32   2,8,1            32"
  "small      64,32,10         32"
  "medium     784,128,10       64"
  "large      784,1024,1024,10 256"
)
configs=()
for c in "${all_configs[@]}"; do
  read -r name _ <<<"$c"
  if [[ -z ${CONFIGS:-} || " $CONFIGS " == *" $name "* ]]; then configs+=("$c"); fi
done
((${#configs[@]})) || die "CONFIGS='${CONFIGS:-}' selects no configuration (tiny-b1 tiny-b32 small medium large)"

ncpu=$(nproc)
threads=()
for t in $threads_list; do
  [[ $t =~ ^[1-9][0-9]*$ ]] || die "THREADS holds '$t', not a positive integer"
  if ((t > ncpu)); then note "skipping $t threads: this machine has $ncpu CPUs"; continue; fi
  threads+=("$t")
done
((${#threads[@]})) || die "no thread count left to run"

# The same knobs for every process.
opts=()
[[ -n ${MIN_TIME:-} ]] && opts+=(--min-time "$MIN_TIME")
[[ -n ${REPEATS:-} ]] && opts+=(--repeats "$REPEATS")
# As run_all.sh: the OpenBLAS kernel overrides would make numpy not the library default.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

# Our binary (honours CARGO_TARGET_DIR; a relative one is taken from the workspace root,
# where BUILD=1 runs cargo).
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$repo/$target_dir
bp_bin=$target_dir/release/examples/bench
candle_bin=${CANDLE_TARGET:-/tmp/bp-candle-target}/release/rust-candle
if [[ " $peers " == *" bp "* && ${BUILD:-0} == 1 ]]; then
  (cd "$repo" && cargo build --release --example bench) || die "cargo build failed"
fi

mkdir -p "$results"
out=$results/$tag.jsonl
log=$results/$tag.log
svg=$results/$tag.svg
[[ -e $out ]] && die "$out exists: pick another tag or remove it"
: >"$log"

# ---- which peers can run ------------------------------------------------------------
# JSON lines are appended to $out by python (proper escaping).
record() {  # record KIND key=value ... (strings) key:=value ... (integers)
  python3 - "$@" >>"$out" <<'EOF'
import json, sys
kind, rest = sys.argv[1], sys.argv[2:]
d = {"kind": kind}
for kv in rest:
    k, _, v = kv.partition("=")
    if k.endswith(":"):
        k = k[:-1]
        try:
            v = int(v)
        except ValueError:
            pass
    d[k] = v
print(json.dumps(d))
EOF
}

can_import() { "$PY" -c "import $1" >>"$log" 2>&1; }
run_peers=()
skipped=()
declare -A skip_reason=()
for p in $peers; do
  reason=
  case $p in
    bp) [[ -x $bp_bin ]] || reason="$bp_bin missing: cd $repo && cargo build --release --example bench (or BUILD=1)" ;;
    numpy) can_import "numpy, threadpoolctl" || reason="$PY cannot import numpy/threadpoolctl" ;;
    torch|torch-compile) can_import torch || reason="$PY cannot import torch" ;;
    jax) JAX_PLATFORMS=cpu can_import "jax, jax.numpy" || reason="$PY cannot import jax" ;;
    candle) [[ -x $candle_bin ]] || reason="$candle_bin missing (bash $peerdir/run_all.sh builds it)" ;;
    *) die "unknown peer '$p' (bp numpy torch jax torch-compile candle)" ;;
  esac
  if [[ -n $reason ]]; then
    note "skipping $p: $reason"
    skipped+=("$p")
    skip_reason[$p]=$reason
  else
    run_peers+=("$p")
  fi
done
((${#run_peers[@]})) || die "no peer can run"
glibs=()
for lib in $gemm_libs; do
  case $lib in
    numpy) can_import "numpy, threadpoolctl" && glibs+=(numpy) || note "GEMM peak: skipping numpy (not importable)" ;;
    torch) can_import torch && glibs+=(torch) || note "GEMM peak: skipping torch (not importable)" ;;
    jax) JAX_PLATFORMS=cpu can_import "jax, jax.numpy" && glibs+=(jax) || note "GEMM peak: skipping jax (not importable)" ;;
    *) die "unknown GEMM lib '$lib' (numpy torch jax)" ;;
  esac
done

# ---- machine facts (first line) ---------------------------------------------------------
commit=$(git -C "$repo" rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit-dirty"
fi
bin_time=
[[ -x $bp_bin ]] && bin_time=$(date -r "$bp_bin" -Iseconds)
record machine \
  "tag=$tag" \
  "date=$(date -Iseconds)" \
  "host=$(hostname)" \
  "cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)" \
  "cpus:=$ncpu" \
  "cores_per_socket:=$(lscpu 2>/dev/null | sed -n 's/^Core(s) per socket: *//p' | head -1)" \
  "kernel=$(uname -r)" \
  "rustc=$(cd "$repo" && rustc -V 2>/dev/null || echo unknown)" \
  "commit=$commit" \
  "branch=$(git -C "$repo" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)" \
  "bp_binary=$bp_bin" \
  "bp_binary_time=$bin_time" \
  "python=$("$PY" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo unknown)" \
  "py=$PY" \
  "peers=${run_peers[*]}" \
  "skipped=${skipped[*]:-}" \
  "threads=${threads[*]}" \
  "min_time=${MIN_TIME:-}" \
  "repeats:=${REPEATS:-}" \
  "rounds:=$rounds" \
  "loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)"
for p in ${skipped[@]+"${skipped[@]}"}; do record skip "peer=$p" "reason=${skip_reason[$p]}"; done

# ---- the sweep ----------------------------------------------------------------------------
# run_one KIND FIELDS ERRFIELDS LABEL CPUS cmd...: runs cmd pinned to CPUS and appends
# its first JSON line to $out with {"kind": KIND, FIELDS} put in front, or, when it prints
# none, an error record {"kind": "error", "of": KIND, FIELDS, ERRFIELDS}.
run_one() {
  local kind=$1 fields=$2 errfields=$3 label=$4 cpus=$5 line rc=0
  shift 5
  echo "== $label: taskset -c $cpus $*" >>"$log"
  timeout "$timeout_s" taskset -c "$cpus" "$@" >"$tmp" 2>>"$log" || rc=$?
  line=$(grep -m1 '^{' "$tmp" || true)
  if [[ -z $line ]]; then
    note "FAILED: $label (exit $rc; see $log)"
    echo "{\"kind\": \"error\", \"of\": \"$kind\", $fields, $errfields, \"rc\": $rc}" >>"$out"
    return 0
  fi
  line="{\"kind\": \"$kind\", $fields, ${line#\{}"
  echo "$line" >>"$out"
  echo "$line" | cut -c1-150 >&2
}

tmp=$(mktemp "$results/.$tag.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cd "$peerdir"
for ((r = 1; r <= rounds; r++)); do
  note "round $r of $rounds: GEMM peak (${glibs[*]:-none}), then ${#configs[@]} configs × threads ${threads[*]} × ${run_peers[*]}"
  for t in "${threads[@]}"; do
    cpus=0; ((t > 1)) && cpus="0-$((t - 1))"
    for lib in ${glibs[@]+"${glibs[@]}"}; do
      run_one gemm "\"round\": $r" "\"lib\": \"$lib\", \"threads\": $t" \
        "gemm $lib ${t}t round $r" "$cpus" \
        "$PY" gemm_peak.py --lib "$lib" --n 2048 --threads "$t" ${opts[@]+"${opts[@]}"}
    done
  done
  # Rotate the peer order each round so no peer always runs first after a switch.
  n=${#run_peers[@]}
  order=()
  for ((i = 0; i < n; i++)); do order+=("${run_peers[$(((i + r - 1) % n))]}"); done
  for c in "${configs[@]}"; do
    read -r name sizes batch <<<"$c"
    for t in "${threads[@]}"; do
      cpus=0; ((t > 1)) && cpus="0-$((t - 1))"
      for p in "${order[@]}"; do
        case $p in
          bp) cmd=("$bp_bin") ;;
          candle) cmd=("$candle_bin") ;;
          torch-compile) cmd=("$PY" mlp_torch.py --compile) ;;
          *) cmd=("$PY" "mlp_$p.py") ;;
        esac
        run_one mlp "\"config\": \"$name\", \"round\": $r" \
          "\"peer\": \"$p\", \"sizes\": \"$sizes\", \"batch\": $batch, \"threads\": $t" "$name ${t}t $p round $r" "$cpus" \
          "${cmd[@]}" --sizes "$sizes" --batch "$batch" --threads "$t" ${opts[@]+"${opts[@]}"}
      done
    done
  done
done

cd "$repo"
record end "date=$(date -Iseconds)" "loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)"
note "results: $out (log $log)"
python3 "$repo/bench/report.py" --svg "$svg" "$out"
note "plot: $svg"
