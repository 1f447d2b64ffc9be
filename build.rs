//! Compiles `proto/remote.proto` (the Prometheus remote-write 1.0 schema) and
//! `proto/write_v2.proto` (remote-write 2.0) into Rust with prost-build. The `.proto` is parsed by `protox`, a pure-Rust protobuf compiler, so the
//! build needs no system `protoc`. Output: `$OUT_DIR/prometheus.rs`, included by
//! `src/exporters/remote_write/encode.rs`, and `$OUT_DIR/io.prometheus.write.v2.rs`, included
//! by `src/exporters/remote_write/encode_v2.rs`. Likewise `proto/podresources.proto` (the
//! kubelet's PodResources v1 `List`, messages only: the gRPC client is written out by hand)
//! into `$OUT_DIR/v1.rs`, included by `src/collectors/gpu/podresources.rs`.

use std::env;
use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = dir.join("proto");
    let remote = proto_dir.join("remote.proto");
    let v2 = proto_dir.join("write_v2.proto");
    println!("cargo:rerun-if-changed={}", remote.display());
    println!("cargo:rerun-if-changed={}", v2.display());
    println!("cargo:rerun-if-changed=build.rs");
    let podresources = proto_dir.join("podresources.proto");
    println!("cargo:rerun-if-changed={}", podresources.display());
    let fds = protox::compile([&podresources], [&proto_dir])?;
    prost_build::Config::new().compile_fds(fds)?;

    let fds = protox::compile([&remote, &v2], [&proto_dir])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
