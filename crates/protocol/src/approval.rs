//! Approving a new family computer through the cloud (issue 13,
//! `docs/end-to-end-encryption.md` §5), as the cloud relays it: the new
//! computer's join request (its public keys), the trusted computer's SPAKE2
//! message, the new computer's answer and confirmation, and the trusted
//! computer's confirmation with the approval bundle sealed under the
//! exchange's key. The cloud stores and passes these along; it learns
//! nothing it can guess the code from, and a request takes one answer. A
//! request ended by either computer (a wrong code, or Cancel) is deleted.
//!
//! The exchange itself is `code_exchange` (feature `e2e`).

use serde::{Deserialize, Serialize};

use crate::account::UnixMillis;
use crate::pairing::{bytes_ok, generate_code, group_code, parse_code};
use crate::roster::SigningPublicKey;
use crate::sealed_report::LocationPublicKey;

/// How long a join request lives, from its creation.
pub const JOIN_REQUEST_TTL_MS: i64 = 15 * 60 * 1000;
/// The most bytes a SPAKE2 message may have (Ed25519 group: 33).
pub const MAX_MESSAGE_BYTES: usize = 64;
/// The most characters of a sealed approval bundle (base64url).
pub const MAX_SEALED_CHARS: usize = 48 * 1024;

/// `POST /api/v1/family/join-requests`: a computer without the family's keys
/// asks for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewJoinRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub signing: SigningPublicKey,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub sealing: LocationPublicKey,
}

/// Where a join request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JoinState {
    /// Waiting for a trusted computer to start the exchange.
    Waiting,
    /// A trusted computer shows a code; its first message is here.
    Offered,
    /// The new computer answered (once; the request takes no other answer).
    Answered,
    /// The trusted computer confirmed and sent the sealed bundle.
    Approved,
}

/// A join request as both computers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub id: String,
    /// The requesting computer's session name, as it signed in.
    pub name: String,
    /// The family member (account) whose computer asks, and their name: a
    /// co-parent's computer joins the same way as a parent's second one.
    pub member: String,
    pub member_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub signing: SigningPublicKey,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub sealing: LocationPublicKey,
    pub state: JoinState,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// The trusted computer's first message, once offered.
    pub offer: Option<ApprovalOffer>,
    pub answer: Option<ApprovalAnswer>,
    pub approval: Option<SealedApproval>,
}

/// `POST /api/v1/family/join-requests/{id}/offer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApprovalOffer {
    /// The signing key of the computer showing the code: its identity in
    /// the exchange (a key put here by anyone else fails the exchange).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub computer: SigningPublicKey,
    /// SPAKE2 message, base64url.
    pub message: String,
}

/// `POST /api/v1/family/join-requests/{id}/answer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApprovalAnswer {
    /// SPAKE2 message, base64url.
    pub message: String,
    /// HMAC-SHA256 key confirmation, base64url.
    pub confirmation: String,
}

/// `POST /api/v1/family/join-requests/{id}/approval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SealedApproval {
    /// The trusted computer's key confirmation, base64url.
    pub confirmation: String,
    /// The approval bundle sealed under the exchange's key, base64url.
    pub sealed: String,
}

/// The approval code's characters (50 bits), in the pairing code's alphabet.
pub const APPROVAL_CODE_CHARS: usize = 10;

/// The code a trusted computer shows and the new computer types.
#[derive(Clone, PartialEq, Eq)]
pub struct ApprovalCode(String);

impl ApprovalCode {
    pub fn generate() -> Self {
        Self(generate_code(APPROVAL_CODE_CHARS))
    }

    /// Case, spaces, dashes and O/I/L are forgiven, as for pairing codes.
    pub fn parse(input: &str) -> Option<Self> {
        parse_code(input, APPROVAL_CODE_CHARS).map(Self)
    }

    /// Grouped for reading aloud: `7KQ2-M9XH-4T`.
    pub fn display(&self) -> String {
        group_code(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApprovalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApprovalCode(..)")
    }
}

impl ApprovalOffer {
    pub fn is_well_formed(&self) -> bool {
        bytes_ok(&self.message, MAX_MESSAGE_BYTES, None)
    }
}

impl ApprovalAnswer {
    pub fn is_well_formed(&self) -> bool {
        bytes_ok(&self.message, MAX_MESSAGE_BYTES, None)
            && bytes_ok(&self.confirmation, 32, Some(32))
    }
}

impl SealedApproval {
    pub fn is_well_formed(&self) -> bool {
        bytes_ok(&self.confirmation, 32, Some(32))
            && self.sealed.len() <= MAX_SEALED_CHARS
            && bytes_ok(&self.sealed, MAX_SEALED_CHARS, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::b64;

    #[test]
    fn approval_codes_are_ten_forgiving_characters() {
        let c = ApprovalCode::parse("7kq2 m9xh-4t").unwrap();
        assert_eq!(c.display(), "7KQ2-M9XH-4T");
        assert!(ApprovalCode::parse("7KQ2-M9XH-4TRB").is_none());
        let fresh = ApprovalCode::generate();
        assert_eq!(ApprovalCode::parse(&fresh.display()), Some(fresh));
    }

    #[test]
    fn relayed_messages_are_bounded_base64() {
        let offer = |message: String| ApprovalOffer {
            computer: SigningPublicKey([9; 32]),
            message,
        };
        assert!(offer(b64(&[7; 33])).is_well_formed());
        assert!(!offer(b64(&[7; 65])).is_well_formed());
        assert!(!offer("not base64!".into()).is_well_formed());
        assert!(!offer(String::new()).is_well_formed());
        let answer = |c: usize| ApprovalAnswer {
            message: b64(&[1; 33]),
            confirmation: b64(&vec![2; c]),
        };
        assert!(answer(32).is_well_formed());
        assert!(!answer(31).is_well_formed());
        let sealed = |n: usize| SealedApproval {
            confirmation: b64(&[3; 32]),
            sealed: b64(&vec![4; n]),
        };
        assert!(sealed(2000).is_well_formed());
        assert!(!sealed(40 * 1024).is_well_formed());
    }
}
