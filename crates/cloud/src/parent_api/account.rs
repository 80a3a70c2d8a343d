//! The account API under `/api/v1`: who am I, passkeys, signed-in
//! computers, activity. Every query is scoped to the caller's account: an id
//! from another account answers exactly like an id that does not exist.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use waymark_protocol::account::{
    ActivityEntry, Ended, EnrollmentLink, MAX_RETENTION_DAYS, Me, PasskeyInfo, Rename, SessionInfo,
    Settings, clean_name,
};
use waymark_protocol::co_parents::FamilyAction;

use waymark_protocol::ids::{PasskeyId, SessionId};

use crate::error::ApiError;
use crate::extractors::{Caller, Json};
use crate::services::ceremonies;
use crate::state::AppState;
use crate::storage::accounts::DeletePasskey;

type ApiResult<T> = Result<axum::Json<T>, ApiError>;

/// An id we never issued cannot match anything: refused like an unknown one.
fn known<T>(parsed: Option<T>) -> Result<T, ApiError> {
    parsed.ok_or(ApiError::NotFound)
}

fn valid_name(rename: &Rename) -> Result<String, ApiError> {
    clean_name(&rename.name).ok_or_else(|| {
        ApiError::InvalidRequest("A name is 1–64 characters with no control characters.".into())
    })
}

#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, description = "The account and this sign-in", body = Me)))]
pub async fn me(State(app): State<AppState>, caller: Caller) -> ApiResult<Me> {
    let account = app
        .store
        .account(&caller.account_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(axum::Json(Me {
        account_id: account.id,
        display_name: account.display_name,
        created_at: account.created_at,
        session_id: caller.session_id.to_string(),
        family_id: caller.family_id.to_string(),
        role: caller.role,
    }))
}

#[utoipa::path(get, path = "/api/v1/passkeys", tag = "account",
    responses((status = 200, description = "The account's passkeys", body = Vec<PasskeyInfo>)))]
pub async fn list_passkeys(
    State(app): State<AppState>,
    caller: Caller,
) -> ApiResult<Vec<PasskeyInfo>> {
    Ok(axum::Json(
        app.store.list_passkeys(&caller.account_id).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/passkeys/{id}", tag = "account",
    params(("id" = String, Path, description = "The passkey's id", pattern = "^[0-9a-f]{32}$")),
    request_body = Rename,
    responses((status = 204, description = "Renamed")))]
pub async fn rename_passkey(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Rename>,
) -> Result<StatusCode, ApiError> {
    let name = valid_name(&body)?;
    let id = known(PasskeyId::parse(&id))?;
    if app
        .store
        .rename_passkey(&caller.account_id, &id, &name, &caller.session_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(delete, path = "/api/v1/passkeys/{id}", tag = "account",
    params(("id" = String, Path, description = "The passkey's id", pattern = "^[0-9a-f]{32}$")),
    responses((status = 204, description = "Removed; never the last one (409 `last_passkey`)")))]
pub async fn delete_passkey(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = known(PasskeyId::parse(&id))?;
    match app
        .store
        .delete_passkey(&caller.account_id, &id, &caller.session_id)
        .await?
    {
        DeletePasskey::Deleted => Ok(StatusCode::NO_CONTENT),
        DeletePasskey::NotFound => Err(ApiError::NotFound),
        DeletePasskey::LastOne => Err(ApiError::LastPasskey),
    }
}

/// A one-time link for the browser: confirm with an existing passkey, then
/// register another. The link alone grants nothing.
#[utoipa::path(post, path = "/api/v1/passkeys/enrollments", tag = "account",
    responses((status = 201, description = "A one-time link (5 minutes) for the browser", body = EnrollmentLink)))]
pub async fn start_enrollment(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, axum::Json<EnrollmentLink>), ApiError> {
    let (url, expires_at) = ceremonies::open_enrolment(&app, &caller).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(EnrollmentLink { url, expires_at }),
    ))
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "account",
    responses((status = 200, description = "Signed-in computers", body = Vec<SessionInfo>)))]
pub async fn list_sessions(
    State(app): State<AppState>,
    caller: Caller,
) -> ApiResult<Vec<SessionInfo>> {
    Ok(axum::Json(
        app.store
            .list_sessions(&caller.account_id, &caller.session_id)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "account",
    params(("id" = String, Path, description = "The session's id", pattern = "^[0-9a-f]{32}$")),
    responses((status = 204, description = "That computer is signed out")))]
pub async fn end_session(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = known(SessionId::parse(&id))?;
    if app
        .store
        .end_session(&caller.account_id, &id, &caller.session_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(post, path = "/api/v1/sessions/end-others", tag = "account",
    responses((status = 200, description = "How many other computers were signed out", body = Ended)))]
pub async fn end_other_sessions(State(app): State<AppState>, caller: Caller) -> ApiResult<Ended> {
    let ended = app
        .store
        .end_other_sessions(&caller.account_id, &caller.session_id)
        .await?;
    Ok(axum::Json(Ended { ended }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/activity", tag = "account",
    params(("limit" = Option<i64>, Query, description = "Newest entries to return (default 100)", minimum = 1, maximum = 500)),
    responses((status = 200, description = "The activity log, newest first", body = Vec<ActivityEntry>)))]
pub async fn activity(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<ActivityQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<ActivityEntry>> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::InvalidRequest(
            "limit must be between 1 and 500.".into(),
        ));
    }
    Ok(axum::Json(
        app.store
            .activity(&caller.account_id, &caller.family_id, limit)
            .await?,
    ))
}

/// `GET /api/v1/settings`.
#[utoipa::path(get, path = "/api/v1/settings", tag = "account",
    responses((status = 200, description = "The account's settings", body = Settings)))]
pub async fn settings(State(app): State<AppState>, caller: Caller) -> ApiResult<Settings> {
    Ok(axum::Json(Settings {
        retention_days: app.store.retention_days(&caller.family_id).await?,
    }))
}

/// `PATCH /api/v1/settings` `{"retention_days": 1..=365}`. Shortening it
/// deletes older history at the next retention pass (within a minute).
#[utoipa::path(patch, path = "/api/v1/settings", tag = "account",
    request_body = Settings,
    responses((status = 200, description = "The settings now in force", body = Settings)))]
pub async fn update_settings(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<Settings>,
) -> ApiResult<Settings> {
    crate::binding::allow(&caller, FamilyAction::SetRetention)?;
    if !(1..=MAX_RETENTION_DAYS).contains(&body.retention_days) {
        return Err(ApiError::InvalidRequest(format!(
            "retention_days must be between 1 and {MAX_RETENTION_DAYS}."
        )));
    }
    app.store
        .set_retention_days(&caller.family_id, body.retention_days, &caller.session_id)
        .await?;
    Ok(axum::Json(body))
}
