#!/usr/bin/env bash
# Compile time of generated code: a 20-layer convolutional network and an LSTM over 32
# and 64 steps, each built in release in a scratch crate that depends on this checkout.
# Dependencies are built once first; each figure is the time to build the crate holding
# the network alone (what a user waits for after editing a network). Median of 3.
#
#   bash bench/compile_time.sh            # prints a table
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${BP_COMPILE_TIME_DIR:-/tmp/bp-compile-time}
mkdir -p "$work/src/bin"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "bp-compile-time"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
bp = { path = "$repo" }

[workspace]
TOML
cp "$repo/rust-toolchain.toml" "$work/"

conv_layers() {
  echo "        let c0 = relu(conv2d(x, 8, kernel = 3, padding = 1));"
  for i in $(seq 1 19); do
    echo "        let c$i = relu(conv2d(c$((i - 1)), 8, kernel = 3, padding = 1));"
  done
  echo "        let out = linear(flatten(c19), 10);"
}

{
  echo 'bp::network! { struct Conv20 { input x: [3, 16, 16];'
  conv_layers
  echo '        output out; } }'
  echo 'fn main() { let mut n = Conv20::new(0); let x = bp::Tensor::zeros(&[2, 3, 16, 16]); println!("{:?}", n.forward(&x).map(|t| t.shape().to_vec())); }'
} > "$work/src/bin/conv20.rs"

for t in 32 64; do
  cat > "$work/src/bin/lstm$t.rs" <<RS
bp::network! { struct Lstm$t { input x: [$t, 28]; let l = lstm(x, hidden = 64); let out = linear(last(l), 10); output out; } }
fn main() { let mut n = Lstm$t::new(0); let x = bp::Tensor::zeros(&[2, $t, 28]); println!("{:?}", n.forward(&x).map(|t| t.shape().to_vec())); }
RS
done

cd "$work"
cargo build --release --quiet 2>/dev/null || cargo build --release
printf '| network | release build of the crate (s), median of 3 | runs |\n|---|---|---|\n'
for bin in conv20 lstm32 lstm64; do
  runs=()
  for _ in 1 2 3; do
    touch "src/bin/$bin.rs"
    s=$(date +%s.%N)
    cargo build --release --quiet --bin "$bin"
    e=$(date +%s.%N)
    runs+=("$(echo "$e - $s" | bc)")
  done
  med=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
  printf '| %s | %.1f | %s |\n' "$bin" "$med" "$(printf '%.1f ' "${runs[@]}")"
done
