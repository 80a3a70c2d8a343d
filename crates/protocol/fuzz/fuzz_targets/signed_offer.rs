//! A watch's signed pairing offer, as the cloud receives it: decoding,
//! re-encoding and verification never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::pairing::SignedOffer;

const CERT: &[u8] = include_bytes!("../../testdata/vector-device.der");

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = serde_json::from_slice::<SignedOffer>(data) {
        let _ = offer.offer.signing_bytes();
        let _ = offer.verify(CERT);
    }
});
