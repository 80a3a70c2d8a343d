//! Account API bodies (`/api/v1`): who am I, passkeys, signed-in computers,
//! and the activity log.

use serde::{Deserialize, Serialize};

pub use crate::time::UnixMillis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Me {
    pub account_id: String,
    pub display_name: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: UnixMillis,
    /// The signed-in computer this token belongs to.
    pub session_id: String,
    /// The family this account belongs to (its own unless it joined another).
    pub family_id: String,
    /// What this account may do in its family.
    pub role: crate::co_parents::FamilyRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: UnixMillis,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_used_at: Option<UnixMillis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionInfo {
    pub id: String,
    /// The name the app gave this computer (its host name by default).
    pub name: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: UnixMillis,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub last_used_at: UnixMillis,
    /// True for the session that made this request.
    pub current: bool,
}

/// Body of every rename request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rename {
    /// The API document adds [`NAME_PATTERN`] to this schema.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
}

/// A one-time link that opens the browser page where a parent confirms with
/// an existing passkey and then registers another one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentLink {
    pub url: String,
    pub expires_at: UnixMillis,
}

/// Answer of "end all other sessions".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ended {
    pub ended: u64,
}

/// Account settings (`GET`/`PATCH /api/v1/settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settings {
    /// Days of location history kept (1–365, default 30); older fixes are deleted.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 365))]
    #[serde(deserialize_with = "whole_number")]
    pub retention_days: i64,
}

pub const MAX_RETENTION_DAYS: i64 = 365;

/// One entry of the parent's activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ActivityEntry {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: UnixMillis,
    /// What happened, e.g. `account.created`, `passkey.renamed`, `session.ended`.
    pub kind: String,
    /// The signed-in computer that did it, when one did.
    pub actor_session_id: Option<String>,
    pub actor_session_name: Option<String>,
    /// The parent (account display name) whose computer did it, for the
    /// family's events, which every member sees.
    #[serde(default)]
    pub actor_member_name: Option<String>,
    /// A short description for a person (never a token or a location).
    pub detail: String,
}

pub const MAX_NAME_CHARS: usize = 64;

/// Names (of passkeys, computers, accounts) are at most 64 characters as
/// sent, with no control characters anywhere and at least one that is not
/// white space; they are stored trimmed. [`NAME_PATTERN`] says the same to
/// the API document, so the document and the check cannot disagree.
pub fn clean_name(raw: &str) -> Option<String> {
    if raw.chars().count() > MAX_NAME_CHARS || raw.chars().any(char::is_control) {
        return None;
    }
    let name = raw.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// [`clean_name`] as an ECMA-262 pattern: only non-control characters
/// (`\p{Cc}` is U+0000–001F and U+007F–009F), one of them not Unicode white space.
pub const NAME_PATTERN: &str = concat!(
    r"^[^\u0000-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\u0000-\u001F\u007F-\u009F]*$"
);

/// A whole number sent as JSON: `30` or `30.0` (JSON Schema's "integer" allows both).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(serde::de::Error::custom("expected a whole number")),
    }
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
        assert_eq!(clean_name(&format!(" {}", "x".repeat(64))), None);
        assert_eq!(clean_name("\tLaptop"), None);
        assert_eq!(clean_name("\u{3000}\u{a0}"), None);
    }

    proptest::proptest! {
        /// The document's pattern (with its length bounds) accepts exactly
        /// the names the cloud accepts.
        #[test]
        fn the_name_pattern_is_the_name_check(name in "(\\PC|\\pC|\\s){0,70}") {
            let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
            let documented = pattern.is_match(&name) && (1..=MAX_NAME_CHARS).contains(&name.chars().count());
            proptest::prop_assert_eq!(documented, clean_name(&name).is_some(), "{:?}", name);
        }
    }

    #[test]
    fn retention_takes_whole_numbers_only() {
        let s: Settings = serde_json::from_str(r#"{"retention_days": 136.0}"#).unwrap();
        assert_eq!(s.retention_days, 136);
        assert!(serde_json::from_str::<Settings>(r#"{"retention_days": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Settings>(r#"{"retention_days": "7"}"#).is_err());
    }
}
