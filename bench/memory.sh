#!/usr/bin/env bash
# Peak resident memory of a training step (issue 11, point 5): bp against PyTorch, per
# model and configuration, measured as the peak RSS of the whole process.
#
#   bash bench/memory.sh [tag]
#
# For every configuration it runs bp's training benchmark (examples/bench.rs, the same
# arguments as bench/compare.sh gives it) and PyTorch's (models_peer.py --peer torch for
# the layer networks, mlp_torch.py for the MLP), each under `/usr/bin/time -f %M` (the
# peak resident set size the kernel reports for the process, as getrusage's ru_maxrss)
# and `taskset -c 0-(T-1)`. The configurations: lenet, lstm, gru, lstm100 at batch 32 and
# 128, cifar at 64, and the MLP configurations tiny-b1, tiny-b32, small, medium, large.
#
# Each process also has a baseline, measured the same way: what the process holds before
# any step — bp: the benchmark binary run with --help (loaded, nothing allocated);
# PyTorch: Python importing numpy and torch and setting the thread count, as the scripts
# do before they build anything. The table gives the totals (what the process held) and
# the totals minus the baseline (what the step added: parameters, gradients, activations,
# workspaces, and for PyTorch also what its first operations load and allocate), with
# the ratio bp ÷ PyTorch of each; the target is bp ≤ PyTorch (ratio ≤ 1).
#
# The peak is reached in the first steps (every buffer is allocated by then), so the
# processes time short runs by default: MIN_TIME=0.2 s per repeat, REPEATS=1.
#
# Environment:
#   PY=python        Python with numpy and torch (default: the first of /tmp/torch-venv/bin/python,
#                    /tmp/peers/bin/python that exists, else python3)
#   PEER_DIR=D       the peer scripts (default /work/shared/bench)
#   ROUNDS=N         runs of everything; the table takes the median over rounds (default 3)
#   THREADS="1"      thread counts (default "1")
#   CONFIGS="..."    a subset of: lenet-b32 lenet-b128 lstm-b32 lstm-b128 gru-b32 gru-b128
#                    lstm100-b32 lstm100-b128 cifar-b64 tiny-b1 tiny-b32 small medium large
#   MIN_TIME=S       --min-time of every process (default 0.2)
#   REPEATS=N        --repeats of every process (default 1)
#   RESULTS=DIR      output directory (default /tmp/bp-memory)
#   BUILD=1          run `cargo build --release --example bench` first (default 0)
#   REPORT_ONLY=F    print the table of an earlier run's JSONL file F and stop
#
# Needs /usr/bin/time (Debian/Ubuntu: apt-get install time). One round takes about
# 1.5 minutes.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)

report() {
  python3 - "$1" <<'EOF'
import json, statistics, sys
runs, base, facts = {}, {}, None
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("kind") == "machine":
        facts = d
    elif d.get("kind") == "rss" and d.get("rc") == 0:
        runs.setdefault((d["config"], d["threads"], d["peer"]), []).append(d["maxrss_kb"])
    elif d.get("kind") == "baseline" and d.get("rc") == 0:
        base.setdefault((d["threads"], d["peer"]), []).append(d["maxrss_kb"])
mib = lambda kb: kb / 1024
med = lambda xs: statistics.median(xs) if xs else None
fmt = lambda v: "—" if v is None else f"{mib(v):,.1f}"
ratio = lambda a, b: "—" if a is None or b is None or b <= 0 else f"{a / b:.2f}"
if facts:
    print(f"- machine: {facts['cpu']} ({facts['cpus']} CPUs), {facts['kernel']}; commit "
          f"{facts['commit']}; {facts['date']}; rounds {facts['rounds']}; {facts['torch']}")
print("- peak RSS in MiB (`/usr/bin/time -f %M`), median over rounds; baseline = the "
      "process before any step (bp: the binary with --help; torch: Python with numpy and "
      "torch imported); step = peak − baseline\n")
threads = sorted({t for _, t, _ in runs})
for t in threads:
    bb, tb = med(base.get((t, "bp"), [])), med(base.get((t, "torch"), []))
    print(f"Threads: {t}. Baselines: bp {fmt(bb)} MiB, torch {fmt(tb)} MiB.\n")
    print("| config | bp peak | torch peak | bp ÷ torch | bp step | torch step "
          "| bp ÷ torch (step) | target bp ≤ torch |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    met = total = 0
    for config in dict.fromkeys(c for c, tt, _ in runs if tt == t):
        b, p = med(runs.get((config, t, "bp"), [])), med(runs.get((config, t, "torch"), []))
        bs = None if b is None or bb is None else b - bb
        ps = None if p is None or tb is None else p - tb
        ok = None if b is None or p is None else b <= p
        if ok is not None:
            total += 1
            met += ok
        print(f"| {config} | {fmt(b)} | {fmt(p)} | {ratio(b, p)} | {fmt(bs)} | {fmt(ps)} "
              f"| {ratio(bs, ps)} | {'—' if ok is None else ('✓' if ok else '✗')} |")
    print(f"\n**{met} of {total} targets met** (peak RSS of the process).\n")
EOF
}
if [[ -n ${REPORT_ONLY:-} ]]; then report "$REPORT_ONLY"; exit 0; fi

if [[ -z ${PY:-} ]]; then
  PY=python3
  for candidate in /tmp/torch-venv/bin/python /tmp/peers/bin/python; do
    if [[ -x $candidate ]]; then PY=$candidate; break; fi
  done
fi
peerdir=${PEER_DIR:-/work/shared/bench}
results=${RESULTS:-/tmp/bp-memory}
rounds=${ROUNDS:-3}
threads_list=${THREADS:-1}
tag=${1:-memory-$(date +%Y%m%d-%H%M%S)}
opts=(--min-time "${MIN_TIME:-0.2}" --repeats "${REPEATS:-1}")

die() { echo "memory.sh: $*" >&2; exit 2; }
note() { echo "memory.sh: $*" >&2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$rounds'"
[[ $tag != -* && $tag != */* ]] || die "bad tag '$tag' (see -h)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (apt-get install time)"
command -v taskset >/dev/null || die "taskset is needed (util-linux)"
[[ -f $peerdir/models_peer.py && -f $peerdir/mlp_torch.py ]] || die "peer scripts not found in $peerdir (set PEER_DIR)"
"$PY" -c "import numpy, torch" 2>/dev/null || die "$PY cannot import numpy and torch (set PY)"

# name, bp's arguments, the torch script and its arguments (the same for both but the
# script name).
all_configs=(
  "lenet-b32    --model lenet --batch 32"
  "lenet-b128   --model lenet --batch 128"
  "lstm-b32     --model lstm --batch 32"
  "lstm-b128    --model lstm --batch 128"
  "gru-b32      --model gru --batch 32"
  "gru-b128     --model gru --batch 128"
  "lstm100-b32  --model lstm100 --batch 32"
  "lstm100-b128 --model lstm100 --batch 128"
  "cifar-b64    --model cifar --batch 64"
  "tiny-b1      --sizes 2,8,1 --batch 1"
  "tiny-b32     --sizes 2,8,1 --batch 32"
  "small        --sizes 64,32,10 --batch 32"
  "medium       --sizes 784,128,10 --batch 64"
  "large        --sizes 784,1024,1024,10 --batch 256"
)
configs=()
for c in "${all_configs[@]}"; do
  read -r name _ <<<"$c"
  if [[ -z ${CONFIGS+set} || " $CONFIGS " == *" $name "* ]]; then configs+=("$c"); fi
done
((${#configs[@]})) || die "CONFIGS='${CONFIGS:-}' selects no configuration"

target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$repo/$target_dir
bp_bin=$target_dir/release/examples/bench
if [[ ${BUILD:-0} == 1 ]]; then
  (cd "$repo" && cargo build --release --example bench) || die "cargo build failed"
fi
[[ -x $bp_bin ]] || die "$bp_bin missing: cargo build --release --example bench (or BUILD=1)"

mkdir -p "$results"
out=$results/$tag.jsonl
log=$results/$tag.log
[[ -e $out ]] && die "$out exists: pick another tag or remove it"
: >"$log"

record() {  # record key=value ... (strings) key:=value ... (integers)
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
commit=$(git -C "$repo" rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit-dirty"
fi
record kind=machine "tag=$tag" "date=$(date -Iseconds)" \
  "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "cpus:=$(nproc)" "kernel=$(uname -r)" \
  "commit=$commit" "bp_binary_time=$(date -r "$bp_bin" -Iseconds)" "python=$PY" \
  "torch=torch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)" \
  "rounds:=$rounds" "threads=$threads_list" "opts=${opts[*]}" \
  "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"

tmp=$(mktemp "$results/.$tag.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# measure KIND FIELDS... -- cmd...: peak RSS of cmd (kB) appended as {"kind": KIND, FIELDS}.
measure() {
  local kind=$1 rc=0
  shift
  local fields=()
  while [[ $1 != -- ]]; do fields+=("$1"); shift; done
  shift
  echo "== $kind ${fields[*]}: $*" >>"$log"
  /usr/bin/time -f %M -o "$tmp" "$@" >>"$log" 2>&1 || rc=$?
  local kb
  kb=$(tail -1 "$tmp" 2>/dev/null || true)
  [[ $kb =~ ^[0-9]+$ ]] || { kb=0; ((rc)) || rc=1; }
  record "kind=$kind" "${fields[@]}" "maxrss_kb:=$kb" "rc:=$rc"
  ((rc == 0)) || note "FAILED: $kind ${fields[*]} (exit $rc; see $log)"
  echo "$kind ${fields[*]}: $((kb / 1024)) MiB" >&2
}

cd "$peerdir"
for ((r = 1; r <= rounds; r++)); do
  note "round $r of $rounds: ${#configs[@]} configurations × threads $threads_list × bp, torch"
  for t in $threads_list; do
    cpus=0; ((t > 1)) && cpus="0-$((t - 1))"
    measure baseline "peer=bp" "threads:=$t" "round:=$r" -- taskset -c "$cpus" "$bp_bin" --help
    measure baseline "peer=torch" "threads:=$t" "round:=$r" -- taskset -c "$cpus" "$PY" -c \
      "import os; os.sched_setaffinity(0, set(range($t))); os.environ['OMP_NUM_THREADS'] = '$t'
import numpy, torch, torch.nn.functional
torch.set_num_threads($t); torch.set_num_interop_threads(1)"
    for c in "${configs[@]}"; do
      read -r name args <<<"$c"
      read -r -a a <<<"$args"
      if [[ ${a[0]} == --model ]]; then script=(models_peer.py --peer torch); else script=(mlp_torch.py); fi
      # Alternate which peer runs first.
      for p in $( ((r % 2)) && echo bp torch || echo torch bp); do
        if [[ $p == bp ]]; then cmd=("$bp_bin" "${a[@]}"); else cmd=("$PY" "${script[@]}" "${a[@]}"); fi
        measure rss "config=$name" "peer=$p" "threads:=$t" "round:=$r" -- \
          taskset -c "$cpus" "${cmd[@]}" --threads "$t" "${opts[@]}"
      done
    done
  done
done
cd "$repo"
record kind=end "date=$(date -Iseconds)" "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
note "results: $out (log $log)"
report "$out"
