//! Pairing a watch, the family's half (issue 13, pairing v2): the app reads
//! the offer the code's locator names, checks it itself, and answers it
//! once with its SPAKE2 message and the sealed family bundle; the cloud
//! relays the answer to the watch, and binds the watch only on the watch's
//! signed word, to the family. Only an owner pairs. Unknown locators and
//! wrong codes are limited per family and per source.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use waymark_protocol::co_parents::FamilyAction;
use waymark_protocol::pairing::{Locator, OfferState, OfferView, PairingAnswer};

use crate::error::ApiError;
use crate::extractors::{Caller, Json};
use crate::guess_limits::Attempt;
use crate::server::Peer;
use crate::state::AppState;
use crate::storage::pairing::{Answering, Looked};

/// Wrong codes allowed per family and per source address in one window.
pub const MAX_WRONG_PER_ACCOUNT: i64 = 10;
pub const MAX_WRONG_PER_SOURCE: i64 = 30;
pub const WINDOW_MS: i64 = 60 * 60 * 1000;

/// The wrong-code counter of one family.
pub fn account_attempts(account_id: &str) -> String {
    format!("pair:account:{account_id}")
}

/// The wrong-code counter of one source address.
pub fn source_attempts(source: &str) -> String {
    format!("pair:source:{source}")
}

/// Counts a pairing attempt against the family's and the source's limits
/// (only an owner pairs); given back unless the code was wrong.
async fn spend_attempt<'a>(
    app: &'a AppState,
    caller: &Caller,
    peer: &Peer,
) -> Result<Attempt<'a>, ApiError> {
    crate::binding::allow(caller, FamilyAction::ManageWatches)?;
    Attempt::spend(
        &app.store,
        [
            (
                account_attempts(caller.family_id.as_str()),
                MAX_WRONG_PER_ACCOUNT,
            ),
            (
                source_attempts(&peer.0.ip().to_string()),
                MAX_WRONG_PER_SOURCE,
            ),
        ],
        WINDOW_MS,
    )
    .await
}

/// A locator as typed into a path: anything else names no offer.
fn locator(raw: &str) -> Result<Locator, ApiError> {
    Locator::parse(raw).ok_or(ApiError::InvalidCode)
}

/// `GET /api/v1/pairing-offers/{locator}` (from the parent's app).
#[utoipa::path(get, path = "/api/v1/pairing-offers/{locator}", tag = "watches",
    params(("locator" = String, Path, description = "The code's first four characters", pattern = "^[0-9A-HJKMNP-TV-Z]{4}$")),
    responses(
        (status = 200, description = "The offer as the watch signed it, and where its pairing is", body = OfferView),
        (status = 400, description = "No live offer has this locator (`invalid_code`), or it expired (`code_expired`)", body = waymark_protocol::error::ErrorBody),
    ))]
pub async fn offer(
    State(app): State<AppState>,
    caller: Caller,
    peer: Peer,
    Path(raw): Path<String>,
) -> Result<axum::Json<OfferView>, ApiError> {
    let attempt = spend_attempt(&app, &caller, &peer).await?;
    let locator = locator(&raw)?;
    let seen = match app
        .store
        .offer_for(locator.as_str(), &caller.family_id)
        .await?
    {
        Looked::NoSuchCode => return Err(ApiError::InvalidCode),
        Looked::Expired => {
            attempt.refund().await?;
            return Err(ApiError::CodeExpired);
        }
        Looked::Found(seen) => seen,
    };
    attempt.refund().await?;
    let watch = match seen.state {
        OfferState::Paired => match app
            .store
            .bound_watch(&caller.family_id, &seen.device_id)
            .await?
        {
            Some(bound) => app.store.watch_info(&bound).await?,
            None => None,
        },
        _ => None,
    };
    Ok(axum::Json(OfferView {
        signed: seen.signed,
        state: seen.state,
        watch_confirmation: seen.watch_confirmation,
        watch,
    }))
}

/// `POST /api/v1/pairing-offers/{locator}/answer` (from the parent's app).
#[utoipa::path(post, path = "/api/v1/pairing-offers/{locator}/answer", tag = "watches",
    params(("locator" = String, Path, description = "The code's first four characters", pattern = "^[0-9A-HJKMNP-TV-Z]{4}$")),
    request_body = PairingAnswer,
    responses(
        (status = 202, description = "Relayed to the watch: read the offer until it is `paired` or `wrong_code`"),
        (status = 400, description = "No live offer has this locator (`invalid_code`), it expired (`code_expired`) or was answered (`code_used`)", body = waymark_protocol::error::ErrorBody),
        (status = 409, description = "The watch is paired already (`already_paired`, `already_yours`)", body = waymark_protocol::error::ErrorBody),
    ))]
pub async fn answer(
    State(app): State<AppState>,
    caller: Caller,
    peer: Peer,
    Path(raw): Path<String>,
    Json(body): Json<PairingAnswer>,
) -> Result<StatusCode, ApiError> {
    if !body.is_well_formed() {
        return Err(ApiError::InvalidRequest(
            "An answer is a SPAKE2 message, a 32-byte confirmation and a sealed bundle, each base64url.".into(),
        ));
    }
    let attempt = spend_attempt(&app, &caller, &peer).await?;
    let locator = locator(&raw)?;
    let outcome = app
        .store
        .answer_offer(
            locator.as_str(),
            &caller.family_id,
            &caller.session_id,
            &peer.0.ip().to_string(),
            &body,
        )
        .await?;
    if matches!(outcome, Answering::NoSuchCode) {
        return Err(ApiError::InvalidCode);
    }
    // A wrong secret is counted when the watch says so.
    attempt.refund().await?;
    match outcome {
        Answering::Answered => {
            tracing::info!("pairing offer answered");
            Ok(StatusCode::ACCEPTED)
        }
        Answering::NoSuchCode => Err(ApiError::InvalidCode),
        Answering::Expired => Err(ApiError::CodeExpired),
        Answering::Used => Err(ApiError::CodeUsed),
        Answering::AlreadyBound => Err(ApiError::AlreadyPaired),
        Answering::AlreadyYours => Err(ApiError::AlreadyYours),
    }
}
