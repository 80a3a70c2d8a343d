//! Live updates: follows the cloud's server-sent-event stream of new sealed
//! batches, reconnecting with backoff, and says when it is offline or
//! signed out. Each batch must carry its watch's signature and continue the
//! chain from the last one shown (`sealed_history::LiveChain`) before the
//! family's keys open it; a replay or an altered batch is refused and said.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde::Serialize;
use waymark_protocol::location_sealing::{FamilyOpener, OpenError};
use waymark_protocol::report::Record;
use waymark_protocol::safe_zones::ZoneEvent;
use waymark_protocol::sealed_report::{SignedSealedBatch, SignedSetupRecord};
use waymark_protocol::watches::{LiveFix, SealedLatest, WatchRecord};

use crate::Core;
use crate::error::AppError;
use crate::reports::Reader;
use crate::sealed_history::{LiveChain, LiveVerdict, PairedWatch};

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveEvent {
    Connected,
    Fix(LiveFix),
    /// A safe-zone event a watch reported (issue 16).
    Zone {
        watch_id: String,
        event: ZoneEvent,
    },
    /// The stream fell behind and dropped reports: reload the list.
    Lagged,
    /// A report the app would not draw (replayed, altered, unreadable).
    Refused {
        watch_id: String,
        message: String,
    },
    Offline {
        message: String,
    },
    SignedOut,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// One event is a few kilobytes (a sealed batch of 50 fixes); anything this
/// large is not ours.
const MAX_EVENT_BYTES: usize = 256 * 1024;

impl Core {
    /// Runs until the sign-in ends; `emit` gets every event.
    pub async fn follow_live(&self, mut emit: impl FnMut(LiveEvent) + Send) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let outcome = self.live_once(&mut emit, &mut backoff).await;
            match outcome {
                Err(AppError::SignedOut) => {
                    emit(LiveEvent::SignedOut);
                    return;
                }
                Err(e) => emit(LiveEvent::Offline {
                    message: e.to_string(),
                }),
                // The stream's access token ended: reconnect at once with a
                // fresh one (nothing to tell the parent).
                Ok(Closed::Reauthenticate) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Ok(Closed::Other) => emit(LiveEvent::Offline {
                    message: "The live connection closed. Reconnecting…".into(),
                }),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn live_once(
        &self,
        emit: &mut (impl FnMut(LiveEvent) + Send),
        backoff: &mut Duration,
    ) -> Result<Closed, AppError> {
        let resp = self
            .authed(
                |token| {
                    self.cloud()
                        .request(Method::GET, "/api/v1/live", Some(token))
                        .header("accept", "text/event-stream")
                },
                true,
            )
            .await?;
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut reports = Sealed::new(self).await?;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                return Ok(Closed::Other);
            };
            buf.extend_from_slice(&chunk);
            while let Some(end) = find_event_end(&buf) {
                let raw: Vec<u8> = buf.drain(..end).collect();
                if raw.starts_with(b"event: reauthenticate") {
                    return Ok(Closed::Reauthenticate);
                }
                match parse_event(&raw) {
                    Some(Incoming::Event(event)) => {
                        if matches!(event, LiveEvent::Connected) {
                            *backoff = Duration::from_secs(1);
                        }
                        emit(event);
                    }
                    Some(Incoming::Setup(setup)) => reports.setup(self, &setup).await,
                    Some(Incoming::Batch(batch)) => {
                        for event in reports.batch(self, &batch).await {
                            emit(event);
                        }
                    }
                    None => {}
                }
            }
            if buf.len() > MAX_EVENT_BYTES {
                return Ok(Closed::Other);
            }
        }
        Ok(Closed::Other)
    }
}

/// What one connection has checked: the family's keys, each watch's
/// certificate, the setups it has accepted, and each watch's chain end.
struct Sealed {
    reader: Reader,
    certificates: HashMap<String, Vec<u8>>,
    opener: FamilyOpener,
    chains: HashMap<String, LiveChain>,
}

impl Sealed {
    async fn new(core: &Core) -> Result<Self, AppError> {
        let reader = core.reader().await?;
        let opener = reader.keys().map(|k| k.opener()).unwrap_or_default();
        let mut this = Self {
            reader,
            certificates: HashMap::new(),
            opener,
            chains: HashMap::new(),
        };
        this.learn_watches(core).await?;
        Ok(this)
    }

    /// Reads the watch list again: certificates of newly paired watches,
    /// and each chain's end at the latest batch that verifies.
    async fn learn_watches(&mut self, core: &Core) -> Result<(), AppError> {
        let records: Vec<WatchRecord> = core.get("/api/v1/watches").await?;
        for r in records {
            let Some(cert) = self.reader.certificate(&r.id, &r.certificate) else {
                continue;
            };
            if let Some(latest) = &r.latest
                && !self.chains.contains_key(&r.id)
                && latest.batch.verify(&cert).is_ok()
                && latest.batch.batch.header.device_id == r.id
            {
                let h = &latest.batch.batch;
                self.chains
                    .insert(r.id.clone(), LiveChain::after(h.header.seq, h.chain_hash()));
            }
            if let Some(latest) = &r.latest {
                self.accept_setup(&cert, &latest.setup);
            }
            self.certificates.insert(r.id, cert);
        }
        Ok(())
    }

    fn accept_setup(&mut self, cert: &[u8], setup: &SignedSetupRecord) {
        if setup.verify(cert).is_ok() {
            // A setup of an epoch this computer lacks is simply not added.
            let _ = self.opener.add_setup(&setup.setup);
        }
    }

    async fn certificate(&mut self, core: &Core, watch_id: &str) -> Option<Vec<u8>> {
        if !self.certificates.contains_key(watch_id) {
            // A watch paired since this stream started.
            let _ = self.learn_watches(core).await;
        }
        self.certificates.get(watch_id).cloned()
    }

    async fn setup(&mut self, core: &Core, setup: &SignedSetupRecord) {
        if let Some(cert) = self.certificate(core, &setup.setup.device_id).await {
            self.accept_setup(&cert, setup);
        }
    }

    /// The fixes of a live batch that checks, or why it was refused.
    async fn batch(&mut self, core: &Core, b: &SignedSealedBatch) -> Vec<LiveEvent> {
        let watch_id = b.batch.header.device_id.clone();
        let refused = |message: &str| {
            vec![LiveEvent::Refused {
                watch_id: watch_id.clone(),
                message: message.to_owned(),
            }]
        };
        let Some(cert) = self.certificate(core, &watch_id).await else {
            return refused(crate::reports::UNTRUSTED);
        };
        let watch = PairedWatch {
            device_id: &watch_id,
            certificate: &cert,
        };
        let verdict = self
            .chains
            .entry(watch_id.clone())
            .or_default()
            .accept(&watch, b);
        let mut events = match verdict {
            LiveVerdict::Next => Vec::new(),
            // Drawn, and the list (with its latest report) read again.
            LiveVerdict::AfterGap(_) => vec![LiveEvent::Lagged],
            LiveVerdict::Replayed => {
                return refused(
                    "A report the cloud sent again was refused; the map was not changed.",
                );
            }
            LiveVerdict::Altered => {
                return refused(
                    "A report changed after the watch sent it was refused; it is not shown.",
                );
            }
        };
        let mut opened = self.opener.open_records(&b.batch);
        if opened == Err(OpenError::UnknownSetup) {
            // The setup's own event was lost: the latest batch comes with it.
            let path = format!("/api/v1/watches/{watch_id}/latest");
            if let Ok(Some(latest)) = core.get::<Option<SealedLatest>>(&path).await {
                self.accept_setup(&cert, &latest.setup);
                opened = self.opener.open_records(&b.batch);
            }
        }
        match opened {
            Ok(mut records) => {
                // In time order; an event after the fix that made it.
                records.sort_by_key(|r| (r.t(), matches!(r, Record::Zone(_))));
                events.extend(records.into_iter().map(|r| match r {
                    Record::Fix(fix) => LiveEvent::Fix(LiveFix {
                        watch_id: watch_id.clone(),
                        fix,
                    }),
                    Record::Zone(event) => LiveEvent::Zone {
                        watch_id: watch_id.clone(),
                        event,
                    },
                }));
                events
            }
            Err(OpenError::NoEpochKey) => refused(crate::reports::UNREADABLE),
            Err(_) => {
                refused("A report changed after the watch sent it was refused; it is not shown.")
            }
        }
    }
}

/// Why a live stream ended without an error.
enum Closed {
    /// The cloud ended it because its access token ended (`reauthenticate`).
    Reauthenticate,
    Other,
}

/// Index just past the blank line that ends the first event, if complete.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// One server-sent event as read, before it is checked.
enum Incoming {
    Event(LiveEvent),
    Setup(Box<SignedSetupRecord>),
    Batch(Box<SignedSealedBatch>),
}

fn parse_event(raw: &[u8]) -> Option<Incoming> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut name = "message";
    let mut data = String::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    match name {
        "ready" => Some(Incoming::Event(LiveEvent::Connected)),
        "batch" => serde_json::from_str(&data).ok().map(Incoming::Batch),
        "setup" => serde_json::from_str(&data).ok().map(Incoming::Setup),
        "lagged" => Some(Incoming::Event(LiveEvent::Lagged)),
        _ => None, // keep-alive comments and unknown events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_split_and_read() {
        let stream = b"event: ready\ndata: {}\n\n:keep-alive\n\nevent: lagged\ndata: {\"missed\":1}\n\nevent: batch\ndata: {\"not\":\"a batch\"}\n\nevent: fi";
        let mut buf = stream.to_vec();
        let mut events = Vec::new();
        while let Some(end) = find_event_end(&buf) {
            let raw: Vec<u8> = buf.drain(..end).collect();
            events.extend(parse_event(&raw));
        }
        assert!(matches!(events[0], Incoming::Event(LiveEvent::Connected)));
        assert!(matches!(events[1], Incoming::Event(LiveEvent::Lagged)));
        assert_eq!(
            events.len(),
            2,
            "a batch that does not parse is not an event"
        );
        assert_eq!(
            buf, b"event: fi",
            "an incomplete event waits for more bytes"
        );
    }
}
