//! The sign-in pages' endpoints: the RFC 8252 `/authorize` page, the
//! enrolment page, the passkey ceremony calls the page makes, and the
//! `/token` and `/revoke` endpoints the app calls. Each delegates to
//! [`services`](crate::services).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use super::pages;
use crate::error::ApiError;
use crate::extractors::{Form, Json, SameOrigin};
use crate::server::Peer;
use crate::services::ceremonies::{
    self, AuthorizeParams, Finished, LIMIT_WINDOW_MS, MAX_BAD_TOKEN_REQUESTS_PER_SOURCE,
    RegisterFinishBody, SignInFinishBody, StartBody, Started,
};
use crate::services::tokens::{self, TokenForm};
use crate::state::AppState;

/// `GET /authorize`: the passkey page, or an error page (never a redirect).
pub async fn authorize(
    State(app): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = async {
        let Query(p) = query?;
        ceremonies::open_sign_in_request(&app, &peer, p).await
    }
    .await;
    match result {
        Ok(request_id) => pages::ceremony_page(pages::PageMode::SignIn, request_id.as_str()),
        Err(e) if wants_html(&headers) => pages::error_page(&e),
        Err(e) => e.into_response(),
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

#[derive(Deserialize)]
pub struct EnrollParams {
    request: String,
}

/// The page a one-time enrollment link opens (see `account_api::start_enrollment`).
pub async fn enroll_page(State(app): State<AppState>, Query(p): Query<EnrollParams>) -> Response {
    match ceremonies::enrolment_request(&app, &p.request).await {
        Ok(_) => pages::ceremony_page(pages::PageMode::Enroll, &p.request),
        Err(e) => pages::error_page(&e),
    }
}

pub async fn register_start(
    State(app): State<AppState>,
    _: SameOrigin,
    peer: Peer,
    Json(body): Json<StartBody>,
) -> Result<axum::Json<Started<CreationChallengeResponse>>, ApiError> {
    ceremonies::register_start(&app, &peer, body)
        .await
        .map(axum::Json)
}

pub async fn register_finish(
    State(app): State<AppState>,
    _: SameOrigin,
    Json(body): Json<RegisterFinishBody>,
) -> Result<axum::Json<Finished>, ApiError> {
    ceremonies::register_finish(&app, body)
        .await
        .map(axum::Json)
}

pub async fn sign_in_start(
    State(app): State<AppState>,
    _: SameOrigin,
    peer: Peer,
    Json(body): Json<StartBody>,
) -> Result<axum::Json<Started<RequestChallengeResponse>>, ApiError> {
    ceremonies::sign_in_start(&app, &peer, body)
        .await
        .map(axum::Json)
}

pub async fn sign_in_finish(
    State(app): State<AppState>,
    _: SameOrigin,
    Json(body): Json<SignInFinishBody>,
) -> Result<axum::Json<Finished>, ApiError> {
    ceremonies::sign_in_finish(&app, body).await.map(axum::Json)
}

/// `POST /token`. Refused requests are counted per source address, so codes
/// and refresh tokens cannot be tried at speed.
pub async fn token(
    State(app): State<AppState>,
    peer: Peer,
    Form(form): Form<TokenForm>,
) -> Result<Response, ApiError> {
    // Every request spends from the budget first (one atomic count, so
    // concurrent requests cannot all slip under it); only refused ones keep it spent.
    let key = format!("token:source:{}", peer.0.ip());
    if !app
        .store
        .spend_attempt(&key, LIMIT_WINDOW_MS, MAX_BAD_TOKEN_REQUESTS_PER_SOURCE)
        .await?
    {
        return Err(ApiError::RateLimited);
    }
    let tokens = match form.grant_type() {
        Some("authorization_code") => tokens::exchange_code(&app, form).await,
        Some("refresh_token") => tokens::refresh(&app, form).await,
        _ => Err(ApiError::UnsupportedGrantType),
    };
    match tokens {
        Ok(tokens) => {
            app.store.refund_attempt(&key).await?;
            Ok((StatusCode::OK, axum::Json(tokens)).into_response())
        }
        Err(e @ (ApiError::Internal(_) | ApiError::Unavailable)) => {
            app.store.refund_attempt(&key).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// RFC 7009: always 200 for a well-formed request, known token or not.
pub async fn revoke(
    State(app): State<AppState>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, ApiError> {
    let token = form
        .token
        .filter(|t| !t.is_empty() && t.len() <= 512)
        .ok_or_else(|| ApiError::InvalidRequest("`token` is required.".into()))?;
    app.store.revoke_token(&token).await?;
    Ok(axum::Json(json!({ "revoked": true })).into_response())
}
