//! The parent's list of watches, and renaming one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use waymark_protocol::account::{Rename, clean_name};
use waymark_protocol::watches::WatchInfo;

use crate::app::AppState;
use crate::binding::watch_of;
use crate::error::ApiError;
use crate::signin::Json;
use crate::storage::Caller;

/// `GET /api/v1/watches`: only the caller's watches, by construction.
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<WatchInfo>>, ApiError> {
    Ok(axum::Json(
        app.store.list_watches(&caller.account_id).await?,
    ))
}

/// `PATCH /api/v1/watches/{id}` `{"name"}`.
pub async fn rename(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Rename>,
) -> Result<StatusCode, ApiError> {
    let watch = watch_of(&app, &caller, &id).await?;
    let name = clean_name(&body.name).ok_or_else(|| {
        ApiError::InvalidRequest("A name is 1–64 characters with no control characters.".into())
    })?;
    app.store
        .rename_watch(&watch, &name, &caller.session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
