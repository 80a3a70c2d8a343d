//! Reporting: record fixes into the queue, and drain it to the cloud in
//! order. A fix leaves the queue only after the cloud acknowledged the
//! batch that holds it.

use crate::cloud_link::{CloudLink, LinkError};
use crate::provisioning::Watch;
use crate::queue::Queue;
use waymark_protocol::report::Fix;

pub const BATCH_SIZE: usize = 50;

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
    pub queue: Queue,
}

impl Reporter {
    pub fn new(watch: Watch, capacity: usize) -> anyhow::Result<Self> {
        let link = CloudLink::new(&watch)?;
        let queue = Queue::open(&watch.dir, capacity)?;
        Ok(Self { watch, link, queue })
    }

    pub fn record(&mut self, fix: Fix) -> anyhow::Result<()> {
        self.queue.push(fix)
    }

    pub async fn drain(&mut self) -> anyhow::Result<Drain> {
        let mut sent = 0;
        while let Some(batch) = self.queue.next_batch(&self.watch.device_id, BATCH_SIZE)? {
            let seq = batch.seq;
            match self.link.upload(&self.watch, batch).await {
                Ok(ack) => {
                    self.queue.acknowledged(ack.acked_seq)?;
                    sent += 1;
                }
                Err(LinkError::Offline(_)) => return Ok(Drain::Offline),
                Err(LinkError::Revoked) => return Ok(Drain::Revoked),
                Err(LinkError::Refused(e)) if e.error == "not_paired" => {
                    return Ok(Drain::NotPaired);
                }
                // Over the cloud's budget: keep everything queued and retry with backoff, like offline.
                Err(LinkError::Refused(e)) if e.error == "rate_limited" => {
                    return Ok(Drain::Offline);
                }
                Err(LinkError::Refused(e)) if e.error == "replayed_batch" => {
                    // Our ack was lost, or our counter is behind: ask what the cloud has.
                    let status = match self.link.status(&self.watch).await {
                        Ok(s) => s,
                        Err(LinkError::Revoked) => return Ok(Drain::Revoked),
                        Err(_) => return Ok(Drain::Offline),
                    };
                    if status.last_seq >= seq {
                        // It is stored: identical signed batches cannot be told apart, so this is our ack.
                        self.queue.acknowledged(seq)?;
                    } else {
                        self.queue.resequence_after(status.last_seq)?;
                    }
                }
                Err(LinkError::Refused(e)) => {
                    let n = self.queue.reject_inflight()?;
                    tracing::warn!(code = %e.error, fixes = n, "the cloud refused a batch; dropped it");
                }
            }
        }
        Ok(Drain::Done(sent))
    }
}
