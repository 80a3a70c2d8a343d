//! Location reports in and out: the watch's signed batches and status
//! polls, and the parent's latest fix and history, each read through the
//! binding.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use waymark_protocol::report::{
    BatchAck, DeviceStatus, Fix, FixError, MAX_FIXES_PER_BATCH, STATUS_WINDOW_MS, SignedBatch,
    SignedStatus,
};
use waymark_protocol::watches::{HistoryPage, LiveFix, MAX_HISTORY_PAGE};

use crate::app::{AppState, LiveEvent};
use crate::binding::watch_of;
use crate::error::ApiError;
use crate::ids::{is_id, now_ms};
use crate::signin::Json;
use crate::storage::Caller;
use crate::storage::Engine;
use crate::storage::watches::{Device, Ingest};
use crate::streams::{CloseConnection, channel_body};

const MAX_CACHED_DEVICES: usize = 2_000_000;

/// A known, unrevoked device whose signature over `message` verifies. An
/// unknown id and a wrong signature answer alike, so the device API does
/// not tell anyone which watch ids exist.
async fn signed_by_device(
    app: &AppState,
    device_id: &str,
    verify: impl Fn(&[u8]) -> bool,
) -> Result<Device, ApiError> {
    if !is_id(device_id) {
        return Err(ApiError::UnknownDevice);
    }
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
    Ok(device)
}

/// `POST /device/v1/status`: is the watch paired, to whom, and what did the cloud last store?
pub async fn status(
    State(app): State<AppState>,
    Json(signed): Json<SignedStatus>,
) -> Result<axum::Json<DeviceStatus>, ApiError> {
    let device = signed_by_device(&app, &signed.status.device_id, |cert| {
        signed.verify(cert).is_ok()
    })
    .await?;
    // The answer's `Date` header tells a watch with a wrong clock the
    // cloud's time: it corrects and polls again, it is never stuck here.
    if (signed.status.at - now_ms()).abs() > STATUS_WINDOW_MS {
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
    Ok(axum::Json(DeviceStatus {
        paired: owner.is_some(),
        owner,
        last_seq: device.last_seq as u64,
    }))
}

/// `POST /device/v1/batches`: verify, validate, store durably, then acknowledge.
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
    let cached = app
        .device_certificates
        .read()
        .ok()
        .and_then(|c| c.get(&batch.device_id).cloned());
    match cached {
        // Known device: verify without a database read; the writer checks revocation.
        Some(cert) => signed.verify(&cert).map_err(|_| ApiError::UnknownDevice)?,
        None => {
            let device =
                signed_by_device(&app, &batch.device_id, |cert| signed.verify(cert).is_ok())
                    .await?;
            if let Ok(mut cache) = app.device_certificates.write() {
                // Bounded: a full cache starts over rather than grow without end.
                if cache.len() >= MAX_CACHED_DEVICES {
                    cache.clear();
                }
                cache.insert(device.id, device.certificate.into());
            }
        }
    }
    let now = now_ms();
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
            // On PostgreSQL the writer's NOTIFY carries them, to every instance.
            let local = app.store.engine() == Engine::Sqlite;
            for fix in batch.fixes.iter().filter(|_| local) {
                let _ = app.live.send(LiveEvent {
                    account_id: account_id.clone(),
                    event: LiveFix {
                        watch_id: batch.device_id.clone(),
                        fix: *fix,
                    },
                });
            }
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

/// `GET /api/v1/watches/{id}/latest`: the latest fix, or `null` before the first.
#[utoipa::path(get, path = "/api/v1/watches/{id}/latest", tag = "watches",
    params(("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$")),
    responses((status = 200, description = "The latest fix, or null before the first", body = Option<Fix>)))]
pub async fn latest(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Option<Fix>>, ApiError> {
    let watch = watch_of(&app, &caller, &id).await?;
    Ok(axum::Json(app.store.latest_fix(&watch).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    from: Option<i64>,
    to: Option<i64>,
    /// `newest` (default) or `oldest` first.
    order: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/v1/watches/{id}/history?from=&to=&order=&limit=&cursor=`.
#[utoipa::path(get, path = "/api/v1/watches/{id}/history", tag = "watches",
    params(
        ("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$"),
        ("from" = Option<i64>, Query, description = "Earliest fix time, ms since the epoch"),
        ("to" = Option<i64>, Query, description = "Latest fix time, ms since the epoch"),
        ("order" = Option<String>, Query, description = "`newest` (default) or `oldest` first", pattern = "^(newest|oldest)$"),
        ("limit" = Option<u32>, Query, description = "Fixes per page (default 500)", minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page", pattern = "^[0-9]{1,18}\\.[0-9]{1,18}$"),
    ),
    responses((status = 200, description = "One page of fixes", body = HistoryPage)))]
pub async fn history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<HistoryPage>, ApiError> {
    let watch = watch_of(&app, &caller, &id).await?;
    let Query(q) = query?;
    let newest_first = match q.order.as_deref() {
        None | Some("newest") => true,
        Some("oldest") => false,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "order is `newest` or `oldest`.".into(),
            ));
        }
    };
    let limit = q.limit.unwrap_or(500);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_HISTORY_PAGE}."
        )));
    }
    let (from, to) = time_range(q.from, q.to)?;
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            parse_cursor(c)
                .ok_or_else(|| ApiError::InvalidRequest("cursor is not valid.".into()))?,
        ),
    };
    let (fixes, next) = app
        .store
        .history(&watch, from, to, newest_first, after, limit)
        .await?;
    Ok(axum::Json(HistoryPage {
        fixes,
        next_cursor: next.map(|(t, id)| format!("{t}.{id}")),
    }))
}

/// `[from, to]` in ms, open ends meaning "from the start" and "until now".
fn time_range(from: Option<i64>, to: Option<i64>) -> Result<(i64, i64), ApiError> {
    let (from, to) = (from.unwrap_or(0), to.unwrap_or(i64::MAX));
    if from > to {
        return Err(ApiError::InvalidRequest(
            "`from` must not be after `to`.".into(),
        ));
    }
    Ok((from, to))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    from: Option<i64>,
    to: Option<i64>,
}

/// `GET /api/v1/watches/{id}/history/stream?from=&to=`: every fix in the
/// range, oldest first, one JSON object a line (`application/x-ndjson`),
/// streamed from the database as the client reads, so a year of history
/// (a million fixes) needs no paging and no memory on either side.
#[utoipa::path(get, path = "/api/v1/watches/{id}/history/stream", tag = "watches",
    params(
        ("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$"),
        ("from" = Option<i64>, Query, description = "Earliest fix time, ms since the epoch"),
        ("to" = Option<i64>, Query, description = "Latest fix time, ms since the epoch"),
    ),
    responses((status = 200, description = "Fixes, oldest first, one JSON Fix a line", content_type = "application/x-ndjson", body = Fix)))]
pub async fn history_stream(
    State(app): State<AppState>,
    caller: Caller,
    close: Option<axum::Extension<CloseConnection>>,
    Path(id): Path<String>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let watch = watch_of(&app, &caller, &id).await?;
    let Query(q) = query?;
    let (from, to) = time_range(q.from, q.to)?;
    let permit = app.streams.open(&caller.account_id)?;
    let (chunks, body) = channel_body(close.map(|c| c.0));
    let store = app.store.clone();
    tokio::spawn(async move {
        let _permit = permit;
        // Keyset chunks: each read takes a connection and gives it back
        // before the chunk goes out, so a client that reads slowly (or not
        // at all) holds no database connection while it dawdles.
        let mut after = None;
        loop {
            let page = store
                .history(&watch, from, to, false, after, STREAM_CHUNK)
                .await;
            let (fixes, next) = match page {
                Ok(page) => page,
                Err(e) => {
                    // The status line is sent already: the cut-off stream is the error.
                    tracing::error!(error = %e, "history stream failed");
                    chunks.fail("history stream failed").await;
                    return;
                }
            };
            let mut out = Vec::with_capacity(fixes.len() * 80);
            for fix in &fixes {
                if serde_json::to_writer(&mut out, fix).is_err() {
                    chunks.fail("history stream failed").await;
                    return;
                }
                out.push(b'\n');
            }
            if !out.is_empty() && !chunks.send(out.into()).await {
                return;
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return,
            }
        }
    });
    Ok(axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .map_err(anyhow::Error::from)?)
}

/// Fixes read per database round trip of a history stream (≈ 330 KB of NDJSON).
const STREAM_CHUNK: u32 = 5_000;

/// `<time>.<row>`, each 1–18 decimal digits (so it always fits an i64),
/// exactly as the API document's pattern says.
fn parse_cursor(c: &str) -> Option<(i64, i64)> {
    let (t, id) = c.split_once('.')?;
    let part = |s: &str| {
        (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((part(t)?, part(id)?))
}
