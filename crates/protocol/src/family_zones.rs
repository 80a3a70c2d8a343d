//! The parent API's bodies for the family's safe zones (`/api/v1/zones`,
//! issue 16): what a family computer saves (sealed copies, one version) and
//! what it reads back (the family's copy, and each watch's own signed word).
//! The cloud relays both without reading a zone (`zone_relay.rs`).

use serde::{Deserialize, Serialize};

use crate::status_poll::SignedStatus;
use crate::zone_relay::SealedZoneSet;

/// `PUT /api/v1/zones`: a family computer saves the family's zones, as the
/// family's own copy and one copy per watch, all of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZonesUpload {
    pub family: SealedZoneSet,
    pub watches: Vec<SealedZoneSet>,
}

/// One watch in `GET /api/v1/zones`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchZones {
    pub watch_id: String,
    /// The version of the newest set stored for it.
    pub stored: Option<u64>,
    /// Its newest signed status that carried a zone word.
    pub word: Option<SignedStatus>,
}

/// `GET /api/v1/zones`: the family's own copy and each watch's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FamilyZones {
    pub family: Option<SealedZoneSet>,
    pub watches: Vec<WatchZones>,
}
