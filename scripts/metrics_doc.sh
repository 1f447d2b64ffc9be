#!/usr/bin/env bash
# docs/metrics.md is `metricsd --list-metrics --format markdown`.
#   scripts/metrics_doc.sh          check: exit 1 (with a diff) when the file is out of date
#   scripts/metrics_doc.sh --write  regenerate it
# CI runs the same check as tests/metrics_doc.rs (part of `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/.."
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
cargo run --quiet --locked -- --list-metrics --format markdown > "$generated"
if [ "${1:-}" = "--write" ]; then
  cp "$generated" docs/metrics.md
  echo "docs/metrics.md regenerated"
elif ! diff -u docs/metrics.md "$generated"; then
  echo "docs/metrics.md is out of date: run scripts/metrics_doc.sh --write" >&2
  exit 1
else
  echo "docs/metrics.md is up to date"
fi
