//! The device API, `/device/v1`: what watches call. No bearer token is ever
//! taken here; every request carries a signature by the watch's device key,
//! checked against its certificate (which chains to a manufacturer CA). The
//! router and its OpenAPI document are built together (utoipa-axum); the
//! document is served at [`DOCUMENT_PATH`].

use std::sync::OnceLock;

use axum::Router;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use waymark_protocol::error::ErrorBody;

use crate::state::AppState;

pub mod pairing_offers;
pub mod reporting;

/// Where the device API's document is served (outside `/device/v1`).
pub const DOCUMENT_PATH: &str = "/openapi/device.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Waymark device API",
        description = "What a Waymark watch asks the cloud. Every body is signed with the watch's device key (ECDSA P-256, over the bytes the protocol crate defines); an unknown watch and a wrong signature answer alike (401 `unknown_device`). Every error is `{\"error\": code, \"message\": text}`.",
        version = "1"
    ),
    components(schemas(ErrorBody))
)]
struct DeviceDoc;

fn split() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(DeviceDoc::openapi())
        .routes(routes!(pairing_offers::offer))
        .routes(routes!(pairing_offers::confirm))
        .routes(routes!(reporting::status))
        .routes(routes!(reporting::setup))
        .routes(routes!(reporting::upload))
        .split_for_parts()
}

/// The group's routes, and its document at [`DOCUMENT_PATH`].
pub fn router() -> Router<AppState> {
    split()
        .0
        .route(DOCUMENT_PATH, axum::routing::get(serve_document))
}

/// This group's routes, as the document lists them (and so as served), and
/// the document itself.
pub fn routes() -> Vec<(Method, String)> {
    let mut routes = crate::route_table::operations(&split().1);
    routes.push((Method::GET, DOCUMENT_PATH.to_owned()));
    routes
}

/// `GET /openapi/device.json`.
pub async fn serve_document() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        split()
            .1
            .to_pretty_json()
            .expect("the device API document serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str())
}
