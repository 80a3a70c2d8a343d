//! The family's keys on a computer (issue 13, the first pieces): kept in a
//! sealed file whose key is in a real Secret Service keychain (run under
//! `scripts/with-keychain`), a family founded on one computer, a second
//! computer approved through the approval code over a relay, and locations a
//! watch sealed opened on both. What a relay (the cloud) could try instead is
//! refused. No cloud process: these are the pieces the cloud will relay.

use waymark_app_core::AppError;
use waymark_app_core::family_keys::{FamilyKeys, KeyFile};
use waymark_protocol::approval::ApprovalCode;
use waymark_protocol::code_exchange::{Parties, Purpose, Shower, Typer};
use waymark_protocol::family_roster::{ApprovalBundle, EpochKeyBlob, FamilyKeyPair, RosterError};
use waymark_protocol::location_sealing::WatchSealer;
use waymark_protocol::report::Fix;
use waymark_protocol::sealed_report::{ChainHash, SealedBatch};
use waymark_protocol::signing::b64;

const ORIGIN: &str = "https://cloud.test:8443";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const FILE_NAME: &str = "family-keys-0123456789abcdef0123456789abcdef.sealed";

fn fresh_service() -> String {
    format!(
        "waymark-test-keys-{}",
        waymark_protocol::signin::random_token(8)
    )
}

fn fixes() -> Vec<Fix> {
    vec![Fix {
        t: 1_700_000_000_000,
        lat: 48.137_154,
        lon: 11.576_124,
        acc: 6.0,
        bat: 64,
    }]
}

/// A batch a watch paired to the family seals to the current epoch.
fn sealed_by_watch(
    keys: &FamilyKeys,
) -> (SealedBatch, waymark_protocol::sealed_report::SetupRecord) {
    let epoch = keys.current_epoch().expect("the family has a key");
    let public = keys.epoch_public(epoch).unwrap();
    let (sealer, setup) = WatchSealer::start("watch-1", epoch, &public).unwrap();
    (sealer.seal(1, 0, ChainHash::GENESIS, &fixes()), setup)
}

fn opens(
    keys: &FamilyKeys,
    batch: &SealedBatch,
    setup: &waymark_protocol::sealed_report::SetupRecord,
) -> bool {
    let mut opener = keys.opener();
    opener.add_setup(setup).is_ok() && opener.open(batch).ok() == Some(fixes())
}

#[tokio::test]
async fn founded_keys_survive_a_restart_sealed_under_the_keychain() {
    let dir = tempfile::tempdir().unwrap();
    let service = fresh_service();
    let file = KeyFile::new(dir.path(), &service, ORIGIN, ACCOUNT);
    assert!(file.load().await.unwrap().is_none(), "no keys yet");

    let mut keys = FamilyKeys::new_computer();
    assert!(
        !keys.is_trusted(),
        "a new computer holds nothing of the family's"
    );
    let founded = keys.found_family("Desk", "acct-1");
    assert!(keys.is_trusted());
    file.save(&keys).await.unwrap();
    let (batch, setup) = sealed_by_watch(&keys);

    // The file holds no key in the clear.
    let on_disk = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
    let computer = keys.computer().to_bytes();
    assert!(!on_disk.windows(32).any(|w| w == &computer[..32]));
    assert!(!String::from_utf8_lossy(&on_disk).contains(&b64(&computer)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only this user may read the key file");
    }

    // "Restart": a new KeyFile reads it back, and it opens the watch's batch.
    let again = KeyFile::new(dir.path(), &service, ORIGIN, ACCOUNT)
        .load()
        .await
        .unwrap()
        .unwrap();
    assert!(again.is_trusted());
    assert!(opens(&again, &batch, &setup));
    assert_eq!(
        again.trusted_roster().unwrap().roster(),
        &founded.roster.roster
    );
    // The recovery key opens the epoch key the cloud is to keep for it.
    let recovered = keys.update_for(1).unwrap().key_blobs[0]
        .open(&founded.recovery.key_pair())
        .unwrap();
    assert_eq!(Some(recovered.public_key()), keys.epoch_public(0));

    file.forget().await.unwrap();
    assert!(file.load().await.unwrap().is_none());
}

#[tokio::test]
async fn a_copied_or_changed_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let service = fresh_service();
    let file = KeyFile::new(dir.path(), &service, ORIGIN, ACCOUNT);
    let mut keys = FamilyKeys::new_computer();
    keys.found_family("Desk", "acct-1");
    file.save(&keys).await.unwrap();

    // Copied to another computer (another keychain): useless there.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join(FILE_NAME), elsewhere.path().join(FILE_NAME)).unwrap();
    let thief = KeyFile::new(elsewhere.path(), &fresh_service(), ORIGIN, ACCOUNT);
    assert!(matches!(
        thief.load().await,
        Err(AppError::FamilyKeysUnreadable(_))
    ));

    // Changed on disk: refused, not half-read.
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = file.load().await.err().expect("a changed file is refused");
    assert_eq!(err.code(), "family_keys_unreadable");
    assert!(err.to_string().contains("recovery key"), "{err}");

    // The honest file still reads after it is written again.
    file.save(&keys).await.unwrap();
    assert!(file.load().await.unwrap().unwrap().is_trusted());
    file.forget().await.unwrap();
}

/// Runs the approval-code exchange through a "relay" that only passes bytes;
/// returns the bundle as the new computer receives it.
fn approve_over_code(
    trusted: &mut FamilyKeys,
    newcomer: &FamilyKeys,
    code_shown: &ApprovalCode,
    code_typed: &ApprovalCode,
) -> Result<ApprovalBundle, String> {
    let parties = Parties {
        purpose: Purpose::ApproveComputer,
        shower: trusted.computer().signing_public().0.to_vec(),
        typer: newcomer.computer().signing_public().0.to_vec(),
    };
    let (shower, first) = Shower::start(parties.clone(), code_shown);
    let (typer, answer) =
        Typer::answer(parties, code_typed, &first).map_err(|e| format!("{e:?}"))?;
    let (mut at_trusted, confirmation) = shower.finish(&answer).map_err(|e| format!("{e:?}"))?;
    let mut at_new = typer.confirm(&confirmation).map_err(|e| format!("{e:?}"))?;
    let bundle = trusted
        .approve("Kitchen laptop", "acct-1", &newcomer.entry("", ""))
        .map_err(|e| format!("{e:?}"))?;
    let sealed = at_trusted.seal(&serde_json::to_vec(&bundle).unwrap(), b"approval bundle");
    let opened = at_new
        .open(&sealed, b"approval bundle")
        .map_err(|e| format!("{e:?}"))?;
    Ok(serde_json::from_slice(&opened).unwrap())
}

#[tokio::test]
async fn a_second_computer_reads_locations_only_after_a_trusted_one_approves_it() {
    let mut desk = FamilyKeys::new_computer();
    let founded = desk.found_family("Desk", "acct-1");
    let (batch, setup) = sealed_by_watch(&desk);

    let dir = tempfile::tempdir().unwrap();
    let kitchen_file = KeyFile::new(dir.path(), &fresh_service(), ORIGIN, ACCOUNT);
    let mut kitchen = FamilyKeys::new_computer();
    kitchen_file.save(&kitchen).await.unwrap();
    // Signed in with a passkey only: it holds no family key.
    assert!(!kitchen.is_trusted());
    assert!(!opens(&kitchen, &batch, &setup));

    // A wrong code typed: the exchange fails on both sides, nothing is sent.
    let code = ApprovalCode::generate();
    let wrong = ApprovalCode::parse("0000000000").unwrap();
    assert!(approve_over_code(&mut desk, &kitchen, &code, &wrong).is_err());
    assert_eq!(desk.trusted_roster().unwrap().roster().version, 1);

    // The cloud "approves" on its own: a roster it signed adding the new
    // computer, with an epoch key of its own making.
    let cloud = FamilyKeyPair::generate();
    let mut computers = founded.roster.roster.computers.clone();
    computers.push(kitchen.entry("Kitchen laptop", "acct-1"));
    let (cloud_key, _) = waymark_protocol::location_sealing::LocationSecretKey::generate();
    let forged = ApprovalBundle {
        rosters: vec![
            founded.roster.clone(),
            founded.roster.roster.next(computers).sign(&cloud),
        ],
        keys: vec![EpochKeyBlob::seal(
            0,
            &cloud_key,
            &kitchen.entry("", "").sealing,
        )],
    };
    assert_eq!(
        kitchen.accept_approval(&forged),
        Err(RosterError::UnknownSigner)
    );
    // The honest chain, but one that does not list the new computer.
    let unlisted = ApprovalBundle {
        rosters: vec![founded.roster.clone()],
        keys: forged.keys.clone(),
    };
    assert_eq!(
        kitchen.accept_approval(&unlisted),
        Err(RosterError::UnknownSigner)
    );
    assert!(
        !kitchen.is_trusted(),
        "a refused bundle leaves nothing behind"
    );

    // The honest approval: the code shown on the desk, typed on the laptop.
    let bundle = approve_over_code(&mut desk, &kitchen, &code, &code).unwrap();
    kitchen.accept_approval(&bundle).unwrap();
    kitchen_file.save(&kitchen).await.unwrap();
    let kitchen = kitchen_file.load().await.unwrap().unwrap();
    assert!(kitchen.is_trusted());
    assert!(
        opens(&kitchen, &batch, &setup),
        "the approved computer reads the watch"
    );
    let roster = kitchen.trusted_roster().unwrap();
    assert_eq!(roster.roster().version, 2);
    assert_eq!(roster.roster().computers[1].name, "Kitchen laptop");
    kitchen_file.forget().await.unwrap();
}
