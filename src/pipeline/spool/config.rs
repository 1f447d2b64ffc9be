//! `queue.spool` (or a global `buffer`): the directory an exporter spools in and its bound on
//! disk.
//!
//! ```yaml
//! queue:
//!   spool: {dir: /var/lib/metricsd/spool/otlp, max_bytes: 268435456}
//! ```

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Default bound of one exporter's spool.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Size at which a new segment is started (smaller for a small `max_bytes`).
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// `queue.spool`: where and how much an exporter spools on disk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of this exporter's spool (created if missing; one directory per exporter).
    pub dir: PathBuf,
    /// Most bytes on disk (default 256 MiB); beyond it the oldest segment is dropped.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    DEFAULT_SPOOL_MAX_BYTES
}

impl SpoolConfig {
    /// A spool in `dir` with the default bound.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig { dir: dir.into(), max_bytes: DEFAULT_SPOOL_MAX_BYTES }
    }

    /// For a global `buffer.dir`: the same bound in the subdirectory `DIR/<name>`, the exporter's
    /// name made a safe file name (`otlp[0]` → `otlp_0`).
    pub fn for_exporter(&self, name: &str) -> SpoolConfig {
        let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '_' }).collect();
        let safe = safe.trim_matches('_');
        let safe = if safe.is_empty() || safe.chars().all(|c| c == '.') { "exporter" } else { safe };
        SpoolConfig { dir: self.dir.join(safe), max_bytes: self.max_bytes }
    }

    /// Size at which a segment is closed and a new one started.
    pub fn segment_bytes(&self) -> u64 {
        (self.max_bytes / 8).clamp(1, SEGMENT_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_subdirectories_have_safe_names() {
        let c = SpoolConfig::new("/var/lib/metricsd/spool");
        assert_eq!(c.for_exporter("otlp[0]").dir, PathBuf::from("/var/lib/metricsd/spool/otlp_0"));
        assert_eq!(c.for_exporter("../x").dir, PathBuf::from("/var/lib/metricsd/spool/.._x"));
        assert_eq!(c.for_exporter("..").dir, PathBuf::from("/var/lib/metricsd/spool/exporter"));
        assert_eq!(c.for_exporter("otlp[0]").max_bytes, DEFAULT_SPOOL_MAX_BYTES);
    }
}
