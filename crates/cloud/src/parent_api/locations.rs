//! Location reports out, sealed: a watch's latest batch and its history
//! (pages and a whole-range stream), each read through the binding. The
//! cloud hands back what the watch signed; only the family's apps open it.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use waymark_protocol::watches::{HistoryLine, MAX_HISTORY_PAGE, SealedHistoryPage, SealedLatest};

use waymark_protocol::co_parents::FamilyAction;

use crate::binding::watch_of;
use crate::error::ApiError;
use crate::extractors::Caller;
use crate::state::AppState;
use crate::streams::{CloseConnection, channel_body};

/// `GET /api/v1/watches/{id}/latest`: the newest batch and its setup, or `null` before the first.
#[utoipa::path(get, path = "/api/v1/watches/{id}/latest", tag = "watches",
    params(("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$")),
    responses((status = 200, description = "The newest sealed batch with its setup, or null before the first", body = Option<SealedLatest>)))]
pub async fn latest(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Option<SealedLatest>>, ApiError> {
    let watch = watch_of(&app.store, &caller, &id, FamilyAction::SeeWatches).await?;
    Ok(axum::Json(app.store.latest_sealed(&watch).await?))
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
        ("order" = Option<String>, Query, description = "`newest` (default) or `oldest` first, by sequence number", pattern = "^(newest|oldest)$"),
        ("limit" = Option<u32>, Query, description = "Batches per page (default 200)", minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page", pattern = "^[0-9]{1,18}$"),
    ),
    responses((status = 200, description = "One page of sealed batches (any with a fix in the range) and the setups they name", body = SealedHistoryPage)))]
pub async fn history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<SealedHistoryPage>, ApiError> {
    let watch = watch_of(&app.store, &caller, &id, FamilyAction::SeeWatches).await?;
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
    let limit = q.limit.unwrap_or(200);
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
    let page = app
        .store
        .history(&watch, (from, to), newest_first, after, limit)
        .await?;
    Ok(axum::Json(SealedHistoryPage {
        setups: decode_all(&page.setups)?,
        batches: decode_all(&page.batches)?,
        next_cursor: page.next.map(|seq| seq.to_string()),
    }))
}

/// Stored JSON read back into its wire type (it was checked when stored).
fn decode_all<T: serde::de::DeserializeOwned>(stored: &[String]) -> Result<Vec<T>, ApiError> {
    stored
        .iter()
        .map(|s| serde_json::from_str(s).map_err(|e| anyhow::Error::from(e).into()))
        .collect()
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

/// `GET /api/v1/watches/{id}/history/stream?from=&to=`: the watch's setup
/// records, then every batch with a fix in the range, oldest first, one
/// JSON object a line (`application/x-ndjson`: `{"setup": …}` or
/// `{"batch": …}`), streamed from the database as the client reads, so a
/// year of history (a million fixes) needs no paging and no memory on either side.
#[utoipa::path(get, path = "/api/v1/watches/{id}/history/stream", tag = "watches",
    params(
        ("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$"),
        ("from" = Option<i64>, Query, description = "Earliest fix time, ms since the epoch"),
        ("to" = Option<i64>, Query, description = "Latest fix time, ms since the epoch"),
    ),
    responses((status = 200, description = "The setups, then the batches oldest first, one JSON HistoryLine a line", content_type = "application/x-ndjson", body = HistoryLine)))]
pub async fn history_stream(
    State(app): State<AppState>,
    caller: Caller,
    close: Option<axum::Extension<CloseConnection>>,
    Path(id): Path<String>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let watch = watch_of(&app.store, &caller, &id, FamilyAction::SeeWatches).await?;
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
        let setups = match store.all_setups(&watch).await {
            Ok(setups) => setups,
            Err(e) => {
                tracing::error!(error = %e, "history stream failed");
                chunks.fail("history stream failed").await;
                return;
            }
        };
        if !setups.is_empty() && !chunks.send(lines("setup", &setups).into()).await {
            return;
        }
        let mut after = match store.history_start(&watch, from).await {
            Ok(Some(after)) => after,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "history stream failed");
                chunks.fail("history stream failed").await;
                return;
            }
        };
        loop {
            let page = store
                .history_chunk(&watch, (from, to), after, STREAM_CHUNK)
                .await;
            let (batches, next) = match page {
                Ok(page) => page,
                Err(e) => {
                    // The status line is sent already: the cut-off stream is the error.
                    tracing::error!(error = %e, "history stream failed");
                    chunks.fail("history stream failed").await;
                    return;
                }
            };
            let out = lines("batch", &batches);
            if !out.is_empty() && !chunks.send(out.into()).await {
                return;
            }
            match next {
                Some(seq) => after = seq,
                None => return,
            }
        }
    });
    Ok(axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .map_err(anyhow::Error::from)?)
}

/// Batches read per database round trip of a history stream (≈ 400 KB of
/// NDJSON with the watches' 50-fix batches).
const STREAM_CHUNK: u32 = 100;

/// Stored JSON objects as NDJSON lines `{"<kind>":<object>}`, written as
/// stored (the cloud never re-encodes what a watch signed).
fn lines(kind: &str, stored: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.iter().map(|s| s.len() + 12).sum());
    for s in stored {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"}\n");
    }
    out
}

/// A sequence number of 1–18 decimal digits (so it always fits an i64),
/// exactly as the API document's pattern says.
fn parse_cursor(c: &str) -> Option<i64> {
    (!c.is_empty() && c.len() <= 18 && c.bytes().all(|b| b.is_ascii_digit()))
        .then(|| c.parse().ok())
        .flatten()
}
