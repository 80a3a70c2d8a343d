//! Sealed reports at rest: the setup records watches post, and reading a
//! watch's batches back (the latest, history in keyset pages, whole-range
//! chunks for streams). Batches are stored as the watch signed them; only
//! their number, times, size and setup are columns. Every read of a watch's
//! reports takes a [`BoundWatch`], so it has passed the binding check.

use sqlx::Row;
use waymark_protocol::ids::{FamilyId, WatchId};
use waymark_protocol::sealed_report::{ChainHash, SetupId, SetupRecord, SignedSealedBatch};
use waymark_protocol::signing::b64;
use waymark_protocol::watches::SealedLatest;

use super::devices::BoundWatch;
use super::sealed_rows::{decode, sealed_latest};
use super::{DbResult, LockScope, Store};

/// What storing a setup record led to.
pub enum SetupStored {
    /// Stored now, for the watch bound to this account.
    New(FamilyId),
    /// Stored before (a resend): nothing new.
    Before,
    NotPaired,
    /// The watch has posted too many setups lately.
    OverBudget,
}

/// One page of sealed history as stored: the signed batches' JSON, the
/// JSON of every setup they name, and the sequence number to continue after.
pub struct StoredPage {
    pub setups: Vec<String>,
    pub batches: Vec<String>,
    pub next: Option<i64>,
}

impl Store {
    /// Stores `setup` for its bound watch, unless stored before or the watch
    /// is over `(window_ms, max)` setups.
    pub async fn store_setup(
        &self,
        device_id: &str,
        setup: &SetupRecord,
        body: &str,
        now: i64,
        (window_ms, max): (i64, i64),
    ) -> DbResult<SetupStored> {
        let mut tx = self.write_tx(LockScope::Device(device_id)).await?;
        let account: Option<String> =
            sqlx::query_scalar("SELECT account_id FROM bindings WHERE device_id = $1")
                .bind(device_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(account) = account.and_then(|a| FamilyId::parse(&a)) else {
            return Ok(SetupStored::NotPaired);
        };
        let setup_id = b64(&setup.setup_id.0);
        let before: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM fix_setups WHERE device_id = $1 AND setup_id = $2",
        )
        .bind(device_id)
        .bind(&setup_id)
        .fetch_optional(&mut *tx)
        .await?;
        if before.is_some() {
            return Ok(SetupStored::Before);
        }
        let recent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM fix_setups WHERE device_id = $1 AND created_at > $2",
        )
        .bind(device_id)
        .bind(now - window_ms)
        .fetch_one(&mut *tx)
        .await?;
        if recent >= max {
            return Ok(SetupStored::OverBudget);
        }
        sqlx::query(
            "INSERT INTO fix_setups (device_id, setup_id, epoch, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(device_id)
        .bind(&setup_id)
        .bind(i64::from(setup.epoch))
        .bind(body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SetupStored::New(account))
    }

    /// Has this device posted the setup `setup_id`?
    pub async fn has_setup(&self, device_id: &WatchId, setup_id: &SetupId) -> DbResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT epoch FROM fix_setups WHERE device_id = $1 AND setup_id = $2",
        )
        .bind(device_id.as_str())
        .bind(b64(&setup_id.0))
        .fetch_optional(&self.device_pool)
        .await?;
        Ok(found.is_some())
    }

    /// The chain hash of the device's batch `seq`, if it is stored: what a
    /// watch renumbering after it names as its predecessor.
    pub async fn chain_hash_of(&self, device_id: &str, seq: i64) -> DbResult<Option<ChainHash>> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM batches WHERE device_id = $1 AND seq = $2")
                .bind(device_id)
                .bind(seq)
                .fetch_optional(&self.device_pool)
                .await?;
        body.map(|b| decode::<SignedSealedBatch>(&b).map(|s| s.batch.chain_hash()))
            .transpose()
    }

    /// The watch's newest batch and the setup it names.
    pub async fn latest_sealed(&self, watch: &BoundWatch) -> DbResult<Option<SealedLatest>> {
        let row = sqlx::query(
            "SELECT f.body AS batch, s.body AS setup FROM batches f
             JOIN fix_setups s ON s.device_id = f.device_id AND s.setup_id = f.setup_id
             WHERE f.device_id = $1 ORDER BY f.seq DESC LIMIT 1",
        )
        .bind(watch.id().as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| sealed_latest(r.try_get("batch")?, r.try_get("setup")?))
            .transpose()
    }

    /// One page of batches with any fix in `[from, to]`, keyset-paginated
    /// on the sequence number, with the setups they name.
    pub async fn history(
        &self,
        watch: &BoundWatch,
        (from, to): (i64, i64),
        newest_first: bool,
        after: Option<i64>,
        limit: u32,
    ) -> DbResult<StoredPage> {
        let Some(first) = self.first_seq_reaching(watch.id().as_str(), from).await? else {
            return Ok(StoredPage {
                setups: Vec::new(),
                batches: Vec::new(),
                next: None,
            });
        };
        let (cmp, order, start) = if newest_first {
            ("<", "DESC", after.unwrap_or(i64::MAX))
        } else {
            (">", "ASC", after.unwrap_or(i64::MIN))
        };
        let rows = sqlx::query(&format!(
            "SELECT seq, setup_id, body FROM batches
             WHERE device_id = $1 AND seq >= $2 AND t_last >= $3 AND t_first <= $4 AND seq {cmp} $5
             ORDER BY seq {order} LIMIT $6"
        ))
        .bind(watch.id().as_str())
        .bind(first)
        .bind(from)
        .bind(to)
        .bind(start)
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = if more {
            rows.last()
                .map(|r| r.try_get::<i64, _>("seq"))
                .transpose()?
        } else {
            None
        };
        let mut named: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("setup_id"))
            .collect::<Result<_, _>>()?;
        named.sort_unstable();
        named.dedup();
        Ok(StoredPage {
            setups: self.setups_named(watch, &named).await?,
            batches: rows
                .iter()
                .map(|r| r.try_get::<String, _>("body"))
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    /// The setup records of `watch` with these ids (as stored, JSON).
    async fn setups_named(&self, watch: &BoundWatch, ids: &[String]) -> DbResult<Vec<String>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT body FROM fix_setups WHERE device_id = $1 AND setup_id IN ({}) ORDER BY created_at",
                marks.join(", ")
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql).bind(watch.id().as_str());
            for id in chunk {
                query = query.bind(id.as_str());
            }
            out.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Every setup record of `watch`, oldest first (a history stream sends
    /// them before its batches; a watch makes one per start and key epoch).
    pub async fn all_setups(&self, watch: &BoundWatch) -> DbResult<Vec<String>> {
        sqlx::query_scalar("SELECT body FROM fix_setups WHERE device_id = $1 ORDER BY created_at")
            .bind(watch.id().as_str())
            .fetch_all(&self.pool)
            .await
    }

    /// Where a history stream of `[from, ..]` starts: the sequence number to
    /// read after (every batch up to it ends before `from`), or `None` when
    /// no stored batch reaches `from`. Sought once a stream, not a chunk.
    pub async fn history_start(&self, watch: &BoundWatch, from: i64) -> DbResult<Option<i64>> {
        Ok(self
            .first_seq_reaching(watch.id().as_str(), from)
            .await?
            .map(|first| first - 1))
    }

    /// One chunk of a history stream, oldest first after sequence `after`
    /// (at first, [`Self::history_start`]):
    /// up to `limit` batches (JSON) with any fix in `[from, to]`, and the
    /// sequence number to continue after when more may follow. SQLite reads
    /// it on the store's own connection off the runtime (`sqlite_reads`).
    pub async fn history_chunk(
        &self,
        watch: &BoundWatch,
        (from, to): (i64, i64),
        after: i64,
        limit: u32,
    ) -> DbResult<(Vec<String>, Option<i64>)> {
        let rows: Vec<(i64, String)> = if let Some(reads) = &self.sqlite_reads {
            reads
                .history_chunk(watch.id().to_string(), (from, to), after, limit)
                .await?
        } else {
            sqlx::query(
                "SELECT seq, body FROM batches
                 WHERE device_id = $1 AND t_last >= $2 AND t_first <= $3 AND seq > $4
                 ORDER BY seq LIMIT $5",
            )
            .bind(watch.id().as_str())
            .bind(from)
            .bind(to)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("body")?)))
            .collect::<DbResult<_>>()?
        };
        let next = if rows.len() == limit as usize {
            rows.last().map(|(seq, _)| *seq)
        } else {
            None
        };
        Ok((rows.into_iter().map(|(_, body)| body).collect(), next))
    }
}

impl Store {
    /// The first sequence number of the device's stored batches that can
    /// hold a fix at or after `from`; every batch before it ends earlier.
    /// `None`: no stored batch reaches `from`. Found by bisection on the
    /// primary key over `t_max` (the latest fix time up to each batch, which
    /// never decreases along the sequence; migration 0013), so a time-range
    /// read needs no index on time, and ingest does not keep one.
    async fn first_seq_reaching(&self, device_id: &str, from: i64) -> DbResult<Option<i64>> {
        let row =
            sqlx::query("SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM batches WHERE device_id = $1")
                .bind(device_id)
                .fetch_one(&self.pool)
                .await?;
        let (Some(mut lo), Some(hi)) = (
            row.try_get::<Option<i64>, _>("lo")?,
            row.try_get::<Option<i64>, _>("hi")?,
        ) else {
            return Ok(None);
        };
        // The first stored batch at or after `seq`, with its `t_max`.
        let probe = async |seq: i64| -> DbResult<(i64, i64)> {
            let r = sqlx::query(
                "SELECT seq, t_max FROM batches WHERE device_id = $1 AND seq >= $2 ORDER BY seq LIMIT 1",
            )
            .bind(device_id)
            .bind(seq)
            .fetch_one(&self.pool)
            .await?;
            Ok((r.try_get("seq")?, r.try_get("t_max")?))
        };
        if probe(hi).await?.1 < from {
            return Ok(None);
        }
        // `best` reaches `from`; no stored batch before `lo` does, and none
        // is stored in `[end, best)`. Sequence numbers may have holes.
        let (mut best, mut end) = (hi, hi);
        while lo < end {
            let mid = lo + (end - lo) / 2;
            let (seq, t_max) = probe(mid).await?;
            if seq >= end {
                end = mid;
            } else if t_max >= from {
                (best, end) = (seq, seq);
            } else {
                lo = seq + 1;
            }
        }
        Ok(Some(best))
    }

    /// For tests and diagnostics: how many fixes the stored batches hold
    /// (their count is a column; the fixes themselves are sealed).
    pub async fn stored_fixes(&self) -> DbResult<i64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT CAST(SUM(n) AS BIGINT) FROM batches")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0))
    }
}
