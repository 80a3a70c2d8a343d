//! The parent's view of watches (`/api/v1/watches`, `/api/v1/pairing-offers`,
//! `/api/v1/live`): list, rename, latest, history, live events, revoke.
//! What the cloud sends is sealed ([`WatchRecord`], [`SealedHistoryPage`],
//! [`LiveReport`]): it holds no coordinate to send. [`WatchInfo`] and
//! [`LiveFix`] are what the family's app shows once it has authenticated and
//! opened them.

use serde::{Deserialize, Serialize};

use crate::report::Fix;
use crate::sealed_report::{SignedSealedBatch, SignedSetupRecord};

/// Reporting: a fix in the last 5 minutes. Quiet: older or none. Revoked:
/// the parent revoked it and kept its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum WatchState {
    Reporting,
    Quiet,
    Revoked,
}

pub const REPORTING_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A watch as the cloud lists it: everything the cloud may know, the
/// certificate the app checks the watch's signatures against (after checking
/// it chains to a manufacturer the app trusts), and the newest report sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchRecord {
    pub id: String,
    pub name: String,
    pub model: String,
    pub paired_at: i64,
    /// The newest report's last fix time (the cloud sees times, not places).
    pub last_seen: Option<i64>,
    pub state: WatchState,
    pub hardware_key: bool,
    /// The device certificate, DER, base64url.
    pub certificate: String,
    /// The newest stored batch and the setup it names.
    pub latest: Option<SealedLatest>,
}

/// A watch's newest sealed batch with the setup record it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedLatest {
    pub setup: SignedSetupRecord,
    pub batch: SignedSealedBatch,
}

/// A watch as the family's app shows it, after opening its latest report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WatchInfo {
    pub id: String,
    pub name: String,
    pub model: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub paired_at: i64,
    pub battery: Option<u8>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_seen: Option<i64>,
    pub latest: Option<Fix>,
    pub state: WatchState,
    /// The watch's key is in a TPM (its factory saw the TPM's evidence), so it
    /// cannot be copied off the watch.
    pub hardware_key: bool,
    /// Why the latest report is not shown, when the app refused it (altered,
    /// unreadable, an untrusted certificate): for the parent, in words.
    pub report_problem: Option<String>,
    /// The family key epoch the watch sealed its latest report to (the
    /// watch signed it), when that report was opened here.
    pub key_epoch: Option<u32>,
    /// That epoch is older than the family's current one: the watch has
    /// not switched to the new key yet (it does at its next contact).
    pub behind_key: bool,
}

/// One page of a watch's sealed history: batches by sequence number and
/// every setup record they name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedHistoryPage {
    pub setups: Vec<SignedSetupRecord>,
    pub batches: Vec<SignedSealedBatch>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Batches per history page at most.
pub const MAX_HISTORY_PAGE: u32 = 1000;

/// One line of `GET /api/v1/watches/{id}/history/stream`: the setups come
/// first, then the batches, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HistoryLine {
    Setup(SignedSetupRecord),
    Batch(SignedSealedBatch),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HistoryChoice {
    Keep,
    Delete,
}

/// `POST /api/v1/watches/{id}/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokeRequest {
    pub history: HistoryChoice,
}

/// What became of a revoked watch's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HistoryOutcome {
    Kept,
    Deleted,
}

/// Answer of `POST /api/v1/watches/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    pub revoked: bool,
    pub history: HistoryOutcome,
}

/// One server-sent event on the live stream: `event: batch` (a stored
/// batch) or `event: setup` (a watch's new setup, sent before its batches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LiveReport {
    Batch(SignedSealedBatch),
    Setup(SignedSetupRecord),
}

impl LiveReport {
    pub fn watch_id(&self) -> &str {
        match self {
            Self::Batch(b) => &b.batch.header.device_id,
            Self::Setup(s) => &s.setup.device_id,
        }
    }

    /// The server-sent event's name.
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::Batch(_) => "batch",
            Self::Setup(_) => "setup",
        }
    }
}

/// A fix the app opened from a live batch, as its window gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LiveFix {
    pub watch_id: String,
    pub fix: Fix,
}
