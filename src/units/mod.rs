//! Value types every layer shares, and nothing else: durations as users write them
//! ([`duration`]), where the host's `/proc`, `/sys` and `/` are ([`host_paths`]), byte sizes
//! ([`byte_size`]) and the environment as a lookup function ([`env`](mod@env)).
//!
//! This module is the bottom layer (see `docs/architecture.md`): it imports nothing of the
//! crate, so any module may use it.

pub mod byte_size;
pub mod duration;
pub mod env;
pub mod host_paths;
pub mod url;

pub use byte_size::{parse_byte_size, ByteSize};
pub use duration::ConfigDuration;
pub use env::{process_env, Env};
pub use host_paths::HostPaths;
