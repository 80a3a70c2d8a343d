//! The cloud as one value: the three route groups merged into one router,
//! the hardening every response gets, and starting it all on a TLS listener.
//! Routes live with their callers ([`signin_pages`], [`parent_api`],
//! [`device_api`]); this module only merges them.

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;
use waymark_protocol::time::Clock;

use crate::config::{Config, Database};
use crate::error::ApiError;
use crate::secure_heads::SECURITY_HEADERS;
use crate::state::AppState;
use crate::storage::Store;
use crate::{device_api, parent_api, server, signin_pages};

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One route the cloud serves.
pub struct Route {
    pub method: Method,
    pub path: String,
}

/// Every route of every group, with its full path, so the attack suite can
/// enumerate them and fail when one has no test. Parent API routes take a
/// bearer token; `/device/v1` routes take a device signature, never a token.
pub fn routes() -> Vec<Route> {
    let pages = signin_pages::routes()
        .into_iter()
        .map(|(method, path, _)| (method, path.to_owned()));
    pages
        .chain(parent_api::routes())
        .chain(device_api::routes())
        .map(|(method, path)| Route { method, path })
        .collect()
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(signin_pages::router())
        .merge(parent_api::router())
        .merge(device_api::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            common_headers,
        ))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .with_state(state)
}

/// A request refused before its body was read (no token, wrong media type,
/// over a limit) leaves that body on the connection, and hyper then drops
/// the connection unless the rest happened to arrive already. The answer
/// says `Connection: close` so that a client never sends its next request
/// on a connection about to go (RFC 9112 §9.6), which would fail at random.
async fn close_after_refused_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0");
    let mut response = next.run(request).await;
    if has_body && response.status().is_client_error() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// What every answer the router makes carries: the security headers (see
/// [`SECURITY_HEADERS`]) and a `Date` from the cloud's clock, which a watch
/// corrects its own clock by.
async fn common_headers(State(app): State<AppState>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let now = std::time::UNIX_EPOCH + Duration::from_millis(app.store.now().max(0) as u64);
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        headers.insert(header::DATE, date);
    }
    response
}

/// A running cloud: where it listens and how to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub origin: Url,
    pub store: Store,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets open requests finish, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("server task panicked")?
    }
}

/// Opens the database, binds the listener and starts serving.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    start_with_clock(config, Clock::system()).await
}

/// [`start`] with a given clock (tests move it forward).
pub async fn start_with_clock(config: &Config, clock: Clock) -> anyhow::Result<Running> {
    let tls = server::tls_config(&config.tls_cert, &config.tls_key)?;
    let store = Store::open(&config.database, clock)
        .await
        .with_context(|| format!("cannot open the database ({})", config.database))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let origin = match &config.origin {
        Some(o) => o.clone(),
        None => Url::parse(&format!("https://localhost:{}", addr.port()))?,
    };
    let mut manufacturers = Vec::new();
    for path in &config.manufacturer_cas {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read manufacturer CA {}", path.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            manufacturers.push(
                cert.with_context(|| format!("{} is not PEM", path.display()))?
                    .to_vec(),
            );
        }
    }
    if manufacturers.is_empty() {
        tracing::warn!("no manufacturer CA configured: no watch can pair (set manufacturer_cas)");
    }
    let mut state = AppState::new(store.clone(), origin.clone(), manufacturers)?;
    state.require_hardware_keys = config.require_hardware_keys;
    let (shutdown, rx) = watch::channel(false);
    if let Database::Postgres(url) = &config.database {
        state.live.follow_postgres(url, rx.clone()).await?;
    }
    let sweeper_store = store.clone();
    let mut sweeper_rx = rx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {
                    if let Err(e) = sweeper_store.sweep_expired().await {
                        tracing::warn!(error = %e, "sweeping expired sign-in state failed");
                    }
                }
                _ = sweeper_rx.changed() => return,
            }
        }
    });
    let task = tokio::spawn(server::serve_tls(listener, tls, router(state), rx));
    tracing::info!(%addr, origin = %origin, "waymark-cloud listening (HTTPS only)");
    Ok(Running {
        addr,
        origin,
        store,
        shutdown,
        task,
    })
}
