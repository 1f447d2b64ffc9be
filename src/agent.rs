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
    // A file that cannot be read or parsed is reported together with the environment's errors.
    let (mut config, mut errors) = match path.as_deref().map(Config::load) {
        Some(Ok(c)) => (c, Vec::new()),
        Some(Err(e)) => (Config::default(), vec![e]),
        None => (Config::default(), Vec::new()),
    };
    let file_ok = errors.is_empty();
    errors.extend(config.apply_env(env));
    if file_ok {
        errors.extend(config.validate());
    }
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

/// The resource detected for `config` (host, VM, container, Kubernetes, then the overrides).
pub fn detect_resource(config: &Config) -> resource::Attributes {
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
    let mut collectors = collectors::build(&config.collector, &paths, &clock);
    if collectors::enabled(config.collector.agent.enabled, None, true) {
        collectors.push(Box::new(collectors::self_telemetry::SelfTelemetryCollector::new(state.clone(), &clock)));
    }
    let resource = state.resource.read().unwrap().clone();
    let settings = config.collector.metric_settings().into_iter().map(|(name, s)| (name, Arc::new(s.clone()))).collect();
    Scheduler::with_settings(collectors, clock, &resource, config.collector.timeout(), state, &settings)
}

/// How far apart `--once`'s two collections are: the window of the rates it prints.
pub const ONCE_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);

/// `--once`: one collection printed to stdout (the first stdout exporter's format, else a table).
pub async fn run_once(config: Config) -> u8 {
    let state = AgentState::new(detect_resource(&config));
    let mut sched = build_scheduler(&config, state.clone());
    // A first collection that is not printed: rates (`system.cpu.utilization`,
    // `process.cpu.utilization`) need two, as `top`'s first screen does.
    let first = std::time::Instant::now();
    sched.tick_now();
    if !config.endpoints.is_empty() {
        let resource = state.resource.read().unwrap().clone();
        match crate::scrape::Scraper::build(&config.endpoints, &resource, config.collector.interval()) {
            Ok(s) => {
                s.scrape_once().await;
                for t in s.status() {
                    if let Some(e) = t["last_error"].as_str() {
                        eprintln!("target {} failed: {e}", t["name"].as_str().unwrap_or(""));
                    }
                }
                sched = sched.with_scraper(Some(s));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return exit::CONFIG;
            }
        }
    }
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
    tokio::time::sleep(ONCE_WINDOW.saturating_sub(first.elapsed())).await;
    let batch = sched.tick().await;
    print!("{}", stdout::render(&batch.to_request(), format));
    for (name, st) in state.collectors.lock().unwrap().iter() {
        if let Some(e) = &st.last_error {
            eprintln!("collector {name} failed: {e}");
        }
    }
    sched.shutdown();
    exit::OK
}

/// Exporters in use, with the config each was built from (to keep unchanged ones on reload).
struct Running {
    configs: Vec<ExporterConfig>,
    handles: Vec<crate::pipeline::queue::QueueHandle>,
}

/// Starts the exporters of `wanted`, keeping those of `old` whose config is unchanged (and
/// without TLS, whose certificates a reload must re-read). Returns the running set and the
/// handles that are no longer wanted.
fn reconcile_exporters(old: Running, wanted: &[ExporterConfig]) -> Result<(Running, Vec<crate::pipeline::queue::QueueHandle>), String> {
    let mut old: Vec<(ExporterConfig, crate::pipeline::queue::QueueHandle)> = old.configs.into_iter().zip(old.handles).collect();
    let mut next = Running { configs: Vec::new(), handles: Vec::new() };
    for (i, cfg) in wanted.iter().enumerate() {
        let reusable = old.iter().position(|(c, _)| c == cfg && !uses_tls(c));
        let handle = match reusable {
            Some(pos) => old.remove(pos).1,
            None => cfg.spawn(i).map_err(|msg| format!("exporters[{i}] ({}): {msg}", cfg.kind()))?,
        };
        next.configs.push(cfg.clone());
        next.handles.push(handle);
    }
    Ok((next, old.into_iter().map(|(_, h)| h).collect()))
}

fn uses_tls(c: &ExporterConfig) -> bool {
    let e = c.endpoint();
    e.starts_with("https://")
        || serde_json::to_value(c).ok().and_then(|v| v.get("tls").and_then(|t| t.get("enabled")).and_then(|b| b.as_bool())).unwrap_or(false)
}

/// Runs until SIGTERM/SIGINT, reloading on SIGHUP; returns the exit code.
pub async fn run(config: Config, opts: &Options) -> u8 {
    let config_path = opts.config.clone().or_else(|| Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()));
    let state = AgentState::new(detect_resource(&config));
    state.ready_requires_export.store(config.server.ready_requires_export, std::sync::atomic::Ordering::Relaxed);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let server = if config.server.enabled {
        match crate::server::bind(&config.server.host, config.server.port).await {
            Ok(l) => {
                tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "HTTP server listening");
                Some(tokio::spawn(crate::server::serve_with(l, state.clone(), stop_rx.clone(), config.server.max_connections)))
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot start the HTTP server");
                return exit::RUNTIME;
            }
        }
    } else {
        None
    };

    let wanted = match config.all_exporters() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    let mut running = match reconcile_exporters(Running { configs: Vec::new(), handles: Vec::new() }, &wanted) {
        Ok((r, _)) => r,
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::CONFIG;
        }
    };
    match (running.handles.is_empty(), config.server.enabled) {
        (true, true) => tracing::info!("No exporter configured; metrics are served on /metrics only"),
        (true, false) => tracing::warn!("No exporter configured and the HTTP server is disabled: nothing is exported"),
        _ => {}
    }
    *state.exporters.write().unwrap() = running.handles.clone();

    let mut config = config;
    let (mut sched_stop, mut sched_task) = start_scheduler(&config, state.clone(), config_path.as_deref());
    let mut receiver = match start_receiver(&config, &state).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the OTLP receiver");
            return exit::RUNTIME;
        }
    };

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {}
        }
        tracing::info!(config = %path_field(config_path.as_deref()), "SIGHUP: reloading configuration");
        let new = match load_config(opts, &env::process_env) {
            Ok((c, _)) => c,
            Err(errors) => {
                for e in &errors {
                    tracing::error!(error = %e, "Reload failed; keeping the running configuration");
                }
                continue;
            }
        };
        let wanted = match new.all_exporters() {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "Reload failed; keeping the running configuration");
                continue;
            }
        };
        let (next, retired) = match reconcile_exporters(Running { configs: running.configs.clone(), handles: running.handles.clone() }, &wanted) {
            Ok(x) => x,
            Err(msg) => {
                tracing::error!(error = %msg, "Reload failed; keeping the running configuration");
                continue;
            }
        };
        state.ready_requires_export.store(new.server.ready_requires_export, std::sync::atomic::Ordering::Relaxed);
        if new.server.host != config.server.host || new.server.port != config.server.port || new.server.enabled != config.server.enabled {
            tracing::warn!("The server address changed; it takes effect at the next restart");
        }
        // Stop the old scheduler, then swap resource, exporters and collectors.
        let _ = sched_stop.send(true);
        stop_scraper(&state);
        // A tick stuck in a read must not keep SIGTERM from being heard.
        let old = tokio::select! {
            r = &mut sched_task => r.ok(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        if let Some(old) = old {
            tokio::task::spawn_blocking(move || old.shutdown()).await.ok();
        }
        *state.resource.write().unwrap() = detect_resource(&new);
        *state.exporters.write().unwrap() = next.handles.clone();
        running = next;
        for h in retired {
            tokio::spawn(async move { h.shutdown(Instant::now() + Duration::from_secs(5)).await });
        }
        if new.receivers != config.receivers {
            if let Some(r) = receiver.take() {
                r.stop().await;
            }
            receiver = start_receiver(&new, &state).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "Cannot start the OTLP receiver; running without it");
                None
            });
        }
        config = new;
        (sched_stop, sched_task) = start_scheduler(&config, state.clone(), config_path.as_deref());
        tracing::info!(exporters = running.handles.len(), "Reloaded");
    }

    let grace = config.shutdown_timeout.map(|d| d.get()).unwrap_or(crate::config::DEFAULT_SHUTDOWN_TIMEOUT);
    tracing::info!(shutdown_timeout = ?grace, "Stopping: flushing exporters");
    let _ = stop_tx.send(true);
    let _ = sched_stop.send(true);
    stop_scraper(&state);
    if let Some(r) = receiver.take() {
        // Nothing is taken from apps once the exporters flush.
        r.stop().await;
    }
    if stop_within(grace, &state, sched_task, server).await {
        tracing::info!("Stopped");
    } else {
        tracing::warn!(shutdown_timeout = ?grace, "Shutdown did not finish within shutdown_timeout; exiting anyway");
    }
    exit::OK
}

/// The longest shutdown waited for, whatever `shutdown_timeout` says (it is bounded by the
/// config's checks; this keeps the deadline's arithmetic from overflowing regardless).
const MAX_SHUTDOWN_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Stops in order, all of it within `grace` from now: waits for the tick under way (up to
/// half of `grace`: a tick stuck in a blocking read, e.g. a hung mount or a FIFO where a /proc
/// file was expected, is left behind with its batch), flushes every exporter until the
/// deadline, drops the instruments and waits for the server's accept loop. Returns false if
/// the deadline cut any of it short; what is left then ends with the process.
async fn stop_within(grace: Duration, state: &AgentState, sched_task: tokio::task::JoinHandle<Scheduler>, server: Option<tokio::task::JoinHandle<()>>) -> bool {
    let started = Instant::now();
    let grace = grace.min(MAX_SHUTDOWN_WAIT);
    let deadline = started + grace;
    let mut sched_task = sched_task;
    let sched = match tokio::time::timeout_at((started + grace / 2).into(), &mut sched_task).await {
        Ok(s) => s.ok(),
        Err(_) => {
            tracing::warn!(waited = ?grace / 2, "A collection is still running (a collector stuck in a read?); not waiting for it");
            None
        }
    };
    let handles: Vec<_> = state.exporters.read().unwrap().clone();
    let rest = async {
        futures_join_all(handles.iter().map(|h| h.shutdown(deadline))).await;
        if let Some(s) = sched {
            tokio::task::spawn_blocking(move || s.shutdown()).await.ok();
        }
        if let Some(s) = server {
            let _ = s.await;
        }
    };
    tokio::time::timeout_at(deadline.into(), rest).await.is_ok()
}

/// A config file's path for a log field: the path, or `none` (never Rust's `Some(..)`).
fn path_field(p: Option<&Path>) -> String {
    p.map_or_else(|| "none".into(), |p| p.display().to_string())
}

fn start_scheduler(config: &Config, state: Arc<AgentState>, path: Option<&Path>) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<Scheduler>) {
    let sched = build_scheduler(config, state.clone()).with_scraper(start_scraper(config, &state));
    let interval = config.collector.interval();
    tracing::info!(collectors = ?sched.collector_names(), interval = %crate::units::ConfigDuration(interval), config = %path_field(path), "Collecting");
    let (tx, rx) = tokio::sync::watch::channel(false);
    (tx, tokio::spawn(sched.run(interval, rx)))
}

/// Starts scraping `endpoints` (nothing when empty) and shows the targets in `/status`.
fn start_scraper(config: &Config, state: &AgentState) -> Option<Arc<crate::scrape::Scraper>> {
    if config.endpoints.is_empty() {
        return None;
    }
    let resource = state.resource.read().unwrap().clone();
    match crate::scrape::Scraper::start(&config.endpoints, &resource, config.collector.interval()) {
        Ok(s) => {
            *state.scrape.write().unwrap() = Some(s.clone());
            Some(s)
        }
        Err(e) => {
            tracing::error!(error = %e, "Cannot scrape the endpoints");
            None
        }
    }
}

/// Starts the OTLP receiver when `receivers.otlp` is configured.
async fn start_receiver(config: &Config, state: &Arc<AgentState>) -> Result<Option<crate::receiver::Running>, crate::receiver::StartError> {
    match &config.receivers.otlp {
        Some(otlp) => crate::receiver::start(otlp, state.clone()).await.map(Some),
        None => Ok(None),
    }
}

/// Stops the scrape targets' tasks (on reload and shutdown).
fn stop_scraper(state: &AgentState) {
    if let Some(s) = state.scrape.write().unwrap().take() {
        s.stop();
    }
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
