//! The end-to-end messages (issue 13) as a cloud, a watch or an app receives
//! them from the other side: sealed batches and setup records, rosters,
//! epoch switches, key blobs, zone sets, recovery keys and the code
//! exchange's messages. Decoding and checking never panic, nothing forged
//! here verifies or opens, and no zone set from the input is accepted.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use waymark_protocol::code_exchange::{Answer, Parties, Purpose, Shower, Typer};
use waymark_protocol::family_roster::{
    EpochKeyBlob, FamilyKeyPair, RecoveryKey, Roster, RosterEntry, SignedEpochSwitch,
    SignedRoster, TrustedRoster,
};
use waymark_protocol::location_sealing::{FamilyOpener, LocationSecretKey, WatchSealer};
use waymark_protocol::pairing::PairingCode;
use waymark_protocol::sealed_report::{
    Authenticity, ChainHash, SignedSealedBatch, SignedSetupRecord, authenticate_chain,
};
use waymark_protocol::zone_sealing::SealedZoneSet;

const CERT: &[u8] = include_bytes!("../../testdata/vector-device.der");

struct Family {
    computer: FamilyKeyPair,
    trusted: TrustedRoster,
    opener: FamilyOpener,
    zone_key: LocationSecretKey,
}

fn family() -> &'static Family {
    static FAMILY: OnceLock<Family> = OnceLock::new();
    FAMILY.get_or_init(|| {
        let computer = FamilyKeyPair::generate();
        let roster = Roster {
            version: 1,
            computers: vec![RosterEntry {
                name: "Desk".into(),
                member: "acct".into(),
                signing: computer.signing_public(),
                sealing: computer.sealing_public(),
            }],
            recovery: None,
            prev: ChainHash::GENESIS,
        }
        .sign(&computer);
        let trusted = TrustedRoster::founding(&roster).expect("its own founding roster");
        let (epoch_key, public) = LocationSecretKey::generate();
        let mut opener = FamilyOpener::new();
        opener.add_epoch_key(0, epoch_key);
        let (_, setup) = WatchSealer::start("watch", 0, &public).expect("a fresh key");
        opener.add_setup(&setup).expect("its own setup");
        let (zone_key, _) = LocationSecretKey::generate();
        Family {
            computer,
            trusted,
            opener,
            zone_key,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = family();
    if let Ok(batches) = serde_json::from_slice::<Vec<SignedSealedBatch>>(data) {
        let check = authenticate_chain(&batches, |b| b.verify(CERT).is_ok());
        assert!(
            check.batches.iter().all(|a| *a != Authenticity::Signed),
            "a batch verified without the key"
        );
        for b in &batches {
            let _ = b.batch.check_shape(1_800_000_000_000);
            // The input cannot know the family's key: nothing opens.
            assert!(f.opener.open(&b.batch).is_err(), "a forged batch opened");
        }
    }
    if let Ok(setup) = serde_json::from_slice::<SignedSetupRecord>(data) {
        assert!(setup.verify(CERT).is_err(), "a setup verified without the key");
    }
    if let Ok(roster) = serde_json::from_slice::<SignedRoster>(data) {
        let mut trusted = f.trusted.clone();
        assert!(trusted.advance(&roster).is_err(), "a forged roster was trusted");
        let _ = TrustedRoster::founding(&roster);
    }
    if let Ok(switch) = serde_json::from_slice::<SignedEpochSwitch>(data) {
        assert!(switch.check(&f.trusted, 0).is_err(), "a forged epoch switch");
    }
    if let Ok(blob) = serde_json::from_slice::<EpochKeyBlob>(data) {
        assert!(blob.open(&f.computer).is_err(), "a forged key blob opened");
    }
    if let Ok(set) = serde_json::from_slice::<SealedZoneSet>(data) {
        let outcome = set.open_on_watch("watch", &f.zone_key, &f.trusted, 0);
        assert!(outcome.is_err(), "a forged zone set was accepted");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = RecoveryKey::parse(text);
    }
    // The code exchange with the input as the other side's messages.
    let code = PairingCode::parse("7KQ2M9XH4TRB").expect("a valid code");
    let parties = Parties {
        purpose: Purpose::PairWatch,
        shower: b"watch".to_vec(),
        typer: b"waymark-family".to_vec(),
    };
    if let Ok((typer, _)) = Typer::answer(parties.clone(), &code, data) {
        let mut confirmation = [0u8; 32];
        let n = data.len().min(32);
        confirmation[..n].copy_from_slice(&data[..n]);
        assert!(typer.confirm(&confirmation).is_err(), "a forged confirmation");
    }
    let (shower, _) = Shower::start(parties, &code);
    let split = data.len().min(33);
    let mut confirmation = [0u8; 32];
    let rest = &data[split..];
    confirmation[..rest.len().min(32)].copy_from_slice(&rest[..rest.len().min(32)]);
    let answer = Answer {
        message: data[..split].to_vec(),
        confirmation,
    };
    assert!(shower.finish(&answer).is_err(), "a forged answer confirmed");
});
