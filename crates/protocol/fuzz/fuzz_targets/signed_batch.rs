//! A signed sealed batch, as the cloud receives it: decoding, the shape
//! checks and verification never panic, and a forged signature never verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::sealed_report::{SignedSealedBatch, SignedSetupRecord};
use waymark_protocol::status_poll::SignedStatus;

const CERT: &[u8] = include_bytes!("../../testdata/vector-device.der");

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<SignedSealedBatch>(data) {
        let _ = batch.batch.check_shape(1_800_000_000_000);
        let _ = batch.batch.chain_hash();
        assert!(
            batch.verify(CERT).is_err(),
            "a batch verified without the key"
        );
    }
    if let Ok(setup) = serde_json::from_slice::<SignedSetupRecord>(data) {
        assert!(
            setup.verify(CERT).is_err(),
            "a setup record verified without the key"
        );
    }
    if let Ok(status) = serde_json::from_slice::<SignedStatus>(data) {
        assert!(
            status.verify(CERT).is_err(),
            "a status poll verified without the key"
        );
    }
});
