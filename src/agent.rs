//! Running the agent: load the config, detect the resource, start the server, the scheduler
//! and the exporters, and stop them in order on a signal. `main` only parses arguments.

use crate::collectors::{self, TickClock};
use crate::config::{env, Config, ConfigError};
use crate::exporters::{stdout, ExporterConfig};
use crate::pipeline::{AgentState, Scheduler};
use crate::resource;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit codes: 0 ok, 1 runtime failure (e.g. the port is in use), 2 bad config or arguments.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A failure while running.
    pub const RUNTIME: u8 = 1;
    /// Bad configuration or arguments.
    pub const CONFIG: u8 = 2;
}

/// The config file used when none is named: metricsd read `config.json` from its directory.
pub const DEFAULT_CONFIG_FILE: &str = "config.json";

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// `-c`/`--config`/`-config`.
    pub config: Option<PathBuf>,
    /// `--once`: collect once, print, exit.
    pub once: bool,
    /// `--check-config`: print the effective config (secrets redacted) or every error.
    pub check_config: bool,
}

/// Loads the config: the named file, else `./config.json` if present, else defaults; then the
/// environment; then validation. Every problem is returned, not just the first.
pub fn load_config(opts: &Options, env: env::Env) -> Result<(Config, Option<PathBuf>), Vec<ConfigError>> {
    let path = match &opts.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
    };
    let mut config = match &path {
        Some(p) => Config::load(p).map_err(|e| vec![e])?,
        None => Config::default(),
    };
    let mut errors = config.apply_env(env);
    errors.extend(config.validate());
    if errors.is_empty() {
        Ok((config, path))
    } else {
        Err(errors)
    }
}

/// Runs `--check-config`: prints the effective config or every error.
pub fn check_config(opts: &Options) -> u8 {
    match load_config(opts, &env::process_env) {
        Ok((c, path)) => {
            match &path {
                Some(p) => eprintln!("{}: OK", p.display()),
                None => eprintln!("no config file: defaults"),
            }
            println!("{}", c.redacted_json());
            exit::OK
        }
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            exit::CONFIG
        }
    }
}

fn detect_resource(config: &Config) -> resource::Attributes {
    let paths = config.host_paths(&env::process_env);
    let input = resource::DetectInput { paths: &paths, env: &env::process_env, config_resource: &config.resource, hostname: None };
    let d = resource::detect(&input);
    for n in &d.notes {
        tracing::warn!(note = %n, "Resource detection");
    }
    d.attributes
}

fn build_scheduler(config: &Config, state: Arc<crate::pipeline::AgentState>) -> Scheduler {
    let paths = config.host_paths(&env::process_env);
    let clock = TickClock::default();
    let collectors = collectors::build(config, &paths, &clock);
    let resource = state.resource.read().unwrap().clone();
    Scheduler::new(collectors, clock, &resource, config.collector.timeout(), state)
}

/// `--once`: one collection printed to stdout (the first stdout exporter's format, else a table).
pub async fn run_once(config: Config) -> u8 {
    let state = AgentState::new(detect_resource(&config));
    let mut sched = build_scheduler(&config, state.clone());
    let format = config
        .all_exporters()
        .unwrap_or_default()
        .iter()
        .find_map(|e| match e {
            ExporterConfig::Stdout(s) => Some(s.format),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .unwrap_or_default();
    let batch = sched.tick().await;
    print!("{}", stdout::render(&batch.request, format));
    for (name, st) in state.collectors.lock().unwrap().iter() {
        if let Some(e) = &st.last_error {
            eprintln!("collector {name} failed: {e}");
        }
    }
    sched.shutdown();
    exit::OK
}

/// Runs until SIGTERM/SIGINT; returns the exit code.
pub async fn run(config: Config, config_path: Option<&Path>) -> u8 {
    let state = AgentState::new(detect_resource(&config));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let server = if config.server.enabled {
        match crate::server::bind(&config.server.host, config.server.port).await {
            Ok(l) => {
                tracing::info!(addr = ?l.local_addr().ok(), "HTTP server listening");
                Some(tokio::spawn(crate::server::serve(l, state.clone(), stop_rx.clone())))
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot start the HTTP server");
                eprintln!("error: {e}");
                return exit::RUNTIME;
            }
        }
    } else {
        None
    };

    let exporters = match config.all_exporters() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    {
        let mut handles = state.exporters.write().unwrap();
        for (i, e) in exporters.iter().enumerate() {
            match e.spawn(i) {
                Ok(h) => handles.push(h),
                Err(msg) => {
                    eprintln!("error: exporters[{i}] ({}): {msg}", e.kind());
                    return exit::CONFIG;
                }
            }
        }
        if handles.is_empty() {
            tracing::info!("No exporter configured; metrics are served on /metrics only");
        }
    }

    let sched = build_scheduler(&config, state.clone());
    let interval = config.collector.interval();
    tracing::info!(collectors = ?sched.collector_names(), interval = ?interval, config = ?config_path, "Started");
    let sched_task = tokio::spawn(sched.run(interval, stop_rx.clone()));

    wait_for_stop().await;
    tracing::info!("Stopping: flushing exporters");
    let _ = stop_tx.send(true);
    let sched = sched_task.await.ok();
    let deadline = Instant::now() + config.shutdown_timeout.map(|d| d.get()).unwrap_or(crate::config::DEFAULT_SHUTDOWN_TIMEOUT);
    let handles: Vec<_> = state.exporters.read().unwrap().clone();
    futures_join_all(handles.iter().map(|h| h.shutdown(deadline))).await;
    if let Some(s) = sched {
        tokio::task::spawn_blocking(move || s.shutdown()).await.ok();
    }
    if let Some(s) = server {
        let _ = tokio::time::timeout(Duration::from_secs(1), s).await;
    }
    tracing::info!("Stopped");
    exit::OK
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    for f in set {
        f.await;
    }
}

/// Waits for SIGTERM or SIGINT.
async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => tracing::warn!("SIGHUP received: configuration reload is not supported yet; restart to apply changes"),
        }
    }
}
