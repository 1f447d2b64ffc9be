//! `collector.textfile`: the directory of `*.prom` files and the limits one tick's read of it
//! stays within.
//!
//! ```yaml
//! collector:
//!   textfile:
//!     directory: /var/lib/node_exporter/textfile_collector
//!     max_files: 1000          # more *.prom files: the first 1000 by name are read
//!     file_size_limit: 4MiB    # a bigger file is reported broken, not read
//!     sample_limit: 50000      # samples of all files together
//! ```

use crate::scrape::limits::Limits;
use crate::units::ByteSize;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Default `max_files`.
pub const DEFAULT_MAX_FILES: usize = 1000;
/// Default `file_size_limit`: textfile scripts write a few KiB; 4 MiB leaves room for large
/// inventories and still bounds what one tick reads.
pub const DEFAULT_FILE_SIZE_LIMIT: usize = 4 * 1024 * 1024;
/// Default `sample_limit` (all files together), as a scrape target's.
pub const DEFAULT_SAMPLE_LIMIT: usize = crate::scrape::DEFAULT_SAMPLE_LIMIT;
/// Time the parse of a whole directory may take in one tick; files left when it runs out are
/// reported broken.
pub const PARSE_TIME_BUDGET: Duration = Duration::from_secs(1);

/// `collector.textfile`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    /// The directory whose `*.prom` files are read every tick (not recursively; dotfiles and
    /// other names are ignored), as node_exporter's `--collector.textfile.directory`. The
    /// collector is off unless it is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    /// Per-metric switches and dropped attribute keys, by metric name:
    /// `{system.cpu.frequency: {enabled: false}}` (see `metricsd --list-metrics`).
    #[serde(skip_serializing_if = "crate::collectors::metric_settings::MetricSettings::is_empty")]
    pub metrics: crate::collectors::metric_settings::MetricSettings,
    /// Most `*.prom` files read in one tick (default 1000): the first by name; the rest are
    /// skipped and logged.
    pub max_files: usize,
    /// Largest file read, in bytes or as `"4MiB"` (default 4 MiB); a bigger file is reported
    /// broken (`metricsd.textfile.scrape_error` 1) and not read.
    pub file_size_limit: ByteSize,
    /// Most samples all files together may have (default 50000; 0: no limit). The file that
    /// passes it is reported broken and its samples dropped; the files before it are kept.
    pub sample_limit: usize,
}

impl Default for TextfileConfig {
    fn default() -> Self {
        TextfileConfig {
            directory: None,
            metrics: Default::default(),
            max_files: DEFAULT_MAX_FILES,
            file_size_limit: ByteSize(DEFAULT_FILE_SIZE_LIMIT),
            sample_limit: DEFAULT_SAMPLE_LIMIT,
        }
    }
}

impl TextfileConfig {
    /// The limits of one file's parse, with `samples_left` of the directory's sample limit
    /// (`None`: no limit) and `time_left` of its time budget. The label limits are a scrape
    /// target's defaults.
    pub fn file_limits(&self, samples_left: Option<usize>, time_left: Duration) -> Limits {
        Limits {
            // 0 would mean "no limit": a file with no samples left gets a limit it cannot pass.
            sample_limit: samples_left.map_or(0, |n| n.max(1)),
            label_limit: crate::scrape::DEFAULT_LABEL_LIMIT,
            label_name_length_limit: crate::scrape::DEFAULT_LABEL_NAME_LENGTH_LIMIT,
            label_value_length_limit: crate::scrape::DEFAULT_LABEL_VALUE_LENGTH_LIMIT,
            parsed_size_limit: crate::scrape::DEFAULT_PARSED_SIZE_LIMIT,
            time_budget: Some(time_left),
            extra_labels: 0,
            extra_label_bytes: 0,
        }
    }

    /// Problems found without reading the directory (a missing directory is not one: a cron
    /// job may create it later; the collector reports it each tick until it exists).
    pub fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(d) = &self.directory {
            if !d.is_absolute() {
                v.push(format!("`directory` {} must be an absolute path", d.display()));
            }
        }
        if self.max_files == 0 {
            v.push("`max_files` must be more than 0".into());
        }
        if self.file_size_limit.0 == 0 {
            v.push("`file_size_limit` must be more than 0".into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_exporters_directory_loads_with_the_defaults_and_unknown_keys_are_refused() {
        let c: TextfileConfig = serde_yaml_ng::from_str("directory: /var/lib/node_exporter/textfile_collector\n").unwrap();
        assert_eq!(c.directory.as_deref(), Some(std::path::Path::new("/var/lib/node_exporter/textfile_collector")));
        assert_eq!((c.max_files, c.file_size_limit.0, c.sample_limit), (1000, 4 << 20, 50_000));
        assert!(c.validate().is_empty());
        assert!(serde_yaml_ng::from_str::<TextfileConfig>("dir: /x\n").unwrap_err().to_string().contains("dir"));
        let bad: TextfileConfig = serde_yaml_ng::from_str("directory: relative/dir\nmax_files: 0\nfile_size_limit: 0\n").unwrap();
        let errs = bad.validate().join("\n");
        assert!(errs.contains("absolute") && errs.contains("max_files") && errs.contains("file_size_limit"), "{errs}");
    }

    #[test]
    fn a_file_with_no_samples_left_gets_a_limit_it_cannot_pass() {
        let c = TextfileConfig::default();
        assert_eq!(c.file_limits(Some(0), PARSE_TIME_BUDGET).sample_limit, 1);
        assert_eq!(c.file_limits(None, PARSE_TIME_BUDGET).sample_limit, 0, "no limit");
    }
}
