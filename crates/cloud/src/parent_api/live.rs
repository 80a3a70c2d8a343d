//! Live updates: `GET /api/v1/live` is a server-sent-event stream of new
//! sealed batches (and new setup records) for the caller's watches, sent as
//! the watch signed them: the cloud cannot open them. An event carries the
//! account its watch was bound to when the batch was stored (in the same
//! transaction), so a stream sends its own account's events without asking
//! the database per batch. Every few seconds the stream re-checks its access token (revoked,
//! expired, session ended: the stream ends, and the app reconnects with a
//! fresh token) and forgets which watches it has checked, so a revoked
//! watch stops within that time. A database hiccup does not end a stream:
//! it keeps the last verdict and asks again at the next check.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::extractors::Caller;
use crate::live_bus::{LiveEvent, LiveKind};
use crate::state::AppState;

/// How often a stream re-checks its token, its caller's membership and its
/// watches' bindings.
const RECHECK: Duration = Duration::from_secs(5);

#[utoipa::path(get, path = "/api/v1/live", tag = "watches",
    responses((status = 200, description = "Server-sent events: `ready`, then `setup` (a SignedSetupRecord) for each new setup and `batch` (a SignedSealedBatch) for each new batch of the account's watches, `lagged` if some were skipped, `reauthenticate` just before the stream ends because its access token did", content_type = "text/event-stream", body = String)))]
pub async fn stream(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = app.streams.open(&caller.account_id)?;
    let mut rx = app.live.subscribe();
    let stream = async_stream::stream! {
        let _permit = permit;
        yield Ok(Event::default().event("ready").data("{}"));
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        let token_ends = tokio::time::sleep(Duration::from_millis(
            (caller.token_expires_at - app.store.now()).max(0) as u64,
        ));
        tokio::pin!(token_ends);
        // Watch id → may this stream see it (bound to the account, not revoked).
        let mut allowed: HashMap<String, bool> = HashMap::new();
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                _ = &mut token_ends => {
                    yield Ok(Event::default().event("reauthenticate").data("{}"));
                    break;
                }
                _ = recheck.tick() => Ok(LiveEvent::recheck(&caller.family_id)),
            };
            let event = match received {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    yield Ok(Event::default().event("lagged").data(format!("{{\"missed\":{n}}}")));
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            if event.family_id != caller.family_id {
                continue;
            }
            // Every few seconds, and at once when the family's members
            // change: is this caller still signed in and still a member?
            if event.kind == LiveKind::Members {
                allowed.clear();
                match app.store.token_alive(&caller).await {
                    Ok(false) => {
                        yield Ok(Event::default().event("reauthenticate").data("{}"));
                        break;
                    }
                    Ok(true) => {}
                    // A database hiccup is not a sign-out: ask again at the next check.
                    Err(e) => tracing::warn!(
                        unavailable = crate::error::is_unavailable(&e),
                        "live stream re-check failed; will ask again"
                    ),
                }
                continue;
            }
            let watch_id = &event.watch_id;
            let ok = match allowed.get(watch_id) {
                Some(ok) => *ok,
                // One query for all the family's watches, not one per watch:
                // a burst from many watches would otherwise queue behind
                // that many queries in a row on this task.
                None => match app.store.bound_watches(&caller.family_id).await {
                    Ok(watches) => {
                        for w in watches {
                            let live = w.is_live();
                            allowed.insert(w.id().to_string(), live);
                        }
                        // Not bound to this family (any more): refused until the next re-check.
                        *allowed.entry(watch_id.clone()).or_insert(false)
                    }
                    // Nothing is sent without the binding check (rule 2). The
                    // app hears it missed a batch and reloads through the API.
                    Err(_) => {
                        yield Ok(Event::default().event("lagged").data("{\"missed\":1}"));
                        continue;
                    }
                },
            };
            if !ok {
                continue;
            }
            yield Ok(match event.kind {
                LiveKind::Batch => Event::default().event("batch").data(event.data),
                LiveKind::Setup => Event::default().event("setup").data(event.data),
                LiveKind::Reload => Event::default().event("lagged").data("{\"missed\":1}"),
                // Handled above, before the binding check.
                LiveKind::Members => continue,
            });
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
