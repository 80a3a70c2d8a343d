//! Rule 2's one entry point for handlers: turn "caller + watch id" into a
//! [`BoundWatch`] or a 404 that looks exactly like a watch that does not exist.

use waymark_protocol::ids::WatchId;

use crate::error::ApiError;
use crate::storage::Store;
use crate::storage::devices::BoundWatch;
use crate::storage::sessions::Caller;

/// The watch, if it is bound to the caller's account (live or revoked-with-history).
pub async fn watch_of(
    store: &Store,
    caller: &Caller,
    raw_id: &str,
) -> Result<BoundWatch, ApiError> {
    let id = WatchId::parse(raw_id).ok_or(ApiError::NotFound)?;
    store
        .bound_watch(&caller.account_id, &id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The watch, if it is bound to the caller's account and not revoked.
pub async fn live_watch_of(
    store: &Store,
    caller: &Caller,
    raw_id: &str,
) -> Result<BoundWatch, ApiError> {
    let watch = watch_of(store, caller, raw_id).await?;
    if watch.is_live() {
        Ok(watch)
    } else {
        Err(ApiError::NotFound)
    }
}
