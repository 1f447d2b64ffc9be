//go:build tools

// Package prometheus pins the Prometheus 3 server that metricsd's remote-write and OTLP tests
// run against: github.com/prometheus/prometheus at one release (go.mod), its cmd/prometheus
// built unchanged. This file only records the dependency (the `tools` build tag keeps it out
// of every build).
//
// Build (scripts/test.sh does this, and reuses the binary while go.mod, go.sum and this file
// are unchanged):
//
//	cd tests/peers/prometheus && go build -trimpath -o ../../../target/prometheus3 github.com/prometheus/prometheus/cmd/prometheus
package prometheus

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
