//! Identifiers as types. Every id Waymark issues is 128 random bits written
//! as 32 lowercase hex digits (never sequential, never a credential). Each
//! kind of id is its own type, built only by [`parse`](WatchId::parse) (which
//! checks the shape) or by `random`, so a string that was never checked
//! cannot reach a query, and a session id cannot be passed where a watch id
//! is expected.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// True when `raw` has the shape of an id Waymark issues.
pub fn is_id(raw: &str) -> bool {
    raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex, as ids and stored hashes are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 128 random bits as 32 lowercase hex digits.
fn random_hex() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

/// A string that is not an id of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a Waymark id (32 lowercase hex digits)")
    }
}

impl std::error::Error for InvalidId {}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id in `raw`, if it has the shape of one.
            pub fn parse(raw: &str) -> Option<Self> {
                is_id(raw).then(|| Self(raw.to_owned()))
            }

            /// A new id: 128 random bits.
            pub fn random() -> Self {
                Self(random_hex())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Read-only view of the checked text (for SQL and formatting).
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(raw: String) -> Result<Self, InvalidId> {
                if is_id(&raw) { Ok(Self(raw)) } else { Err(InvalidId) }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).ok_or_else(|| {
                    serde::de::Error::custom(concat!("not a valid ", stringify!($name)))
                })
            }
        }
    };
}

id_type!(
    /// A watch (device): the first 128 bits of its public key's SHA-256, so
    /// it is derived from the key and cannot be claimed by another device.
    WatchId
);
id_type!(
    /// A family's account.
    AccountId
);
id_type!(
    /// One signed-in computer of an account.
    SessionId
);
id_type!(
    /// One passkey registered to an account.
    PasskeyId
);
id_type!(
    /// A stored `/authorize` request or enrolment link.
    RequestId
);
id_type!(
    /// A passkey ceremony in progress.
    CeremonyId
);
id_type!(
    /// A family computer's request to be approved.
    JoinRequestId
);
id_type!(
    /// A family: named by the account that founded it (every account
    /// founds its own, and keeps that id while it belongs to another), so a
    /// family's data and its founder's account never need to move.
    FamilyId
);
id_type!(
    /// An invitation to join a family (never its code: only the code is a secret).
    InvitationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_parse() {
        let a = WatchId::random();
        assert_eq!(WatchId::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a, WatchId::random());
        for bad in [
            "",
            "1",
            &a.as_str().to_uppercase(),
            &format!("{a}0"),
            "g".repeat(32).as_str(),
        ] {
            assert!(WatchId::parse(bad).is_none(), "{bad}");
        }
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<WatchId>(&json).unwrap(), a);
        assert!(serde_json::from_str::<WatchId>("\"../etc\"").is_err());
    }
}
