//! Pod and container names from the kubelet of this node: `GET https://$NODE_IP:10250/pods`
//! with the service account's bearer token, checked against its CA (as the Collector's
//! kubeletstats receiver authenticates), through the agent's one HTTP client. The answer is a
//! Kubernetes `PodList`, of which only these fields are parsed:
//!
//! ```text
//! {"kind":"PodList","apiVersion":"v1","items":[{"metadata":{"name":"web-7d9f","namespace":"shop","uid":"1b2c…"},
//!   "spec":{"nodeName":"node-1"},
//!   "status":{"containerStatuses":[{"name":"nginx","containerID":"containerd://0123…"}]}}]}
//! ```
//!
//! **When.** Never per tick: the names are cached, and the kubelet is asked again only when the
//! collector meets a pod UID it has no name for, at most once per `min_interval` (10 s), on a
//! thread of its own: the tick never waits for it. Until an answer comes, and when none can
//! come, points carry the UIDs and IDs only. Why is said in one log line, again only when the
//! reason changes: the token refused (401/403: the ClusterRole lacks `nodes/proxy`), the kubelet
//! unreachable, an answer that is not a Pod list, or no endpoint known (no `NODE_IP`).
//! The answer is read up to `DEFAULT_KUBELET_MAX_BODY` bytes.

use super::config::{KubeletConfig, DEFAULT_KUBELET_MAX_BODY, DEFAULT_KUBELET_TIMEOUT};
use crate::http::{HttpClient, RequestError};
use crate::tls::TlsConfig;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the kubelet says about one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    pub name: String,
    pub namespace: String,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// Container ID (without the `containerd://` scheme) → container name.
    pub containers: HashMap<String, String>,
}

/// Why the names could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeletError {
    #[error("no kubelet endpoint: set collector.containers.kubelet.endpoint, or NODE_IP from the downward API (fieldRef status.hostIP)")]
    NoEndpoint,
    #[error("cannot read the service-account token {path}: {msg}")]
    Token { path: String, msg: String },
    #[error("the kubelet at {url} refused the token ({status}): the agent's ClusterRole needs `get` on nodes/proxy (and nodes/stats)")]
    Refused { url: String, status: u16 },
    #[error("the kubelet at {url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("the kubelet at {url} is unreachable: {msg}")]
    Unreachable { url: String, msg: String },
    #[error("the kubelet's answer at {url} is not a Pod list: {msg}")]
    BadAnswer { url: String, msg: String },
    #[error("kubelet client settings: {0}")]
    Client(String),
}

#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Deserialize)]
struct Pod {
    metadata: Metadata,
    #[serde(default)]
    spec: Option<Spec>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    uid: String,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(rename = "containerStatuses", default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(rename = "initContainerStatuses", default)]
    init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
struct ContainerStatus {
    name: String,
    #[serde(rename = "containerID", default)]
    container_id: Option<String>,
}

/// Parses a `/pods` answer into pod UID → [`PodMeta`].
pub fn parse_pods(body: &[u8]) -> Result<HashMap<String, PodMeta>, String> {
    let list: PodList = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(list
        .items
        .into_iter()
        .map(|p| {
            let (node, statuses) = (p.spec.and_then(|s| s.node_name), p.status.map(|s| (s.container_statuses, s.init_container_statuses)));
            let containers = statuses
                .into_iter()
                .flat_map(|(a, b)| a.into_iter().chain(b))
                .filter_map(|c| {
                    let id = c.container_id?;
                    // `containerd://<id>`, `cri-o://<id>`, `docker://<id>`.
                    let id = id.rsplit_once("://").map(|(_, id)| id.to_owned()).unwrap_or(id);
                    Some((id, c.name))
                })
                .collect();
            (p.metadata.uid, PodMeta { name: p.metadata.name, namespace: p.metadata.namespace, node, containers })
        })
        .collect())
}

#[derive(Default)]
struct State {
    pods: HashMap<String, Arc<PodMeta>>,
    /// Counts the answers taken in, so that users rebuild attributes only on a change.
    generation: u64,
    in_flight: bool,
    last_try: Option<Instant>,
    /// The last failure logged, logged again only when it changes.
    last_error: Option<KubeletError>,
}

/// The cached names and the fetches behind them; cheap to clone.
#[derive(Clone)]
pub struct Kubelet {
    state: Arc<Mutex<State>>,
    endpoint: Option<String>,
    config: KubeletConfig,
}

impl Kubelet {
    /// A client of the kubelet `config` names, `env` giving `NODE_IP`/`NODE_NAME`.
    pub fn new(config: &KubeletConfig, env: impl Fn(&str) -> Option<String>) -> Self {
        Kubelet { state: Arc::default(), endpoint: config.endpoint(env), config: config.clone() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The names of pod `uid`, if known.
    pub fn pod(&self, uid: &str) -> Option<Arc<PodMeta>> {
        self.lock().pods.get(uid).cloned()
    }

    /// Changes when new names arrived.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The failure of the last fetch, if it failed.
    pub fn last_error(&self) -> Option<KubeletError> {
        self.lock().last_error.clone()
    }

    /// Whether a fetch is running.
    pub fn in_flight(&self) -> bool {
        self.lock().in_flight
    }

    /// Asks the kubelet again, on a thread of its own, unless a fetch is running or one
    /// started less than `min_interval` ago. Returns at once.
    pub fn refresh(&self) {
        {
            let mut s = self.lock();
            if s.in_flight || s.last_try.is_some_and(|t| t.elapsed() < self.config.min_interval()) {
                return;
            }
            s.in_flight = true;
            s.last_try = Some(Instant::now());
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("kubelet-pods".into()).spawn(move || {
            let r = me.fetch();
            me.take(r);
        });
        if let Err(e) = spawned {
            self.take(Err(KubeletError::Client(format!("cannot start a thread: {e}"))));
        }
    }

    /// Stores a fetch's result, logging a failure once per distinct reason.
    fn take(&self, r: Result<HashMap<String, PodMeta>, KubeletError>) {
        let mut s = self.lock();
        s.in_flight = false;
        match r {
            Ok(pods) => {
                if s.last_error.take().is_some() {
                    tracing::info!(pods = pods.len(), "Kubelet reachable again; pods and containers get their names");
                }
                s.pods = pods.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
                s.generation += 1;
            }
            Err(e) => {
                if s.last_error.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "No pod and container names from the kubelet; points carry pod UIDs and container IDs only");
                    s.last_error = Some(e);
                }
            }
        }
    }

    /// One `GET /pods`, blocking this thread (a runtime of its own).
    fn fetch(&self) -> Result<HashMap<String, PodMeta>, KubeletError> {
        let base = self.endpoint.as_deref().ok_or(KubeletError::NoEndpoint)?;
        let url = format!("{base}/pods");
        let uri: hyper::Uri = url.parse().map_err(|e| KubeletError::Client(format!("bad endpoint {url}: {e}")))?;
        let https = uri.scheme_str() == Some("https");
        let mut headers = Vec::new();
        if https {
            // A plain-http endpoint is the read-only port: no token over the wire.
            let path = self.config.token_path();
            let token = std::fs::read_to_string(&path).map_err(|e| KubeletError::Token { path: path.display().to_string(), msg: e.to_string() })?;
            let value = hyper::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| KubeletError::Token { path: path.display().to_string(), msg: "not a valid header value".into() })?;
            headers.push((hyper::header::AUTHORIZATION, value));
        }
        let ca = self.config.ca_path();
        let tls = TlsConfig {
            enabled: https,
            ca_file: (https && !self.config.insecure_skip_verify && ca.exists()).then_some(ca),
            insecure_skip_verify: self.config.insecure_skip_verify,
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| KubeletError::Client(e.to_string()))?;
        let answer = rt.block_on(async {
            let client = HttpClient::new(&tls, DEFAULT_KUBELET_TIMEOUT).map_err(|e| KubeletError::Client(e.to_string()))?;
            client.request(hyper::Method::GET, &uri, &headers, bytes::Bytes::new(), DEFAULT_KUBELET_MAX_BODY).await.map_err(|e| match e {
                RequestError::TooLarge(n) => KubeletError::BadAnswer { url: url.clone(), msg: format!("larger than {n} bytes") },
                e => KubeletError::Unreachable { url: url.clone(), msg: e.to_string() },
            })
        })?;
        let status = answer.status.as_u16();
        if status == 401 || status == 403 {
            return Err(KubeletError::Refused { url, status });
        }
        if status != 200 {
            return Err(KubeletError::Status { url, status, body: crate::http::body_snippet(&answer.body) });
        }
        parse_pods(&answer.body).map_err(|msg| KubeletError::BadAnswer { url, msg })
    }

    /// Waits up to `limit` for the running fetch to end (tests and `--once`).
    pub fn wait(&self, limit: Duration) {
        let start = Instant::now();
        while self.in_flight() && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_list_gives_names_namespaces_nodes_and_container_ids_without_their_scheme() {
        let body = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/containers/kubelet-pods.json")).unwrap();
        let pods = parse_pods(&body).unwrap();
        let p = &pods["1b2c3d4e-0000-4111-8222-333344445555"];
        assert_eq!((p.name.as_str(), p.namespace.as_str(), p.node.as_deref()), ("web-7d9f8b6c5-x2x9q", "shop", Some("node-1")));
        assert_eq!(p.containers.get("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").map(String::as_str), Some("nginx"));
        assert_eq!(p.containers.len(), 2, "the init container too");
        // A pending pod without statuses has a name and no containers.
        assert!(pods.values().any(|p| p.name == "pending-0" && p.containers.is_empty()));
    }

    #[test]
    fn an_answer_that_is_not_a_pod_list_is_an_error() {
        assert!(parse_pods(b"<html>").is_err());
        assert!(parse_pods(br#"{"items":[{"metadata":{"name":"x"}}]}"#).unwrap_err().contains("uid"));
    }

    #[test]
    fn without_an_endpoint_the_fetch_fails_once_with_a_reason_and_no_names() {
        let k = Kubelet::new(&KubeletConfig::default(), |_| None);
        k.refresh();
        k.wait(Duration::from_secs(10));
        assert_eq!(k.last_error(), Some(KubeletError::NoEndpoint));
        assert!(k.last_error().unwrap().to_string().contains("NODE_IP"));
        assert_eq!(k.generation(), 0);
        // Rate-limited: no second fetch within min_interval.
        k.refresh();
        assert!(!k.in_flight());
    }
}
