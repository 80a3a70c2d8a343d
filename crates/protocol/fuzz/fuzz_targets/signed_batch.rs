//! A signed batch of fixes, as the cloud receives it: decoding, validation
//! and verification never panic, and a forged signature never verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::report::SignedBatch;
use waymark_protocol::status_poll::SignedStatus;

const CERT: &[u8] = include_bytes!("../../testdata/vector-device.der");

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<SignedBatch>(data) {
        for fix in &batch.batch.fixes {
            let _ = fix.validate(1_800_000_000_000);
        }
        let _ = batch.batch.signing_bytes();
        assert!(
            batch.verify(CERT).is_err(),
            "a batch verified without the key"
        );
    }
    if let Ok(status) = serde_json::from_slice::<SignedStatus>(data) {
        assert!(
            status.verify(CERT).is_err(),
            "a status poll verified without the key"
        );
    }
});
