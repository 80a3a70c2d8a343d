//! Reporting: record fixes into the queue, and drain it to the cloud in
//! order. A fix leaves the queue only after the cloud acknowledged the
//! batch that holds it, or (counted) when no correction the watch can make
//! would ever let the cloud take it. Recording and uploading share the
//! queue but never wait on each other: the lock is held for a queue
//! operation, never across a network call.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::cloud_link::{CloudLink, LinkError};
use crate::provisioning::Watch;
use crate::queue::Queue;
use waymark_protocol::error::ErrorCode;
use waymark_protocol::report::{Fix, FixError};

pub const BATCH_SIZE: usize = 50;

/// Attempts to fix one batch (renumber, restamp, trim) before waiting
/// like offline: bounds the loop if the cloud keeps refusing.
const MAX_REPAIRS: usize = 4;

#[derive(Debug, PartialEq, Eq)]
pub enum Drain {
    /// Everything queued was acknowledged; this many batches were sent.
    Done(usize),
    /// The cloud could not be reached (or is failing); try again later.
    Offline,
    /// Not paired yet: the cloud stores nothing for an unpaired watch.
    NotPaired,
    /// The owner revoked this watch.
    Revoked,
}

pub struct Reporter {
    pub watch: Watch,
    pub link: CloudLink,
    queue: Arc<Mutex<Queue>>,
}

impl Reporter {
    pub fn new(watch: Watch, capacity: usize) -> anyhow::Result<Self> {
        let link = CloudLink::new(&watch)?;
        Self::with_link(watch, link, capacity)
    }

    pub fn with_link(watch: Watch, link: CloudLink, capacity: usize) -> anyhow::Result<Self> {
        let queue = Arc::new(Mutex::new(Queue::open(&watch.dir, capacity)?));
        Ok(Self { watch, link, queue })
    }

    /// The queue, for a moment (never hold it across an await).
    pub fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding it left a queue that is still the file's last saved state.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a fix whose time came from this watch's corrected clock.
    pub fn record(&self, fix: Fix) -> anyhow::Result<()> {
        let offset = self.link.clock.offset_ms();
        self.queue().push_stamped(fix, offset)
    }

    pub async fn drain(&self) -> anyhow::Result<Drain> {
        let mut sent = 0;
        let mut repairs = 0;
        loop {
            let next = {
                let mut queue = self.queue();
                // What the last answer taught about the clock applies to every fix still waiting.
                queue.adopt_offset(self.link.clock.offset_ms())?;
                queue.next_batch(&self.watch.device_id, BATCH_SIZE)?
            };
            let Some(batch) = next else {
                return Ok(Drain::Done(sent));
            };
            let refusal = match self.link.upload(&self.watch, batch).await {
                Ok(ack) => {
                    self.queue().acknowledged(ack.acked_seq)?;
                    sent += 1;
                    repairs = 0;
                    continue;
                }
                Err(LinkError::Offline(_)) => return Ok(Drain::Offline),
                Err(LinkError::Revoked) => return Ok(Drain::Revoked),
                Err(LinkError::Refused(e)) => e,
            };
            repairs += 1;
            if repairs > MAX_REPAIRS {
                tracing::warn!(code = %refusal.error, "the cloud keeps refusing a batch; keeping it and retrying later");
                return Ok(Drain::Offline);
            }
            match refusal.error {
                ErrorCode::NotPaired => return Ok(Drain::NotPaired),
                // Over the cloud's budget: keep everything queued and retry with backoff, like offline.
                ErrorCode::RateLimited => return Ok(Drain::Offline),
                ErrorCode::SequenceReused => {
                    // Our counter went back (a restored or lost queue file):
                    // the cloud holds other fixes under this number. Ask
                    // where its counter is and renumber after it.
                    let status = match self.link.status(&self.watch).await {
                        Ok(s) => s,
                        Err(LinkError::Revoked) => return Ok(Drain::Revoked),
                        Err(_) => return Ok(Drain::Offline),
                    };
                    tracing::warn!(
                        cloud_last_seq = status.last_seq,
                        "sequence numbers reused; renumbering the queue after the cloud's"
                    );
                    self.queue().resequence_after(status.last_seq)?;
                }
                ErrorCode::ClockSkew => {
                    // The refusal's `Date` already corrected the clock: restamp and resend.
                    let (offset, now) = (self.link.clock.offset_ms(), self.link.clock.now_ms());
                    self.queue().restamp_inflight(offset, now)?;
                }
                ErrorCode::InvalidFix => {
                    // Drop only what can never be valid; keep and resend the rest.
                    let now = self.link.clock.now_ms();
                    let gone = self.queue().drop_invalid_inflight(|f| {
                        matches!(f.validate(now), Ok(()) | Err(FixError::InFuture))
                    })?;
                    tracing::warn!(
                        fixes = gone,
                        "the cloud refused invalid fixes; dropped and counted them"
                    );
                    if gone == 0 {
                        return Ok(Drain::Offline);
                    }
                }
                _ => {
                    tracing::warn!(code = %refusal.error, message = %refusal.message, "the cloud refused a batch; keeping it");
                    return Ok(Drain::Offline);
                }
            }
        }
    }
}
