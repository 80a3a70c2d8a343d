//! Location reports out: a watch's latest fix and its history (pages and a
//! whole-range stream), each read through the binding.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use waymark_protocol::report::Fix;
use waymark_protocol::watches::{HistoryPage, MAX_HISTORY_PAGE};

use crate::binding::watch_of;
use crate::error::ApiError;
use crate::extractors::Caller;
use crate::state::AppState;
use crate::streams::{CloseConnection, channel_body};

/// `GET /api/v1/watches/{id}/latest`: the latest fix, or `null` before the first.
#[utoipa::path(get, path = "/api/v1/watches/{id}/latest", tag = "watches",
    params(("id" = String, Path, description = "The watch's id", pattern = "^[0-9a-f]{32}$")),
    responses((status = 200, description = "The latest fix, or null before the first", body = Option<Fix>)))]
pub async fn latest(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Option<Fix>>, ApiError> {
    let watch = watch_of(&app.store, &caller, &id).await?;
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
    let watch = watch_of(&app.store, &caller, &id).await?;
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
    let watch = watch_of(&app.store, &caller, &id).await?;
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
                .history_chunk(&watch, from, to, after, STREAM_CHUNK)
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
