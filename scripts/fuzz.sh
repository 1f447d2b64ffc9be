#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60) and fails if any input
# crashes, times out (10 s) or takes more than 2 GB, naming the reproducer. The committed
# corpora (fuzz/corpus/<target>) are read as seeds and never written: new inputs go to a
# temporary directory. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Targets are optimized with overflow checks and debug assertions on (cargo-fuzz's default).
# Uses the nightly toolchain (with AddressSanitizer) when rustup has one; otherwise stable
# with RUSTC_BOOTSTRAP=1 and no sanitizer. Installs cargo-fuzz from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
  build=()
else
  echo "fuzz: no nightly toolchain; stable with RUSTC_BOOTSTRAP=1 and no sanitizer"
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
  build=(--sanitizer none)
fi

targets=("$@")
((${#targets[@]})) || mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
work="$(mktemp -d "${TMPDIR:-/tmp}/metricsd-fuzz.XXXXXX")"
# Scratch files of targets that need a directory (spool_segment), on tmpfs where there is one.
scratch="$(mktemp -d "$([ -d /dev/shm ] && echo /dev/shm || echo "$work")/metricsd-fuzz-scratch.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export METRICSD_FUZZ_DIR="$scratch"
echo "fuzz: ${#targets[@]} targets, ${secs} s each; work directory $work"
"${fuzz[@]}" build "${build[@]}" --fuzz-dir fuzz

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  log="$work/$t/log"
  start=$SECONDS
  # The first corpus directory receives new inputs; the committed one is only read.
  if "${fuzz[@]}" run "${build[@]}" --fuzz-dir fuzz "$t" "$work/$t/corpus" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/$t/artifacts/" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $t ok ($((SECONDS - start)) s, ${execs:-?} inputs)"
  else
    # The panic (or sanitizer report) and the input, without the stack.
    grep -E -A1 "panicked at|^==[0-9]+==ERROR|^SUMMARY|^(Base64|artifact_prefix)" "$log" || tail -n 40 "$log"
    echo "fuzz: $t FAILED; reproducer(s):" "$work/$t/artifacts/"*
    echo "fuzz: rerun one with: cargo +nightly fuzz run --fuzz-dir fuzz $t <reproducer>"
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]} (logs and reproducers under $work)"
  exit 1
fi
rm -rf "$work"
echo "fuzz: all ${#targets[@]} targets ran ${secs} s without a crash"
