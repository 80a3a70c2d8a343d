//! Revoking a lost watch: the cloud refuses its key from then on (the watch
//! is told to erase itself when it next calls), live streams stop showing
//! it, and its history is kept or deleted as the parent chose.

use axum::extract::{Path, State};
use serde_json::{Value, json};
use waymark_protocol::watches::{HistoryChoice, RevokeRequest};

use crate::app::AppState;
use crate::binding::live_watch_of;
use crate::error::ApiError;
use crate::signin::Json;
use crate::storage::Caller;

/// `POST /api/v1/watches/{id}/revoke` `{"history": "keep" | "delete"}`.
pub async fn revoke(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<RevokeRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let watch = live_watch_of(&app, &caller, &id).await?;
    let keep = body.history == HistoryChoice::Keep;
    app.store
        .revoke_watch(&watch, keep, &caller.session_id)
        .await?;
    tracing::info!("watch revoked");
    Ok(axum::Json(
        json!({ "revoked": true, "history": if keep { "kept" } else { "deleted" } }),
    ))
}
