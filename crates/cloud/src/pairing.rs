//! Pairing a watch: the watch uploads a signed offer holding its code's
//! hash; the parent types the code; the cloud binds the watch to the
//! parent's account if the code matches a live, unused, signed offer of a
//! watch bound to nobody. Wrong codes are limited per account and per source.

use axum::extract::State;
use axum::http::StatusCode;
use waymark_protocol::device::{DeviceError, verify_device_certificate};
use waymark_protocol::pairing::{
    MAX_OFFER_MS, OfferAccepted, PairRequest, PairingCode, SignedOffer,
};
use waymark_protocol::report::MAX_FUTURE_SKEW_MS;
use waymark_protocol::signing::unb64;
use waymark_protocol::watches::WatchInfo;

use crate::app::AppState;
use crate::error::ApiError;
use crate::ids::now_ms;
use crate::server::Peer;
use crate::signin::Json;
use crate::storage::Caller;
use crate::storage::watches::Pairing;

/// Wrong codes allowed per account and per source address in one window.
pub const MAX_WRONG_PER_ACCOUNT: i64 = 10;
pub const MAX_WRONG_PER_SOURCE: i64 = 30;
pub const WINDOW_MS: i64 = 60 * 60 * 1000;

/// `POST /device/v1/pairing-offers` (from the watch).
pub async fn offer(
    State(app): State<AppState>,
    Json(signed): Json<SignedOffer>,
) -> Result<(StatusCode, axum::Json<OfferAccepted>), ApiError> {
    let der = unb64(&signed.certificate).ok_or(ApiError::UntrustedCertificate)?;
    let now = now_ms();
    let cert =
        verify_device_certificate(&der, &app.manufacturers, (now / 1000) as u64).map_err(|e| {
            match e {
                DeviceError::MalformedCertificate | DeviceError::UntrustedCertificate => {
                    ApiError::UntrustedCertificate
                }
                _ => ApiError::BadSignature,
            }
        })?;
    let offer = &signed.offer;
    // The id is derived from the key: an offer cannot speak for another device.
    if offer.device_id != cert.device_id {
        return Err(ApiError::BadSignature);
    }
    signed
        .verify(&cert.der)
        .map_err(|_| ApiError::BadSignature)?;
    if offer.code_hash.len() != 64 || !offer.code_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::InvalidRequest(
            "code_hash must be 64 hex characters.".into(),
        ));
    }
    if (offer.created_at - now).abs() > MAX_FUTURE_SKEW_MS {
        return Err(ApiError::ClockSkew);
    }
    if offer.expires_at <= now || offer.expires_at - offer.created_at > MAX_OFFER_MS {
        return Err(ApiError::InvalidRequest(
            "An offer must expire in the future, at most 10 minutes after it was made.".into(),
        ));
    }
    let stored = app
        .store
        .store_offer(
            &cert.device_id,
            &cert.serial,
            &cert.model,
            &cert.der,
            &offer.code_hash,
            offer.created_at,
            offer.expires_at,
        )
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                ApiError::InvalidRequest("Make a new code.".into())
            }
            _ => e.into(),
        })?;
    if !stored {
        return Err(ApiError::Revoked);
    }
    tracing::info!("pairing offer stored");
    Ok((
        StatusCode::CREATED,
        axum::Json(OfferAccepted {
            expires_at: offer.expires_at,
        }),
    ))
}

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
        Pairing::Paired(watch) => {
            tracing::info!("watch paired");
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
