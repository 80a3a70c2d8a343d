//! Co-parents (issue 13, design §14): the family's members and roles, and
//! invitations. Owners invite (the code is shown once and only its hash is
//! kept), change roles and remove members; any member may leave; any signed-in
//! parent may look at an invitation and accept it. Unknown, used, cancelled
//! and expired codes answer alike, and failed attempts are limited per
//! account and per source address, as pairing codes are.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use waymark_protocol::co_parents::{
    FamilyAction, FamilyMembers, Invitation, InvitationCode, InvitationCodeBody, InvitationPreview,
    NewInvitation, RoleChange,
};
use waymark_protocol::ids::{AccountId, InvitationId};

use crate::binding::allow;
use crate::error::ApiError;
use crate::extractors::{Caller, Json};
use crate::guess_limits::Attempt;
use crate::live_bus::LiveEvent;
use crate::server::Peer;
use crate::state::AppState;
use crate::storage::co_parents::{Accepted, MemberChange};

/// Failed invitation attempts allowed per account and per source in one window.
pub const MAX_FAILED_PER_ACCOUNT: i64 = 10;
pub const MAX_FAILED_PER_SOURCE: i64 = 30;
const WINDOW_MS: i64 = 60 * 60 * 1000;

type ApiResult<T> = Result<axum::Json<T>, ApiError>;

#[utoipa::path(get, path = "/api/v1/family/members", tag = "family",
    responses((status = 200, description = "The caller's family: its members and roles, and (for an owner) its open invitations", body = FamilyMembers)))]
pub async fn members(State(app): State<AppState>, caller: Caller) -> ApiResult<FamilyMembers> {
    Ok(axum::Json(
        app.store
            .family_members(&caller.family_id, &caller.account_id, caller.role)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/family/invitations", tag = "family",
    request_body = NewInvitation,
    responses(
        (status = 201, description = "The invitation; its code is shown this once", body = Invitation),
        (status = 403, description = "Only an owner invites (`role_forbids`)", body = waymark_protocol::error::ErrorBody)))]
pub async fn invite(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<NewInvitation>,
) -> Result<(StatusCode, axum::Json<Invitation>), ApiError> {
    allow(&caller, FamilyAction::ManageMembers)?;
    let code = InvitationCode::generate();
    let (id, expires_at) = app
        .store
        .create_invitation(
            &caller.family_id,
            (&caller.account_id, &caller.session_id),
            body.role,
            &code.lookup_hash(),
        )
        .await?
        .ok_or(ApiError::TooManyInvitations)?;
    tracing::info!(role = body.role.as_str(), "invitation made");
    Ok((
        StatusCode::CREATED,
        axum::Json(Invitation {
            id: id.to_string(),
            code: code.display(),
            link: code.link(),
            role: body.role,
            expires_at,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/family/invitations/{id}", tag = "family",
    params(("id" = String, Path, description = "The invitation's id", pattern = "^[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Cancelled: its code no longer works"),
        (status = 403, description = "Only an owner cancels (`role_forbids`)", body = waymark_protocol::error::ErrorBody)))]
pub async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = InvitationId::parse(&id).ok_or(ApiError::NotFound)?;
    // Another family's invitation is not found, whatever the caller's role.
    if !app.store.invitation_open(&caller.family_id, &id).await? {
        return Err(ApiError::NotFound);
    }
    allow(&caller, FamilyAction::ManageMembers)?;
    if app
        .store
        .cancel_invitation(&caller.family_id, &id, &caller.session_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(patch, path = "/api/v1/family/members/{id}", tag = "family",
    params(("id" = String, Path, description = "The member's account id", pattern = "^[0-9a-f]{32}$")),
    request_body = RoleChange,
    responses(
        (status = 204, description = "The member has the new role"),
        (status = 403, description = "Only an owner changes roles (`role_forbids`)", body = waymark_protocol::error::ErrorBody)))]
pub async fn change_role(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<RoleChange>,
) -> Result<StatusCode, ApiError> {
    let member = member_of(&app, &caller, &id).await?;
    allow(&caller, FamilyAction::ManageMembers)?;
    member_change(
        app.store
            .set_role(&caller.family_id, &member, body.role, &caller.session_id)
            .await?,
    )
}

#[utoipa::path(delete, path = "/api/v1/family/members/{id}", tag = "family",
    params(("id" = String, Path, description = "The member's account id (your own to leave)", pattern = "^[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Removed: their access ends now, and the family's computers replace the key"),
        (status = 403, description = "Only an owner removes someone else (`role_forbids`)", body = waymark_protocol::error::ErrorBody)))]
pub async fn remove(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let member = member_of(&app, &caller, &id).await?;
    if member != caller.account_id {
        allow(&caller, FamilyAction::ManageMembers)?;
    }
    let outcome = app
        .store
        .remove_member(&caller.family_id, &member, &caller.session_id)
        .await?;
    if outcome == MemberChange::Done {
        tracing::info!("family member removed");
        // Their live streams end now, not at the next periodic check.
        app.live
            .announce(app.store.pool(), LiveEvent::recheck(&caller.family_id))
            .await;
    }
    member_change(outcome)
}

/// A member of the caller's family; anyone else is not found, whatever the
/// caller's role (as for watches: 404 before 403).
async fn member_of(app: &AppState, caller: &Caller, raw: &str) -> Result<AccountId, ApiError> {
    let member = AccountId::parse(raw).ok_or(ApiError::NotFound)?;
    match app.store.role_in(&caller.family_id, &member).await? {
        Some(_) => Ok(member),
        None => Err(ApiError::NotFound),
    }
}

fn member_change(outcome: MemberChange) -> Result<StatusCode, ApiError> {
    match outcome {
        MemberChange::Done => Ok(StatusCode::NO_CONTENT),
        MemberChange::NotFound => Err(ApiError::NotFound),
        MemberChange::Founder => Err(ApiError::FounderStays),
    }
}

/// Counts an attempt at a code against the account's and the source's
/// limits; given back unless the code named no open invitation.
async fn spend_attempt<'a>(
    app: &'a AppState,
    caller: &Caller,
    peer: &Peer,
) -> Result<Attempt<'a>, ApiError> {
    Attempt::spend(
        &app.store,
        [
            (
                format!("invite:account:{}", caller.account_id),
                MAX_FAILED_PER_ACCOUNT,
            ),
            (
                format!("invite:source:{}", peer.0.ip()),
                MAX_FAILED_PER_SOURCE,
            ),
        ],
        WINDOW_MS,
    )
    .await
}

/// The code as typed: a malformed one is as invalid as an unknown one.
fn code_of(body: &InvitationCodeBody) -> Result<InvitationCode, ApiError> {
    InvitationCode::parse(&body.code).ok_or(ApiError::InvitationInvalid)
}

#[utoipa::path(post, path = "/api/v1/invitations/preview", tag = "family",
    request_body = InvitationCodeBody,
    responses(
        (status = 200, description = "The family and role the invitation is for, shown before accepting", body = InvitationPreview),
        (status = 404, description = "No open invitation has this code (`invitation_invalid`)", body = waymark_protocol::error::ErrorBody)))]
pub async fn preview(
    State(app): State<AppState>,
    caller: Caller,
    peer: Peer,
    Json(body): Json<InvitationCodeBody>,
) -> ApiResult<InvitationPreview> {
    let attempt = spend_attempt(&app, &caller, &peer).await?;
    let code = code_of(&body)?;
    let found = app.store.invitation_preview(&code.lookup_hash()).await?;
    let preview = found.ok_or(ApiError::InvitationInvalid)?;
    attempt.refund().await?;
    Ok(axum::Json(preview))
}

#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "family",
    request_body = InvitationCodeBody,
    responses(
        (status = 200, description = "Joined: the family as the new member sees it", body = FamilyMembers),
        (status = 404, description = "No open invitation has this code (`invitation_invalid`)", body = waymark_protocol::error::ErrorBody),
        (status = 409, description = "The account has watches or other members, or is in another family (`family_not_empty`)", body = waymark_protocol::error::ErrorBody)))]
pub async fn accept(
    State(app): State<AppState>,
    caller: Caller,
    peer: Peer,
    Json(body): Json<InvitationCodeBody>,
) -> ApiResult<FamilyMembers> {
    let attempt = spend_attempt(&app, &caller, &peer).await?;
    let code = code_of(&body)?;
    let outcome = app
        .store
        .accept_invitation(
            &code.lookup_hash(),
            &caller.account_id,
            &caller.family_id,
            &caller.session_id,
        )
        .await?;
    let family = match outcome {
        Accepted::Invalid => return Err(ApiError::InvitationInvalid),
        Accepted::NotEmpty(why) => {
            attempt.refund().await?;
            return Err(ApiError::FamilyNotEmpty(why));
        }
        Accepted::Joined(family) => family,
    };
    attempt.refund().await?;
    tracing::info!("invitation accepted");
    // Streams opened for the family the account left end now.
    app.live
        .announce(app.store.pool(), LiveEvent::recheck(&caller.family_id))
        .await;
    let role = app
        .store
        .role_in(&family, &caller.account_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(
        app.store
            .family_members(&family, &caller.account_id, role)
            .await?,
    ))
}
