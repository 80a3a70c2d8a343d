//! The parent's watches: list, history, rename and revocation,
//! through the cloud's bound-watch API. IDs only name things here; the cloud
//! decides what this account may see.

use reqwest::Method;
use serde::Serialize;
use waymark_protocol::account::Rename;
use waymark_protocol::report::Fix;
use waymark_protocol::watches::{
    HistoryChoice, HistoryPage, MAX_HISTORY_PAGE, RevokeRequest, WatchInfo,
};

use crate::Core;
use crate::error::AppError;

/// A trail is cut at this many fixes (about a week at one fix a minute), so
/// one request can never make the app load a year of history.
pub const MAX_TRAIL_FIXES: usize = 20_000;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Trail {
    /// Oldest first.
    pub fixes: Vec<Fix>,
    /// True when the range held more than `MAX_TRAIL_FIXES`.
    pub truncated: bool,
}

impl Core {
    pub async fn watches(&self) -> Result<Vec<WatchInfo>, AppError> {
        self.get("/api/v1/watches").await
    }

    /// Fixes between `from` and `to` (Unix ms), oldest first.
    pub async fn history(&self, watch_id: &str, from: i64, to: i64) -> Result<Trail, AppError> {
        let id = path_id(watch_id)?;
        let mut fixes = Vec::new();
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
            let page: HistoryPage = self.get(&path).await?;
            fixes.extend(page.fixes);
            if fixes.len() >= MAX_TRAIL_FIXES {
                fixes.truncate(MAX_TRAIL_FIXES);
                return Ok(Trail {
                    fixes,
                    truncated: true,
                });
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => {
                    return Ok(Trail {
                        fixes,
                        truncated: false,
                    });
                }
            }
        }
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
    if ok {
        Ok(id)
    } else {
        Err(AppError::Cloud {
            status: 404,
            code: waymark_protocol::error::ErrorCode::NotFound,
            message: "Not found.".into(),
        })
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
