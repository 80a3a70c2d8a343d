//! Location reports in: the watch's signed status polls and batches. A
//! batch is verified, validated, stored durably by the ingest writer, then
//! acknowledged, and only then published to live streams.

use axum::extract::State;
use waymark_protocol::device::hardware_key;
use waymark_protocol::error::ErrorBody;
use waymark_protocol::ids::WatchId;
use waymark_protocol::report::{BatchAck, FixError, MAX_FIXES_PER_BATCH, SignedBatch};
use waymark_protocol::status_poll::{DeviceStatus, STATUS_WINDOW_MS, SignedStatus};

use crate::error::ApiError;
use crate::extractors::Json;
use crate::live_bus::LiveEvent;
use crate::state::AppState;
use crate::storage::devices::Device;
use crate::storage::ingest::Ingest;
use waymark_protocol::watches::LiveFix;

/// A known, unrevoked device whose signature over `message` verifies. An
/// unknown id and a wrong signature answer alike, so the device API does
/// not tell anyone which watch ids exist.
pub(super) async fn signed_by_device(
    app: &AppState,
    device_id: &WatchId,
    verify: impl Fn(&[u8]) -> bool,
) -> Result<Device, ApiError> {
    let device = app
        .store
        .device(device_id)
        .await?
        .ok_or(ApiError::UnknownDevice)?;
    if !verify(&device.certificate) {
        return Err(ApiError::UnknownDevice);
    }
    if device.revoked_at.is_some() {
        return Err(ApiError::Revoked);
    }
    // Also for watches paired before the policy was switched on.
    if app.require_hardware_keys && !hardware_key(&device.certificate) {
        return Err(ApiError::HardwareKeyRequired);
    }
    Ok(device)
}

/// `POST /device/v1/status`: is the watch paired, to whom, and what did the cloud last store?
#[utoipa::path(post, path = "/device/v1/status", tag = "device",
    request_body = SignedStatus,
    responses(
        (status = 200, description = "The watch's state as the cloud sees it", body = DeviceStatus),
        (status = 400, description = "The watch's clock is off (`clock_skew`); the `Date` header has the cloud's time", body = ErrorBody),
        (status = 401, description = "Unknown watch or bad signature (`unknown_device`)", body = ErrorBody),
        (status = 403, description = "This cloud accepts only TPM-resident keys (`hardware_key_required`)", body = ErrorBody),
        (status = 409, description = "Not newer than the last poll (`replayed_status`)", body = ErrorBody),
        (status = 410, description = "This watch was revoked (`revoked`)", body = ErrorBody),
    ))]
pub async fn status(
    State(app): State<AppState>,
    Json(signed): Json<SignedStatus>,
) -> Result<axum::Json<DeviceStatus>, ApiError> {
    let device_id = WatchId::parse(&signed.status.device_id).ok_or(ApiError::UnknownDevice)?;
    let device = signed_by_device(&app, &device_id, |cert| signed.verify(cert).is_ok()).await?;
    // The answer's `Date` header tells a watch with a wrong clock the
    // cloud's time: it corrects and polls again, it is never stuck here.
    if (signed.status.at - app.store.now()).abs() > STATUS_WINDOW_MS {
        return Err(ApiError::ClockSkew);
    }
    // Each poll must be newer than the last one accepted: a captured poll
    // (which would reveal the owner's name) cannot be replayed.
    if !app
        .store
        .accept_status(&device.id, signed.status.at)
        .await?
    {
        return Err(ApiError::ReplayedStatus);
    }
    let owner = app.store.owner_of(&device.id).await?;
    // Only an unbound watch has an answer to weigh; only a bound one a
    // family to follow (new roster versions, new key epochs).
    let (pairing_answer, family) = match owner {
        Some(_) => (None, app.store.family_of_watch(&device.id).await?),
        None => (app.store.answer_for_watch(&device.id).await?, None),
    };
    Ok(axum::Json(DeviceStatus {
        paired: owner.is_some(),
        owner,
        last_seq: device.last_seq as u64,
        pairing_answer,
        family,
    }))
}

/// `POST /device/v1/batches`: verify, validate, store durably, then acknowledge.
#[utoipa::path(post, path = "/device/v1/batches", tag = "device",
    request_body = SignedBatch,
    responses(
        (status = 200, description = "Stored durably (or stored before): the watch may forget it", body = BatchAck),
        (status = 400, description = "A fix is not valid (`invalid_fix`), the batch is too large, or the clock is off (`clock_skew`)", body = ErrorBody),
        (status = 401, description = "Unknown watch or bad signature (`unknown_device`)", body = ErrorBody),
        (status = 403, description = "This cloud accepts only TPM-resident keys (`hardware_key_required`)", body = ErrorBody),
        (status = 409, description = "Not paired (`not_paired`), or the sequence number holds other fixes (`sequence_reused`)", body = ErrorBody),
        (status = 410, description = "This watch was revoked (`revoked`)", body = ErrorBody),
        (status = 429, description = "Over the watch's budget (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "Not stored; retry after `Retry-After` seconds (`unavailable`)", body = ErrorBody),
    ))]
pub async fn upload(
    State(app): State<AppState>,
    Json(signed): Json<SignedBatch>,
) -> Result<axum::Json<BatchAck>, ApiError> {
    let batch = &signed.batch;
    // Cheap shape checks first, so an oversized batch costs no signature check.
    if batch.fixes.is_empty() {
        return Err(ApiError::InvalidRequest(
            "A batch holds at least one fix.".into(),
        ));
    }
    if batch.fixes.len() > MAX_FIXES_PER_BATCH {
        return Err(ApiError::BatchTooLarge);
    }
    let device_id = WatchId::parse(&batch.device_id).ok_or(ApiError::UnknownDevice)?;
    match app.device_certificates.get(device_id.as_str()) {
        // Known device: verify without a database read; the writer checks revocation.
        Some(cert) => signed.verify(&cert).map_err(|_| ApiError::UnknownDevice)?,
        None => {
            let device =
                signed_by_device(&app, &device_id, |cert| signed.verify(cert).is_ok()).await?;
            app.device_certificates
                .insert(device_id.as_str(), &device.certificate);
        }
    }
    let now = app.store.now();
    for fix in &batch.fixes {
        fix.validate(now).map_err(|e| match e {
            // The watch's clock is fast: it corrects (from `Date`) and resends.
            FixError::InFuture => ApiError::ClockSkew,
            e => ApiError::InvalidFix(e.message()),
        })?;
    }
    match app.store.ingest(batch).await? {
        (Ingest::Stored, Some(account_id)) => {
            // Only after the commit: subscribers never see a fix that could be lost.
            app.live.published(batch.fixes.iter().map(|fix| LiveEvent {
                account_id: account_id.clone(),
                event: LiveFix {
                    watch_id: batch.device_id.clone(),
                    fix: *fix,
                },
            }));
            Ok(axum::Json(BatchAck {
                acked_seq: batch.seq,
            }))
        }
        (Ingest::AlreadyStored, _) => Ok(axum::Json(BatchAck {
            acked_seq: batch.seq,
        })),
        (Ingest::Stored, None) => Err(anyhow::anyhow!("stored batch without an account").into()),
        (Ingest::Stale { .. }, _) => Err(ApiError::SequenceReused),
        (Ingest::NotPaired, _) => Err(ApiError::NotPaired),
        (Ingest::Revoked, _) => Err(ApiError::Revoked),
        (Ingest::OverBudget, _) => Err(ApiError::IngestBudget),
    }
}
