//! Storing location reports: what every engine's ingest writer shares.
//! The queue batches wait in, and the verdicts a group gets (sequence,
//! revocation, binding, budget), decided in memory from its devices'
//! counters; `ingest_sqlite` and `ingest_postgres` store them.
//!
//! Batches from every connection queue for one writer task that owns its
//! own database connection (so its page cache stays warm and no pool round
//! trip precedes each group). It takes whatever batches are waiting (up to
//! [`GROUP_MAX`]) and stores them in one transaction with a fixed number of
//! statements, however many batches there are: one read of every device's
//! counters, multi-row inserts of all batches, one multi-row update of the
//! counters (a narrow row per device), and one commit, so one fsync. Each
//! caller hears back only after the commit that holds its batch: nothing is
//! acknowledged before it is durable. While one group commits, the next gathers.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use waymark_protocol::ids::FamilyId;
use waymark_protocol::sealed_report::SignedSealedBatch;
use waymark_protocol::signing::b64;

use super::transactions::DbResult;
use crate::live_bus::{LiveEvent, LiveKind};

/// A verified sealed batch as the writer stores it: the columns the cloud
/// may read (who, which number, which times, how many, which setup) and the
/// signed batch itself, as JSON, exactly as it goes back to the apps.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub device_id: String,
    pub seq: u64,
    pub t_first: i64,
    pub t_last: i64,
    pub n: i64,
    pub setup_id: String,
    pub body: String,
}

impl StoredBatch {
    /// `signed`'s columns; `None` for a batch without fixes (refused before).
    pub fn of(signed: &SignedSealedBatch) -> Option<Self> {
        let h = &signed.batch.header;
        Some(Self {
            device_id: h.device_id.clone(),
            seq: h.seq,
            t_first: *h.times.iter().min()?,
            t_last: *h.times.iter().max()?,
            n: h.times.len() as i64,
            setup_id: b64(&h.setup_id.0),
            body: serde_json::to_string(signed).ok()?,
        })
    }
}

pub enum Ingest {
    Stored,
    /// This very batch (same sequence number, same bytes) was stored
    /// before: a resend after a lost acknowledgement. Nothing new is written.
    AlreadyStored,
    /// The sequence number is at or below the last stored one and holds
    /// another batch (or none we still keep): the watch's counter went back
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

/// What storing one batch led to, and the account its watch is bound to.
pub type IngestOutcome = (Ingest, Option<FamilyId>);

/// Where batches queue for the writer.
#[derive(Clone)]
pub(super) struct IngestQueue(mpsc::Sender<IngestJob>);

impl IngestQueue {
    /// A queue and the receiving end its engine's writer takes jobs from.
    pub(super) fn channel() -> (Self, mpsc::Receiver<IngestJob>) {
        let (jobs, rx) = mpsc::channel(1024);
        (Self(jobs), rx)
    }

    /// Hands `batch` to the writer and waits for the commit that holds it.
    pub(super) async fn submit(&self, batch: StoredBatch) -> DbResult<IngestOutcome> {
        let (reply, answer) = oneshot::channel();
        let closed = || sqlx::Error::PoolClosed;
        self.0
            .send(IngestJob { batch, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// At most this many batches share one commit.
pub(super) const GROUP_MAX: usize = 256;

pub(super) struct IngestJob {
    pub(super) batch: StoredBatch,
    pub(super) reply: oneshot::Sender<DbResult<IngestOutcome>>,
}

/// A device's counters as the group sees them (read once, updated in memory).
pub(super) struct Counters {
    pub(super) last_seq: i64,
    pub(super) window_start: i64,
    pub(super) used: i64,
    pub(super) revoked: bool,
    pub(super) account: Option<FamilyId>,
    /// The latest fix time stored for the device (what each new row's
    /// `t_max` continues from).
    pub(super) t_max: i64,
    pub(super) changed: bool,
}

/// What a group will write, decided from its devices' counters alone.
pub(super) struct Plan<'a> {
    /// Per batch, in order; `None` where the content check decides.
    pub(super) results: Vec<Option<IngestOutcome>>,
    /// Batches at or below their device's last sequence: "already stored"
    /// only if exactly this batch is stored under their number (checked
    /// after this group's rows are in, so a resend within it is seen too).
    pub(super) checks: Vec<(usize, i64, FamilyId)>,
    /// The batches to insert, each with its `t_max`: the latest fix time of
    /// its device's batches up to it (never decreasing along the sequence,
    /// which is what lets time-range reads start on the primary key).
    pub(super) rows: Vec<(&'a StoredBatch, i64)>,
    /// PostgreSQL only: the live events its `NOTIFY`s carry.
    pub(super) events: Vec<LiveEvent>,
}

/// The group's verdicts, in memory: sequence, revocation, binding, budget.
/// Refusals write nothing; `devices` ends with the counters to store.
pub(super) fn decide<'a>(
    batches: &[&'a StoredBatch],
    devices: &mut HashMap<String, Counters>,
    now: i64,
    events: bool,
) -> Plan<'a> {
    let mut plan = Plan {
        results: Vec::with_capacity(batches.len()),
        checks: Vec::new(),
        rows: Vec::new(),
        events: Vec::new(),
    };
    for (k, batch) in batches.iter().enumerate() {
        let Some(c) = devices.get_mut(batch.device_id.as_str()) else {
            plan.results.push(Some((Ingest::NotPaired, None)));
            continue;
        };
        if c.revoked {
            plan.results.push(Some((Ingest::Revoked, None)));
            continue;
        }
        let Some(account) = c.account.clone() else {
            plan.results.push(Some((Ingest::NotPaired, None)));
            continue;
        };
        if batch.seq > i64::MAX as u64 {
            let last_seq = c.last_seq;
            plan.results.push(Some((Ingest::Stale { last_seq }, None)));
            continue;
        }
        if batch.seq as i64 <= c.last_seq {
            plan.checks.push((k, c.last_seq, account));
            plan.results.push(None);
            continue;
        }
        if now - c.window_start >= INGEST_BUDGET_WINDOW_MS {
            (c.window_start, c.used) = (now, 0);
        }
        let used = c.used + batch.n;
        if used > INGEST_BUDGET_FIXES {
            plan.results.push(Some((Ingest::OverBudget, None)));
            continue;
        }
        (c.used, c.last_seq, c.changed) = (used, batch.seq as i64, true);
        c.t_max = c.t_max.max(batch.t_last);
        plan.rows.push((*batch, c.t_max));
        if events {
            plan.events.push(LiveEvent {
                family_id: account.clone(),
                watch_id: batch.device_id.clone(),
                kind: LiveKind::Batch,
                data: batch.body.clone(),
            });
        }
        plan.results.push(Some((Ingest::Stored, Some(account))));
    }
    plan
}

/// The verdicts of a group whose content checks came back as `same`.
pub(super) fn finish(plan: Plan<'_>, same: Vec<bool>) -> Vec<IngestOutcome> {
    let mut results = plan.results;
    for ((k, last_seq, account), same) in plan.checks.into_iter().zip(same) {
        let verdict = if same {
            Ingest::AlreadyStored
        } else {
            Ingest::Stale { last_seq }
        };
        results[k] = Some((verdict, Some(account)));
    }
    results
        .into_iter()
        .map(|r| r.expect("every batch has a verdict"))
        .collect()
}

/// Tells every caller of a group that was not committed, keeping the
/// error's kind: a failure that passes by itself (a full disk, a busy or
/// unreachable database) answers 503 and the watch keeps its batch; others
/// are internal errors.
pub(super) fn fail_group(group: Vec<IngestJob>, unavailable: bool, error: &dyn std::fmt::Display) {
    tracing::warn!(error = %error, batches = group.len(), "an ingest group was not stored");
    for job in group {
        let answer = if unavailable {
            sqlx::Error::PoolTimedOut
        } else {
            sqlx::Error::Protocol(format!("ingest failed: {error}"))
        };
        let _ = job.reply.send(Err(answer));
    }
}
