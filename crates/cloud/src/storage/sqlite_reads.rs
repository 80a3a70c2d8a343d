//! SQLite reads that return many rows (history streams) on connections of
//! the store's own, on a blocking thread: a chunk of batches is read
//! with one prepared statement and comes back as one vector, instead of
//! crossing from sqlx's worker thread to the runtime one row at a time
//! (those per-row handoffs were what made streams slow, and slow by a
//! different amount from run to run).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, params};

use super::transactions::DbResult;

/// Idle read connections kept for the next chunk.
const MAX_IDLE: usize = 4;

#[derive(Clone)]
pub(super) struct SqliteReads {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl SqliteReads {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
            idle: Arc::default(),
        }
    }

    /// Up to `limit` batches (JSON) of `device_id` with a fix in `[lo, hi]`
    /// after sequence `after`, oldest first, each with its sequence number
    /// (the stream's cursor).
    pub(super) async fn history_chunk(
        &self,
        device_id: String,
        (lo, hi): (i64, i64),
        after: i64,
        limit: u32,
    ) -> DbResult<Vec<(i64, String)>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match this.idle.lock().ok().and_then(|mut idle| idle.pop()) {
                Some(conn) => conn,
                None => Connection::open_with_flags(
                    &*this.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .and_then(|c| {
                    c.busy_timeout(std::time::Duration::from_secs(10))?;
                    Ok(c)
                })
                .map_err(to_sqlx)?,
            };
            let rows = read_chunk(&conn, &device_id, (lo, hi), after, limit).map_err(to_sqlx)?;
            if let Ok(mut idle) = this.idle.lock()
                && idle.len() < MAX_IDLE
            {
                idle.push(conn);
            }
            Ok(rows)
        })
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("history read stopped: {e}")))?
    }
}

fn read_chunk(
    conn: &Connection,
    device_id: &str,
    (lo, hi): (i64, i64),
    after: i64,
    limit: u32,
) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut read = conn.prepare_cached(
        "SELECT seq, body FROM batches
         WHERE device_id = ?1 AND t_last >= ?2 AND t_first <= ?3 AND seq > ?4
         ORDER BY seq LIMIT ?5",
    )?;
    let rows = read.query_map(params![device_id, lo, hi, after, limit], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    rows.collect()
}

/// A failure that passes by itself stays "unavailable" (503); others are errors.
fn to_sqlx(e: rusqlite::Error) -> sqlx::Error {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::CannotOpen) => {
            sqlx::Error::PoolTimedOut
        }
        _ => sqlx::Error::Protocol(format!("history read failed: {e}")),
    }
}
