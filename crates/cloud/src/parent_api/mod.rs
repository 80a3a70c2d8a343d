//! The parent API, `/api/v1`: what the desktop app asks with a bearer
//! token. This module builds the group's router and its OpenAPI 3.1
//! document together (utoipa-axum), so every route served is documented
//! and every documented route is served; the document is served at
//! `GET /openapi.json`, and schemathesis tests the live cloud against it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi, ToSchema};
use waymark_protocol::account::NAME_PATTERN;
use waymark_protocol::error::ErrorBody;

use axum::Router;
use axum::http::Method;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub mod account;
pub mod approvals;
pub mod co_parents;
pub mod family;
pub mod live;
pub mod locations;
pub mod pairing;
pub mod revocation;
pub mod watches;
pub mod zones;

/// Where the document is served. Outside `/api/v1`, so every route under
/// that prefix keeps needing a token.
pub const DOCUMENT_PATH: &str = "/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Waymark parent API",
        description = "What the Waymark desktop app asks the cloud. Every call needs `Authorization: Bearer <access token>` from the passkey sign-in. Every error is `{\"error\": code, \"message\": text}`; an id that belongs to another family answers exactly like one that does not exist (404 `not_found`); an action the caller's role in the family does not allow answers 403 `role_forbids`.",
        version = "1"
    ),
    components(schemas(ErrorBody)),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Adds what every operation shares instead of repeating it on each: the
/// bearer scheme, and the error answers any `/api/v1` call can get (bad
/// input, no token, not found, wrong method, too large, wrong media type,
/// timeout, rate limited, our fault, database unavailable).
struct CommonAnswers;

const COMMON_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "The request is not valid (`invalid_request` and others).",
    ),
    (
        "401",
        "No token, or the sign-in has ended (`unauthenticated`).",
    ),
    ("404", "No such thing on this account (`not_found`)."),
    (
        "405",
        "This path does not take that method (`method_not_allowed`).",
    ),
    ("408", "The request took longer than 30 seconds."),
    ("409", "The change conflicts with the current state."),
    ("413", "The body is larger than 64 KiB (`body_too_large`)."),
    ("415", "The body is not JSON (`unsupported_media_type`)."),
    (
        "429",
        "Too many attempts (`rate_limited`, `too_many_attempts`) or open streams (`too_many_streams`); wait, then retry.",
    ),
    ("500", "Something failed on the cloud's side (`internal`)."),
    (
        "503",
        "The database cannot be used right now (`unavailable`); nothing changed. Retry after `Retry-After` seconds.",
    ),
];

fn error_answer(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build(),
        )
        .build()
}

impl Modify for CommonAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        // The name rule, from the one constant the cloud's check is tested against.
        if let Some(RefOr::T(Schema::Object(rename))) = components.schemas.get_mut("Rename")
            && let Some(RefOr::T(Schema::Object(name))) = rename.properties.get_mut("name")
        {
            name.pattern = Some(NAME_PATTERN.to_owned());
        }
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description) in COMMON_ERRORS {
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::T(error_answer(description)));
                }
            }
        }
    }
}

/// The group's router and its document, from the same list of handlers.
fn split() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(account::me))
        .routes(routes!(account::list_passkeys))
        .routes(routes!(account::start_enrollment))
        .routes(routes!(account::rename_passkey, account::delete_passkey))
        .routes(routes!(account::list_sessions))
        .routes(routes!(account::end_other_sessions))
        .routes(routes!(account::end_session))
        .routes(routes!(account::activity))
        .routes(routes!(account::settings, account::update_settings))
        .routes(routes!(family::rosters))
        .routes(routes!(family::add_roster))
        .routes(routes!(family::key_blobs))
        .routes(routes!(family::this_computer))
        .routes(routes!(co_parents::members))
        .routes(routes!(co_parents::change_role, co_parents::remove))
        .routes(routes!(co_parents::invite))
        .routes(routes!(co_parents::cancel))
        .routes(routes!(co_parents::preview))
        .routes(routes!(co_parents::accept))
        .routes(routes!(approvals::create, approvals::list))
        .routes(routes!(approvals::get, approvals::end))
        .routes(routes!(approvals::offer))
        .routes(routes!(approvals::answer))
        .routes(routes!(approvals::approve))
        .routes(routes!(pairing::offer))
        .routes(routes!(pairing::answer))
        .routes(routes!(watches::list))
        .routes(routes!(watches::rename))
        .routes(routes!(locations::latest))
        .routes(routes!(locations::history))
        .routes(routes!(locations::history_stream))
        .routes(routes!(revocation::revoke))
        .routes(routes!(live::stream))
        .routes(routes!(zones::list, zones::save))
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
    let mut routes = crate::route_table::operations(&document_value());
    routes.push((Method::GET, DOCUMENT_PATH.to_owned()));
    routes
}

fn document_value() -> utoipa::openapi::OpenApi {
    let mut doc = split().1;
    CommonAnswers.modify(&mut doc);
    doc
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        document_value()
            .to_pretty_json()
            .expect("the API document serialises")
    })
}

/// `GET /openapi.json`.
pub async fn serve_document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
