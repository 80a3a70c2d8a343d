//! Watch data: devices, pairing offers, bindings, fixes and rate limits.
//!
//! Rule 2 lives here as a type: every query of one watch's data takes a
//! [`BoundWatch`], and the only way to get one is [`Store::bound_watch`],
//! which asks whether the watch is bound to the caller's account.

use sqlx::Row;
use tokio::sync::{mpsc, oneshot};
use waymark_protocol::report::{Batch, Fix};
use waymark_protocol::watches::{LiveFix, REPORTING_WINDOW_MS, WatchInfo, WatchState};

use super::{DbResult, Engine, Store, record};
use crate::app::LiveEvent;
use crate::ids::now_ms;

/// Proof that the binding check passed: this watch is bound to this account.
/// Constructed only by [`Store::bound_watch`] and [`Store::list_watches`].
#[derive(Debug, Clone)]
pub struct BoundWatch {
    device_id: String,
    account_id: String,
    pub name: String,
    pub model: String,
    pub bound_at: i64,
    /// Set when the parent revoked it and kept its history.
    pub revoked_at: Option<i64>,
}

impl BoundWatch {
    pub fn id(&self) -> &str {
        &self.device_id
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A device the cloud knows (from a verified certificate).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub id: String,
    pub certificate: Vec<u8>,
    pub last_seq: i64,
    pub revoked_at: Option<i64>,
}

pub enum Pairing {
    Paired(BoundWatch),
    NoSuchCode,
    Expired,
    Used,
    AlreadyBound,
    /// Already bound to the same account: nothing to do.
    AlreadyYours,
    Revoked,
}

pub enum Ingest {
    Stored,
    /// This very batch (same sequence number, same fixes) was stored
    /// before: a resend after a lost acknowledgement. Nothing new is written.
    AlreadyStored,
    /// The sequence number is at or below the last stored one and holds
    /// other fixes (or none we still keep): the watch's counter went back
    /// in time and it must renumber above `last_seq`.
    Stale {
        last_seq: i64,
    },
    NotPaired,
    Revoked,
    /// The watch has sent [`INGEST_BUDGET_FIXES`] in this window already.
    OverBudget,
}

/// Fixes one watch may have stored per [`INGEST_BUDGET_WINDOW_MS`]: one a
/// second for the whole window plus a full offline queue (10,000) to flush.
pub const INGEST_BUDGET_FIXES: i64 = 20_000;
pub const INGEST_BUDGET_WINDOW_MS: i64 = 10 * 60 * 1000;

fn fix_from(r: &sqlx::any::AnyRow) -> Fix {
    Fix {
        t: r.get("t"),
        lat: r.get("lat"),
        lon: r.get("lon"),
        acc: r.get("acc"),
        bat: r.get::<i64, _>("bat") as u8,
    }
}

const BINDING_COLUMNS: &str =
    "b.device_id, b.account_id, b.name, d.model, b.bound_at, b.revoked_at";

fn bound_from(r: &sqlx::any::AnyRow) -> BoundWatch {
    BoundWatch {
        device_id: r.get("device_id"),
        account_id: r.get("account_id"),
        name: r.get("name"),
        model: r.get("model"),
        bound_at: r.get("bound_at"),
        revoked_at: r.get("revoked_at"),
    }
}

impl Store {
    // ---- the binding check ------------------------------------------------

    /// The one decision of rule 2: is `device_id` bound to `account_id`?
    /// `None` for a watch of another account and for one that does not exist alike.
    pub async fn bound_watch(
        &self,
        account_id: &str,
        device_id: &str,
    ) -> DbResult<Option<BoundWatch>> {
        let row = sqlx::query(&format!(
            "SELECT {BINDING_COLUMNS} FROM bindings b JOIN devices d ON d.id = b.device_id
             WHERE b.account_id = $1 AND b.device_id = $2"
        ))
        .bind(account_id)
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(bound_from))
    }

    /// Every watch bound to the account, with its latest fix.
    pub async fn list_watches(&self, account_id: &str) -> DbResult<Vec<WatchInfo>> {
        self.watch_infos(account_id, None).await
    }

    /// One bound watch as the list shows it.
    pub async fn watch_info(&self, watch: &BoundWatch) -> DbResult<Option<WatchInfo>> {
        Ok(self
            .watch_infos(&watch.account_id, Some(&watch.device_id))
            .await?
            .pop())
    }

    async fn watch_infos(&self, account_id: &str, only: Option<&str>) -> DbResult<Vec<WatchInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT {BINDING_COLUMNS}, f.t, f.lat, f.lon, f.acc, f.bat FROM bindings b
             JOIN devices d ON d.id = b.device_id
             LEFT JOIN fixes f ON f.id = (SELECT id FROM fixes WHERE device_id = b.device_id ORDER BY t DESC, id DESC LIMIT 1)
             WHERE b.account_id = $1 AND (CAST($2 AS TEXT) IS NULL OR b.device_id = $3) ORDER BY b.bound_at, b.device_id"
        ))
        .bind(account_id)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        let now = now_ms();
        Ok(rows
            .iter()
            .map(|r| {
                let w = bound_from(r);
                let latest = r.get::<Option<i64>, _>("t").map(|_| fix_from(r));
                let state = if w.revoked_at.is_some() {
                    WatchState::Revoked
                } else if latest.is_some_and(|f| now - f.t <= REPORTING_WINDOW_MS) {
                    WatchState::Reporting
                } else {
                    WatchState::Quiet
                };
                WatchInfo {
                    id: w.device_id,
                    name: w.name,
                    model: w.model,
                    paired_at: w.bound_at,
                    battery: latest.map(|f| f.bat),
                    last_seen: latest.map(|f| f.t),
                    latest,
                    state,
                }
            })
            .collect())
    }

    pub async fn rename_watch(&self, watch: &BoundWatch, name: &str, actor: &str) -> DbResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE bindings SET name = $1 WHERE device_id = $2 AND account_id = $3")
            .bind(name)
            .bind(&watch.device_id)
            .bind(&watch.account_id)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            &watch.account_id,
            "watch.renamed",
            Some(actor),
            &format!("Renamed “{}” to “{name}”", watch.name),
        )
        .await?;
        tx.commit().await
    }

    pub async fn latest_fix(&self, watch: &BoundWatch) -> DbResult<Option<Fix>> {
        let row = sqlx::query("SELECT t, lat, lon, acc, bat FROM fixes WHERE device_id = $1 ORDER BY t DESC, id DESC LIMIT 1")
            .bind(&watch.device_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(fix_from))
    }

    /// One page of history in `[from, to]`, keyset-paginated on `(t, id)`.
    /// Returns the fixes and the `(t, id)` of the last one when more may follow.
    pub async fn history(
        &self,
        watch: &BoundWatch,
        from: i64,
        to: i64,
        newest_first: bool,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> DbResult<(Vec<Fix>, Option<(i64, i64)>)> {
        // The cursor narrows the time range itself (not only a row-value
        // comparison), so every page starts its index scan at the cursor
        // instead of at the range's start: a long range is read in linear time.
        let (cmp, order) = if newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let (lo, hi, ct, cid) = match (after, newest_first) {
            (None, true) => (from, to, i64::MAX, i64::MAX),
            (None, false) => (from, to, i64::MIN, i64::MIN),
            (Some((t, id)), true) => (from, to.min(t), t, id),
            (Some((t, id)), false) => (from.max(t), to, t, id),
        };
        let rows = sqlx::query(&format!(
            "SELECT id, t, lat, lon, acc, bat FROM fixes
             WHERE device_id = $1 AND t >= $2 AND t <= $3 AND (t {cmp} $4 OR (t = $5 AND id {cmp} $6))
             ORDER BY t {order}, id {order} LIMIT $7"
        ))
        .bind(&watch.device_id)
        .bind(lo)
        .bind(hi)
        .bind(ct)
        .bind(ct)
        .bind(cid)
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = if more {
            rows.last()
                .map(|r| (r.get::<i64, _>("t"), r.get::<i64, _>("id")))
        } else {
            None
        };
        Ok((rows.iter().map(fix_from).collect(), next))
    }

    // ---- devices and pairing ----------------------------------------------

    pub async fn device(&self, device_id: &str) -> DbResult<Option<Device>> {
        sqlx::query_as("SELECT id, certificate, last_seq, revoked_at FROM devices WHERE id = $1")
            .bind(device_id)
            .fetch_optional(&self.device_pool)
            .await
    }

    /// Registers the device if new, and stores its offer, replacing any
    /// unspent earlier offers of the same device. False if it was revoked.
    #[allow(clippy::too_many_arguments)]
    pub async fn store_offer(
        &self,
        device_id: &str,
        serial: &str,
        model: &str,
        certificate: &[u8],
        code_hash: &str,
        created_at: i64,
        expires_at: i64,
    ) -> DbResult<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO devices (id, serial, model, certificate, registered_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(id) DO NOTHING")
            .bind(device_id)
            .bind(serial)
            .bind(model)
            .bind(certificate)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let revoked: (Option<i64>,) =
            sqlx::query_as("SELECT revoked_at FROM devices WHERE id = $1")
                .bind(device_id)
                .fetch_one(&mut *tx)
                .await?;
        if revoked.0.is_some() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM pairing_offers WHERE device_id = $1 AND spent_at IS NULL")
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO pairing_offers (code_hash, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(code_hash)
            .bind(device_id)
            .bind(created_at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Spends the offer matching `code_hash` and binds its watch to the
    /// account, all in one transaction.
    pub async fn pair(&self, account_id: &str, code_hash: &str, actor: &str) -> DbResult<Pairing> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let offer = sqlx::query(
            "SELECT o.device_id, o.expires_at, o.spent_at, d.revoked_at, d.model FROM pairing_offers o
             JOIN devices d ON d.id = o.device_id WHERE o.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(offer) = offer else {
            return Ok(Pairing::NoSuchCode);
        };
        let device_id: String = offer.get("device_id");
        if offer.get::<Option<i64>, _>("revoked_at").is_some() {
            return Ok(Pairing::Revoked);
        }
        if offer.get::<Option<i64>, _>("spent_at").is_some() {
            return Ok(Pairing::Used);
        }
        if offer.get::<i64, _>("expires_at") <= now {
            return Ok(Pairing::Expired);
        }
        let bound: Option<(String,)> =
            sqlx::query_as("SELECT account_id FROM bindings WHERE device_id = $1")
                .bind(&device_id)
                .fetch_optional(&mut *tx)
                .await?;
        match bound {
            Some((owner,)) if owner == account_id => return Ok(Pairing::AlreadyYours),
            Some(_) => return Ok(Pairing::AlreadyBound),
            None => {}
        }
        let model: String = offer.get("model");
        let name = format!("{model} {}", &device_id[..4].to_uppercase());
        sqlx::query(
            "UPDATE pairing_offers SET spent_at = $1 WHERE code_hash = $2 AND spent_at IS NULL",
        )
        .bind(now)
        .bind(code_hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bindings (device_id, account_id, name, bound_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&device_id)
        .bind(account_id)
        .bind(&name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            account_id,
            "watch.paired",
            Some(actor),
            &format!("Paired “{name}”"),
        )
        .await?;
        tx.commit().await?;
        Ok(Pairing::Paired(BoundWatch {
            device_id,
            account_id: account_id.to_owned(),
            name,
            model,
            bound_at: now,
            revoked_at: None,
        }))
    }

    /// Records a status poll made at `at` if it is newer than every poll
    /// accepted before: false for a replayed (or older) poll.
    pub async fn accept_status(&self, device_id: &str, at: i64) -> DbResult<bool> {
        let done =
            sqlx::query("UPDATE devices SET status_at = $1 WHERE id = $2 AND status_at < $3")
                .bind(at)
                .bind(device_id)
                .bind(at)
                .execute(&self.device_pool)
                .await?
                .rows_affected();
        Ok(done == 1)
    }

    /// The display name of the account a live device is bound to.
    pub async fn owner_of(&self, device_id: &str) -> DbResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT a.display_name FROM bindings b JOIN accounts a ON a.id = b.account_id
             WHERE b.device_id = $1 AND b.revoked_at IS NULL",
        )
        .bind(device_id)
        .fetch_optional(&self.device_pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    // ---- reporting ----------------------------------------------------------

    /// Stores a verified batch if its sequence is new, durably, before the
    /// caller acknowledges it. Returns the account it belongs to on success.
    /// Batches from all connections go through one writer that commits them
    /// in groups (one fsync for many batches); each caller still hears back
    /// only after the commit that holds its batch.
    pub async fn ingest(&self, batch: &Batch) -> DbResult<(Ingest, Option<String>)> {
        let (reply, answer) = oneshot::channel();
        let closed = || sqlx::Error::PoolClosed;
        self.ingest_jobs
            .send(IngestJob {
                batch: batch.clone(),
                reply,
            })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    // ---- revocation ---------------------------------------------------------

    /// Refuses the watch's key from now on; keeps its history (readable by
    /// the same account, marked revoked) or deletes it with the binding.
    pub async fn revoke_watch(
        &self,
        watch: &BoundWatch,
        keep_history: bool,
        actor: &str,
    ) -> DbResult<()> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&watch.device_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pairing_offers WHERE device_id = $1")
            .bind(&watch.device_id)
            .execute(&mut *tx)
            .await?;
        if keep_history {
            sqlx::query(
                "UPDATE bindings SET revoked_at = $1 WHERE device_id = $2 AND account_id = $3",
            )
            .bind(now)
            .bind(&watch.device_id)
            .bind(&watch.account_id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM fixes WHERE device_id = $1")
                .bind(&watch.device_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM bindings WHERE device_id = $1 AND account_id = $2")
                .bind(&watch.device_id)
                .bind(&watch.account_id)
                .execute(&mut *tx)
                .await?;
        }
        let what = if keep_history {
            "history kept"
        } else {
            "history deleted"
        };
        record(
            &mut tx,
            &watch.account_id,
            "watch.revoked",
            Some(actor),
            &format!("Revoked “{}” ({what})", watch.name),
        )
        .await?;
        tx.commit().await?;
        if !keep_history {
            self.scrub_deleted().await;
        }
        Ok(())
    }

    // ---- rate limits --------------------------------------------------------

    /// Counts one attempt against `key` and says whether it is within the
    /// `max` of the current window, in one statement: concurrent attempts
    /// each see their own count, so exactly `max` pass, never more.
    pub async fn spend_attempt(&self, key: &str, window_ms: i64, max: i64) -> DbResult<bool> {
        let now = now_ms();
        let (count,): (i64,) = sqlx::query_as(
            "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1)
             ON CONFLICT(key) DO UPDATE SET
               count = CASE WHEN $3 - rate_limits.window_start >= $4 THEN 1 ELSE rate_limits.count + 1 END,
               window_start = CASE WHEN $5 - rate_limits.window_start >= $6 THEN $7 ELSE rate_limits.window_start END
             RETURNING count",
        )
        .bind(key)
        .bind(now)
        .bind(now)
        .bind(window_ms)
        .bind(now)
        .bind(window_ms)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(count <= max)
    }

    /// Gives back an attempt that turned out not to count (a right code, a
    /// successful exchange).
    pub async fn refund_attempt(&self, key: &str) -> DbResult<()> {
        sqlx::query("UPDATE rate_limits SET count = count - 1 WHERE key = $1 AND count > 0")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// At most this many batches share one commit.
const GROUP_MAX: usize = 256;

pub(super) struct IngestJob {
    batch: Batch,
    reply: oneshot::Sender<DbResult<(Ingest, Option<String>)>>,
}

/// The single ingest writer: takes whatever batches are waiting (up to
/// [`GROUP_MAX`]), stores them in one `BEGIN IMMEDIATE` transaction, commits,
/// then answers each. While it waits for the disk, the next group gathers.
pub(super) async fn ingest_writer(
    pool: sqlx::AnyPool,
    engine: Engine,
    mut jobs: mpsc::Receiver<IngestJob>,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let outcome = async {
            let mut tx = match engine {
                Engine::Sqlite => super::Tx::begin(&pool, "BEGIN IMMEDIATE").await?,
                Engine::Postgres => super::Tx::begin(&pool, "BEGIN").await?,
            };
            let mut results = Vec::with_capacity(group.len());
            for job in &group {
                results.push(ingest_one(&mut tx, engine, &job.batch).await?);
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(results)
        }
        .await;
        match outcome {
            Ok(results) => {
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(e) => {
                // Nothing of the group was committed: every caller hears an
                // error and keeps its batch. The error keeps its kind (a full
                // disk stays "unavailable", a bug stays internal).
                let unavailable = crate::error::is_unavailable(&e);
                tracing::warn!(error = %e, batches = group.len(), "an ingest group was not stored");
                for job in group {
                    let answer = if unavailable {
                        sqlx::Error::PoolTimedOut
                    } else {
                        sqlx::Error::Protocol(format!("ingest failed: {e}"))
                    };
                    let _ = job.reply.send(Err(answer));
                }
            }
        }
    }
}

/// Are exactly `batch`'s fixes stored under its sequence number? Bounded by
/// the batch's own time range, so the `(device_id, t)` index finds them.
async fn stored_batch_is(tx: &mut super::Tx, batch: &Batch) -> DbResult<bool> {
    let (Some(min), Some(max)) = (
        batch.fixes.iter().map(|f| f.t).min(),
        batch.fixes.iter().map(|f| f.t).max(),
    ) else {
        return Ok(false);
    };
    let rows = sqlx::query(
        "SELECT t, lat, lon, acc, bat FROM fixes WHERE device_id = $1 AND t >= $2 AND t <= $3 AND seq = $4 ORDER BY id",
    )
    .bind(&batch.device_id)
    .bind(min)
    .bind(max)
    .bind(batch.seq as i64)
    .fetch_all(&mut **tx)
    .await?;
    let stored: Vec<Fix> = rows.iter().map(fix_from).collect();
    let bits = |f: &Fix| {
        (
            f.t,
            f.lat.to_bits(),
            f.lon.to_bits(),
            f.acc.to_bits(),
            f.bat,
        )
    };
    Ok(stored.len() == batch.fixes.len()
        && stored
            .iter()
            .zip(&batch.fixes)
            .all(|(a, b)| bits(a) == bits(b)))
}

/// One batch inside the writer's transaction. Refusals write nothing.
async fn ingest_one(
    tx: &mut super::Tx,
    engine: Engine,
    batch: &Batch,
) -> DbResult<(Ingest, Option<String>)> {
    // PostgreSQL: every instance has its own writer, so the device row is
    // locked until commit; SQLite's one writer already holds the database lock.
    let lock = match engine {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE OF d",
    };
    let row = sqlx::query(&format!(
        "SELECT d.last_seq, d.revoked_at, d.budget_window_start, d.budget_window_fixes, b.account_id FROM devices d
         LEFT JOIN bindings b ON b.device_id = d.id WHERE d.id = $1{lock}"
    ))
    .bind(&batch.device_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok((Ingest::NotPaired, None));
    };
    if row.get::<Option<i64>, _>("revoked_at").is_some() {
        return Ok((Ingest::Revoked, None));
    }
    let Some(account_id) = row.get::<Option<String>, _>("account_id") else {
        return Ok((Ingest::NotPaired, None));
    };
    let last_seq: i64 = row.get("last_seq");
    if batch.seq > i64::MAX as u64 {
        return Ok((Ingest::Stale { last_seq }, None));
    }
    if batch.seq as i64 <= last_seq {
        // Only the same content under the same number is "already stored":
        // a watch whose queue went back in time reuses numbers for new fixes,
        // and must hear that they were not stored.
        let same = stored_batch_is(tx, batch).await?;
        let verdict = if same {
            Ingest::AlreadyStored
        } else {
            Ingest::Stale { last_seq }
        };
        return Ok((verdict, Some(account_id)));
    }
    // The budget is counted in the same row and transaction as the sequence
    // number: no extra round trip, and every instance sees the same count.
    let now = crate::ids::now_ms();
    let (mut window_start, mut used): (i64, i64) = (
        row.get("budget_window_start"),
        row.get("budget_window_fixes"),
    );
    if now - window_start >= INGEST_BUDGET_WINDOW_MS {
        (window_start, used) = (now, 0);
    }
    let used = used + batch.fixes.len() as i64;
    if used > INGEST_BUDGET_FIXES {
        return Ok((Ingest::OverBudget, None));
    }
    sqlx::query(
        "UPDATE devices SET last_seq = $1, budget_window_start = $2, budget_window_fixes = $3 WHERE id = $4",
    )
    .bind(batch.seq as i64)
    .bind(window_start)
    .bind(used)
    .bind(&batch.device_id)
        .execute(&mut **tx)
        .await?;
    for f in &batch.fixes {
        sqlx::query("INSERT INTO fixes (device_id, t, lat, lon, acc, bat, seq) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&batch.device_id)
            .bind(f.t)
            .bind(f.lat)
            .bind(f.lon)
            .bind(f.acc)
            .bind(f.bat as i64)
            .bind(batch.seq as i64)
            .execute(&mut **tx)
            .await?;
    }
    if engine == Engine::Postgres {
        // Delivered at commit, to every instance's live streams (this one's too).
        for fix in &batch.fixes {
            let notice = serde_json::to_string(&LiveEvent {
                account_id: account_id.clone(),
                event: LiveFix {
                    watch_id: batch.device_id.clone(),
                    fix: *fix,
                },
            })
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::LIVE_CHANNEL)
                .bind(notice)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok((Ingest::Stored, Some(account_id)))
}
