//! A real Prometheus 3 for the integration tests: `cmd/prometheus` of the
//! `github.com/prometheus/prometheus` module pinned in `tests/peers/prometheus/go.mod`, found,
//! built when missing, and started (through [`super::Prometheus`]) with its remote-write
//! receiver accepting both 1.0 (`prometheus.WriteRequest`) and 2.0
//! (`io.prometheus.write.v2.Request`) bodies and its OTLP receiver (`/api/v1/otlp/v1/metrics`)
//! on; [`start_with_metadata_labels`] adds `type-and-unit-labels` (the metadata of a 2.0
//! request becomes the `__type__` and `__unit__` labels, so a query sees it: Prometheus'
//! `/api/v1/metadata` lists only what its own scrapes found).
//!
//! `scripts/test.sh` builds it into `target/prometheus3` (again whenever its sources change) and
//! exports `METRICSD_PROMETHEUS3`; a plain `cargo test` uses `target/prometheus3` as it is, and
//! builds it only when it is missing and Go is installed. Without Go the tests that need it
//! skip with a printed reason, and fail under CI.

use super::Prometheus;
use std::path::PathBuf;

/// The environment variable naming the binary (scripts/test.sh sets it).
pub const ENV: &str = "METRICSD_PROMETHEUS3";

/// The flags every Prometheus 3 of the tests runs with (besides those of [`Prometheus`]).
pub const FLAGS: &[&str] = &[
    "--web.enable-otlp-receiver",
    "--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
    "--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request",
];

/// Prometheus 3, built from `tests/peers/prometheus`.
pub const PEER: super::go_peer::GoPeer = super::go_peer::GoPeer {
    what: "Prometheus 3",
    env: ENV,
    file: "prometheus3",
    dir: "tests/peers/prometheus",
    package: "github.com/prometheus/prometheus/cmd/prometheus",
};

/// The default place of the binary: `target/prometheus3`.
pub fn default_bin() -> PathBuf {
    PEER.default_bin()
}

/// The binary: `$METRICSD_PROMETHEUS3`, else `target/prometheus3`, built with Go when missing;
/// None (a skip, or a panic under CI) when it cannot be had.
pub fn bin() -> Option<PathBuf> {
    PEER.bin()
}

/// A running Prometheus 3 (see the module docs), or None (skip; a panic under CI).
pub fn start() -> Option<Prometheus> {
    Some(Prometheus::start_with(bin()?, FLAGS))
}

/// As [`start`], with `--enable-feature=type-and-unit-labels`.
pub fn start_with_metadata_labels() -> Option<Prometheus> {
    let mut flags = FLAGS.to_vec();
    flags.push("--enable-feature=type-and-unit-labels");
    Some(Prometheus::start_with(bin()?, &flags))
}
