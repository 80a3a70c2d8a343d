//! Property tests: every decoder in the protocol takes any input without
//! panicking, and what we encode decodes to the same value.

use proptest::prelude::*;
use waymark_protocol::pairing::PairingCode;
use waymark_protocol::report::Fix;
use waymark_protocol::sealed_report::{
    ChainHash, SealedBatch, SealedHeader, SetupId, SignedSealedBatch,
};
use waymark_protocol::signin::{CodeVerifier, LoopbackRedirect, check_loopback_redirect};

fn fix() -> impl Strategy<Value = Fix> {
    (
        any::<i64>(),
        -90.0f64..=90.0,
        -180.0f64..=180.0,
        0.0f64..=100_000.0,
        0u8..=100,
    )
        .prop_map(|(t, lat, lon, acc, bat)| Fix {
            t,
            lat,
            lon,
            acc,
            bat,
        })
}

proptest! {
    #[test]
    fn pairing_code_text_round_trips(_seed in any::<u64>()) {
        let code = PairingCode::generate();
        prop_assert_eq!(PairingCode::parse(&code.display()), Some(code.clone()));
        prop_assert_eq!(PairingCode::parse(&code.qr_payload()), Some(code.clone()));
        prop_assert_eq!(PairingCode::parse(&code.display().to_lowercase()), Some(code));
    }

    #[test]
    fn decoders_take_any_text(s in "\\PC{0,80}") {
        let _ = PairingCode::parse(&s);
        let _ = CodeVerifier::parse(&s);
        let _ = check_loopback_redirect(&s);
        let _ = serde_json::from_str::<SignedSealedBatch>(&s);
        let _ = waymark_protocol::signing::unb64(&s);
    }

    /// The loopback rule agrees with the URL parser that builds the redirect:
    /// whatever the check accepts, the parser reads as plain http to
    /// 127.0.0.1 or [::1] on a real port, and the redirect carries the
    /// code and state back unchanged.
    #[test]
    fn the_loopback_rule_agrees_with_the_url_parser(
        raw in "http://(127\\.0\\.0\\.1|\\[::1\\]|127\\.1|localhost|[a-z]{1,3})(:[-+0-9 ]{0,7})?(/[a-z0-9+%?#@ ]{0,6})?",
        code in "[A-Za-z0-9_-]{1,20}",
    ) {
        let Ok(redirect) = LoopbackRedirect::parse(&raw) else {
            return Ok(());
        };
        let url = url::Url::parse(&raw).expect("accepted means parseable");
        prop_assert_eq!(url.scheme(), "http");
        prop_assert!(matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]")), "{}", raw);
        prop_assert!(url.port().is_some_and(|p| p != 0), "{}", raw);
        prop_assert!(url.fragment().is_none() && url.username().is_empty());
        let back = url::Url::parse(&redirect.with_code(&code, "st")).expect("the redirect builds");
        prop_assert_eq!(back.host_str(), url.host_str());
        prop_assert_eq!(back.port(), url.port());
        prop_assert_eq!(back.path(), url.path());
        let got: Vec<(String, String)> = back.query_pairs().into_owned().collect();
        prop_assert!(got.contains(&("code".into(), code.clone())));
        prop_assert!(got.contains(&("state".into(), "st".into())));
    }

    #[test]
    fn sealed_batches_round_trip_through_json_bit_for_bit(
        seq in any::<u64>(),
        times in proptest::collection::vec(any::<i64>(), 0..20),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        prev in any::<[u8; 32]>(),
    ) {
        let batch = SealedBatch {
            header: SealedHeader {
                device_id: "00112233445566778899aabbccddeeff".into(),
                seq,
                epoch: 3,
                setup_id: SetupId([9; 16]),
                version: 1,
                times,
                prev_hash: ChainHash(prev),
            },
            ciphertext: body,
        };
        let back: SealedBatch = serde_json::from_str(&serde_json::to_string(&batch).unwrap()).unwrap();
        prop_assert_eq!(back.signing_bytes(), batch.signing_bytes());
    }

    #[test]
    fn fixes_round_trip_through_json_bit_for_bit(f in fix()) {
        let back: Fix = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        prop_assert_eq!(back.lat.to_bits(), f.lat.to_bits());
        prop_assert_eq!(back.lon.to_bits(), f.lon.to_bits());
        prop_assert_eq!(back.acc.to_bits(), f.acc.to_bits());
    }
}
