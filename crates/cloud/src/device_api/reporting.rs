//! Location reports in: the watch's signed status polls, setup records and
//! sealed batches. A batch is verified, its shape checked, stored durably
//! by the ingest writer, then acknowledged, and only then published to
//! live streams. The cloud never sees a place: fixes are sealed to the family.

use axum::extract::State;
use waymark_protocol::device::hardware_key;
use waymark_protocol::error::ErrorBody;
use waymark_protocol::ids::WatchId;
use waymark_protocol::report::BatchAck;
use waymark_protocol::sealed_report::{ShapeError, SignedSealedBatch, SignedSetupRecord};
use waymark_protocol::status_poll::{DeviceStatus, STATUS_WINDOW_MS, SignedStatus};

use crate::error::ApiError;
use crate::extractors::Json;
use crate::live_bus::{LiveEvent, LiveKind};
use crate::state::AppState;
use crate::storage::devices::Device;
use crate::storage::ingest::{Ingest, StoredBatch};
use crate::storage::reports::SetupStored;

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
    if signed
        .status
        .zones
        .as_ref()
        .is_some_and(|w| !w.is_well_formed())
    {
        return Err(ApiError::InvalidRequest(
            "The zone word's refusal code is not valid.".into(),
        ));
    }
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
    // A bound watch's word on its zones is kept for the family's apps (they
    // check its signature), and it is handed a newer set if one is stored.
    let zones = match (&owner, &signed.status.zones) {
        (Some(_), Some(word)) => {
            app.store.record_zone_word(&signed, word).await?;
            app.store.zones_for_watch(&device.id, word.held).await?
        }
        _ => None,
    };
    let last_hash = app.store.chain_hash_of(&device.id, device.last_seq).await?;
    Ok(axum::Json(DeviceStatus {
        paired: owner.is_some(),
        owner,
        last_seq: device.last_seq as u64,
        last_hash,
        pairing_answer,
        family,
        zones,
    }))
}

/// Setups one watch may post per [`SETUP_WINDOW_MS`]: a watch makes one
/// each start and each key epoch, so this is far above honest use and
/// keeps a faulty or stolen key from filling the store.
const MAX_SETUPS_PER_WINDOW: i64 = 60;
const SETUP_WINDOW_MS: i64 = 60 * 60 * 1000;

/// `POST /device/v1/setups`: a watch's new HPKE setup under a family key
/// epoch, stored before the batches that name it and sent to the family's
/// live streams. The cloud checks who signed it, never what it opens.
#[utoipa::path(post, path = "/device/v1/setups", tag = "device",
    request_body = SignedSetupRecord,
    responses(
        (status = 204, description = "Stored (or stored before)"),
        (status = 400, description = "The setup id is not derived from its key (`invalid_request`)", body = ErrorBody),
        (status = 401, description = "Unknown watch or bad signature (`unknown_device`)", body = ErrorBody),
        (status = 403, description = "This cloud accepts only TPM-resident keys (`hardware_key_required`)", body = ErrorBody),
        (status = 409, description = "Not paired (`not_paired`)", body = ErrorBody),
        (status = 410, description = "This watch was revoked (`revoked`)", body = ErrorBody),
        (status = 429, description = "Too many setups from this watch (`rate_limited`)", body = ErrorBody),
    ))]
pub async fn setup(
    State(app): State<AppState>,
    Json(signed): Json<SignedSetupRecord>,
) -> Result<axum::http::StatusCode, ApiError> {
    let device_id = WatchId::parse(&signed.setup.device_id).ok_or(ApiError::UnknownDevice)?;
    if !signed.setup.is_consistent() {
        return Err(ApiError::InvalidRequest(
            "setup_id must be the first 16 bytes of SHA-256 of enc.".into(),
        ));
    }
    let device = signed_by_device(&app, &device_id, |cert| signed.verify(cert).is_ok()).await?;
    let setup_id = signed.setup.setup_id.0;
    if app.known_setups.contains(device_id.as_str(), &setup_id) {
        return Ok(axum::http::StatusCode::NO_CONTENT);
    }
    let body = serde_json::to_string(&signed).map_err(anyhow::Error::from)?;
    let now = app.store.now();
    let stored = app
        .store
        .store_setup(
            &device.id,
            &signed.setup,
            &body,
            now,
            (SETUP_WINDOW_MS, MAX_SETUPS_PER_WINDOW),
        )
        .await?;
    let family = match stored {
        SetupStored::New(family) => Some(family),
        SetupStored::Before => None,
        SetupStored::NotPaired => return Err(ApiError::NotPaired),
        SetupStored::OverBudget => return Err(ApiError::IngestBudget),
    };
    app.known_setups.insert(device_id.as_str(), setup_id);
    if let Some(account_id) = family {
        let event = LiveEvent {
            family_id: account_id,
            watch_id: device_id.to_string(),
            kind: LiveKind::Setup,
            data: body,
        };
        app.live.announce(app.store.pool(), event).await;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /device/v2/batches`: verify, check the shape, store durably, then
/// acknowledge. The fixes inside are sealed to the family: the cloud checks
/// who sent the batch, its number, its times and its size, never a place.
#[utoipa::path(post, path = "/device/v2/batches", tag = "device",
    request_body = SignedSealedBatch,
    responses(
        (status = 200, description = "Stored durably (or stored before): the watch may forget it", body = BatchAck),
        (status = 400, description = "The batch cannot be right (`invalid_batch`), is too large (`batch_too_large`), or the clock is off (`clock_skew`)", body = ErrorBody),
        (status = 401, description = "Unknown watch or bad signature (`unknown_device`)", body = ErrorBody),
        (status = 403, description = "This cloud accepts only TPM-resident keys (`hardware_key_required`)", body = ErrorBody),
        (status = 409, description = "Not paired (`not_paired`), the setup it names was not posted (`unknown_setup`), or the sequence number holds another batch (`sequence_reused`)", body = ErrorBody),
        (status = 410, description = "This watch was revoked (`revoked`)", body = ErrorBody),
        (status = 429, description = "Over the watch's budget (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "Not stored; retry after `Retry-After` seconds (`unavailable`)", body = ErrorBody),
    ))]
pub async fn upload(
    State(app): State<AppState>,
    Json(signed): Json<SignedSealedBatch>,
) -> Result<axum::Json<BatchAck>, ApiError> {
    let batch = &signed.batch;
    let header = &batch.header;
    // Cheap shape checks first, so an oversized batch costs no signature check.
    match batch.check_shape(app.store.now()) {
        Ok(()) => {}
        Err(ShapeError::TooManyFixes) => return Err(ApiError::BatchTooLarge),
        // The watch's clock is fast: it corrects (from `Date`) and resends.
        Err(ShapeError::InFuture) => return Err(ApiError::ClockSkew),
        Err(e) => return Err(ApiError::InvalidBatch(e.message())),
    }
    let device_id = WatchId::parse(&header.device_id).ok_or(ApiError::UnknownDevice)?;
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
    let setup_id = header.setup_id.0;
    if !app.known_setups.contains(device_id.as_str(), &setup_id) {
        if !app.store.has_setup(&device_id, &header.setup_id).await? {
            return Err(ApiError::UnknownSetup);
        }
        app.known_setups.insert(device_id.as_str(), setup_id);
    }
    let stored = StoredBatch::of(&signed)
        .ok_or_else(|| ApiError::InvalidBatch(ShapeError::NoFixes.message()))?;
    let acked = BatchAck {
        acked_seq: header.seq,
    };
    // The writer takes the batch; the live event (SQLite only) keeps its body.
    let live_data = app.live.wants_local_events().then(|| stored.body.clone());
    match app.store.ingest(stored).await? {
        (Ingest::Stored, Some(family)) => {
            // Only after the commit: subscribers never see a batch that could be lost.
            if let Some(data) = live_data {
                app.live.published([LiveEvent {
                    family_id: family,
                    watch_id: header.device_id.clone(),
                    kind: LiveKind::Batch,
                    data,
                }]);
            }
            Ok(axum::Json(acked))
        }
        (Ingest::AlreadyStored, _) => Ok(axum::Json(acked)),
        (Ingest::Stored, None) => Err(anyhow::anyhow!("stored batch without an account").into()),
        (Ingest::Stale { .. }, _) => Err(ApiError::SequenceReused),
        (Ingest::NotPaired, _) => Err(ApiError::NotPaired),
        (Ingest::Revoked, _) => Err(ApiError::Revoked),
        (Ingest::OverBudget, _) => Err(ApiError::IngestBudget),
    }
}
