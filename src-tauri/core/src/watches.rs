//! The parent's watches: history (authenticated and opened here), rename
//! and revocation, through the cloud's bound-watch API (the list is
//! `reports.rs`). IDs only name things here; the cloud decides what this
//! account may see, and this computer decides what of it is true.

use reqwest::Method;
use serde::Serialize;
use waymark_protocol::account::Rename;
use waymark_protocol::report::Fix;
use waymark_protocol::safe_zones::{ZoneEventKind, ZoneId};
use waymark_protocol::watches::{
    HistoryChoice, MAX_HISTORY_PAGE, RevokeRequest, SealedHistoryPage, WatchRecord,
};

use crate::Core;
use crate::error::AppError;
use crate::reports::{UNTRUSTED, WAITING};
use crate::sealed_history::{PairedWatch, open_history};

/// A trail is cut at this many fixes (about a week at one fix a minute), so
/// one request can never make the app load a year of history.
pub const MAX_TRAIL_FIXES: usize = 20_000;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Trail {
    /// Oldest first; only what verified and opened.
    pub fixes: Vec<Fix>,
    /// True when the range held more than `MAX_TRAIL_FIXES`.
    pub truncated: bool,
    /// What the app refused or found missing, for the parent, in words.
    pub notices: Vec<String>,
    /// The watch's safe-zone events in the range, oldest first (issue 16).
    pub events: Vec<ZoneEntry>,
}

/// A safe-zone event as the app shows it: in the history trail, and in
/// "While you were away".
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ZoneEntry {
    pub watch_id: String,
    /// The watch's name.
    pub watch: String,
    pub zone_id: ZoneId,
    /// The zone's name ("a safe zone" if it was deleted since).
    pub zone: String,
    pub kind: ZoneEventKind,
    /// The watch's time of the event, Unix ms.
    #[ts(type = "number")]
    pub t: i64,
}

impl Core {
    /// Fixes between `from` and `to` (Unix ms), oldest first: the watch's
    /// sealed batches authenticated (one signature per unbroken run,
    /// against the certificate checked here) and opened with the family's keys.
    pub async fn history(&self, watch_id: &str, from: i64, to: i64) -> Result<Trail, AppError> {
        let id = path_id(watch_id)?;
        let records: Vec<WatchRecord> = self.get("/api/v1/watches").await?;
        let record = records
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(not_found)?;
        let reader = self.reader().await?;
        let Some(certificate) = reader.certificate(&record.id, &record.certificate) else {
            return Ok(refused(UNTRUSTED));
        };
        let Some(keys) = reader.keys() else {
            return Ok(refused(WAITING));
        };
        let (mut setups, mut batches) = (Vec::new(), Vec::new());
        let mut fixes_seen = 0;
        let mut truncated = false;
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!(
                "/api/v1/watches/{id}/history?from={from}&to={to}&order=oldest&limit={MAX_HISTORY_PAGE}"
            );
            if let Some(c) = &cursor {
                path.push_str("&cursor=");
                path.push_str(
                    &url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>(),
                );
            }
            let page: SealedHistoryPage = self.get(&path).await?;
            setups.extend(page.setups);
            for b in page.batches {
                fixes_seen += b.batch.header.times.len();
                batches.push(b);
            }
            if fixes_seen >= MAX_TRAIL_FIXES {
                truncated = true;
                break;
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let watch = PairedWatch {
            device_id: &record.id,
            certificate: &certificate,
        };
        let view = open_history(&watch, &setups, &batches, keys);
        let mut notices = Vec::new();
        for gap in &view.gaps {
            let n = gap.last - gap.first + 1;
            notices.push(if n == 1 {
                format!(
                    "Report {} is missing: the cloud did not hand it over.",
                    gap.first
                )
            } else {
                format!(
                    "{n} reports are missing ({} to {}): the cloud did not hand them over.",
                    gap.first, gap.last
                )
            });
        }
        if !view.altered.is_empty() {
            notices.push(format!(
                "{} report(s) were changed after the watch sent them; they are not shown.",
                view.altered.len()
            ));
        }
        if !view.unreadable.is_empty() {
            notices.push(format!(
                "{} report(s) are sealed to a family key this computer does not hold.",
                view.unreadable.len()
            ));
        }
        let mut fixes: Vec<Fix> = view
            .fixes
            .into_iter()
            .filter(|f| (from..=to).contains(&f.t))
            .collect();
        fixes.sort_by_key(|f| f.t);
        fixes.truncate(MAX_TRAIL_FIXES);
        let names = if view.events.is_empty() {
            Default::default()
        } else {
            // Without the names the events still show, as "a safe zone".
            self.zone_names().await.unwrap_or_default()
        };
        let events = view
            .events
            .into_iter()
            .filter(|e| (from..=to).contains(&e.t))
            .map(|e| ZoneEntry {
                watch_id: record.id.clone(),
                watch: record.name.clone(),
                zone_id: e.zone_id,
                zone: names
                    .get(&e.zone_id)
                    .cloned()
                    .unwrap_or_else(|| "a safe zone".into()),
                kind: e.kind,
                t: e.t,
            })
            .collect();
        Ok(Trail {
            fixes,
            truncated,
            notices,
            events,
        })
    }

    pub async fn rename_watch(&self, watch_id: &str, name: &str) -> Result<(), AppError> {
        let path = format!("/api/v1/watches/{}", path_id(watch_id)?);
        self.send_empty(Method::PATCH, &path, Some(&Rename { name: name.into() }))
            .await
    }

    pub async fn revoke_watch(&self, watch_id: &str, keep_history: bool) -> Result<(), AppError> {
        let path = format!("/api/v1/watches/{}/revoke", path_id(watch_id)?);
        let history = if keep_history {
            HistoryChoice::Keep
        } else {
            HistoryChoice::Delete
        };
        self.send_empty(Method::POST, &path, Some(&RevokeRequest { history }))
            .await
    }
}

/// IDs go into paths: anything but the cloud's ID alphabet is not a watch
/// (and could otherwise walk to another path).
pub(crate) fn path_id(id: &str) -> Result<&str, AppError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(id) } else { Err(not_found()) }
}

fn not_found() -> AppError {
    AppError::Cloud {
        status: 404,
        code: waymark_protocol::error::ErrorCode::NotFound,
        message: "Not found.".into(),
    }
}

/// A trail with nothing to draw, and why.
fn refused(why: &str) -> Trail {
    Trail {
        fixes: Vec::new(),
        truncated: false,
        notices: vec![why.to_owned()],
        events: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_reach_a_path() {
        assert!(path_id("3f2a9c").is_ok());
        for bad in ["", "../me", "a/b", "a?b", "a%2Fb", &"x".repeat(65)] {
            assert_eq!(path_id(bad).unwrap_err().code(), "not_found", "{bad}");
        }
    }
}
