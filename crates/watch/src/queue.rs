//! The on-disk report queue. Fixes wait here until the cloud acknowledges
//! them (rule 6). It is bounded: when full, the oldest fix goes and is
//! counted. A batch, once formed, keeps its sequence number and contents
//! until acknowledged, so a resend is byte-for-byte the same batch.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use waymark_protocol::report::{Batch, Fix};

pub const QUEUE_FILE: &str = "queue.json";
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next_seq: u64,
    dropped: u64,
    pending: std::collections::VecDeque<Fix>,
    inflight: Option<Batch>,
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

    /// Adds a fix (dropping and counting the oldest when full), durably.
    pub fn push(&mut self, fix: Fix) -> anyhow::Result<()> {
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
            let fixes: Vec<Fix> = self.state.pending.drain(..n).collect();
            self.state.inflight = Some(Batch {
                device_id: device_id.to_owned(),
                seq: self.state.next_seq,
                fixes,
            });
            self.state.next_seq += 1;
            self.save()?;
        }
        Ok(self.state.inflight.clone())
    }

    /// The cloud stored the in-flight batch: forget it.
    pub fn acknowledged(&mut self, seq: u64) -> anyhow::Result<()> {
        if self.state.inflight.as_ref().is_some_and(|b| b.seq == seq) {
            self.state.inflight = None;
            self.save()?;
        }
        Ok(())
    }

    /// The cloud's counter is ahead of ours (e.g. restored from a backup):
    /// renumber the in-flight batch after it.
    pub fn resequence_after(&mut self, last_seq: u64) -> anyhow::Result<()> {
        if let Some(b) = self.state.inflight.as_mut() {
            b.seq = last_seq + 1;
        }
        self.state.next_seq = last_seq + 2;
        self.save()
    }

    /// Drops the in-flight batch the cloud will never accept; returns how many fixes.
    pub fn reject_inflight(&mut self) -> anyhow::Result<usize> {
        let n = self.state.inflight.take().map_or(0, |b| b.fixes.len());
        self.state.dropped += n as u64;
        self.save()?;
        Ok(n)
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

    /// Write to a temporary file, fsync, rename: a crash leaves the old or the new queue, never half.
    fn save(&self) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&self.state)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
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
        assert_eq!((b2.seq, b2.fixes[0].t, b2.fixes.len()), (2, 3, 2));
        q.acknowledged(2).unwrap();
        assert!(q.is_empty());
        assert!(q.next_batch("d", 3).unwrap().is_none());
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
            b.fixes.iter().map(|f| f.t).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
    }
}
