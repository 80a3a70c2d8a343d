//! Is the database usable right now? Which failures mean "come back later"
//! (a full disk, a restarting server, an exhausted pool) rather than a bug,
//! and the probe `/healthz` runs so load balancers see the difference.

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

/// True for failures that pass by themselves: the request may be retried
/// unchanged later, so it is answered 503 with `Retry-After`, and a watch
/// keeps its queue.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite primary result codes (extended codes keep them in the low byte).
            if let Ok(n) = code.parse::<i32>() {
                return matches!(
                    n & 0xff,
                    5 /* BUSY */ | 6 /* LOCKED */ | 7 /* NOMEM */ | 8 /* READONLY */
                        | 10 /* IOERR */ | 13 /* FULL */ | 14 /* CANTOPEN */ | 15 /* PROTOCOL */
                );
            }
            // PostgreSQL SQLSTATE classes: connection exceptions, insufficient
            // resources (disk full), operator intervention (shutdown), and
            // serialisation failures / deadlocks.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "40001"
                || code == "40P01"
        }
        _ => false,
    }
}

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
        .bind(crate::ids::now_ms())
        .bind(crate::ids::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
