//! A watch's signed pairing offer and its signed word on an answer, as the
//! cloud receives them: decoding, checking and verification never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::pairing::{SignedOffer, SignedPairingConfirmation};

const CERT: &[u8] = include_bytes!("../../testdata/vector-device.der");

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = serde_json::from_slice::<SignedOffer>(data) {
        let _ = offer.offer.signing_bytes();
        let _ = offer.offer.is_well_formed();
        let _ = offer.verify(CERT);
    }
    if let Ok(word) = serde_json::from_slice::<SignedPairingConfirmation>(data) {
        let _ = word.confirmation.is_well_formed();
        let _ = word.verify(CERT);
    }
});
