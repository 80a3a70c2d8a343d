//! Rule 2's one entry point for handlers: turn "caller + watch id + action"
//! into a [`BoundWatch`], a 404 that looks exactly like a watch that does
//! not exist (the watch is not the caller's family's), or a 403
//! `role_forbids` (the caller's role does not allow the action on a watch
//! they can see, which reveals nothing they could not already see).

use waymark_protocol::co_parents::FamilyAction;
use waymark_protocol::ids::WatchId;

use crate::error::ApiError;
use crate::storage::Store;
use crate::storage::devices::BoundWatch;
use crate::storage::sessions::Caller;

/// The watch, if it is bound to the caller's family (live or
/// revoked-with-history) and the caller's role allows `action`.
pub async fn watch_of(
    store: &Store,
    caller: &Caller,
    raw_id: &str,
    action: FamilyAction,
) -> Result<BoundWatch, ApiError> {
    let id = WatchId::parse(raw_id).ok_or(ApiError::NotFound)?;
    let watch = store
        .bound_watch(&caller.family_id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    allow(caller, action)?;
    Ok(watch)
}

/// The watch, if it is bound to the caller's family, not revoked, and the
/// caller's role allows `action`.
pub async fn live_watch_of(
    store: &Store,
    caller: &Caller,
    raw_id: &str,
    action: FamilyAction,
) -> Result<BoundWatch, ApiError> {
    let watch = watch_of(store, caller, raw_id, action).await?;
    if watch.is_live() {
        Ok(watch)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Whether the caller's role allows `action` in their family (for actions
/// that name no watch: pairing, invitations, members, retention).
pub fn allow(caller: &Caller, action: FamilyAction) -> Result<(), ApiError> {
    if caller.role.allows(action) {
        return Ok(());
    }
    Err(ApiError::RoleForbids(match action {
        FamilyAction::SeeWatches => "see the family's watches",
        FamilyAction::ManageWatches => "pair, rename or revoke watches",
        FamilyAction::ManageMembers => "invite, remove or change members",
        FamilyAction::SetRetention => "change how long history is kept",
        FamilyAction::EditZones => "change safe zones",
    }))
}
