//! The few pages the cloud serves to a browser: the passkey page that the
//! sign-in and enrollment flows open, and its static script and style. No
//! inline script anywhere, so the CSP can forbid it.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use axum::extract::State;

use crate::error::{ApiError, RETRY_AFTER_SECS};
use crate::state::AppState;
use crate::storage::Health;

const SCRIPT: &str = include_str!("../../assets/waymark.js");
const STYLE: &str = include_str!("../../assets/waymark.css");
const CEREMONY_PAGE: &str = include_str!("../../assets/ceremony.html");

#[derive(Debug, Clone, Copy)]
pub enum PageMode {
    SignIn,
    Enroll,
}

pub fn ceremony_page(mode: PageMode, request_id: &str) -> Response {
    let (mode, title) = match mode {
        PageMode::SignIn => ("sign-in", "Sign in to Waymark"),
        PageMode::Enroll => ("enroll", "Add a passkey to your Waymark account"),
    };
    // request_id is a hex id we generated, but escape anyway: it goes into HTML.
    let html = CEREMONY_PAGE
        .replace("{{mode}}", mode)
        .replace("{{title}}", title)
        .replace("{{request}}", &escape(request_id));
    Html(html).into_response()
}

pub fn error_page(error: &ApiError) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Waymark</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/static/waymark.css\"></head><body><main class=\"card\">\
         <h1>Waymark cannot continue</h1><p class=\"error\" data-error=\"{}\">{}</p></main></body></html>",
        error.code(),
        escape(&error.to_string())
    );
    (error.status(), Html(html)).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub async fn home() -> Html<&'static str> {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Waymark</title>\
         <link rel=\"stylesheet\" href=\"/static/waymark.css\"></head><body><main class=\"card\">\
         <h1>Waymark</h1><p>This is a Waymark cloud. Parents sign in from the Waymark app.</p></main></body></html>",
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// `GET /healthz`: 200 only when the database takes reads and writes, so a
/// load balancer moves traffic away from an instance whose disk is full or
/// whose database is unreachable.
pub async fn health(State(app): State<AppState>) -> Response {
    match app.store.health().await {
        Health::Ok => (StatusCode::OK, "ok").into_response(),
        Health::ReadOnly => unavailable("database refuses writes"),
        Health::Down => unavailable("database unreachable"),
    }
}

fn unavailable(why: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
        why,
    )
        .into_response()
}
