//! What the cloud relays of a family's safe zones (issue 16), without the
//! code or the keys to open them: the sealed, signed zone set (sealing and
//! opening are `zone_sealing.rs`, feature `e2e`), the watch's signed word on
//! the set it holds, and the parent API's bodies. The cloud checks sizes and
//! who may store what; it never reads a zone.

use serde::{Deserialize, Serialize};

use crate::roster::SigningPublicKey;
use crate::sealed_report::{EncappedKey, LocationPublicKey};

/// At most this many zones in a family.
pub const MAX_ZONES: usize = 20;
/// A sealed zone set's ciphertext is at most this long (base64url). The
/// whole save (the family's copy and one per watch) must also fit the
/// parent API's 64 KiB body limit; the app says so before it sends.
pub const MAX_SEALED_ZONES_CHARS: usize = 60_000;
/// The family's own copy's `watch_id`.
pub const FAMILY_COPY: &str = "family";
/// A refusal's code is at most this long.
const MAX_CODE_CHARS: usize = 40;

/// A zone set as the cloud stores and relays it: sealed with HPKE to one
/// watch's zone key (or, as the family's own copy, to the family's epoch
/// key) and signed by a family computer of the roster, over its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedZoneSet {
    /// The watch it is for, or `"family"` for the family's own copy.
    pub watch_id: String,
    /// One more each time the family saves its zones.
    pub version: u64,
    /// The key it is sealed to.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub recipient: LocationPublicKey,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub enc: EncappedKey,
    /// base64url.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]+$"))]
    pub ciphertext: String,
    /// The family computer that signed it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub signer: SigningPublicKey,
    /// base64url.
    pub signature: String,
}

impl SealedZoneSet {
    /// The checks anyone can make without a key: a version, sizes, encodings.
    pub fn is_well_formed(&self) -> bool {
        let b64 = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        self.version >= 1
            && !self.watch_id.is_empty()
            && self.watch_id.len() <= 64
            && !self.ciphertext.is_empty()
            && self.ciphertext.len() <= MAX_SEALED_ZONES_CHARS
            && b64(&self.ciphertext)
            && !self.signature.is_empty()
            && self.signature.len() <= 200
            && b64(&self.signature)
    }
}

/// Why a watch refused the newest zone set it was handed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneRefusal {
    pub version: u64,
    /// A `ZoneSetError` code (`zones_bad_signature`, `zone_radius`, …).
    pub code: String,
}

/// A paired watch's word on its zones, in every signed status poll: the key
/// to seal its zones to, the version it checks fixes against, and the last
/// set it refused. Signed by the device key with the poll, so the family's
/// apps believe the watch, not the cloud, about which zones are in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneWord {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub zone_key: LocationPublicKey,
    /// The version of the zone set in force on the watch (0: none yet).
    pub held: u64,
    #[serde(default)]
    pub refused: Option<ZoneRefusal>,
}

impl ZoneWord {
    pub fn is_well_formed(&self) -> bool {
        self.refused.as_ref().is_none_or(|r| {
            !r.code.is_empty()
                && r.code.len() <= MAX_CODE_CHARS
                && r.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
    }
}
