#!/usr/bin/env bash
# Coverage-guided fuzzing of passerelle-protocol's parsers (fuzz/, cargo-fuzz + libFuzzer).
#
# Installs cargo-fuzz when missing, builds every target once, then runs each for
# FUZZ_SECONDS (default 20) from a scratch copy of its committed seeds
# (fuzz/corpus/<target>/, left untouched), FUZZ_JOBS targets at a time (default 2).
# Fails on any crash, leak, timeout or failed assertion; the input is kept in
# fuzz/artifacts/<target>/ (reproduce with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`
# from the workspace root).
#
# Toolchain: only the pinned stable toolchain (rust-toolchain.toml) is assumed. cargo-fuzz
# passes nightly-only flags (-Zsanitizer=address, -Cpasses=sancov-module…);
# RUSTC_BOOTSTRAP=1 lets the stable compiler accept them.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
FUZZ_JOBS="${FUZZ_JOBS:-2}"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
TARGETS=(canonical activity httpsig content_digest multikey discovery outbox_page proof)
# -a: debug assertions (and overflow checks) on, as in tests; same flags for build and run,
# so that `run` does not rebuild.
FLAGS=(--release -a)

step() { printf '\n== %s ==\n' "$*"; }
start=$(date +%s)

step "cargo-fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

step "build (${#TARGETS[@]} targets)"
(cd fuzz && cargo fuzz build "${FLAGS[@]}")
built=$(date +%s)
echo "build: $((built - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run_one() {
  local t="$1"
  mkdir -p "$work/$t/corpus"
  # New inputs go to the first (scratch) directory; the committed seeds are only read.
  if (cd fuzz && cargo fuzz run "${FLAGS[@]}" "$t" "$work/$t/corpus" "corpus/$t" -- \
      -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1) >"$work/$t/log" 2>&1; then
    echo ok >"$work/$t/status"
  else
    echo FAILED >"$work/$t/status"
  fi
}

step "fuzz (${FUZZ_SECONDS} s per target, ${FUZZ_JOBS} at a time)"
running=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$FUZZ_JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-16s %-7s %12s %10s %8s\n' target status executions exec/s corpus
for t in "${TARGETS[@]}"; do
  status=$(cat "$work/$t/status" 2>/dev/null || echo FAILED)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log" | tail -n1)
  corpus=$(find "$work/$t/corpus" -type f | wc -l)
  printf '%-16s %-7s %12s %10s %8s\n' "$t" "$status" "${runs:-?}" "${rate:-?}" "$corpus"
  if [ "$status" != ok ]; then
    failed=1
    echo "---- $t (last lines of the libFuzzer log) ----"
    tail -n 40 "$work/$t/log"
  fi
done
echo "total wall time: $(($(date +%s) - start)) s"
if [ "$failed" -ne 0 ]; then
  echo "error: a fuzz target failed; see fuzz/artifacts/" >&2
  exit 1
fi
echo "fuzz: all targets ran without a crash"
