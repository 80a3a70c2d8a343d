//! Live updates: `GET /api/v1/live` is a server-sent-event stream of new
//! fixes for the caller's watches. Each event is checked against the
//! binding and the session as it is sent, so a revoked watch or an ended
//! session stops at once; an idle stream re-checks its session every few seconds.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::app::{AppState, LiveEvent};
use crate::error::ApiError;
use crate::storage::Caller;

/// How often an idle stream re-checks that its session is still signed in.
const SESSION_CHECK: Duration = Duration::from_secs(5);

#[utoipa::path(get, path = "/api/v1/live", tag = "watches",
    responses((status = 200, description = "Server-sent events: `ready`, then `fix` (a LiveFix) for each new fix of the account's watches, `lagged` if some were skipped", content_type = "text/event-stream", body = String)))]
pub async fn stream(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut rx = app.live.subscribe();
    let stream = async_stream::stream! {
        yield Ok(Event::default().event("ready").data("{}"));
        let mut session_check = tokio::time::interval(SESSION_CHECK);
        session_check.tick().await;
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                _ = session_check.tick() => {
                    // An idle stream must still end when its session does.
                    match app.store.session_alive(&caller.session_id).await {
                        Ok(true) => continue,
                        _ => break,
                    }
                }
            };
            let event = match received {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    yield Ok(Event::default().event("lagged").data(format!("{{\"missed\":{n}}}")));
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            if event.account_id != caller.account_id {
                continue;
            }
            match app.store.session_alive(&caller.session_id).await {
                Ok(true) => {}
                _ => break,
            }
            match app.store.bound_watch(&caller.account_id, &event.event.watch_id).await {
                Ok(Some(w)) if w.is_live() => {}
                _ => continue,
            }
            if let Ok(data) = serde_json::to_string(&event.event) {
                yield Ok(Event::default().event("fix").data(data));
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// PostgreSQL: follows the `NOTIFY`s every instance's ingest writer sends at
/// commit and hands them to this instance's live streams, so a parent sees a
/// watch that reported to another instance. Listening starts before this
/// returns; a lost connection is re-established by `PgListener` (fixes sent
/// meanwhile are not replayed: the app re-reads latest fixes on reconnect).
pub async fn follow_postgres(
    url: &str,
    live: tokio::sync::broadcast::Sender<LiveEvent>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut listener = sqlx::postgres::PgListener::connect(url)
        .await
        .context("cannot listen for live updates on PostgreSQL")?;
    listener
        .listen(crate::storage::LIVE_CHANNEL)
        .await
        .context("cannot listen for live updates on PostgreSQL")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) => match serde_json::from_str::<LiveEvent>(n.payload()) {
                        Ok(event) => { let _ = live.send(event); }
                        Err(e) => tracing::warn!(error = %e, "unreadable live notice"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "live notices interrupted; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    });
    Ok(())
}
