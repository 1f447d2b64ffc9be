//! An in-process OTLP gRPC receiver for the integration tests: a tonic `MetricsService` server
//! built from opentelemetry-proto's generated stub (plain or TLS), answering as the test says.

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::codec::CompressionEncoding;
use tonic::transport::ServerTlsConfig;
use tonic::{Request, Response, Status};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub metadata: BTreeMap<String, String>,
    pub request: ExportMetricsServiceRequest,
    pub at: Instant,
    pub peer_certs: usize,
}

pub type Reply = dyn Fn(usize) -> (Result<ExportMetricsServiceResponse, Status>, Duration) + Send + Sync;

#[derive(Clone)]
struct Svc {
    got: Arc<Mutex<Vec<Got>>>,
    reply: Arc<Reply>,
}

#[tonic::async_trait]
impl MetricsService for Svc {
    async fn export(&self, r: Request<ExportMetricsServiceRequest>) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let metadata = r.metadata().clone().into_headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
        let peer_certs = r.peer_certs().map(|c| c.len()).unwrap_or(0);
        let n = {
            let mut g = self.got.lock().unwrap();
            g.push(Got { metadata, request: r.into_inner(), at: Instant::now(), peer_certs });
            g.len() - 1
        };
        let (answer, delay) = (self.reply)(n);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        answer.map(Response::new)
    }
}

/// A tonic OTLP receiver on 127.0.0.1, on its own thread and runtime.
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    accepted: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    pub fn start(
        tls: Option<ServerTlsConfig>,
        reply: impl Fn(usize) -> (Result<ExportMetricsServiceResponse, Status>, Duration) + Send + Sync + 'static,
    ) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let svc = Svc { got: got.clone(), reply: Arc::new(reply) };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // Not joined: a handler told to hang may outlive the test's interest in it.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let mut server = tonic::transport::Server::builder();
                if let Some(t) = tls {
                    server = server.tls_config(t).unwrap();
                }
                let service = MetricsServiceServer::new(svc).accept_compressed(CompressionEncoding::Gzip).accept_compressed(CompressionEncoding::Zstd);
                // tonic's own TcpIncoming, counting the connections it accepts.
                use tonic::codegen::tokio_stream::StreamExt as _;
                let incoming = tonic::transport::server::TcpIncoming::from(listener).map(move |c| {
                    if c.is_ok() {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    c
                });
                let _ = server
                    .serve_with_incoming_shutdown(service, incoming, async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Receiver { addr, got, accepted, stop: Some(stop_tx) }
    }

    pub fn ok() -> Receiver {
        Receiver::start(None, |_| (Ok(ExportMetricsServiceResponse::default()), Duration::ZERO))
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn ok() -> (Result<ExportMetricsServiceResponse, Status>, Duration) {
    (Ok(ExportMetricsServiceResponse::default()), Duration::ZERO)
}
