//! The watch's signed status poll and what it learns from it: whether it is
//! paired and to whom, the cloud's last stored sequence, while it shows a
//! pairing code the family's answer to weigh, and once paired the family's
//! roster versions and key epoch switches to follow.

use serde::{Deserialize, Serialize};

use crate::device::{DeviceError, verify_b64_signature};
use crate::pairing::AnswerForWatch;
use crate::roster::FamilyRosters;
use crate::signing::{Canonical, STATUS_TAG};
use crate::zone_relay::{SealedZoneSet, ZoneWord};

/// A signed status poll is accepted this far from the cloud's clock.
pub const STATUS_WINDOW_MS: i64 = 2 * 60 * 1000;

/// A signed "what is my state?" poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusRequest {
    pub device_id: String,
    pub at: i64,
    /// A paired watch's word on its safe zones (issue 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<ZoneWord>,
}

impl StatusRequest {
    pub fn signing_bytes(&self) -> Vec<u8> {
        let c = Canonical::new(STATUS_TAG).str(&self.device_id).i64(self.at);
        // Appended only when present, so a poll without a zone word signs
        // the same bytes as before zones existed.
        match &self.zones {
            None => c.finish(),
            Some(word) => {
                let c = c.str("zones").bytes(&word.zone_key.0).u64(word.held);
                match &word.refused {
                    None => c.u8(0).finish(),
                    Some(r) => c.u8(1).u64(r.version).str(&r.code).finish(),
                }
            }
        }
    }
}

/// `POST /device/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedStatus {
    pub status: StatusRequest,
    pub signature: String,
}

impl SignedStatus {
    pub fn verify(&self, cert_der: &[u8]) -> Result<(), DeviceError> {
        verify_b64_signature(cert_der, &self.status.signing_bytes(), &self.signature)
    }
}

/// What a watch learns from a status poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceStatus {
    pub paired: bool,
    /// The display name of the account it is paired to.
    pub owner: Option<String>,
    /// The last batch sequence number the cloud stored.
    pub last_seq: u64,
    /// The chain hash of that batch: what a watch whose queue went back in
    /// time names as the predecessor of its renumbered batch. The cloud's
    /// word; a lie shows in the family's app as a break, never as a place.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_hash: Option<crate::sealed_report::ChainHash>,
    /// While an offer of this watch is answered and waits for its word.
    #[serde(default)]
    pub pairing_answer: Option<AnswerForWatch>,
    /// Once paired: the family's roster versions and epoch switches, which
    /// the watch checks itself (the cloud cannot make either).
    #[serde(default)]
    pub family: Option<FamilyRosters>,
    /// The newest zone set stored for this watch, when it is newer than the
    /// one the watch said it holds. The watch checks it itself.
    #[serde(default)]
    pub zones: Option<SealedZoneSet>,
}
