//! The HTTPS listener. TLS 1.2 and 1.3 through rustls are the only way in:
//! there is no plaintext listener. Slow clients are cut off by handshake and
//! header timeouts.

use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::open_counts::OpenCounts;
use crate::secure_heads::SecureHeads;
use crate::streams::CloseConnection;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once (further ones wait in the kernel's backlog),
/// and never more than the open-file limit leaves room for.
pub const MAX_CONNECTIONS: usize = 4096;
/// TLS handshakes one source address may have in progress at once; more
/// are closed as soon as they are accepted, so idle handshakes from one
/// place cannot use up the connections everyone else needs.
pub const MAX_HANDSHAKES_PER_SOURCE: usize = 128;
/// File descriptors kept back for the database, logs and files.
const RESERVED_FDS: u64 = 128;

/// Raises the soft open-file limit to the hard one (a cloud holds a socket
/// per client) and returns how many connections fit under it.
pub fn raise_open_file_limit() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    connection_cap()
}

/// How many connections fit under the current open-file limit.
fn connection_cap() -> usize {
    use rustix::process::{Resource, getrlimit};
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let room = soft.saturating_sub(RESERVED_FDS).max(16);
    (room as usize).min(MAX_CONNECTIONS)
}

/// rustls with only TLS 1.3 and TLS 1.2 (ECDHE + AEAD suites: rustls offers no others).
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot open {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("no private key in {} (or it cannot be read)", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How long open connections may finish their requests after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves `app` on `listener` until `shutdown` turns true.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let connections = Arc::new(tokio::sync::Semaphore::new(connection_cap()));
    let handshakes = OpenCounts::<std::net::IpAddr>::default();
    loop {
        let (permit, tcp, peer) = tokio::select! {
            accepted = async {
                // Take a place first: at the cap, newcomers wait in the backlog
                // instead of failing accept() with "too many open files".
                let permit = connections.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => match accepted {
                (Ok(permit), Ok((tcp, peer))) => (permit, tcp, peer),
                (_, Err(e)) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                (Err(_), _) => return Ok(()),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(slot) = handshakes.take(&peer.ip(), MAX_HANDSHAKES_PER_SOURCE) else {
            tracing::debug!(%peer, "too many handshakes from one source; closed");
            drop(tcp);
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(slot);
            let tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let close = CloseConnection::default();
            let closed = close.0.clone();
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.extensions_mut().insert(close.clone());
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(SecureHeads::new(tls)), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                // A streamed answer's client stopped reading: drop the connection.
                _ = closed.notified() => {}
                _ = conn_shutdown.changed() => {
                    // Requests in flight get a moment to finish; long-lived
                    // ones (the live stream) are then cut, so their clients
                    // notice and reconnect instead of waiting on a dead server.
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        });
    }
}

/// The peer address hyper saw, for per-source limits.
pub type Peer = ConnectInfo<SocketAddr>;
