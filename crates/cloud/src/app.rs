//! The cloud as one value: explicit state, the router with every route, the
//! hardening every response gets, and starting it all on a TLS listener.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, patch, post};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use url::Url;
use waymark_protocol::watches::LiveFix;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::{Config, Database};
use crate::error::ApiError;
use crate::secure_heads::SECURITY_HEADERS;
use crate::storage::Store;
use crate::{
    account_api, live, locations, openapi, pages, pairing, revocation, server, signin, watches,
};

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub webauthn: Arc<Webauthn>,
    /// The origin browsers see; its host is the relying-party ID.
    pub origin: Url,
    /// Manufacturer CA certificates (DER) that device certificates must chain to.
    pub manufacturers: Arc<Vec<Vec<u8>>>,
    /// New fixes, after they are stored, for live streams.
    pub live: broadcast::Sender<LiveEvent>,
    /// Device certificates already verified against a manufacturer CA, by
    /// device id. A certificate never changes for an id (the id is its key's
    /// hash); revocation is still checked in the database on every upload.
    pub device_certificates: Arc<std::sync::RwLock<std::collections::HashMap<String, Arc<[u8]>>>>,
    /// Open history and live streams per account (capped).
    pub streams: crate::streams::StreamCounts,
}

/// A stored fix and the account whose watch sent it (also the payload of
/// PostgreSQL's `NOTIFY`, so it crosses instances).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LiveEvent {
    pub account_id: String,
    pub event: LiveFix,
}

impl AppState {
    pub fn new(store: Store, origin: Url, manufacturers: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let rp_id = origin.host_str().context("origin has no host")?.to_owned();
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .context("the origin cannot be a WebAuthn relying party")?
            .rp_name("Waymark")
            .build()
            .context("cannot build the WebAuthn relying party")?;
        Ok(Self {
            store,
            webauthn: Arc::new(webauthn),
            origin,
            manufacturers: Arc::new(manufacturers),
            live: broadcast::channel(4096).0,
            device_certificates: Arc::default(),
            streams: Default::default(),
        })
    }

    /// `https://host:port` with no trailing slash, as browsers send in `Origin`.
    pub fn origin_str(&self) -> String {
        self.origin.origin().ascii_serialization()
    }
}

/// One route the cloud serves. The router is built from [`routes`], so the
/// attack suite can enumerate every route and fail when one has no test.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route, with its full path. Parent API routes take a bearer token;
/// `/device/v1` routes take a device signature, never a token.
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/", get(pages::home)),
        route(M::GET, "/healthz", get(pages::health)),
        route(M::GET, openapi::DOCUMENT_PATH, get(openapi::serve)),
        route(M::GET, "/static/waymark.js", get(pages::script)),
        route(M::GET, "/static/waymark.css", get(pages::style)),
        route(M::GET, "/authorize", get(signin::authorize)),
        route(M::GET, "/enroll", get(signin::enroll_page)),
        route(
            M::POST,
            "/ceremony/register/start",
            post(signin::register_start),
        ),
        route(
            M::POST,
            "/ceremony/register/finish",
            post(signin::register_finish),
        ),
        route(
            M::POST,
            "/ceremony/sign-in/start",
            post(signin::sign_in_start),
        ),
        route(
            M::POST,
            "/ceremony/sign-in/finish",
            post(signin::sign_in_finish),
        ),
        route(M::POST, "/token", post(signin::token)),
        route(M::POST, "/revoke", post(signin::revoke)),
        route(M::GET, "/api/v1/me", get(account_api::me)),
        route(M::GET, "/api/v1/passkeys", get(account_api::list_passkeys)),
        route(
            M::POST,
            "/api/v1/passkeys/enrollments",
            post(account_api::start_enrollment),
        ),
        route(
            M::PATCH,
            "/api/v1/passkeys/{id}",
            patch(account_api::rename_passkey),
        ),
        route(
            M::DELETE,
            "/api/v1/passkeys/{id}",
            delete(account_api::delete_passkey),
        ),
        route(M::GET, "/api/v1/sessions", get(account_api::list_sessions)),
        route(
            M::POST,
            "/api/v1/sessions/end-others",
            post(account_api::end_other_sessions),
        ),
        route(
            M::DELETE,
            "/api/v1/sessions/{id}",
            delete(account_api::end_session),
        ),
        route(M::GET, "/api/v1/activity", get(account_api::activity)),
        route(M::GET, "/api/v1/settings", get(account_api::settings)),
        route(
            M::PATCH,
            "/api/v1/settings",
            patch(account_api::update_settings),
        ),
        route(M::POST, "/api/v1/pairings", post(pairing::pair)),
        route(M::GET, "/api/v1/watches", get(watches::list)),
        route(M::PATCH, "/api/v1/watches/{id}", patch(watches::rename)),
        route(
            M::GET,
            "/api/v1/watches/{id}/latest",
            get(locations::latest),
        ),
        route(
            M::GET,
            "/api/v1/watches/{id}/history",
            get(locations::history),
        ),
        route(
            M::GET,
            "/api/v1/watches/{id}/history/stream",
            get(locations::history_stream),
        ),
        route(
            M::POST,
            "/api/v1/watches/{id}/revoke",
            post(revocation::revoke),
        ),
        route(M::GET, "/api/v1/live", get(live::stream)),
        route(M::POST, "/device/v1/pairing-offers", post(pairing::offer)),
        route(M::POST, "/device/v1/status", post(locations::status)),
        route(M::POST, "/device/v1/batches", post(locations::upload)),
    ]
}

pub fn router(state: AppState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, Route { path, handler, .. }| {
            r.route(path, handler)
        })
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The security headers (see [`SECURITY_HEADERS`]) on every answer the router makes.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
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
    let tls = server::tls_config(&config.tls_cert, &config.tls_key)?;
    let store = Store::open(&config.database)
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
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            manufacturers.push(
                cert.with_context(|| format!("{} is not PEM", path.display()))?
                    .to_vec(),
            );
        }
    }
    if manufacturers.is_empty() {
        tracing::warn!("no manufacturer CA configured: no watch can pair (set manufacturer_cas)");
    }
    let state = AppState::new(store.clone(), origin.clone(), manufacturers)?;
    let (shutdown, rx) = watch::channel(false);
    if let Database::Postgres(url) = &config.database {
        live::follow_postgres(url, state.live.clone(), rx.clone()).await?;
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
                    if let Err(e) = sweeper_store.make_partitions(crate::ids::now_ms()).await {
                        tracing::warn!(error = %e, "making fixes partitions failed");
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
