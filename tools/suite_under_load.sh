#!/usr/bin/env bash
# Runs the README's test command N times in a row (default 20) while a from-scratch
# release build of the workspace keeps both cores busy: how issue 9's "no flaky test" is
# checked. Prints one line per run with its time and the load average; stops at the
# first failure and keeps its log.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
load_dir=$(mktemp -d)
stop=$load_dir/stop
(
  while [ ! -f "$stop" ]; do
    CARGO_TARGET_DIR=$load_dir/target cargo build --release --workspace --all-targets -j 2 \
      > /dev/null 2>&1
    rm -rf "$load_dir/target"
  done
) &
trap 'touch "$stop"; wait; rm -rf "$load_dir"' EXIT
sleep 20
for i in $(seq 1 "$runs"); do
  start=$SECONDS
  if ! cargo test --workspace > "$load_dir/run.log" 2>&1; then
    cp "$load_dir/run.log" suite_under_load_failure.log
    echo "run $i: FAIL (log in suite_under_load_failure.log)"
    exit 1
  fi
  echo "run $i: pass ($((SECONDS - start)) s, load $(cut -d' ' -f1 /proc/loadavg))"
done
