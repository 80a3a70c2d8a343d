//! Rule 2's one entry point for handlers: turn "caller + watch id" into a
//! [`BoundWatch`] or a 404 that looks exactly like a watch that does not exist.

use crate::app::AppState;
use crate::error::ApiError;
use crate::ids::is_id;
use crate::storage::Caller;
use crate::storage::watches::BoundWatch;

/// The watch, if it is bound to the caller's account (live or revoked-with-history).
pub async fn watch_of(
    app: &AppState,
    caller: &Caller,
    watch_id: &str,
) -> Result<BoundWatch, ApiError> {
    if !is_id(watch_id) {
        return Err(ApiError::NotFound);
    }
    app.store
        .bound_watch(&caller.account_id, watch_id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The watch, if it is bound to the caller's account and not revoked.
pub async fn live_watch_of(
    app: &AppState,
    caller: &Caller,
    watch_id: &str,
) -> Result<BoundWatch, ApiError> {
    let watch = watch_of(app, caller, watch_id).await?;
    if watch.is_live() {
        Ok(watch)
    } else {
        Err(ApiError::NotFound)
    }
}
