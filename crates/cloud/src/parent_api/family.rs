//! The family's keys as the cloud sees them (issue 13): roster versions and
//! epoch key blobs that the family's computers publish and read back. The
//! cloud cannot make or open any of it; it checks what it stores with the
//! protocol's own rules so garbage is refused, though no app relies on that.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use waymark_protocol::roster::{
    EpochKeyBlob, FamilyRosters, RosterError, RosterUpdate, ThisComputer,
};
use waymark_protocol::sealed_report::LocationPublicKey;

use crate::error::ApiError;
use crate::extractors::{Caller, Json};
use crate::state::AppState;
use crate::storage::family::AddRoster;

#[utoipa::path(get, path = "/api/v1/family", tag = "family",
    responses((status = 200, description = "Every roster version of the caller's family, oldest first; none before the family's first computer founds it", body = FamilyRosters)))]
pub async fn rosters(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<FamilyRosters>, ApiError> {
    Ok(axum::Json(
        app.store.family_rosters(&caller.family_id).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/family/this-computer", tag = "family",
    request_body = ThisComputer,
    responses((status = 204, description = "Noted: when every session of this computer ends, the family's other computers replace the key")))]
pub async fn this_computer(
    State(app): State<AppState>,
    caller: Caller,
    Json(body): Json<ThisComputer>,
) -> Result<StatusCode, ApiError> {
    app.store
        .record_computer(&caller.family_id, &caller.session_id, &body.signing)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub recipient: String,
}

#[utoipa::path(get, path = "/api/v1/family/key-blobs", tag = "family",
    params(("recipient" = String, Query, description = "The recipient's X25519 public key, base64url (32 bytes)", pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")),
    responses((status = 200, description = "The family's epoch keys sealed to that recipient (a computer or the recovery key); only its private key opens them", body = Vec<EpochKeyBlob>)))]
pub async fn key_blobs(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<Recipient>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Vec<EpochKeyBlob>>, ApiError> {
    let Query(query) = query?;
    let recipient = LocationPublicKey::parse(&query.recipient).ok_or_else(|| {
        ApiError::InvalidRequest("`recipient` is a 32-byte key, base64url.".into())
    })?;
    Ok(axum::Json(
        app.store.key_blobs(&caller.family_id, &recipient).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/family/rosters", tag = "family",
    request_body = RosterUpdate,
    responses(
        (status = 204, description = "Stored as the family's next roster version"),
        (status = 409, description = "Not the next version: another computer changed the family first (`roster_conflict`)")))]
pub async fn add_roster(
    State(app): State<AppState>,
    caller: Caller,
    Json(update): Json<RosterUpdate>,
) -> Result<StatusCode, ApiError> {
    // A computer the version adds must be one of a current member's: a
    // removed member's computer cannot be put back, and no other family's
    // computer can be listed.
    let current = app.store.family_rosters(&caller.family_id).await?;
    let members = app.store.member_ids(&caller.family_id).await?;
    let added = update.roster.roster.computers.iter().filter(|c| {
        !current
            .rosters
            .last()
            .is_some_and(|last| last.roster.contains(&c.signing))
    });
    for c in added {
        if !members.iter().any(|m| m.as_str() == c.member) {
            return Err(ApiError::InvalidRoster(
                "it lists a computer of someone who is not a member of the family",
            ));
        }
    }
    match app
        .store
        .add_roster(&caller.family_id, &update, &caller.session_id)
        .await?
    {
        AddRoster::Added => {
            tracing::info!(
                version = update.roster.roster.version,
                "family roster stored"
            );
            Ok(StatusCode::NO_CONTENT)
        }
        AddRoster::Refused(RosterError::NotNext) => Err(ApiError::RosterConflict),
        AddRoster::Refused(why) => Err(ApiError::InvalidRoster(refusal(why))),
    }
}

/// The refusal as the end of "The family's list of computers was refused: …".
fn refusal(why: RosterError) -> &'static str {
    match why {
        RosterError::UnknownSigner | RosterError::FounderMissing => {
            "it is not signed by one of the family's computers"
        }
        RosterError::BadSignature => "its signature does not verify",
        RosterError::NotNext | RosterError::BrokenChain => {
            "it does not follow the family's current version"
        }
        RosterError::OldEpoch | RosterError::KeyBlob => {
            "a key blob is damaged or for someone the roster does not list"
        }
        RosterError::Malformed => "a roster lists 1 to 32 computers, each once, with clean names",
    }
}
