//! A watch's pairing offer: its certificate checked against the
//! manufacturer CAs, its signature over the offer checked with the key in
//! that certificate, and only the code's hash kept.

use axum::extract::State;
use axum::http::StatusCode;
use waymark_protocol::device::{DeviceError, verify_device_certificate};
use waymark_protocol::error::ErrorBody;
use waymark_protocol::pairing::{MAX_OFFER_MS, OfferAccepted, SignedOffer};
use waymark_protocol::report::MAX_FUTURE_SKEW_MS;
use waymark_protocol::signing::unb64;

use crate::error::ApiError;
use crate::extractors::Json;
use crate::state::AppState;

/// `POST /device/v1/pairing-offers` (from the watch).
#[utoipa::path(post, path = "/device/v1/pairing-offers", tag = "device",
    request_body = SignedOffer,
    responses(
        (status = 201, description = "The offer is stored; the code may be shown", body = OfferAccepted),
        (status = 400, description = "Not a valid offer, or the watch's clock is off (`clock_skew`)", body = ErrorBody),
        (status = 401, description = "Certificate not from a trusted manufacturer, or a bad signature", body = ErrorBody),
        (status = 403, description = "This cloud accepts only TPM-resident keys and the certificate does not say so (`hardware_key_required`)", body = ErrorBody),
        (status = 410, description = "This watch was revoked (`revoked`)", body = ErrorBody),
    ))]
pub async fn offer(
    State(app): State<AppState>,
    Json(signed): Json<SignedOffer>,
) -> Result<(StatusCode, axum::Json<OfferAccepted>), ApiError> {
    let der = unb64(&signed.certificate).ok_or(ApiError::UntrustedCertificate)?;
    let now = app.store.now();
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
    if app.require_hardware_keys && !cert.hardware_key {
        return Err(ApiError::HardwareKeyRequired);
    }
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
