#![no_main]
//! The factory's check of a TPM watch's evidence (files that come from the
//! production line, so from a device that may be hostile): any bytes as the
//! attestation key's and device key's public areas, the TPM's statement and
//! its signature are refused without a panic, and never verify.

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use waymark_protocol::attestation::AttestationAnswer;
use waymark_protocol::signing::b64;
use waymark_tpm::evidence::{OpenChallenge, verify};

fuzz_target!(|data: &[u8]| {
    // Four fields, each after a 2-byte big-endian length: AK public,
    // device public, statement, signature.
    let mut rest = data;
    let mut next = || {
        let len = match rest {
            [a, b, tail @ ..] => {
                rest = tail;
                usize::from(u16::from_be_bytes([*a, *b])).min(rest.len())
            }
            _ => 0,
        };
        let (field, tail) = rest.split_at(len);
        rest = tail;
        b64(field)
    };
    let secret = b"the factory's secret";
    let open = OpenChallenge {
        id: "c".into(),
        secret_sha256: b64(&Sha256::digest(secret)),
        nonce: b64(b"nonce"),
        attestation_key: next(),
        device_key: next(),
        issued_at: 0,
    };
    let answer = AttestationAnswer {
        challenge: "c".into(),
        // The right secret, so the check goes on to parse everything else.
        secret: b64(secret),
        certify_info: next(),
        signature: next(),
    };
    assert!(verify(&open, &answer, 0).is_err(), "random bytes never verify");
});
