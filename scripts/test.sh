#!/usr/bin/env bash
# The test command: installs what the end-to-end tests need (Debian's prometheus and
# prometheus-node-exporter, when missing and apt-get is available), then runs every test.
# Under CI (CI=true) a real-server test whose server is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
if ((${#need[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing ${need[*]} for the end-to-end tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian packages do not start their services in this environment; the tests start them.
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: ${need[*]} missing and cannot be installed here; those end-to-end tests will skip (or fail under CI)" >&2
  fi
fi

cargo test --locked "$@"
