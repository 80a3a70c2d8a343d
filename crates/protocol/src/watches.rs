//! The parent's view of watches (`/api/v1/watches`, `/api/v1/pairing-offers`,
//! `/api/v1/live`): list, rename, latest, history, live events, revoke.

use serde::{Deserialize, Serialize};

use crate::report::Fix;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    pub fixes: Vec<Fix>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub const MAX_HISTORY_PAGE: u32 = 1000;

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

/// One server-sent event on the live stream (`event: fix`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LiveFix {
    pub watch_id: String,
    pub fix: Fix,
}
