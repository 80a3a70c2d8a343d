//! The live bus: how a stored batch (or a watch's new setup) reaches the
//! live streams, sealed as the watch sent it. Published only after the
//! commit that stored it, so no stream ever shows a report that could still
//! be lost. One implementation per engine:
//! - SQLite (one instance): the writer's caller hands the events to this
//!   process's streams after the commit ([`LiveBus::published`]).
//! - PostgreSQL (several instances): the ingest writer sends a `NOTIFY` for
//!   each stored batch right after its commit, which PostgreSQL delivers to
//!   every instance; [`LiveBus::follow_postgres`] hands them to this one's streams.

use std::time::Duration;

use tokio::sync::broadcast;
use waymark_protocol::ids::FamilyId;

use crate::config::Engine;

/// The channel PostgreSQL announces stored batches on.
pub const LIVE_CHANNEL: &str = "waymark_live";

/// PostgreSQL refuses a `NOTIFY` payload of 8,000 bytes or more.
const MAX_NOTICE: usize = 7_900;

/// What a live event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveKind {
    /// A stored sealed batch; `data` is the signed batch's JSON.
    Batch,
    /// A watch's new setup record; `data` is its JSON.
    Setup,
    /// A batch too large for a `NOTIFY`: the app re-reads the watch.
    Reload,
    /// The family's members changed: its streams check at once that their
    /// caller is still a member (a removed one's stream ends).
    Members,
}

/// A stored report and the family whose watch sent it (also the payload of
/// PostgreSQL's `NOTIFY`, so it crosses instances). `data` is sent as the
/// event's data exactly as stored: the cloud never opens it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LiveEvent {
    pub family_id: FamilyId,
    pub watch_id: String,
    pub kind: LiveKind,
    pub data: String,
}

impl LiveEvent {
    /// "The members of `family` changed": its streams re-check their caller.
    pub fn recheck(family: &FamilyId) -> Self {
        Self {
            family_id: family.clone(),
            watch_id: String::new(),
            kind: LiveKind::Members,
            data: String::new(),
        }
    }

    /// The `NOTIFY` payload: the event, or (too large for PostgreSQL) a
    /// reload of its watch, so nothing is dropped without the app hearing.
    pub fn notice(&self) -> String {
        let full = serde_json::to_string(self).unwrap_or_default();
        if full.len() < MAX_NOTICE {
            return full;
        }
        serde_json::to_string(&Self {
            kind: LiveKind::Reload,
            data: String::new(),
            ..self.clone()
        })
        .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct LiveBus {
    local: broadcast::Sender<LiveEvent>,
    engine: Engine,
}

impl LiveBus {
    pub fn new(engine: Engine) -> Self {
        Self {
            local: broadcast::channel(4096).0,
            engine,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.local.subscribe()
    }

    /// Whether [`LiveBus::published`] hands events to this process's
    /// streams itself (SQLite), so a caller need keep nothing for it otherwise.
    pub fn wants_local_events(&self) -> bool {
        self.engine == Engine::Sqlite
    }

    /// Called after the commit that stored `events`. On PostgreSQL the
    /// ingest writer has sent them as `NOTIFY`s already, so nothing is done
    /// here (see [`LiveBus::announce`] for events of other flows).
    pub fn published(&self, events: impl IntoIterator<Item = LiveEvent>) {
        if self.engine == Engine::Sqlite {
            for event in events {
                let _ = self.local.send(event);
            }
        }
    }

    /// Publishes an event no ingest writer sends (a setup record), after
    /// the commit that stored it: locally on SQLite, by `NOTIFY` on PostgreSQL.
    pub async fn announce(&self, pool: &sqlx::AnyPool, event: LiveEvent) {
        match self.engine {
            Engine::Sqlite => {
                let _ = self.local.send(event);
            }
            Engine::Postgres => {
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(LIVE_CHANNEL)
                    .bind(event.notice())
                    .execute(pool)
                    .await;
                if let Err(e) = sent {
                    // The app also fetches a setup it lacks through the API.
                    tracing::warn!(error = %e, "a live notice was not sent");
                }
            }
        }
    }

    /// PostgreSQL: follows the `NOTIFY`s every instance's ingest writer
    /// sends at commit and hands them to this instance's live streams.
    /// Listening starts before this returns; a lost connection is
    /// re-established by `PgListener` (batches sent meanwhile are not
    /// replayed: the app re-reads the latest batches on reconnect).
    pub async fn follow_postgres(
        &self,
        url: &str,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        let mut listener = sqlx::postgres::PgListener::connect(url)
            .await
            .context("cannot listen for live updates on PostgreSQL")?;
        listener
            .listen(LIVE_CHANNEL)
            .await
            .context("cannot listen for live updates on PostgreSQL")?;
        let live = self.local.clone();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: String) -> LiveEvent {
        LiveEvent {
            family_id: FamilyId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            watch_id: "fedcba9876543210fedcba9876543210".into(),
            kind: LiveKind::Batch,
            data,
        }
    }

    #[test]
    fn a_notice_too_large_for_postgresql_becomes_a_reload_of_its_watch() {
        let small = event("x".repeat(3_000));
        let back: LiveEvent = serde_json::from_str(&small.notice()).unwrap();
        assert_eq!((back.kind, back.data.len()), (LiveKind::Batch, 3_000));
        let large = event("x".repeat(MAX_NOTICE));
        let notice = large.notice();
        assert!(notice.len() < MAX_NOTICE, "{}", notice.len());
        let back: LiveEvent = serde_json::from_str(&notice).unwrap();
        assert_eq!((back.kind, back.data.as_str()), (LiveKind::Reload, ""));
        assert_eq!(back.watch_id, large.watch_id, "the app re-reads that watch");
    }
}
