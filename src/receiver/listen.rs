//! The receiver's accept loop: TCP, then TLS when configured (ALPN `h2`, `http/1.1`), then
//! HTTP/1.1 or HTTP/2 (gRPC) on one hyper connection, each on a task of its own. At most
//! [`MAX_CONNECTIONS`] connections are open (more are closed at once); a client gets
//! [`HANDSHAKE_TIMEOUT`] for its TLS handshake and [`HEADER_READ_TIMEOUT`] for its headers, and
//! no connection lives longer than [`CONNECTION_LIFETIME`].

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections open at once, both protocols counted apart.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's headers (HTTP/1.1).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection is kept, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// The response body both protocols answer with.
pub type Body = tonic::body::Body;
/// A request's answer.
pub type Answer = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
/// What a protocol does with a request.
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> Answer + Send + Sync>;

/// A body of bytes.
pub fn full(b: impl Into<bytes::Bytes>) -> Body {
    Body::new(http_body_util::Full::new(b.into()))
}

/// Accepts on `tcp` until `stop` fires; then the open connections are closed.
pub async fn serve(tcp: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, handler: Handler, mut stop: tokio::sync::watch::Receiver<bool>) {
    let conns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut tasks = tokio::task::JoinSet::new();
    let mut full_logged = false;
    loop {
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "OTLP receiver: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            if !full_logged {
                tracing::warn!(max = MAX_CONNECTIONS, "OTLP receiver: too many connections; closing new ones");
                full_logged = true;
            }
            continue;
        };
        full_logged = false;
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let svc = hyper::service::service_fn(move |req| {
                let h = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(h(req).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let served = match acceptor {
                Some(a) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(stream)).await {
                    Ok(Ok(s)) => tokio::time::timeout(CONNECTION_LIFETIME, builder.serve_connection(TokioIo::new(s), svc)).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "OTLP receiver: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                None => tokio::time::timeout(CONNECTION_LIFETIME, builder.serve_connection(TokioIo::new(stream), svc)).await,
            };
            if let Ok(Err(e)) = served {
                tracing::debug!(%peer, error = %e, "OTLP receiver: connection ended with an error");
            }
        });
    }
    tasks.shutdown().await;
}
