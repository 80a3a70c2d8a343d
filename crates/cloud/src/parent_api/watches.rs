//! The parent's list of watches, and renaming one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use waymark_protocol::account::{Rename, clean_name};
use waymark_protocol::co_parents::FamilyAction;
use waymark_protocol::watches::WatchRecord;

use crate::binding::watch_of;
use crate::error::ApiError;
use crate::extractors::Caller;
use crate::extractors::Json;
use crate::state::AppState;

/// `GET /api/v1/watches`: only the caller's family's watches, by construction.
#[utoipa::path(get, path = "/api/v1/watches", tag = "watches",
    responses((status = 200, description = "The account's watches", body = Vec<WatchRecord>)))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<WatchRecord>>, ApiError> {
    Ok(axum::Json(app.store.list_watches(&caller.family_id).await?))
}

/// `PATCH /api/v1/watches/{id}` `{"name"}`.
#[utoipa::path(patch, path = "/api/v1/watches/{id}", tag = "watches",
    params(("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$")),
    request_body = Rename,
    responses((status = 204, description = "Renamed"),
        (status = 403, description = "Only an owner renames (`role_forbids`)", body = waymark_protocol::error::ErrorBody)))]
pub async fn rename(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Rename>,
) -> Result<StatusCode, ApiError> {
    let watch = watch_of(&app.store, &caller, &id, FamilyAction::ManageWatches).await?;
    let name = clean_name(&body.name).ok_or_else(|| {
        ApiError::InvalidRequest("A name is 1–64 characters with no control characters.".into())
    })?;
    app.store
        .rename_watch(&watch, &name, &caller.session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
