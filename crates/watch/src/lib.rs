//! `waymark-watch`: a watch simulator that behaves like the hardware. It
//! holds its private key (it never leaves the watch), shows pairing codes
//! whose exchange brings it the family's keys, reports fixes in signed batches through an on-disk queue that
//! survives being offline, and erases itself when its owner revokes it.

pub mod clock;
pub mod cloud_link;
pub mod family;
pub mod info;
pub mod keystore;
pub mod pairing;
pub mod provisioning;
pub mod queue;
pub mod reporting;
pub mod revocation;
pub mod routes;
pub mod zones;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
