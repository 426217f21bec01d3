#!/usr/bin/env bash
# Inference latency at batch 1 (issue 11, point 4): bp against PyTorch (eager, under
# torch.inference_mode) and ONNX Runtime (the model torch.onnx.export writes), side by
# side, with the same CPU pinning.
#
#   bash bench/infer.sh [tag] [peers...]
#
# For every model (mlp = the mnist example's 784 → 128 → 10, lenet, lstm) and thread
# count it runs every peer one after another — bp (examples/infer.rs) and
# bench/infer_peer.py --peer torch|onnxruntime — each under `taskset -c 0-(T-1)` (they
# also pin themselves), rotating the peer order from round to round. Each process prints
# one JSON line (sec_per_call = the median over its repeats of its allocation-free call:
# bp's predict_into, ONNX Runtime's run_with_iobinding, PyTorch's net(x); plus bp's plain
# predict and ONNX Runtime's plain run beside them). The lines go to $RESULTS/<tag>.jsonl
# (machine facts on the first line, stderr of the runs in $RESULTS/<tag>.log); then a
# markdown table of the medians over rounds is printed, with the ratio of the faster
# peer's time to bp's (above 1: bp is faster) and the target (≥ 2×).
#
# tag    name of the run (default: the date, e.g. infer-20261205-101500)
# peers  any of bp torch onnxruntime (default: all three)
#
# Environment:
#   PY=python        Python with torch, numpy, onnx, onnxruntime (default: the first of
#                    /tmp/torch-venv/bin/python, /tmp/peers/bin/python that exists, else python3)
#   ROUNDS=N         sweeps; the table takes the median over rounds (default 3)
#   MIN_TIME=S       --min-time of every process: seconds per repeat (default 0.25)
#   REPEATS=N        --repeats of every process (default 7)
#   THREADS="1 2"    thread counts (default "1 2"; counts above nproc are skipped)
#   MODELS="..."     models (default "mlp lenet lstm")
#   RESULTS=DIR      output directory (default /tmp/bp-infer)
#   BUILD=1          run `cargo build --release --example infer` first (default 0: use the
#                    binary as it is; its time is recorded in the machine facts)
#   TIMEOUT=S        kill a single process after S seconds (default 300)
#
# One round takes about 2 minutes (3 models × 2 thread counts × 3 peers, ~5 s each, most
# of it PyTorch's import and the ONNX export). Run nothing else meanwhile.
# Examples:
#   bash bench/infer.sh                                   # everything, 3 rounds
#   ROUNDS=1 THREADS=1 MODELS=lstm bash bench/infer.sh try bp onnxruntime
#   REPORT_ONLY=/tmp/bp-infer/x.jsonl bash bench/infer.sh  # the table of an earlier run
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)

# The table: medians over rounds of each (model, threads, peer).
report() {
  python3 - "$1" <<'EOF'
import json, statistics, sys
rows, facts = {}, None
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("kind") == "machine":
        facts = d
    if d.get("kind") != "infer":
        continue
    r = rows.setdefault((d["model"], d["threads"]), {})
    r.setdefault(d["peer"], []).append(d)
med = lambda ds, k: statistics.median(x[k] for x in ds) if ds and all(k in x for x in ds) else None
us = lambda v: "—" if v is None else (f"{v * 1e6:,.1f}" if v >= 1e-5 else f"{v * 1e6:.2f}")
if facts:
    print(f"- machine: {facts['cpu']} ({facts['cpus']} CPUs), {facts['kernel']}, {facts['rustc']}; "
          f"commit {facts['commit']}; {facts['date']}; rounds {facts['rounds']}; "
          f"load average at the start {facts['loadavg']}")
print("- µs per call at batch 1, median over rounds (each round: the median of the process's "
      "repeats); ratio = the faster peer's µs ÷ bp's predict_into µs\n")
print("| model | threads | bp predict_into | bp predict | torch | onnxruntime (iobinding) "
      "| onnxruntime (run) | faster peer | bp vs faster peer | target ≥ 2× |")
print("|---|---|---:|---:|---:|---:|---:|---|---:|---|")
met = total = 0
order = {"mlp": 0, "lenet": 1, "lstm": 2}
for (model, t), r in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
    bp = med(r.get("bp"), "sec_per_call")
    peers = {p: med(r.get(p), "sec_per_call") for p in ("torch", "onnxruntime")}
    best = min(((v, p) for p, v in peers.items() if v is not None), default=None)
    ratio = best[0] / bp if best and bp else None
    if ratio is not None:
        total += 1
        met += ratio >= 2
    print(f"| {model} | {t} | {us(bp)} | {us(med(r.get('bp'), 'predict_sec_per_call'))} "
          f"| {us(peers['torch'])} | {us(peers['onnxruntime'])} "
          f"| {us(med(r.get('onnxruntime'), 'run_sec_per_call'))} | {best[1] if best else '—'} "
          f"| {'—' if ratio is None else f'{ratio:.2f}×'} "
          f"| {'—' if ratio is None else ('✓' if ratio >= 2 else '✗')} |")
print(f"\n**{met} of {total} targets met.**")
EOF
}
if [[ -n ${REPORT_ONLY:-} ]]; then report "$REPORT_ONLY"; exit 0; fi

if [[ -z ${PY:-} ]]; then
  PY=python3
  for candidate in /tmp/torch-venv/bin/python /tmp/peers/bin/python; do
    if [[ -x $candidate ]]; then PY=$candidate; break; fi
  done
fi
results=${RESULTS:-/tmp/bp-infer}
rounds=${ROUNDS:-3}
threads_list=${THREADS:-1 2}
models=${MODELS:-mlp lenet lstm}
timeout_s=${TIMEOUT:-300}
tag=${1:-infer-$(date +%Y%m%d-%H%M%S)}
shift || true
peers=${*:-bp torch onnxruntime}

die() { echo "infer.sh: $*" >&2; exit 2; }
note() { echo "infer.sh: $*" >&2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$rounds'"
[[ $tag != -* && $tag != */* ]] || die "bad tag '$tag' (see -h)"
command -v taskset >/dev/null || die "taskset is needed (util-linux)"
for m in $models; do
  case $m in mlp|lenet|lstm) ;; *) die "unknown model '$m' (mlp lenet lstm)" ;; esac
done
opts=(--min-time "${MIN_TIME:-0.25}" --repeats "${REPEATS:-7}")

target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$repo/$target_dir
bp_bin=$target_dir/release/examples/infer
if [[ " $peers " == *" bp "* && ${BUILD:-0} == 1 ]]; then
  (cd "$repo" && cargo build --release --example infer) || die "cargo build failed"
fi

run_peers=()
for p in $peers; do
  case $p in
    bp) [[ -x $bp_bin ]] || { note "skipping bp: $bp_bin missing (cargo build --release --example infer, or BUILD=1)"; continue; } ;;
    torch) "$PY" -c "import torch" 2>/dev/null || { note "skipping torch: $PY cannot import torch"; continue; } ;;
    onnxruntime) "$PY" -c "import torch, onnx, onnxruntime" 2>/dev/null \
      || { note "skipping onnxruntime: $PY cannot import torch, onnx and onnxruntime"; continue; } ;;
    *) die "unknown peer '$p' (bp torch onnxruntime)" ;;
  esac
  run_peers+=("$p")
done
((${#run_peers[@]})) || die "no peer can run"
ncpu=$(nproc)
threads=()
for t in $threads_list; do
  [[ $t =~ ^[1-9][0-9]*$ ]] || die "THREADS holds '$t', not a positive integer"
  if ((t > ncpu)); then note "skipping $t threads: this machine has $ncpu CPUs"; continue; fi
  threads+=("$t")
done
((${#threads[@]})) || die "no thread count left to run"

mkdir -p "$results"
out=$results/$tag.jsonl
log=$results/$tag.log
[[ -e $out ]] && die "$out exists: pick another tag or remove it"
: >"$log"
commit=$(git -C "$repo" rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit-dirty"
fi
# JSON objects from key=value arguments (strings; key:=value for numbers).
record() {
  python3 - "$@" >>"$out" <<'EOF'
import json, sys
d = {}
for kv in sys.argv[1:]:
    k, _, v = kv.partition("=")
    if k.endswith(":"):
        k, v = k[:-1], int(v)
    d[k] = v
print(json.dumps(d))
EOF
}
record kind=machine "tag=$tag" "date=$(date -Iseconds)" "host=$(hostname)" \
  "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
  "cpu_family=$(lscpu | sed -n 's/^CPU family: *//p' | head -1)" \
  "cpus:=$ncpu" "kernel=$(uname -r)" "rustc=$(cd "$repo" && rustc -V 2>/dev/null || echo unknown)" \
  "commit=$commit" "bp_binary_time=$([[ -x $bp_bin ]] && date -r "$bp_bin" -Iseconds || true)" \
  "python=$PY" "peers=${run_peers[*]}" "threads=${threads[*]}" "models=$models" \
  "rounds:=$rounds" "opts=${opts[*]}" "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"

tmp=$(mktemp "$results/.$tag.XXXXXX")
trap 'rm -f "$tmp"' EXIT
for ((r = 1; r <= rounds; r++)); do
  note "round $r of $rounds: ${models} × threads ${threads[*]} × ${run_peers[*]}"
  n=${#run_peers[@]}
  order=()
  for ((i = 0; i < n; i++)); do order+=("${run_peers[$(((i + r - 1) % n))]}"); done
  for m in $models; do
    for t in "${threads[@]}"; do
      cpus=0; ((t > 1)) && cpus="0-$((t - 1))"
      for p in "${order[@]}"; do
        case $p in
          bp) cmd=("$bp_bin") ;;
          *) cmd=("$PY" "$repo/bench/infer_peer.py" --peer "$p") ;;
        esac
        echo "== $m ${t}t $p round $r" >>"$log"
        rc=0
        timeout "$timeout_s" taskset -c "$cpus" "${cmd[@]}" --model "$m" --threads "$t" \
          "${opts[@]}" >"$tmp" 2>>"$log" || rc=$?
        line=$(grep -m1 '^{' "$tmp" || true)
        if [[ -z $line ]]; then
          note "FAILED: $m ${t}t $p round $r (exit $rc; see $log)"
          echo "{\"kind\": \"error\", \"round\": $r, \"peer\": \"$p\", \"model\": \"$m\", \"threads\": $t, \"rc\": $rc}" >>"$out"
          continue
        fi
        echo "{\"kind\": \"infer\", \"round\": $r, ${line#\{}" >>"$out"
        echo "$line" | cut -c1-120 >&2
      done
    done
  done
done
record kind=end "date=$(date -Iseconds)" "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
note "results: $out (log $log)"
report "$out"
