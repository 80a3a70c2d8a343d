//! Live updates: follows the cloud's server-sent-event stream of new fixes,
//! reconnecting with backoff, and says when it is offline or signed out.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde::Serialize;
use waymark_protocol::watches::LiveFix;

use crate::Core;
use crate::error::AppError;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveEvent {
    Connected,
    Fix(LiveFix),
    /// The stream fell behind and dropped fixes: reload the list.
    Lagged,
    Offline {
        message: String,
    },
    SignedOut,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// One event is a few hundred bytes; anything this large is not ours.
const MAX_EVENT_BYTES: usize = 64 * 1024;

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
                if let Some(event) = parse_event(&raw) {
                    if matches!(event, LiveEvent::Connected) {
                        *backoff = Duration::from_secs(1);
                    }
                    emit(event);
                }
            }
            if buf.len() > MAX_EVENT_BYTES {
                return Ok(Closed::Other);
            }
        }
        Ok(Closed::Other)
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

fn parse_event(raw: &[u8]) -> Option<LiveEvent> {
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
        "ready" => Some(LiveEvent::Connected),
        "fix" => serde_json::from_str(&data).ok().map(LiveEvent::Fix),
        "lagged" => Some(LiveEvent::Lagged),
        _ => None, // keep-alive comments and unknown events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_split_and_read() {
        let stream = b"event: ready\ndata: {}\n\n:keep-alive\n\nevent: fix\ndata: {\"watch_id\":\"ab\",\"fix\":{\"t\":1,\"lat\":51.5,\"lon\":-0.1,\"acc\":5.0,\"bat\":80}}\n\nevent: fi";
        let mut buf = stream.to_vec();
        let mut events = Vec::new();
        while let Some(end) = find_event_end(&buf) {
            let raw: Vec<u8> = buf.drain(..end).collect();
            events.extend(parse_event(&raw));
        }
        assert!(matches!(events[0], LiveEvent::Connected));
        let LiveEvent::Fix(f) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(f.watch_id, "ab");
        assert_eq!(f.fix.bat, 80);
        assert_eq!(events.len(), 2);
        assert_eq!(
            buf, b"event: fi",
            "an incomplete event waits for more bytes"
        );
    }
}
