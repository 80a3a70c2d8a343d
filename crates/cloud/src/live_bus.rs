//! The live bus: how a stored fix reaches the live streams. Published only
//! after the commit that stored it, so no stream ever shows a fix that could
//! still be lost. One implementation per engine:
//! - SQLite (one instance): the writer's caller hands the events to this
//!   process's streams after the commit ([`LiveBus::published`]).
//! - PostgreSQL (several instances): the ingest writer sends a `NOTIFY` for
//!   each stored fix right after its commit, which PostgreSQL delivers to
//!   every instance; [`LiveBus::follow_postgres`] hands them to this one's streams.

use std::time::Duration;

use tokio::sync::broadcast;
use waymark_protocol::ids::AccountId;
use waymark_protocol::watches::LiveFix;

use crate::config::Engine;

/// The channel PostgreSQL announces stored fixes on.
pub const LIVE_CHANNEL: &str = "waymark_live";

/// A stored fix and the account whose watch sent it (also the payload of
/// PostgreSQL's `NOTIFY`, so it crosses instances).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LiveEvent {
    pub account_id: AccountId,
    pub event: LiveFix,
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

    /// Called after the commit that stored `events`. On PostgreSQL the
    /// writer has sent them as `NOTIFY`s already, so nothing is done here.
    pub fn published(&self, events: impl IntoIterator<Item = LiveEvent>) {
        if self.engine == Engine::Sqlite {
            for event in events {
                let _ = self.local.send(event);
            }
        }
    }

    /// PostgreSQL: follows the `NOTIFY`s every instance's ingest writer
    /// sends at commit and hands them to this instance's live streams.
    /// Listening starts before this returns; a lost connection is
    /// re-established by `PgListener` (fixes sent meanwhile are not
    /// replayed: the app re-reads latest fixes on reconnect).
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
