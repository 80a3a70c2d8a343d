//! SQLite's ingest writer: one thread that owns its own connection (not a
//! pool's), with prepared statements, so storing a group costs SQLite's own
//! work and one fsync, and no round trip to another thread per statement.
//!
//! It takes every batch waiting (up to [`GROUP_MAX`]), reads the counters
//! of their devices, decides every verdict in memory ([`decide`]), inserts
//! the batches, checks resends, updates the counters and commits, all in one
//! `BEGIN IMMEDIATE` transaction; each caller hears back only after that
//! commit. After any failure the connection is closed and opened afresh for
//! the next group, so no half-finished state is carried over.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::mpsc;
use waymark_protocol::ids::FamilyId;
use waymark_protocol::time::Clock;

use super::ingest::{
    Counters, GROUP_MAX, IngestJob, IngestOutcome, StoredBatch, decide, fail_group, finish,
};

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Starts the writer thread; it ends when every sender of `jobs` is gone,
/// and its checkpointer with it.
pub(super) fn spawn(path: PathBuf, clock: Clock, mut jobs: mpsc::Receiver<IngestJob>) {
    let (alive, writer_gone) = std::sync::mpsc::channel::<()>();
    let log_path = path.clone();
    std::thread::Builder::new()
        .name("waymark-checkpoint".into())
        .spawn(move || checkpointer(&log_path, writer_gone))
        .expect("the checkpointer thread starts");
    std::thread::Builder::new()
        .name("waymark-ingest".into())
        .spawn(move || {
            let _alive = alive;
            let mut own: Option<Connection> = None;
            while let Some(first) = jobs.blocking_recv() {
                let mut group = vec![first];
                while group.len() < GROUP_MAX {
                    match jobs.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                let batches: Vec<&StoredBatch> = group.iter().map(|j| &j.batch).collect();
                let outcome = (|| {
                    let conn = match own.take() {
                        Some(conn) => conn,
                        None => open(&path)?,
                    };
                    match store_group(&conn, &batches, clock.now().ms()) {
                        Ok(results) => Ok((results, conn)),
                        // The connection is dropped (closed): the next group opens a fresh one.
                        Err(e) => {
                            let _ = conn.execute_batch("ROLLBACK");
                            Err(e)
                        }
                    }
                })();
                match outcome {
                    Ok((results, conn)) => {
                        own = Some(conn);
                        for (job, result) in group.into_iter().zip(results) {
                            let _ = job.reply.send(Ok(result));
                        }
                    }
                    // Nothing of the group was committed: every caller keeps its batch.
                    Err(e) => fail_group(group, is_unavailable(&e), &e),
                }
            }
        })
        .expect("the ingest writer thread starts");
}

/// Copies the write-ahead log into the database file every
/// [`CHECKPOINT_EVERY`], on a connection of its own, so the writer never
/// stops a group's commit to do it (its connection checkpoints only if
/// this thread falls far behind). Passive: it waits for no reader or writer.
fn checkpointer(path: &Path, writer_gone: std::sync::mpsc::Receiver<()>) {
    let (mut conn, mut failing): (Option<Connection>, bool) = (None, false);
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        writer_gone.recv_timeout(CHECKPOINT_EVERY)
    {
        let done = conn.take().map_or_else(|| open(path), Ok).and_then(|c| {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            Ok(c)
        });
        match done {
            Ok(c) => {
                if failing {
                    tracing::info!("checkpoints work again");
                }
                (conn, failing) = (Some(c), false);
            }
            // Tried again next time on a fresh connection; ingest is not
            // held up. Said once, not every 250 ms (a full disk lasts).
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "checkpoint failed; retrying");
                }
                failing = true;
            }
        }
    }
}

/// The writer's connection, set up like the pool's (DESIGN rule 6: WAL with
/// `synchronous = FULL`, so an acknowledged batch survives power loss).
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000; PRAGMA secure_delete = ON; PRAGMA cache_size = -16384;
         PRAGMA wal_autocheckpoint = 10000;",
    )?;
    Ok(conn)
}

/// Failures that pass by themselves (busy, locked, a full or failing disk):
/// the watch hears 503 and keeps its batch.
fn is_unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::OutOfMemory
                | C::ReadOnly
                | C::SystemIoFailure
                | C::DiskFull
                | C::CannotOpen
                | C::FileLockingProtocolFailed
        )
    )
}

fn store_group(
    conn: &Connection,
    batches: &[&StoredBatch],
    now: i64,
) -> rusqlite::Result<Vec<IngestOutcome>> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut devices = read_counters(conn, batches)?;
    let plan = decide(batches, &mut devices, now, false);
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO batches (device_id, seq, t_first, t_last, n, setup_id, body, t_max)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (b, t_max) in &plan.rows {
            insert.execute(params![
                b.device_id,
                b.seq as i64,
                b.t_first,
                b.t_last,
                b.n,
                b.setup_id,
                b.body,
                t_max
            ])?;
        }
    }
    let mut same = Vec::with_capacity(plan.checks.len());
    for (k, _, _) in &plan.checks {
        same.push(stored_batch_is(conn, batches[*k])?);
    }
    {
        let mut update = conn.prepare_cached(
            "UPDATE device_counters SET last_seq = ?1, budget_window_start = ?2, budget_window_fixes = ?3,
               t_max = ?4
             WHERE device_id = ?5",
        )?;
        for (id, c) in devices.iter().filter(|(_, c)| c.changed) {
            update.execute(params![c.last_seq, c.window_start, c.used, c.t_max, id])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(finish(plan, same))
}

/// Every device of the group with its counters, binding and revocation.
fn read_counters(
    conn: &Connection,
    batches: &[&StoredBatch],
) -> rusqlite::Result<HashMap<String, Counters>> {
    let mut read = conn.prepare_cached(
        "SELECT c.last_seq, c.budget_window_start, c.budget_window_fixes, d.revoked_at, b.account_id,
           c.t_max
         FROM device_counters c JOIN devices d ON d.id = c.device_id
         LEFT JOIN bindings b ON b.device_id = c.device_id WHERE c.device_id = ?1",
    )?;
    let mut devices = HashMap::with_capacity(batches.len());
    for batch in batches {
        if devices.contains_key(&batch.device_id) {
            continue;
        }
        let row = read
            .query_row([&batch.device_id], |r| {
                let account: Option<String> = r.get(4)?;
                Ok(Counters {
                    last_seq: r.get(0)?,
                    window_start: r.get(1)?,
                    used: r.get(2)?,
                    revoked: r.get::<_, Option<i64>>(3)?.is_some(),
                    // A malformed stored id reads as "not bound", never as someone's.
                    account: account.and_then(|a| FamilyId::parse(&a)),
                    t_max: r.get(5)?,
                    changed: false,
                })
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some(counters) = row {
            devices.insert(batch.device_id.clone(), counters);
        }
    }
    Ok(devices)
}

/// Is exactly `batch` stored under its sequence number?
fn stored_batch_is(conn: &Connection, batch: &StoredBatch) -> rusqlite::Result<bool> {
    let mut read =
        conn.prepare_cached("SELECT body FROM batches WHERE device_id = ?1 AND seq = ?2")?;
    let stored: Option<String> = read
        .query_row(params![batch.device_id, batch.seq as i64], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    Ok(stored.as_deref() == Some(batch.body.as_str()))
}
