//! Pairing codes as typed or scanned: never a panic, and a parsed code's
//! display form parses back to the same code.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::pairing::PairingCode;

fuzz_target!(|input: &str| {
    if let Some(code) = PairingCode::parse(input) {
        let again = PairingCode::parse(&code.display()).expect("a shown code parses");
        assert!(again == code);
        assert!(PairingCode::parse(&code.qr_payload()).as_ref() == Some(&code));
    }
});
