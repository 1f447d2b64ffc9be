//! The one connector of every outgoing HTTP and gRPC connection: TCP (hyper-util's
//! `HttpConnector`: getaddrinfo off the runtime, `TCP_NODELAY`) → an optional proxy → optional
//! TLS with the rustls configuration of [`crate::tls`] (its `server_name` override and ALPN).
//!
//! Through a proxy, `https` destinations and every gRPC connection go through an HTTP
//! `CONNECT` tunnel (hyper-util's [`Tunnel`]), as curl, Go's `net/http` and grpc-go do; a plain
//! `http` destination is sent to the proxy in absolute form (`POST http://host/path`), as they
//! also do, because many proxies (Squid's default configuration among them) only allow
//! `CONNECT` to port 443. A proxy URL with `https` gets TLS to the proxy itself.

use super::proxy::{Proxies, Route};
use crate::tls::{TlsConfig, TlsError};
use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tower_service::Service;

/// A byte stream: TCP, a tunnel, TLS over either.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// An open connection, as hyper and tonic take it.
pub struct Conn {
    io: TokioIo<Box<dyn Io>>,
    /// Requests on it go to a proxy in absolute form.
    absolute_form: bool,
}

/// How the destination is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1: TLS when the URL says `https`.
    Http,
    /// gRPC (HTTP/2): TLS when `tls`, whatever the URL says; always tunnelled through a proxy.
    Grpc {
        /// Whether to do TLS with the server.
        tls: bool,
    },
}

/// The connector; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    inner: Arc<Inner>,
    /// The most a connection may take to open, proxy and TLS included.
    timeout: Option<Duration>,
}

struct Inner {
    tls: TlsConfig,
    /// For the destination, with the protocol's ALPN.
    server: tokio_rustls::TlsConnector,
    /// For a proxy with an `https` URL (ALPN `http/1.1`: CONNECT is HTTP/1.1).
    proxy: tokio_rustls::TlsConnector,
    proxies: Proxies,
    mode: Mode,
}

/// Why a connection could not be opened; the message names the server or the proxy.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(pub String);

type Connecting = Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send>>;

impl Connector {
    /// A connector with `tls` for TLS and `proxies` for the route.
    pub fn new(tls: &TlsConfig, proxies: Proxies, mode: Mode) -> Result<Self, TlsError> {
        let alpn = match mode {
            Mode::Http => b"http/1.1".to_vec(),
            Mode::Grpc { .. } => b"h2".to_vec(),
        };
        // Also refuses a `server_name` that is no valid name.
        let server = tokio_rustls::TlsConnector::from(Arc::new(tls.client_config(vec![alpn])?));
        let proxy = tokio_rustls::TlsConnector::from(Arc::new(tls.client_config(vec![b"http/1.1".to_vec()])?));
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        Ok(Connector { tcp, inner: Arc::new(Inner { tls: tls.clone(), server, proxy, proxies, mode }), timeout: None })
    }

    /// Gives up opening a connection (TCP, proxy, TLS) after `timeout`, also when nobody waits
    /// for it any more (the pool may finish a connection in the background).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The proxy a request to `dst` goes through, if any.
    pub fn route(&self, dst: &Uri) -> Option<Route> {
        match self.inner.mode {
            Mode::Http => self.inner.proxies.route(dst),
            Mode::Grpc { .. } => {
                let as_https = Uri::builder().scheme("https").authority(dst.authority()?.clone()).path_and_query("/").build().ok()?;
                self.inner.proxies.route(&as_https)
            }
        }
    }
}

/// `host:port` of `dst`, with the scheme's default port made explicit.
fn host_port(dst: &Uri, tls: bool) -> Result<(String, u16), ConnectError> {
    let host = dst.host().filter(|h| !h.is_empty()).ok_or_else(|| ConnectError(format!("no host in {dst}")))?;
    Ok((host.to_string(), dst.port_u16().unwrap_or(if tls { 443 } else { 80 })))
}

/// TCP, then TLS when `uri` is `https`; used for the proxy itself. Its own type so that
/// [`Tunnel`] can wrap it.
#[derive(Clone)]
struct ToProxy {
    tcp: HttpConnector,
    tls: tokio_rustls::TlsConnector,
}

impl Service<Uri> for ToProxy {
    type Response = TokioIo<Box<dyn Io>>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        let (mut tcp, tls) = (self.tcp.clone(), self.tls.clone());
        Box::pin(async move {
            let secure = proxy.scheme_str() == Some("https");
            let (host, port) = host_port(&proxy, secure)?;
            let stream = tcp.call(proxy.clone()).await.map_err(|e| ConnectError(format!("connecting to proxy {host}:{port}: {}", super::error_chain(&e))))?;
            let stream = stream.into_inner();
            if !secure {
                return Ok(TokioIo::new(Box::new(stream) as Box<dyn Io>));
            }
            let name = rustls::pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                .map_err(|e| ConnectError(format!("proxy {host}: {e}")))?;
            let s = tls.connect(name, stream).await.map_err(|e| ConnectError(format!("TLS handshake with proxy {host}:{port}: {}", super::error_chain(&e))))?;
            Ok(TokioIo::new(Box::new(s) as Box<dyn Io>))
        })
    }
}

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let me = self.clone();
        let Some(timeout) = self.timeout else { return Box::pin(me.connect(dst)) };
        Box::pin(async move {
            let shown = dst.authority().map(|a| a.to_string()).unwrap_or_default();
            tokio::time::timeout(timeout, me.connect(dst)).await.map_err(|_| ConnectError(format!("connecting to {shown}: not done within {timeout:?}")))?
        })
    }
}

impl Connector {
    /// TCP, the proxy if any, TLS if asked.
    async fn connect(self, dst: Uri) -> Result<Conn, ConnectError> {
        let me = self;
        let (tls, tunnel_always) = match me.inner.mode {
            Mode::Http => (dst.scheme_str() == Some("https"), false),
            Mode::Grpc { tls } => (tls, true),
        };
        let (host, port) = host_port(&dst, tls)?;
        let to_proxy = ToProxy { tcp: me.tcp.clone(), tls: me.inner.proxy.clone() };
        let (stream, absolute_form): (Box<dyn Io>, bool) = match me.route(&dst) {
            None => {
                let s = me.tcp.clone().call(dst.clone()).await.map_err(|e| ConnectError(format!("connecting to {host}:{port}: {}", super::error_chain(&e))))?;
                (Box::new(s.into_inner()), false)
            }
            Some(route) if tls || tunnel_always => {
                let proxy = route.uri.authority().map(|a| a.to_string()).unwrap_or_default();
                let mut tunnel = Tunnel::new(route.uri, to_proxy);
                if let Some(auth) = route.auth {
                    tunnel = tunnel.with_auth(auth);
                }
                // The tunnel's target needs an explicit port (it would assume 443).
                let target = Uri::builder()
                    .scheme(if tls { "https" } else { "http" })
                    .authority(format!("{}:{port}", dst.host().unwrap_or_default()))
                    .path_and_query("/")
                    .build()
                    .map_err(|e| ConnectError(format!("{dst}: {e}")))?;
                let s =
                    tunnel.call(target).await.map_err(|e| ConnectError(format!("CONNECT {host}:{port} through proxy {proxy}: {}", super::error_chain(&e))))?;
                (s.into_inner(), false)
            }
            Some(route) => {
                let mut to_proxy = to_proxy;
                (to_proxy.call(route.uri).await?.into_inner(), true)
            }
        };
        if !tls {
            return Ok(Conn { io: TokioIo::new(stream), absolute_form });
        }
        let name = me.inner.tls.server_name(host.trim_start_matches('[').trim_end_matches(']')).map_err(|e| ConnectError(e.to_string()))?;
        let s =
            me.inner.server.connect(name, stream).await.map_err(|e| ConnectError(format!("TLS handshake with {host}:{port}: {}", super::error_chain(&e))))?;
        Ok(Conn { io: TokioIo::new(Box::new(s)), absolute_form: false })
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new().proxy(self.absolute_form)
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: hyper::rt::ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
