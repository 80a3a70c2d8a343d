//! Revoking a lost watch: the cloud refuses its key from then on (the watch
//! is told to erase itself when it next calls), live streams stop showing
//! it, and its history is kept or deleted as the parent chose.

use axum::extract::{Path, State};
use waymark_protocol::watches::{HistoryChoice, HistoryOutcome, RevokeRequest, Revoked};

use waymark_protocol::co_parents::FamilyAction;

use crate::binding::live_watch_of;
use crate::error::ApiError;
use crate::extractors::Caller;
use crate::extractors::Json;
use crate::state::AppState;

/// `POST /api/v1/watches/{id}/revoke` `{"history": "keep" | "delete"}`.
#[utoipa::path(post, path = "/api/v1/watches/{id}/revoke", tag = "watches",
    params(("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$")),
    request_body = RevokeRequest,
    responses((status = 200, description = "Revoked: its key is refused from now on", body = Revoked)))]
pub async fn revoke(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<RevokeRequest>,
) -> Result<axum::Json<Revoked>, ApiError> {
    let watch = live_watch_of(&app.store, &caller, &id, FamilyAction::ManageWatches).await?;
    let keep = body.history == HistoryChoice::Keep;
    app.store
        .revoke_watch(&watch, keep, &caller.session_id)
        .await?;
    tracing::info!("watch revoked");
    Ok(axum::Json(Revoked {
        revoked: true,
        history: if keep {
            HistoryOutcome::Kept
        } else {
            HistoryOutcome::Deleted
        },
    }))
}
