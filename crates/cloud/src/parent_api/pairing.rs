//! Pairing a watch, the parent's half: the parent types the code the
//! watch shows; the cloud binds the watch to the parent's account if the
//! code matches a live, unused, signed offer of a watch bound to nobody.
//! Wrong codes are limited per account and per source.

use axum::extract::State;
use axum::http::StatusCode;
use waymark_protocol::pairing::{PairRequest, PairingCode};
use waymark_protocol::watches::WatchInfo;

use crate::error::ApiError;
use crate::extractors::{Caller, Json};
use crate::server::Peer;
use crate::state::AppState;
use crate::storage::devices::Pairing;

/// Wrong codes allowed per account and per source address in one window.
pub const MAX_WRONG_PER_ACCOUNT: i64 = 10;
pub const MAX_WRONG_PER_SOURCE: i64 = 30;
pub const WINDOW_MS: i64 = 60 * 60 * 1000;

/// `POST /api/v1/pairings` (from the parent's app).
#[utoipa::path(post, path = "/api/v1/pairings", tag = "watches",
    request_body = PairRequest,
    responses((status = 201, description = "The watch is now bound to this account", body = WatchInfo)))]
pub async fn pair(
    State(app): State<AppState>,
    caller: Caller,
    peer: Peer,
    Json(body): Json<PairRequest>,
) -> Result<(StatusCode, axum::Json<WatchInfo>), ApiError> {
    // Each attempt is counted before the code is looked at, in one atomic
    // step per limit; attempts that were not wrong codes are given back.
    let account_key = format!("pair:account:{}", caller.account_id);
    let source_key = format!("pair:source:{}", peer.0.ip());
    if !app
        .store
        .spend_attempt(&account_key, WINDOW_MS, MAX_WRONG_PER_ACCOUNT)
        .await?
    {
        return Err(ApiError::TooManyAttempts);
    }
    if !app
        .store
        .spend_attempt(&source_key, WINDOW_MS, MAX_WRONG_PER_SOURCE)
        .await?
    {
        app.store.refund_attempt(&account_key).await?;
        return Err(ApiError::TooManyAttempts);
    }
    let not_wrong = || async {
        app.store.refund_attempt(&account_key).await?;
        app.store.refund_attempt(&source_key).await?;
        Ok::<_, ApiError>(())
    };
    let Some(code) = PairingCode::parse(&body.code) else {
        return Err(ApiError::InvalidCode);
    };
    let outcome = app
        .store
        .pair(&caller.account_id, &code.hash(), &caller.session_id)
        .await;
    if !matches!(outcome, Ok(Pairing::NoSuchCode)) {
        not_wrong().await?;
    }
    match outcome? {
        Pairing::Paired { watch, certificate } => {
            tracing::info!("watch paired");
            // Its first upload then verifies without a database read.
            app.device_certificates.insert(watch.id(), &certificate);
            let info = app
                .store
                .watch_info(&watch)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a watch just paired is missing"))?;
            Ok((StatusCode::CREATED, axum::Json(info)))
        }
        Pairing::NoSuchCode => Err(ApiError::InvalidCode),
        Pairing::Expired => Err(ApiError::CodeExpired),
        Pairing::Used => Err(ApiError::CodeUsed),
        Pairing::AlreadyBound => Err(ApiError::AlreadyPaired),
        Pairing::AlreadyYours => Err(ApiError::AlreadyYours),
        Pairing::Revoked => Err(ApiError::InvalidCode),
    }
}
