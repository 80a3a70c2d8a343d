//! The one error shape every Waymark endpoint answers with, and the one
//! list of machine-readable error codes the cloud, the watch and the app share.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// Why the cloud refused a request. Stable: clients switch on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this build does not know (from a newer cloud).
            #[serde(other)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code, for tests and documentation.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Unknown => "unknown",
                }
            }
        }
    };
}

error_codes! {
    InvalidRequest = "invalid_request",
    BodyTooLarge = "body_too_large",
    UnsupportedMediaType = "unsupported_media_type",
    WrongOrigin = "wrong_origin",
    InvalidRedirectUri = "invalid_redirect_uri",
    PasskeyRejected = "passkey_rejected",
    CeremonyExpired = "ceremony_expired",
    UnknownPasskey = "unknown_passkey",
    InvalidGrant = "invalid_grant",
    UnsupportedGrantType = "unsupported_grant_type",
    InvalidClient = "invalid_client",
    Unauthenticated = "unauthenticated",
    NotFound = "not_found",
    MethodNotAllowed = "method_not_allowed",
    LastPasskey = "last_passkey",
    UnknownDevice = "unknown_device",
    BadSignature = "bad_signature",
    UntrustedCertificate = "untrusted_certificate",
    /// This cloud accepts only watches whose key a factory certified as TPM-resident.
    HardwareKeyRequired = "hardware_key_required",
    Revoked = "revoked",
    NotPaired = "not_paired",
    SequenceReused = "sequence_reused",
    ReplayedStatus = "replayed_status",
    /// A sealed batch whose shape cannot be right (no fixes, a ciphertext of
    /// the wrong length, a fix older than 30 days).
    InvalidBatch = "invalid_batch",
    /// A sealed batch names a setup the watch has not posted: it posts it and resends.
    UnknownSetup = "unknown_setup",
    BatchTooLarge = "batch_too_large",
    InvalidCode = "invalid_code",
    CodeExpired = "code_expired",
    CodeUsed = "code_used",
    AlreadyPaired = "already_paired",
    AlreadyYours = "already_yours",
    /// Another live offer has this locator: the watch makes a new code.
    LocatorTaken = "locator_taken",
    TooManyAttempts = "too_many_attempts",
    ClockSkew = "clock_skew",
    RateLimited = "rate_limited",
    Unavailable = "unavailable",
    TooManyStreams = "too_many_streams",
    /// A roster or key blob that does not check (chain, signature, shape).
    InvalidRoster = "invalid_roster",
    /// Not the family's next roster version: another computer changed it first.
    RosterConflict = "roster_conflict",
    /// Not newer than the family's saved zones: another computer saved them first.
    ZonesConflict = "zones_conflict",
    /// This step of a computer's approval was taken already, or it ended.
    ApprovalSpent = "approval_spent",
    /// The caller's role in the family does not allow this (a guardian asking for an owner's action).
    RoleForbids = "role_forbids",
    /// No open invitation has this code: unknown, used, cancelled or expired all answer alike.
    InvitationInvalid = "invitation_invalid",
    /// The account still has watches or other members, so it cannot join another family.
    FamilyNotEmpty = "family_not_empty",
    /// The family's founder stays an owner and a member.
    FounderStays = "founder_stays",
    Internal = "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": "<code>", "message": "<for a person>"}`: `error` is stable and
/// machine-readable, `message` says what went wrong and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept_apart() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
        }
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"from_the_future","message":"x"}"#).unwrap();
        assert_eq!(body.error, ErrorCode::Unknown);
    }
}
