//! Account API bodies (`/api/v1`): who am I, passkeys, signed-in computers,
//! and the activity log.

use serde::{Deserialize, Serialize};

/// Times on the wire are milliseconds since the Unix epoch (UTC).
pub type UnixMillis = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub account_id: String,
    pub display_name: String,
    pub created_at: UnixMillis,
    /// The signed-in computer this token belongs to.
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    /// The name the app gave this computer (its host name by default).
    pub name: String,
    pub created_at: UnixMillis,
    pub last_used_at: UnixMillis,
    /// True for the session that made this request.
    pub current: bool,
}

/// Body of every rename request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub name: String,
}

/// A one-time link that opens the browser page where a parent confirms with
/// an existing passkey and then registers another one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentLink {
    pub url: String,
    pub expires_at: UnixMillis,
}

/// Answer of "end all other sessions".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub ended: u64,
}

/// Account settings (`GET`/`PATCH /api/v1/settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Days of location history kept (1–365, default 30); older fixes are deleted.
    pub retention_days: i64,
}

pub const MAX_RETENTION_DAYS: i64 = 365;

/// One entry of the parent's activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub at: UnixMillis,
    /// What happened, e.g. `account.created`, `passkey.renamed`, `session.ended`.
    pub kind: String,
    /// The signed-in computer that did it, when one did.
    pub actor_session_id: Option<String>,
    pub actor_session_name: Option<String>,
    /// A short description for a person (never a token or a location).
    pub detail: String,
}

pub const MAX_NAME_CHARS: usize = 64;

/// Names (of passkeys, computers, accounts) are 1–64 characters, trimmed,
/// with no control characters.
pub fn clean_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return None;
    }
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Laptop "), Some("Laptop".into()));
        assert_eq!(clean_name("   "), None);
        assert_eq!(clean_name("a\u{7}b"), None);
        assert_eq!(clean_name(&"x".repeat(65)), None);
        assert_eq!(clean_name(&"é".repeat(64)), Some("é".repeat(64)));
    }
}
