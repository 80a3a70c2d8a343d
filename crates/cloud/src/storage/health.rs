//! Is the database usable right now? The probe `/healthz` runs, so load
//! balancers can tell a cloud whose database is down or full.

use std::time::Duration;

use super::{DbResult, Engine, Store, Tx};

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Reads and writes work.
    Ok,
    /// The database answers reads but refuses writes (e.g. the disk is full).
    ReadOnly,
    /// The database cannot be reached in time.
    Down,
}

/// A probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

impl Store {
    /// Reads one row and commits one small write, on the parent pool.
    pub async fn health(&self) -> Health {
        let read = tokio::time::timeout(PROBE_TIMEOUT, async {
            sqlx::query("SELECT 1").execute(&self.pool).await
        })
        .await;
        if !matches!(read, Ok(Ok(_))) {
            return Health::Down;
        }
        match tokio::time::timeout(PROBE_TIMEOUT, self.probe_write()).await {
            Ok(Ok(())) => Health::Ok,
            _ => Health::ReadOnly,
        }
    }

    /// A write that goes through the journal like any other: the probe
    /// row of the rate-limit table (no limit uses this key).
    async fn probe_write(&self) -> DbResult<()> {
        let begin = match self.engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        };
        let mut tx = Tx::begin(&self.pool, begin).await?;
        sqlx::query(
            "INSERT INTO rate_limits (key, window_start, count) VALUES ('health:probe', $1, 0)
             ON CONFLICT(key) DO UPDATE SET window_start = $2",
        )
        .bind(self.now())
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
