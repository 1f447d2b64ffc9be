#!/usr/bin/env bash
# The test command: installs what the end-to-end tests need (Debian's prometheus and
# prometheus-node-exporter, when missing and apt-get is available) and the OpenTelemetry
# Collector and Prometheus 3 (with Go, when present), then runs every test.
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

# The OpenTelemetry Collector the tests run against (tests/peers/otelcol: upstream components
# pinned in its go.mod), built into target/ and reused while its sources are unchanged (a hash
# of go.mod, go.sum and main.go kept beside the binary). Go is needed only for this.
otelcol=target/otelcol-test
if command -v go >/dev/null 2>&1; then
  sum=$(cat tests/peers/otelcol/go.mod tests/peers/otelcol/go.sum tests/peers/otelcol/main.go | sha256sum | cut -d' ' -f1)
  if [ -x "$otelcol" ] && [ "$(cat "$otelcol.sha256" 2>/dev/null)" = "$sum" ]; then
    echo "OpenTelemetry Collector test binary up to date: $otelcol"
  else
    echo "building the OpenTelemetry Collector test binary ($otelcol; a few minutes the first time)"
    start=$(date +%s)
    mkdir -p target
    (cd tests/peers/otelcol && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -o "../../../$otelcol" ./)
    echo "$sum" > "$otelcol.sha256"
    echo "built $otelcol in $(( $(date +%s) - start )) s"
  fi
  export METRICSD_OTELCOL="$PWD/$otelcol"
else
  echo "warning: go not found: the OpenTelemetry Collector tests (tests/collector.rs, ...) will skip (or fail under CI)" >&2
fi

# Prometheus 3 (tests/peers/prometheus: github.com/prometheus/prometheus pinned in its go.mod, its
# cmd/prometheus unchanged), for the remote-write 1.0/2.0 and OTLP-receiver tests; built into
# target/prometheus3 and reused the same way.
prom3=target/prometheus3
if command -v go >/dev/null 2>&1; then
  sum=$(cat tests/peers/prometheus/go.mod tests/peers/prometheus/go.sum tests/peers/prometheus/tools.go | sha256sum | cut -d' ' -f1)
  if [ -x "$prom3" ] && [ "$(cat "$prom3.sha256" 2>/dev/null)" = "$sum" ]; then
    echo "Prometheus 3 test binary up to date: $prom3"
  else
    echo "building the Prometheus 3 test binary ($prom3; about 10 minutes of CPU the first time)"
    start=$(date +%s)
    mkdir -p target
    (cd tests/peers/prometheus && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -o "../../../$prom3" github.com/prometheus/prometheus/cmd/prometheus)
    echo "$sum" > "$prom3.sha256"
    echo "built $prom3 in $(( $(date +%s) - start )) s"
  fi
  export METRICSD_PROMETHEUS3="$PWD/$prom3"
else
  echo "warning: go not found: the Prometheus 3 tests (tests/prometheus3.rs, ...) will skip (or fail under CI)" >&2
fi

cargo test --locked "$@"
