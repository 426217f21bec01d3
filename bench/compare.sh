#!/usr/bin/env bash
# bp against the peer benchmarks (issue 4: the MLP; issue 11: the layer networks), in
# ONE run with the same CPU pinning.
#
#   bash bench/compare.sh [tag] [peers...]
#
# Two sweeps per round: the MLP configurations (mlp_<peer>.py, candle) and the layer
# networks of models_peer.py (lenet, lstm, gru, lstm100, cifar at batch 32 and 128 — 64
# for cifar; peers bp, torch and jax only: the others have no such script and are left
# out of that sweep). For every configuration and thread count it runs every peer one
# after another (bp included), so that drift in the machine's speed affects all of them
# alike; every
# process runs under `taskset -c 0-(T-1)` (the peers and bp also pin themselves to the
# same CPUs). Each round first measures the practical fp32 GEMM peak (gemm_peak.py,
# 2048², every importable lib) at each thread count. Results go to
# $RESULTS/<tag>.jsonl (machine facts on the first line, stderr of the runs in
# $RESULTS/<tag>.log); then bench/report.py prints the markdown tables to stdout and
# writes $RESULTS/<tag>.svg (the MLP) and $RESULTS/<tag>-models.svg (the layer networks).
#
# tag    name of the run (default: the date, e.g. 20261127-101500)
# peers  any of bp numpy torch jax torch-compile candle (default: bp jax torch numpy).
#        A peer that cannot run (library not importable, binary missing) is reported and
#        skipped; a single failed run is recorded and the sweep goes on.
#
# Environment:
#   PY=python        Python with numpy/torch/jax/threadpoolctl for the peers (default: the
#                    first of /tmp/peers/bin/python, /tmp/torch-venv/bin/python that exists,
#                    else python3)
#   MIN_TIME=S       --min-time of every process (default: the scripts' own, 2.0 s)
#   REPEATS=N        --repeats of every process (default: the scripts' own, 3)
#   ROUNDS=N         how many times to run the whole sweep; the report takes the median
#                    over rounds (default 1)
#   RESULTS=DIR      output directory (default /tmp/bp-compare)
#   THREADS="1 2"    thread counts (default "1 2"; counts above nproc are skipped)
#   CONFIGS="..."    MLP configurations, a subset of: tiny-b1 tiny-b32 small medium large
#                    (unset: all; set but empty: no MLP sweep)
#   MODELS="..."     layer networks, model names (lenet lstm gru lstm100 cifar) or
#                    configurations (lenet-b32 lenet-b128 … cifar-b32 cifar-b64)
#                    (unset: all; set but empty: no model sweep)
#   GEMM_LIBS="..."  libs for the GEMM peak (default "numpy torch jax"; "" skips it)
#   BUILD=1          run `cargo build --release --example bench` first (default 0: use the
#                    binary as it is; its age is recorded in the machine facts)
#   TIMEOUT=S        kill a single process after S seconds (default 900)
#   CANDLE_TARGET=D  where run_all.sh built rust-candle (default /tmp/bp-candle-target)
#   PEER_DIR=D       the peer scripts (default /work/shared/bench)
#
# A full comparison takes ~20 minutes of both cores per round (the MLP ~7, the layer
# networks ~12): run nothing else meanwhile.
# Examples:
#   bash bench/compare.sh                                  # everything, defaults
#   ROUNDS=3 bash bench/compare.sh issue4 bp jax torch numpy
#   CONFIGS= ROUNDS=3 PY=/tmp/torch-venv/bin/python bash bench/compare.sh issue11 bp jax torch
#                                                          # the layer networks only
#   MIN_TIME=0.05 REPEATS=1 bash bench/compare.sh smoke bp numpy   # a quick smoke test
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)
peerdir=${PEER_DIR:-/work/shared/bench}
if [[ -z ${PY:-} ]]; then
  PY=python3
  for candidate in /tmp/peers/bin/python /tmp/torch-venv/bin/python; do
    if [[ -x $candidate ]]; then PY=$candidate; break; fi
  done
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
  if [[ -z ${CONFIGS+set} || " $CONFIGS " == *" $name "* ]]; then configs+=("$c"); fi
done
if [[ -n ${CONFIGS:-} ]] && ((${#configs[@]} == 0)); then
  die "CONFIGS='$CONFIGS' selects no configuration (tiny-b1 tiny-b32 small medium large)"
fi

# The layer networks of models_peer.py: name, model, batch.
all_models=(
  "lenet-b32    lenet    32"
  "lenet-b128   lenet    128"
  "lstm-b32     lstm     32"
  "lstm-b128    lstm     128"
  "gru-b32      gru      32"
  "gru-b128     gru      128"
  "lstm100-b32  lstm100  32"
  "lstm100-b128 lstm100  128"
  "cifar-b32    cifar    32"
  "cifar-b64    cifar    64"
)
models=()
for c in "${all_models[@]}"; do
  read -r name model _ <<<"$c"
  if [[ -z ${MODELS+set} || " $MODELS " == *" $name "* || " $MODELS " == *" $model "* ]]; then
    models+=("$c")
  fi
done
if [[ -n ${MODELS:-} ]] && ((${#models[@]} == 0)); then
  die "MODELS='$MODELS' selects no layer network (lenet lstm gru lstm100 cifar, or lenet-b32 …)"
fi
((${#configs[@]} + ${#models[@]})) || die "CONFIGS and MODELS are both empty: nothing to run"
if ((${#models[@]})) && [[ ! -f $peerdir/models_peer.py ]]; then
  note "skipping the layer networks: $peerdir/models_peer.py missing"
  models=()
  ((${#configs[@]})) || die "nothing left to run"
fi

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
models_svg=$results/$tag-models.svg
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
if ((${#models[@]})); then
  mlp_only=()
  for p in "${run_peers[@]}"; do case $p in bp|torch|jax) ;; *) mlp_only+=("$p") ;; esac; done
  if ((${#mlp_only[@]})); then
    note "no layer-network script for ${mlp_only[*]}: they run in the MLP sweep only"
  fi
fi
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
  "configs=$(for c in ${configs[@]+"${configs[@]}"}; do read -r n _ <<<"$c"; printf '%s ' "$n"; done)" \
  "models=$(for c in ${models[@]+"${models[@]}"}; do read -r n _ <<<"$c"; printf '%s ' "$n"; done)" \
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
  note "round $r of $rounds: GEMM peak (${glibs[*]:-none}), then ${#configs[@]} MLP configs and ${#models[@]} layer networks × threads ${threads[*]} × ${run_peers[*]}"
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
  for c in ${configs[@]+"${configs[@]}"}; do
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
  # The layer networks: bp and models_peer.py (torch, jax), in the same rotated order.
  for c in ${models[@]+"${models[@]}"}; do
    read -r name model batch <<<"$c"
    for t in "${threads[@]}"; do
      cpus=0; ((t > 1)) && cpus="0-$((t - 1))"
      for p in "${order[@]}"; do
        case $p in
          bp) cmd=("$bp_bin" --model "$model") ;;
          torch) cmd=("$PY" models_peer.py --peer torch --model "$model") ;;
          jax) cmd=(env JAX_PLATFORMS=cpu "$PY" models_peer.py --peer jax --model "$model") ;;
          *) continue ;;  # no layer-network script for this peer
        esac
        run_one model "\"config\": \"$name\", \"round\": $r" \
          "\"peer\": \"$p\", \"model\": \"$model\", \"batch\": $batch, \"threads\": $t" "$name ${t}t $p round $r" "$cpus" \
          "${cmd[@]}" --batch "$batch" --threads "$t" ${opts[@]+"${opts[@]}"}
      done
    done
  done
done

cd "$repo"
record end "date=$(date -Iseconds)" "loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)"
note "results: $out (log $log)"
python3 "$repo/bench/report.py" --svg "$svg" --models-svg "$models_svg" "$out"
note "plots: $svg (MLP), $models_svg (layer networks)"
