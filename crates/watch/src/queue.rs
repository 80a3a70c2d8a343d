//! The on-disk report queue. Fixes wait here until the cloud acknowledges
//! them (rule 6). It is bounded: when full, the oldest fix goes and is
//! counted. A batch, once formed, keeps its sequence number and contents
//! until acknowledged; once sealed, its sealed form is kept too, so a
//! resend (even after a restart) is byte-for-byte the same batch. Every
//! repair of a batch (restamp, trim, renumber) drops the sealed form and is
//! sealed again under a new `version` (the AEAD nonce): a changed batch
//! never reuses a key and nonce pair. The queue also keeps the chain hash of
//! the last acknowledged batch, which the next one names as its predecessor.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use waymark_protocol::report::{Fix, Record};
use waymark_protocol::sealed_report::{ChainHash, SignedSealedBatch};

pub const QUEUE_FILE: &str = "queue.json";
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A batch of records (fixes and zone events) in plain form, as the watch
/// keeps it until it is acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub device_id: String,
    pub seq: u64,
    /// Named `fixes` on disk since before zone events existed; a queue file
    /// of plain fixes reads as records.
    pub fixes: Vec<Record>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next_seq: u64,
    dropped: u64,
    pending: std::collections::VecDeque<Record>,
    inflight: Option<Batch>,
    /// The in-flight batch as sealed and signed, once it was.
    #[serde(default)]
    sealed: Option<SignedSealedBatch>,
    /// Sealings so far: the next one uses this as its `version`.
    #[serde(default)]
    sealings: u32,
    /// The chain hash of the last batch the cloud acknowledged.
    #[serde(default)]
    chain_head: ChainHash,
    /// The clock correction the pending fixes were stamped with.
    #[serde(default)]
    pending_offset: i64,
    /// The clock correction the in-flight batch was stamped with.
    #[serde(default)]
    inflight_offset: i64,
}

pub struct Queue {
    path: PathBuf,
    capacity: usize,
    state: State,
}

impl Queue {
    pub fn open(dir: &Path, capacity: usize) -> anyhow::Result<Self> {
        let path = dir.join(QUEUE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                next_seq: 1,
                ..State::default()
            },
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            path,
            capacity: capacity.max(1),
            state,
        })
    }

    /// Adds a fix stamped with clock correction `offset` (dropping and
    /// counting the oldest when full), durably. Pending fixes stamped with
    /// another correction are moved to this one first.
    pub fn push_stamped(&mut self, fix: Fix, offset: i64) -> anyhow::Result<()> {
        self.push_record_stamped(Record::Fix(fix), offset)
    }

    /// [`push_stamped`](Self::push_stamped) for any record.
    pub fn push_record_stamped(&mut self, record: Record, offset: i64) -> anyhow::Result<()> {
        self.shift_pending(offset);
        self.push_record(record)
    }

    /// Moves every pending fix to clock correction `offset` (a newer one
    /// the cloud's answers taught), durably.
    pub fn adopt_offset(&mut self, offset: i64) -> anyhow::Result<()> {
        if offset != self.state.pending_offset {
            self.shift_pending(offset);
            self.save()?;
        }
        Ok(())
    }

    /// Moves every pending fix to clock correction `offset`.
    fn shift_pending(&mut self, offset: i64) {
        let delta = offset - self.state.pending_offset;
        if delta != 0 {
            for f in &mut self.state.pending {
                *f.t_mut() += delta;
            }
            self.state.pending_offset = offset;
        }
    }

    /// The cloud refused the in-flight batch for its times (never stored):
    /// restamp it with correction `offset`, and clamp anything still ahead
    /// of `now` (the clock jumped while it queued) to `now`. Returns whether
    /// anything changed.
    pub fn restamp_inflight(&mut self, offset: i64, now: i64) -> anyhow::Result<bool> {
        let delta = offset - self.state.inflight_offset;
        let mut changed = false;
        if let Some(b) = self.state.inflight.as_mut() {
            for f in &mut b.fixes {
                let t = (f.t() + delta).min(now);
                changed |= t != f.t();
                *f.t_mut() = t;
            }
        }
        if changed {
            self.state.sealed = None;
        }
        self.state.inflight_offset = offset;
        self.shift_pending(offset);
        self.save()?;
        Ok(changed)
    }

    /// The cloud refused fixes of the in-flight batch that no correction can
    /// make valid (checked here with `keep`): they go, counted; the rest stay
    /// in flight under the same number (the cloud stored none of them).
    /// Returns how many went.
    pub fn drop_invalid_inflight(
        &mut self,
        keep: impl Fn(&Record) -> bool,
    ) -> anyhow::Result<usize> {
        let Some(b) = self.state.inflight.as_mut() else {
            return Ok(0);
        };
        let before = b.fixes.len();
        b.fixes.retain(|f| keep(f));
        let gone = before - b.fixes.len();
        if b.fixes.is_empty() {
            self.state.inflight = None;
        }
        if gone > 0 {
            self.state.sealed = None;
        }
        self.state.dropped += gone as u64;
        self.save()?;
        Ok(gone)
    }

    /// Adds a fix (dropping and counting the oldest when full), durably.
    pub fn push(&mut self, fix: Fix) -> anyhow::Result<()> {
        self.push_record(Record::Fix(fix))
    }

    fn push_record(&mut self, fix: Record) -> anyhow::Result<()> {
        let inflight = self.state.inflight.as_ref().map_or(0, |b| b.fixes.len());
        while self.state.pending.len() + inflight >= self.capacity
            && self.state.pending.pop_front().is_some()
        {
            self.state.dropped += 1;
        }
        self.state.pending.push_back(fix);
        self.save()
    }

    /// The batch to send now: the one already formed, or a new one of up to
    /// `max` fixes with the next sequence number.
    pub fn next_batch(&mut self, device_id: &str, max: usize) -> anyhow::Result<Option<Batch>> {
        if self.state.inflight.is_none() && !self.state.pending.is_empty() {
            let n = self.state.pending.len().min(max);
            let fixes: Vec<Record> = self.state.pending.drain(..n).collect();
            self.state.inflight = Some(Batch {
                device_id: device_id.to_owned(),
                seq: self.state.next_seq,
                fixes,
            });
            self.state.inflight_offset = self.state.pending_offset;
            self.state.next_seq += 1;
            self.save()?;
        }
        Ok(self.state.inflight.clone())
    }

    /// The in-flight batch as sealed, if it has been since it last changed.
    pub fn sealed_inflight(&self) -> Option<SignedSealedBatch> {
        self.state.sealed.clone()
    }

    /// Seals the in-flight batch with `seal(batch, version, prev_hash)` and
    /// keeps the result (durably, with the version used up) until it is
    /// acknowledged or changed.
    pub fn seal_inflight(
        &mut self,
        seal: impl FnOnce(&Batch, u32, ChainHash) -> anyhow::Result<SignedSealedBatch>,
    ) -> anyhow::Result<Option<SignedSealedBatch>> {
        let Some(batch) = self.state.inflight.as_ref() else {
            return Ok(None);
        };
        let version = self.state.sealings;
        let sealed = seal(batch, version, self.state.chain_head)?;
        self.state.sealings = version
            .checked_add(1)
            .ok_or_else(|| anyhow::anyhow!("this queue has sealed 2^32 batches"))?;
        self.state.sealed = Some(sealed.clone());
        self.save()?;
        Ok(Some(sealed))
    }

    /// Seal the in-flight batch again (the cloud no longer has the setup it named).
    pub fn unseal_inflight(&mut self) -> anyhow::Result<()> {
        self.state.sealed = None;
        self.save()
    }

    /// The cloud stored the in-flight batch: forget it, and chain the next
    /// batch to it.
    pub fn acknowledged(&mut self, seq: u64) -> anyhow::Result<()> {
        if self.state.inflight.as_ref().is_some_and(|b| b.seq == seq) {
            self.state.inflight = None;
            if let Some(sealed) = self.state.sealed.take() {
                self.state.chain_head = sealed.batch.chain_hash();
            }
            self.save()?;
        }
        Ok(())
    }

    /// The cloud holds another batch under our number (the queue was
    /// restored from an older copy, or lost): renumber the in-flight batch
    /// after the cloud's last sequence, and everything after it, chained to
    /// the cloud's last batch (`last_hash`, its word: a lie shows in the
    /// family's app as a break, never as a place).
    pub fn resequence_after(
        &mut self,
        last_seq: u64,
        last_hash: Option<ChainHash>,
    ) -> anyhow::Result<()> {
        let first = last_seq + 1;
        if let Some(b) = self.state.inflight.as_mut() {
            b.seq = first;
        }
        self.state.sealed = None;
        self.state.chain_head = last_hash.unwrap_or(ChainHash::GENESIS);
        self.state.next_seq = self.state.next_seq.max(first + 1);
        self.save()
    }

    pub fn inflight_seq(&self) -> Option<u64> {
        self.state.inflight.as_ref().map(|b| b.seq)
    }

    pub fn len(&self) -> usize {
        self.state.pending.len() + self.state.inflight.as_ref().map_or(0, |b| b.fixes.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dropped(&self) -> u64 {
        self.state.dropped
    }

    /// Write to a temporary file, fsync, rename, fsync the directory: a
    /// crash or power cut leaves the old or the new queue, never half, and
    /// never the old one after the new one was reported saved (the rename
    /// itself is only durable once the directory is synced).
    fn save(&self) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&self.state)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(t: i64) -> Fix {
        Fix {
            t,
            lat: 1.0,
            lon: 2.0,
            acc: 5.0,
            bat: 50,
        }
    }

    #[test]
    fn survives_reopen_and_keeps_batches_stable_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 100).unwrap();
        for t in 0..5 {
            q.push(fix(t)).unwrap();
        }
        let b1 = q.next_batch("d", 3).unwrap().unwrap();
        assert_eq!((b1.seq, b1.fixes.len()), (1, 3));
        drop(q);
        let mut q = Queue::open(dir.path(), 100).unwrap();
        assert_eq!(
            q.next_batch("d", 3).unwrap().unwrap(),
            b1,
            "same batch after a restart"
        );
        q.acknowledged(1).unwrap();
        let b2 = q.next_batch("d", 3).unwrap().unwrap();
        assert_eq!((b2.seq, b2.fixes[0].t(), b2.fixes.len()), (2, 3, 2));
        q.acknowledged(2).unwrap();
        assert!(q.is_empty());
        assert!(q.next_batch("d", 3).unwrap().is_none());
    }

    #[test]
    fn a_refused_batch_is_restamped_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 100).unwrap();
        // Stamped by a clock 3 minutes fast, before any correction was known.
        q.push_stamped(fix(1_000_000), 0).unwrap();
        q.push_stamped(fix(1_001_000), 0).unwrap();
        let b = q.next_batch("d", 1).unwrap().unwrap();
        assert_eq!(b.fixes[0].t(), 1_000_000);
        // The cloud says the clock is 180 s fast.
        assert!(q.restamp_inflight(-180_000, 10_000_000).unwrap());
        let b = q.next_batch("d", 1).unwrap().unwrap();
        assert_eq!(
            (b.seq, b.fixes[0].t()),
            (1, 820_000),
            "same number, corrected time"
        );
        q.acknowledged(1).unwrap();
        let b = q.next_batch("d", 1).unwrap().unwrap();
        assert_eq!(b.fixes[0].t(), 821_000, "pending fixes were corrected too");
        assert_eq!(q.dropped(), 0);
        // A fix still ahead of the cloud after correction is clamped, not lost.
        q.push_stamped(fix(50_000_000), -180_000).unwrap();
        q.acknowledged(2).unwrap();
        q.next_batch("d", 1).unwrap().unwrap();
        assert!(q.restamp_inflight(-180_000, 40_000_000).unwrap());
        assert_eq!(
            q.next_batch("d", 1).unwrap().unwrap().fixes[0].t(),
            40_000_000
        );
    }

    #[test]
    fn only_invalid_fixes_leave_a_refused_batch_and_they_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 100).unwrap();
        for t in 0..5 {
            q.push(fix(t)).unwrap();
        }
        q.next_batch("d", 5).unwrap();
        assert_eq!(q.drop_invalid_inflight(|f| f.t() != 2).unwrap(), 1);
        let b = q.next_batch("d", 5).unwrap().unwrap();
        assert_eq!((b.seq, b.fixes.len(), q.dropped()), (1, 4, 1));
    }

    fn sealed(b: &Batch, version: u32, prev: ChainHash) -> anyhow::Result<SignedSealedBatch> {
        use waymark_protocol::sealed_report::{SealedBatch, SealedHeader, SetupId};
        Ok(SignedSealedBatch {
            batch: SealedBatch {
                header: SealedHeader {
                    device_id: b.device_id.clone(),
                    seq: b.seq,
                    epoch: 0,
                    setup_id: SetupId([0; 16]),
                    version,
                    times: b.fixes.iter().map(|f| f.t()).collect(),
                    prev_hash: prev,
                },
                ciphertext: vec![0; b.fixes.len() * 25 + 16],
            },
            signature: "sig".into(),
        })
    }

    #[test]
    fn a_sealed_batch_is_resent_as_sealed_and_sealed_anew_after_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 100).unwrap();
        for t in 0..3 {
            q.push(fix(t)).unwrap();
        }
        q.next_batch("d", 2).unwrap();
        let first = q.seal_inflight(sealed).unwrap().unwrap();
        assert_eq!(first.batch.header.prev_hash, ChainHash::GENESIS);
        // After a restart: the same bytes (the cloud's "stored before" check).
        drop(q);
        let mut q = Queue::open(dir.path(), 100).unwrap();
        assert_eq!(q.sealed_inflight(), Some(first.clone()));
        // A repair drops the sealed form; the next sealing has a new version.
        q.drop_invalid_inflight(|f| f.t() != 1).unwrap();
        assert_eq!(q.sealed_inflight(), None);
        let second = q.seal_inflight(sealed).unwrap().unwrap();
        assert_eq!(second.batch.header.version, first.batch.header.version + 1);
        // Acknowledged: the next batch names it as its predecessor.
        q.acknowledged(1).unwrap();
        q.next_batch("d", 2).unwrap();
        let next = q.seal_inflight(sealed).unwrap().unwrap();
        assert_eq!(next.batch.header.prev_hash, second.batch.chain_hash());
        // Renumbered after the cloud's counter: chained to the cloud's last batch.
        q.resequence_after(9, Some(ChainHash([7; 32]))).unwrap();
        assert_eq!(q.sealed_inflight(), None);
        let renumbered = q.seal_inflight(sealed).unwrap().unwrap();
        assert_eq!(
            (
                renumbered.batch.header.seq,
                renumbered.batch.header.prev_hash
            ),
            (10, ChainHash([7; 32]))
        );
    }

    #[test]
    fn renumbering_moves_past_the_clouds_counter() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 100).unwrap();
        q.push(fix(1)).unwrap();
        q.push(fix(2)).unwrap();
        assert_eq!(q.next_batch("d", 1).unwrap().unwrap().seq, 1);
        q.resequence_after(41, None).unwrap();
        assert_eq!(q.inflight_seq(), Some(42));
        q.acknowledged(42).unwrap();
        assert_eq!(q.next_batch("d", 1).unwrap().unwrap().seq, 43);
    }

    #[test]
    fn bounded_oldest_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 3).unwrap();
        for t in 0..5 {
            q.push(fix(t)).unwrap();
        }
        assert_eq!((q.len(), q.dropped()), (3, 2));
        let b = q.next_batch("d", 10).unwrap().unwrap();
        assert_eq!(
            b.fixes.iter().map(|f| f.t()).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
    }
}
