//! metricsd: command line, logging and the runtime. Everything else is in the library.
//!
//! Arguments are parsed by hand: metricsd's Go-style single-dash long flags (`-config FILE`,
//! `-log-level debug`) must keep working beside `--config`, which argument crates reject, and
//! seven flags do not earn a parser's weight.

use metricsd::agent::{self, exit, Options};
use metricsd::collectors::catalog;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
metricsd: OpenTelemetry-native host metrics agent

USAGE: metricsd [OPTIONS]

OPTIONS:
  -c, --config FILE       config file (.json, .yaml/.yml or .toml); default ./config.json if present
      --log-level LEVEL   error, warn, info (default), debug, trace
      --log-format FMT    text (default) or json
      --once              collect once, print to stdout, exit
      --check-config      print the effective config (secrets redacted), or every error (exit 2)
      --health [ADDR]     probe a running agent's /health (default 127.0.0.1:8080): exit 0 if healthy
      --list-metrics      print every metric the collectors can report, without starting the agent
      --format FMT        with --list-metrics: table (default), markdown (docs/metrics.md) or json
  -V, --version           print the version
  -h, --help              print this help

metricsd's Go-style flags work too: -config FILE, -log-level LEVEL.
";

/// Async worker threads (see `main`).
const ASYNC_WORKERS: usize = 2;

/// How long the runtime waits for its remaining tasks and threads after `run` returned.
const RUNTIME_STOP_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug, PartialEq)]
struct Cli {
    opts: Options,
    log_level: String,
    log_json: bool,
    help: bool,
    version: bool,
    health: Option<String>,
    /// `--list-metrics`, in this format.
    list_metrics: Option<catalog::Format>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut cli = Cli { opts: Options::default(), log_level: "info".into(), log_json: false, help: false, version: false, health: None, list_metrics: None };
    let mut format: Option<catalog::Format> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "-c" | "--config" | "-config" => cli.opts.config = Some(PathBuf::from(value(&flag)?)),
            "--log-level" | "-log-level" => {
                let v = value(&flag)?.to_ascii_lowercase();
                if !["error", "warn", "warning", "info", "debug", "trace"].contains(&v.as_str()) {
                    return Err(format!("{flag}: unknown level {v:?} (error, warn, info, debug, trace)"));
                }
                cli.log_level = v;
            }
            "--log-format" | "-log-format" => match value(&flag)?.as_str() {
                "text" => cli.log_json = false,
                "json" => cli.log_json = true,
                other => return Err(format!("{flag}: unknown format {other:?} (text or json)")),
            },
            "--once" | "-once" => cli.opts.once = true,
            "--check-config" | "-check-config" => cli.opts.check_config = true,
            "--health" | "-health" => {
                let v = inline.clone().or_else(|| it.next()).unwrap_or_else(|| "127.0.0.1:8080".into());
                cli.health = Some(v);
            }
            "--list-metrics" | "-list-metrics" => cli.list_metrics = Some(catalog::Format::Table),
            "--format" | "-format" => format = Some(value(&flag)?.parse().map_err(|e| format!("{flag}: {e}"))?),
            "-h" | "--help" | "-help" => cli.help = true,
            "-V" | "--version" | "-version" => cli.version = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    match (format, &mut cli.list_metrics) {
        (Some(f), Some(list)) => *list = f,
        (Some(_), None) => return Err("--format is an option of --list-metrics".into()),
        (None, _) => {}
    }
    Ok(cli)
}

/// `--health ADDR`: GET /health from a running agent (for container HEALTHCHECKs, where the
/// distroless image has no curl). Plain std: no runtime needed.
fn probe_health(addr: &str) -> u8 {
    use std::io::{Read, Write};
    use std::time::Duration;
    let attempt = || -> std::io::Result<bool> {
        let sock = std::net::ToSocketAddrs::to_socket_addrs(addr)?.next().ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(s, "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf.starts_with("HTTP/1.1 200") && buf.contains("\"healthy\""))
    };
    match attempt() {
        Ok(true) => exit::OK,
        Ok(false) => {
            eprintln!("{addr}: not healthy");
            exit::RUNTIME
        }
        Err(e) => {
            eprintln!("{addr}: {e}");
            exit::RUNTIME
        }
    }
}

/// Logs on stderr at `level` (text or JSON lines) and, when `telemetry` is on, to its OTLP
/// endpoint through its own layers (each with its own filter).
fn init_logging(level: &str, json: bool, telemetry: Option<&metricsd::telemetry::Telemetry>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let level = match level {
        "error" => tracing::Level::ERROR,
        "warn" | "warning" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let fmt = if json { fmt.json().flatten_event(true).boxed() } else { fmt.with_ansi(false).boxed() };
    let stderr = fmt.with_filter(tracing_subscriber::filter::LevelFilter::from_level(level));
    // No empty layer list when telemetry is off: an empty `Vec` layer hints "nothing is
    // enabled", which would silence stderr too.
    match telemetry.map(|t| t.layers()).filter(|l| !l.is_empty()) {
        Some(otlp) => tracing_subscriber::registry().with(stderr).with(otlp).init(),
        None => tracing_subscriber::registry().with(stderr).init(),
    }
}

fn main() -> ExitCode {
    metricsd::mem::tune_allocator();
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    if cli.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if let Some(addr) = &cli.health {
        return ExitCode::from(probe_health(addr));
    }
    if cli.version {
        println!("metricsd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(format) = cli.list_metrics {
        print!("{}", catalog::render(format));
        return ExitCode::SUCCESS;
    }
    if cli.opts.check_config {
        init_logging(&cli.log_level, cli.log_json, None);
        return ExitCode::from(agent::check_config(&cli.opts));
    }
    let (config, _path) = match agent::load_config(&cli.opts, &metricsd::config::env::process_env) {
        Ok(x) => x,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(exit::CONFIG);
        }
    };
    // Before the runtime starts its threads, which inherit the policy (logged once logging is up).
    let policy = metricsd::sched::apply(config.scheduling_policy);
    // Two async workers: with one, anything slow on it (a big render, a TLS handshake, a large
    // scrape body) held up `/health` and every exporter. Measured idle (debug build, examples'
    // stdout config at a 10 s interval, 30 s after start, 3 runs each): 1 worker RssAnon
    // 1608–1620 kB, 2 workers 1636–1648 kB (+~30 kB; VmRSS varies ±1 MB run to run with the
    // file pages, either way); CPU 0–2 clock ticks (10 ms) in 30 s for both. Heavy responses
    // are rendered on blocking threads besides (see `server`).
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(ASYNC_WORKERS).max_blocking_threads(16).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::RUNTIME);
        }
    };
    // The agent's own logs and traces over OTLP, when configured (not for `--once`).
    let telemetry = if cli.opts.once {
        None
    } else {
        match metricsd::telemetry::Telemetry::start(&config.telemetry, &agent::detect_resource(&config), rt.handle().clone()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: telemetry: {e}");
                return ExitCode::from(exit::CONFIG);
            }
        }
    };
    init_logging(&cli.log_level, cli.log_json, telemetry.as_ref());
    match policy {
        Ok(applied) => tracing::debug!(?applied, "Scheduling policy"),
        Err(e) => tracing::warn!(error = %e, "Cannot set the SCHED_BATCH scheduling policy; running under the inherited one"),
    }
    let code = if cli.opts.once { rt.block_on(agent::run_once(config)) } else { rt.block_on(agent::run(config, &cli.opts)) };
    if let Some(t) = telemetry {
        t.shutdown();
    }
    // `run` has flushed within `shutdown_timeout`; a thread still stuck in a read (a tick
    // left behind) must not hold the exit up.
    rt.shutdown_timeout(RUNTIME_STOP_WAIT);
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn accepts_metricsds_go_style_flags() {
        let c = parse_args(args("-config /opt/metricsd/config.json -log-level debug")).unwrap();
        assert_eq!(c.opts.config, Some(PathBuf::from("/opt/metricsd/config.json")));
        assert_eq!(c.log_level, "debug");
    }

    #[test]
    fn accepts_gnu_style_flags_and_inline_values() {
        let c = parse_args(args("--config=x.yaml --log-format json --once --check-config")).unwrap();
        assert_eq!(c.opts.config, Some(PathBuf::from("x.yaml")));
        assert!(c.log_json && c.opts.once && c.opts.check_config);
        assert_eq!(parse_args(args("-c a.toml")).unwrap().opts.config, Some(PathBuf::from("a.toml")));
    }

    #[test]
    fn rejects_unknown_flags_missing_values_and_bad_levels() {
        assert!(parse_args(args("--bogus")).unwrap_err().contains("--bogus"));
        assert!(parse_args(args("--config")).unwrap_err().contains("needs a value"));
        assert!(parse_args(args("--log-level loud")).unwrap_err().contains("loud"));
    }

    #[test]
    fn list_metrics_takes_a_format_and_defaults_to_the_table() {
        assert_eq!(parse_args(args("--list-metrics")).unwrap().list_metrics, Some(catalog::Format::Table));
        assert_eq!(parse_args(args("--list-metrics --format markdown")).unwrap().list_metrics, Some(catalog::Format::Markdown));
        assert_eq!(parse_args(args("--format=json --list-metrics")).unwrap().list_metrics, Some(catalog::Format::Json));
        assert!(parse_args(args("--list-metrics --format yaml")).unwrap_err().contains("yaml"));
        assert!(parse_args(args("--format json")).unwrap_err().contains("--list-metrics"));
        assert_eq!(parse_args(args("--once")).unwrap().list_metrics, None);
    }
}
