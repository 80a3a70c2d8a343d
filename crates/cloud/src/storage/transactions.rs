//! Write transactions that never leave a pooled connection dirty.
//!
//! sqlx's own `Transaction` tracks a nesting depth beside the engine's real
//! state. When SQLite fails a `COMMIT` with "database or disk is full" it may
//! already have rolled the transaction back; the follow-up `ROLLBACK` then
//! fails, the depth stays at one, and the connection goes back to the pool
//! answering every later `BEGIN` with "begin at non-zero transaction depth"
//! until the process restarts. Here the transaction is plain SQL on a
//! connection we own, and any failure ends with the connection rolled back
//! and returned clean, or closed so the pool opens a fresh one.

use std::ops::{Deref, DerefMut};

use sqlx::AnyConnection;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor};

/// What every storage call returns: sqlx's error is kept whole, so
/// `error::is_unavailable` can tell a full disk from a bug.
pub type DbResult<T> = Result<T, sqlx::Error>;

/// An open write transaction. `commit` ends it; dropping it rolls it back.
pub struct Tx {
    conn: Option<PoolConnection<Any>>,
}

impl Tx {
    /// Takes a connection and begins with `begin` (`BEGIN IMMEDIATE` on
    /// SQLite, `BEGIN` on PostgreSQL). A connection that cannot even begin
    /// is closed rather than trusted again.
    pub async fn begin(pool: &AnyPool, begin: &str) -> DbResult<Self> {
        let mut conn = pool.acquire().await?;
        match conn.execute(begin).await {
            Ok(_) => Ok(Self { conn: Some(conn) }),
            Err(e) => {
                discard(conn).await;
                Err(e)
            }
        }
    }

    /// Begins on a connection the caller keeps between transactions (the
    /// ingest writer's own, whose page cache stays warm).
    pub async fn begin_on(mut conn: PoolConnection<Any>, begin: &str) -> DbResult<Self> {
        match conn.execute(begin).await {
            Ok(_) => Ok(Self { conn: Some(conn) }),
            Err(e) => {
                discard(conn).await;
                Err(e)
            }
        }
    }

    /// Commits and hands the connection back to keep for the next one.
    pub async fn commit_keep(mut self) -> DbResult<PoolConnection<Any>> {
        let mut conn = self
            .conn
            .take()
            .expect("a transaction is used only until it ends");
        match conn.execute("COMMIT").await {
            Ok(_) => Ok(conn),
            Err(e) => {
                discard(conn).await;
                Err(e)
            }
        }
    }

    /// Commits. On failure the connection is rolled back and closed: its
    /// state after a failed commit is the engine's guess, not ours.
    pub async fn commit(mut self) -> DbResult<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        match conn.execute("COMMIT").await {
            Ok(_) => Ok(()),
            Err(e) => {
                discard(conn).await;
                Err(e)
            }
        }
    }

    fn conn(&mut self) -> &mut PoolConnection<Any> {
        self.conn
            .as_mut()
            .expect("a transaction is used only until it ends")
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn
            .as_ref()
            .expect("a transaction is used only until it ends")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn()
    }
}

impl Drop for Tx {
    /// Not committed (a refusal returned early, a statement failed, or the
    /// request was cancelled): roll back before the connection is reused.
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if conn.execute("ROLLBACK").await.is_err() {
                        let _ = conn.close().await;
                    }
                });
            }
            // No runtime to roll back on (process exit): never return it to the pool.
            Err(_) => drop(conn.detach()),
        }
    }
}

/// Rolls back if it can and closes the connection either way.
async fn discard(mut conn: PoolConnection<Any>) {
    let _ = conn.execute("ROLLBACK").await;
    let _ = conn.close().await;
}
