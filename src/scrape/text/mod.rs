//! The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text format, parsed into
//! metric families.
//!
//! - `family`: what a parse produces ([`Parsed`], [`Family`], [`Sample`], [`Kind`], [`Suffix`]);
//! - `parser`: [`parse`] and [`parse_limited`], line by line: metadata, samples, family membership;
//! - `lexer`: the pieces of a line: label sets, quoted strings, escapes, values, names.
//!
//! ## Why our own parser
//!
//! The crates on crates.io that parse this format were each missing something the scraper
//! needs: `prometheus-parse` reads 0.0.4 only (no `# UNIT`, `_created`, `# EOF`, float-second
//! timestamps or exemplars), stops at the first bad line instead of keeping the rest, and
//! allocates a `String` per label; `openmetrics-parser` is a pest grammar that rejects a whole
//! scrape for one bad line and is several times slower; the `prometheus`/`prometheus-client`
//! crates only write the format. The grammar is small (one line is one record), so a
//! hand-written parser over `&str` is a few hundred lines, borrows names and label values from
//! the body (a `Cow` only when a value has escapes), keeps going past a malformed line and
//! reports it with its number, and is checked by the fixture tests below, a random-input
//! loop, and the `fuzz/` targets.
//!
//! ## What is accepted
//!
//! - `# HELP name text` (`\\` and `\n` escapes), `# TYPE name type`, `# UNIT name unit`
//!   (OpenMetrics), `# EOF` (everything after it is ignored and reported); other `#` lines are
//!   comments; blank lines are skipped.
//! - Types `counter`, `gauge`, `histogram`, `summary`, `untyped`, and OpenMetrics' `unknown`,
//!   `info`, `stateset`, `gaugehistogram`.
//! - Samples `name{label="value",...} value [timestamp]`: label values with `\\`, `\"`, `\n`
//!   escapes (any other escape is kept as written, as Prometheus does), a trailing comma,
//!   spaces around tokens, quoted UTF-8 metric and label names (`{"my.metric", "a.b"="c"}`),
//!   values `NaN`, `+Inf`, `-Inf` (any case), timestamps in integer milliseconds (0.0.4) or
//!   float seconds (OpenMetrics), and OpenMetrics exemplars (` # {...} v [ts]`, ignored).
//! - A sample belongs to the family whose `# TYPE` names it or its base name: counters
//!   `_total`/`_created`, histograms `_bucket`/`_sum`/`_count`/`_created`, summaries
//!   `_sum`/`_count`/`_created` and their quantile samples, gauge histograms
//!   `_bucket`/`_gsum`/`_gcount`, info `_info`. A sample of no declared family is untyped.
//!
//! A malformed line is skipped and reported with its 1-based line number; every other line is
//! kept. At most [`MAX_REPORTED_ERRORS`] errors are kept (all are counted), so garbage input
//! never makes the error list grow without bound.

mod family;
mod lexer;
mod parser;

pub use family::{Family, Kind, LineError, Parsed, Sample, Suffix, TextFormat, MAX_REPORTED_ERRORS};
pub use lexer::parse_value;
pub use parser::{parse, parse_limited};
