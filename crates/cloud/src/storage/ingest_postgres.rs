//! PostgreSQL's ingest writers: a few tasks (one group each at a time), each
//! with one connection kept from the device pool, storing each group with a fixed number of multi-row
//! statements (one read of the counters, locked in id order; `INSERT`s of
//! all batches; one `UPDATE … FROM (VALUES …)`), one commit, then the live
//! `NOTIFY`s for what was committed.

use std::collections::HashMap;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor, Row};
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};
use waymark_protocol::ids::FamilyId;
use waymark_protocol::time::Clock;

use super::ingest::{
    Counters, GROUP_MAX, IngestJob, IngestOutcome, StoredBatch, decide, fail_group, finish,
};
use super::transactions::{DbResult, Tx};
use crate::live_bus::LIVE_CHANNEL;

/// Rows per multi-row statement, largest first: a group's rows are split
/// into these sizes, so only a handful of distinct statements are ever
/// prepared (each stays in the connection's statement cache). 8 values a
/// batch row × 256 = 2,048 parameters, within both engines' limits.
const CHUNKS: [usize; 4] = [256, 32, 4, 1];

/// The single ingest writer (one per cloud instance).
/// Writers per instance. PostgreSQL commits one transaction while it runs
/// the next, so a second writer stores a group while the first one's commit
/// is in flight; the counter rows' locks (taken in id order) keep any two
/// groups of one device in turn.
pub(super) const WRITERS: usize = 3;

/// Starts the instance's [`WRITERS`], taking groups from one queue.
pub(super) fn spawn(pool: AnyPool, clock: Clock, jobs: mpsc::Receiver<IngestJob>) {
    let jobs = Arc::new(Mutex::new(jobs));
    for _ in 0..WRITERS {
        tokio::spawn(writer(pool.clone(), clock.clone(), jobs.clone()));
    }
}

/// The next group: the first job to come, and every one waiting behind it.
async fn next_group(jobs: &Mutex<mpsc::Receiver<IngestJob>>) -> Option<Vec<IngestJob>> {
    let mut jobs = jobs.lock().await;
    let mut group = vec![jobs.recv().await?];
    while group.len() < GROUP_MAX {
        match jobs.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
    Some(group)
}

async fn writer(pool: AnyPool, clock: Clock, jobs: Arc<Mutex<mpsc::Receiver<IngestJob>>>) {
    // The writer's own connection, kept between groups; taken again after a failure.
    let mut own: Option<PoolConnection<Any>> = None;
    while let Some(group) = next_group(&jobs).await {
        let batches: Vec<&StoredBatch> = group.iter().map(|j| &j.batch).collect();
        let outcome = async {
            let conn = match own.take() {
                Some(conn) => conn,
                None => pool.acquire().await?,
            };
            let mut tx = Tx::begin_on(conn, "BEGIN").await?;
            let (results, notices) = store_group(&mut tx, &batches, clock.now().ms()).await?;
            let conn = tx.commit_keep().await?;
            Ok::<_, sqlx::Error>((results, notices, conn))
        }
        .await;
        match outcome {
            Ok((results, notices, mut conn)) => {
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
                // After the commit, in a transaction of their own: a NOTIFY
                // inside the storing transaction would hold PostgreSQL's
                // database-wide notify lock through that commit's flush, and
                // every writer of every instance would commit one at a time.
                // A lost notice only delays a live update (the app re-reads on
                // reconnect).
                if let Err(e) = notify(&mut conn, &notices).await {
                    tracing::warn!(error = %e, "live notices for a stored group were not sent");
                }
                own = Some(conn);
            }
            // Nothing of the group was committed: every caller keeps its batch.
            Err(e) => fail_group(group, crate::error::is_unavailable(&e), &e),
        }
    }
}

/// One group inside the PostgreSQL writer's transaction.
/// Returns the verdicts and the live notices to send once it has committed.
async fn store_group(
    tx: &mut Tx,
    batches: &[&StoredBatch],
    now: i64,
) -> DbResult<(Vec<IngestOutcome>, Vec<String>)> {
    let mut devices = read_counters(tx, batches).await?;
    let plan = decide(batches, &mut devices, now, true);
    insert_batches(tx, &plan.rows).await?;
    let mut same = Vec::with_capacity(plan.checks.len());
    for (k, _, _) in &plan.checks {
        same.push(stored_batch_is(tx, batches[*k]).await?);
    }
    update_counters(tx, &devices).await?;
    let mut notices = Vec::with_capacity(plan.events.len());
    for event in &plan.events {
        notices.push(event.notice());
    }
    Ok((finish(plan, same), notices))
}

/// Every device of the group with its counters, binding and revocation, in
/// one query. PostgreSQL: the counter rows stay locked until commit (in id
/// order, so two instances' writers never deadlock); SQLite's one writer
/// already holds the database's write lock.
async fn read_counters(
    tx: &mut Tx,
    batches: &[&StoredBatch],
) -> DbResult<HashMap<String, Counters>> {
    let mut ids: Vec<&str> = batches.iter().map(|b| b.device_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut devices = HashMap::with_capacity(ids.len());
    for chunk in chunked(&ids) {
        let marks = placeholders(chunk.len(), 1, 1);
        let sql = format!(
            "SELECT c.device_id, c.last_seq, c.budget_window_start, c.budget_window_fixes, c.t_max, d.revoked_at, b.account_id
             FROM device_counters c JOIN devices d ON d.id = c.device_id
             LEFT JOIN bindings b ON b.device_id = c.device_id
             WHERE c.device_id IN ({marks}) ORDER BY c.device_id FOR UPDATE OF c"
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for r in query.fetch_all(&mut **tx).await? {
            let account = r
                .try_get::<Option<String>, _>("account_id")?
                .map(FamilyId::try_from)
                .transpose()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            devices.insert(
                r.try_get::<String, _>("device_id")?,
                Counters {
                    last_seq: r.try_get("last_seq")?,
                    window_start: r.try_get("budget_window_start")?,
                    used: r.try_get("budget_window_fixes")?,
                    revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                    account,
                    t_max: r.try_get("t_max")?,
                    changed: false,
                },
            );
        }
    }
    Ok(devices)
}

/// All rows in multi-row `INSERT`s.
async fn insert_batches(tx: &mut Tx, rows: &[(&StoredBatch, i64)]) -> DbResult<()> {
    for chunk in chunked(rows) {
        let sql = format!(
            "INSERT INTO batches (device_id, seq, t_first, t_last, n, setup_id, body, t_max) VALUES {}",
            placeholders(chunk.len(), 8, 1)
        );
        let mut query = sqlx::query(&sql);
        for (b, t_max) in chunk {
            query = query
                .bind(b.device_id.as_str())
                .bind(b.seq as i64)
                .bind(b.t_first)
                .bind(b.t_last)
                .bind(b.n)
                .bind(b.setup_id.as_str())
                .bind(b.body.as_str())
                .bind(*t_max);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The changed counters in multi-row `UPDATE … FROM (VALUES …)`
/// (SQLite ≥ 3.33 and PostgreSQL both name a VALUES list's columns `column1`…).
async fn update_counters(tx: &mut Tx, devices: &HashMap<String, Counters>) -> DbResult<()> {
    let changed: Vec<(&String, &Counters)> = devices.iter().filter(|(_, c)| c.changed).collect();
    for chunk in chunked(&changed) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let n = i * 5;
                format!(
                    "(CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5
                )
            })
            .collect();
        let sql = format!(
            "UPDATE device_counters SET last_seq = v.column2, budget_window_start = v.column3,
               budget_window_fixes = v.column4, t_max = v.column5
             FROM (VALUES {}) AS v WHERE device_counters.device_id = v.column1",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (id, c) in chunk {
            query = query
                .bind(id.as_str())
                .bind(c.last_seq)
                .bind(c.window_start)
                .bind(c.used)
                .bind(c.t_max);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// PostgreSQL: the group's live notices, several `pg_notify` a statement.
/// They go in a transaction of their own that does not wait for its flush
/// (`synchronous_commit = off`): a notice is not data, and losing one in a
/// crash only delays a live update.
async fn notify(conn: &mut PoolConnection<Any>, notices: &[String]) -> DbResult<()> {
    if notices.is_empty() {
        return Ok(());
    }
    conn.execute("BEGIN; SET LOCAL synchronous_commit = off")
        .await?;
    let sent = send_notices(conn, notices).await;
    let end = if sent.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute(end).await?;
    sent
}

async fn send_notices(conn: &mut PoolConnection<Any>, notices: &[String]) -> DbResult<()> {
    for chunk in chunked(notices) {
        let calls: Vec<String> = (0..chunk.len())
            .map(|i| format!("pg_notify($1, ${})", i + 2))
            .collect();
        let sql = format!("SELECT {}", calls.join(", "));
        let mut query = sqlx::query(&sql).bind(LIVE_CHANNEL);
        for notice in chunk {
            query = query.bind(notice.as_str());
        }
        query.execute(&mut **conn).await?;
    }
    Ok(())
}

/// `items` in chunks of the sizes in [`CHUNKS`], largest first.
fn chunked<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    while !items.is_empty() {
        let size = CHUNKS
            .iter()
            .copied()
            .find(|&s| s <= items.len())
            .unwrap_or(1);
        let (head, rest) = items.split_at(size);
        out.push(head);
        items = rest;
    }
    out
}

/// `($1, $2), ($3, $4)` for `rows` rows of `width` values, numbered from `first`
/// (one row of width 1 is written `$1, $2` for an `IN` list).
fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let row = |r: usize| {
        (0..width)
            .map(|c| format!("${}", first + r * width + c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if width == 1 {
        return (0..rows).map(row).collect::<Vec<_>>().join(", ");
    }
    (0..rows)
        .map(|r| format!("({})", row(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Is exactly `batch` stored under its sequence number?
async fn stored_batch_is(tx: &mut Tx, batch: &StoredBatch) -> DbResult<bool> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT body FROM batches WHERE device_id = $1 AND seq = $2")
            .bind(&batch.device_id)
            .bind(batch.seq as i64)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(stored.as_deref() == Some(batch.body.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_split_into_few_statement_shapes() {
        let items: Vec<u32> = (0..293).collect();
        let sizes: Vec<usize> = chunked(&items).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![256, 32, 4, 1]);
        assert_eq!(sizes.iter().sum::<usize>(), 293);
        assert!(chunked::<u32>(&[]).is_empty());
        assert_eq!(placeholders(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(3, 1, 1), "$1, $2, $3");
    }
}
