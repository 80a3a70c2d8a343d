//! The Waymark protocol: the one place where wire types and the rules for
//! checking them live. The cloud, the watch and the desktop app all import
//! this crate, so nothing about the protocol is written twice.

pub mod account;
pub mod approval;
pub mod attestation;
pub mod co_parents;
#[cfg(feature = "e2e")]
pub mod code_exchange;
pub mod device;
pub mod error;
#[cfg(feature = "e2e")]
pub mod family_roster;
#[cfg(feature = "e2e")]
pub mod family_time;
pub mod family_zones;
pub mod ids;
#[cfg(feature = "e2e")]
pub mod location_sealing;
pub mod pairing;
pub mod report;
pub mod roster;
pub mod safe_zones;
pub mod sealed_report;
pub mod signin;
pub mod signing;
pub mod status_poll;
pub mod time;
pub mod typed_code;
pub mod watches;
pub mod zone_relay;
#[cfg(feature = "e2e")]
pub mod zone_sealing;
