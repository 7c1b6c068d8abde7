#!/usr/bin/env bash
# Fuzzes each target (all, or those named) for SECONDS, starting from the kept corpora in
# corpus/, and prints each target's executions. A finding stops the run with the input
# saved under artifacts/<target>/ and the command that replays it.
# Usage: fuzz/run.sh SECONDS [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz --version 0.13.2
# Stable Rust: no sanitizer (Cairn forbids unsafe code); panics, overflow and debug
# assertions are what the targets find.
cargo fuzz build --sanitizer none
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  if ! cargo fuzz run --sanitizer none "$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
    grep -v '^INFO:\|^#' "$log" | tail -60
    echo "fuzz target $target found a failure" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz $target: $runs executions in ${seconds}s, no failures, $(ls "corpus/$target" | wc -l) inputs in the corpus"
done
