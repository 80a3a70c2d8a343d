//! Pairing, the watch's half (issue 13, pairing v2): its offer (certificate
//! checked against the manufacturer CAs, signature checked with the key in
//! it, a locator and a SPAKE2 message kept, nothing derived from the code's
//! secret), and its signed word on the answer a family gave, which alone
//! binds it.

use axum::extract::State;
use axum::http::StatusCode;
use waymark_protocol::device::{DeviceError, verify_device_certificate};
use waymark_protocol::error::ErrorBody;
use waymark_protocol::ids::WatchId;
use waymark_protocol::pairing::{
    MAX_OFFER_MS, OfferAccepted, SignedOffer, SignedPairingConfirmation,
};
use waymark_protocol::report::MAX_FUTURE_SKEW_MS;
use waymark_protocol::signing::unb64;

use super::reporting::signed_by_device;
use crate::error::ApiError;
use crate::extractors::Json;
use crate::parent_api::pairing::{
    MAX_WRONG_PER_ACCOUNT, MAX_WRONG_PER_SOURCE, WINDOW_MS, account_attempts, source_attempts,
};
use crate::state::AppState;
use crate::storage::pairing::{Finished, OfferStored, OfferingDevice};

/// `POST /device/v1/pairing-offers` (from the watch).
#[utoipa::path(post, path = "/device/v1/pairing-offers", tag = "device",
    request_body = SignedOffer,
    responses(
        (status = 201, description = "The offer is stored; the code may be shown", body = OfferAccepted),
        (status = 400, description = "Not a valid offer, or the watch's clock is off (`clock_skew`)", body = ErrorBody),
        (status = 401, description = "Certificate not from a trusted manufacturer, or a bad signature", body = ErrorBody),
        (status = 403, description = "This cloud accepts only TPM-resident keys and the certificate does not say so (`hardware_key_required`)", body = ErrorBody),
        (status = 409, description = "Another live offer has this locator (`locator_taken`): make a new code", body = ErrorBody),
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
    if !offer.is_well_formed() {
        return Err(ApiError::InvalidRequest(
            "An offer needs a four-character locator and a SPAKE2 message.".into(),
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
    let device = OfferingDevice {
        id: &cert.device_id,
        serial: &cert.serial,
        model: &cert.model,
        certificate: &cert.der,
    };
    match app.store.store_offer(device, &signed).await? {
        OfferStored::Stored => {}
        OfferStored::Revoked => return Err(ApiError::Revoked),
        OfferStored::LocatorTaken => return Err(ApiError::LocatorTaken),
    }
    tracing::info!("pairing offer stored");
    Ok((
        StatusCode::CREATED,
        axum::Json(OfferAccepted {
            expires_at: offer.expires_at,
        }),
    ))
}

/// `POST /device/v1/pairing-confirmations` (from the watch): its word on
/// the answer its status carried.
#[utoipa::path(post, path = "/device/v1/pairing-confirmations", tag = "device",
    request_body = SignedPairingConfirmation,
    responses(
        (status = 204, description = "Taken: bound to the answering account, or the offer ended for a wrong code"),
        (status = 400, description = "Not a valid confirmation", body = ErrorBody),
        (status = 401, description = "Unknown watch or bad signature (`unknown_device`)", body = ErrorBody),
        (status = 404, description = "No answer of that account waits for this watch's word (`not_found`)", body = ErrorBody),
        (status = 409, description = "The watch is already paired (`already_paired`)", body = ErrorBody),
        (status = 410, description = "This watch was revoked (`revoked`)", body = ErrorBody),
    ))]
pub async fn confirm(
    State(app): State<AppState>,
    Json(signed): Json<SignedPairingConfirmation>,
) -> Result<StatusCode, ApiError> {
    let word = &signed.confirmation;
    let device_id = WatchId::parse(&word.device_id).ok_or(ApiError::UnknownDevice)?;
    signed_by_device(&app, &device_id, |cert| signed.verify(cert).is_ok()).await?;
    if !word.is_well_formed() {
        return Err(ApiError::InvalidRequest(
            "A confirmation names a locator; accepted, it carries the transcript hash and the watch's confirmation, refused, neither.".into(),
        ));
    }
    match app.store.finish_pairing(&device_id, word).await? {
        Finished::Paired { watch, certificate } => {
            tracing::info!("watch paired");
            // Its first upload then verifies without a database read.
            app.device_certificates.insert(watch.id(), &certificate);
        }
        Finished::WrongCode { account_id, source } => {
            tracing::info!("pairing refused by the watch: wrong code");
            // A wrong code counts against the account and address that typed it.
            let limits = [
                (account_attempts(&account_id), MAX_WRONG_PER_ACCOUNT),
                (source_attempts(&source), MAX_WRONG_PER_SOURCE),
            ];
            for (key, max) in limits {
                app.store.spend_attempt(&key, WINDOW_MS, max).await?;
            }
        }
        Finished::NoSuchAnswer => return Err(ApiError::NotFound),
        Finished::AlreadyBound => return Err(ApiError::AlreadyPaired),
    }
    Ok(StatusCode::NO_CONTENT)
}
