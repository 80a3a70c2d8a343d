//! Reporting: record fixes into the queue, and drain it to the cloud in
//! order, each batch sealed to the family's current key epoch (design §3)
//! and signed by the device key. A fix leaves the queue only after the
//! cloud acknowledged the batch that holds it, or (counted) when no
//! correction the watch can make would ever let the cloud take it.
//! Recording and uploading share the queue but never wait on each other:
//! the lock is held for a queue operation, never across a network call.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::cloud_link::{CloudLink, LinkError};
use crate::family::{self, Followed};
use crate::provisioning::Watch;
use crate::queue::Queue;
use crate::zones::{Taken, Zones};
use waymark_protocol::error::ErrorCode;
use waymark_protocol::location_sealing::WatchSealer;
use waymark_protocol::report::{Fix, FixError, Record};
use waymark_protocol::roster::TrustedRoster;
use waymark_protocol::sealed_report::SignedSealedBatch;
use waymark_protocol::signing::b64;

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
    /// Not paired yet (or paired before the family held keys): the cloud
    /// stores nothing for an unpaired watch, and there is no family to seal to.
    NotPaired,
    /// The owner revoked this watch.
    Revoked,
}

pub struct Reporter {
    pub watch: Watch,
    pub link: CloudLink,
    queue: Arc<Mutex<Queue>>,
    /// Sealing to the family's current epoch, its setup record posted. Made
    /// afresh at each start and each epoch switch (never stored: a restart
    /// makes a new setup, so the version counter never meets an old key).
    sealer: Mutex<Option<Arc<WatchSealer>>>,
    /// The safe zones, once paired (opened at the first need).
    zones: Mutex<Option<Zones>>,
}

impl Reporter {
    pub fn new(watch: Watch, capacity: usize) -> anyhow::Result<Self> {
        let link = CloudLink::new(&watch)?;
        Self::with_link(watch, link, capacity)
    }

    pub fn with_link(watch: Watch, link: CloudLink, capacity: usize) -> anyhow::Result<Self> {
        let queue = Arc::new(Mutex::new(Queue::open(&watch.dir, capacity)?));
        Ok(Self {
            watch,
            link,
            queue,
            sealer: Mutex::new(None),
            zones: Mutex::new(None),
        })
    }

    /// The zones, opened (its key made) once the watch has a family; the
    /// link's polls carry their word from then on.
    fn zones(&self) -> anyhow::Result<MutexGuard<'_, Option<Zones>>> {
        let mut slot = self.zones.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() && family::load(&self.watch.dir).is_some() {
            let zones = Zones::open(&self.watch.dir, &self.watch.device_id)?;
            self.link.set_zone_word(zones.word());
            *slot = Some(zones);
        }
        Ok(slot)
    }

    /// The version of the zone set in force (0: none).
    pub fn zones_version(&self) -> u64 {
        self.zones()
            .ok()
            .and_then(|z| z.as_ref().map(Zones::version))
            .unwrap_or(0)
    }

    /// One status poll: the family followed (roster versions, key epochs)
    /// and a newer zone set checked and put in force, as far as each checks.
    pub async fn keep_in_step(&self) -> Result<Followed, LinkError> {
        let cannot = |e: anyhow::Error| LinkError::Offline(format!("cannot keep zones: {e}"));
        // Made before the poll so the poll carries the zone key.
        drop(self.zones().map_err(cannot)?);
        let status = self.link.status(&self.watch).await?;
        let followed = family::follow_published(&self.watch.dir, status.family.as_ref())?;
        if let (Some(sealed), Some(held)) = (&status.zones, family::load(&self.watch.dir)) {
            let trusted = TrustedRoster::from_pairing(&held.roster)
                .map_err(|e| LinkError::Offline(format!("the family's roster: {e:?}")))?;
            let mut slot = self.zones().map_err(cannot)?;
            if let Some(zones) = slot.as_mut() {
                match zones.take(sealed, &trusted).map_err(cannot)? {
                    Taken::Unchanged => {}
                    Taken::Took { version, zones } => {
                        tracing::info!(version, zones, "new safe zones in force");
                    }
                    Taken::Refused { version, why } => {
                        tracing::warn!(
                            version,
                            code = why.code(),
                            "safe zones refused; keeping the ones in force"
                        );
                    }
                }
                self.link.set_zone_word(zones.word());
            }
        }
        Ok(followed)
    }

    /// Queues the zone events due at this moment without a new fix ("not
    /// arrived by"), stamped like fixes.
    pub fn tick_zones(&self) -> anyhow::Result<usize> {
        let now = self.link.clock.now_ms();
        let events = match self.zones()?.as_mut() {
            Some(zones) => zones.tick(now)?,
            None => return Ok(0),
        };
        let offset = self.link.clock.offset_ms();
        let mut queue = self.queue();
        for e in &events {
            queue.push_record_stamped(Record::Zone(*e), offset)?;
        }
        Ok(events.len())
    }

    fn sealer_slot(&self) -> MutexGuard<'_, Option<Arc<WatchSealer>>> {
        self.sealer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sealer for the family's current epoch, made (and its setup
    /// record posted, so the cloud holds it before any batch naming it) if
    /// there is none yet for that epoch. `Err` is what the drain ends with.
    async fn ready_sealer(&self) -> Result<Arc<WatchSealer>, Drain> {
        let Some(family) = family::load(&self.watch.dir) else {
            return Err(Drain::NotPaired);
        };
        if let Some(sealer) = self.sealer_slot().as_ref()
            && sealer.epoch() == family.epoch
        {
            return Ok(sealer.clone());
        }
        let (sealer, setup) = match WatchSealer::start(
            &self.watch.device_id,
            family.epoch,
            &family.epoch_public,
        ) {
            Ok(made) => made,
            Err(e) => {
                tracing::error!(error = ?e, "the family's key is not usable; pair this watch again");
                return Err(Drain::NotPaired);
            }
        };
        match self.link.post_setup(&self.watch, setup).await {
            Ok(()) => {}
            Err(LinkError::Offline(_)) => return Err(Drain::Offline),
            Err(LinkError::Revoked) => return Err(Drain::Revoked),
            Err(LinkError::Refused(e)) if e.error == ErrorCode::NotPaired => {
                return Err(Drain::NotPaired);
            }
            Err(LinkError::Refused(e)) => {
                tracing::warn!(code = %e.error, message = %e.message, "the cloud refused this watch's setup; retrying later");
                return Err(Drain::Offline);
            }
        }
        tracing::info!(epoch = family.epoch, "sealing reports to the family's key");
        let sealer = Arc::new(sealer);
        *self.sealer_slot() = Some(sealer.clone());
        Ok(sealer)
    }

    /// The in-flight batch, sealed and signed: as kept, or sealed now.
    /// `Ok(None)`: nothing left in flight (every fix was invalid).
    pub async fn sealed_inflight(
        &self,
    ) -> anyhow::Result<Result<Option<SignedSealedBatch>, Drain>> {
        if let Some(sealed) = self.queue().sealed_inflight() {
            return Ok(Ok(Some(sealed)));
        }
        // What no watch reports never leaves it (the cloud cannot check
        // values it cannot read; the app refuses them after opening).
        let gone = self
            .queue()
            .drop_invalid_inflight(|f| f.validate_values().is_ok())?;
        if gone > 0 {
            tracing::warn!(fixes = gone, "dropped and counted invalid fixes");
        }
        let sealer = match self.ready_sealer().await {
            Ok(sealer) => sealer,
            Err(drain) => return Ok(Err(drain)),
        };
        let keys = &self.watch.keys;
        let sealed = self.queue().seal_inflight(|b, version, prev| {
            let batch = sealer.seal_records(b.seq, version, prev, &b.fixes);
            let signature = b64(&keys.sign(&batch.signing_bytes())?);
            Ok(SignedSealedBatch { batch, signature })
        })?;
        Ok(Ok(sealed))
    }

    /// The queue, for a moment (never hold it across an await).
    pub fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding it left a queue that is still the file's last saved state.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a fix whose time came from this watch's corrected clock.
    /// Each zone event the fix makes is queued right after it.
    pub fn record(&self, fix: Fix) -> anyhow::Result<()> {
        let offset = self.link.clock.offset_ms();
        let events = match self.zones()?.as_mut() {
            Some(zones) => zones.observe(&fix)?,
            None => Vec::new(),
        };
        let mut queue = self.queue();
        queue.push_stamped(fix, offset)?;
        for e in &events {
            queue.push_record_stamped(Record::Zone(*e), offset)?;
        }
        Ok(())
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
            if next.is_none() {
                return Ok(Drain::Done(sent));
            }
            let signed = match self.sealed_inflight().await? {
                Ok(Some(signed)) => signed,
                Ok(None) => continue,
                Err(drain) => return Ok(drain),
            };
            let refusal = match self.link.upload(&signed).await {
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
                    self.queue()
                        .resequence_after(status.last_seq, status.last_hash)?;
                }
                ErrorCode::ClockSkew => {
                    // The refusal's `Date` already corrected the clock: restamp and resend.
                    let (offset, now) = (self.link.clock.offset_ms(), self.link.clock.now_ms());
                    self.queue().restamp_inflight(offset, now)?;
                }
                ErrorCode::UnknownSetup => {
                    // The cloud lost the setup this batch names (a restored
                    // database): make and post a new one, and seal again.
                    *self.sealer_slot() = None;
                    self.queue().unseal_inflight()?;
                }
                ErrorCode::InvalidBatch => {
                    // Drop only what can never be valid; keep and resend the rest.
                    let now = self.link.clock.now_ms();
                    let gone = self.queue().drop_invalid_inflight(|f| {
                        matches!(f.validate(now), Ok(()) | Err(FixError::InFuture))
                    })?;
                    tracing::warn!(
                        fixes = gone,
                        "the cloud refused fixes too old to store; dropped and counted them"
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
