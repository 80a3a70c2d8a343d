//! Watch keys inside a TPM (swtpm, manufactured with an EK certificate from
//! a local "TPM maker" CA): the key signs only in its own TPM, the factory
//! certifies it only with evidence that it lives in a genuine TPM, and a
//! cloud can be told to accept only such watches.

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use waymark_cloud::factory::{self, FactoryError};
use waymark_protocol::attestation::{AttestationAnswer, AttestationChallenge};
use waymark_system_tests::swtpm::{SoftTpm, TpmMaker};
use waymark_system_tests::*;
use waymark_tpm::evidence::{self, EvidenceError};
use waymark_tpm::{Tpm, TpmKey};
use waymark_watch::keystore::KeyStoreChoice;
use waymark_watch::provisioning::{self, Watch};
use waymark_watch::reporting::Drain;

fn ders(pem: &str) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect()
}

/// A certificate request signed by `key` (in a TPM or not).
fn csr_for(key: &impl rcgen::SigningKey) -> String {
    rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(key)
        .unwrap()
        .pem()
        .unwrap()
}

/// Tells `factory` to trust `maker`'s TPMs.
fn trust(factory: &Path, maker: &TpmMaker) {
    let pem = factory.join("maker.pem");
    std::fs::write(&pem, maker.ca_bundle_pem().unwrap()).unwrap();
    factory::trust_tpm_vendor(factory, &pem).unwrap();
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("the program runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_tpm_key_signs_inside_its_tpm_and_its_evidence_verifies() {
    let maker = TpmMaker::new().unwrap();
    let watch_tpm = SoftTpm::manufacture(&maker).unwrap();
    let station = SoftTpm::manufacture(&maker).unwrap();
    let (key, _blob) = TpmKey::create(&watch_tpm.tcti()).unwrap();

    let message = b"a batch";
    let signature = key.sign(message).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key.point())
        .verify(message, &signature)
        .expect("the TPM's signature verifies with the key's public point");

    let (request, ak) = key.attestation_request().unwrap();
    let mut factory_tpm = Tpm::open(&station.tcti()).unwrap();
    let cas = ders(&maker.ca_bundle_pem().unwrap());
    let (challenge, open) =
        evidence::challenge(&request, &cas, now_ms(), &mut factory_tpm).unwrap();
    let answer = key.answer(&ak, &challenge).unwrap();
    assert_eq!(
        &evidence::verify(&open, &answer, now_ms()).unwrap(),
        key.point()
    );

    // The secret is what proves the EK: a statement without it is refused.
    let mut forged = answer.clone();
    forged.secret = waymark_protocol::signing::b64(&[7u8; 32]);
    assert!(matches!(
        evidence::verify(&open, &forged, now_ms()),
        Err(EvidenceError::WrongSecret)
    ));
    // A challenge answered too late is closed.
    assert!(matches!(
        evidence::verify(
            &open,
            &answer,
            now_ms() + waymark_protocol::attestation::CHALLENGE_TTL_MS + 1
        ),
        Err(EvidenceError::UnknownChallenge)
    ));
}

/// The production line with the real programs: provision in the TPM,
/// challenge, attest, sign with `--require-tpm`, install, and `info`.
#[test]
fn the_production_line_runs_with_the_real_commands() {
    let maker = TpmMaker::new().unwrap();
    let tpm = SoftTpm::manufacture(&maker).unwrap();
    let station = SoftTpm::manufacture(&maker).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (w, f) = (tmp.path().join("watch"), tmp.path().join("factory"));
    let ca = tmp.path().join("cloud-ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let watch = || Command::new(watch_binary());
    let cloud = || Command::new(binary("waymark-cloud"));

    let (ok, out, err) = run(watch()
        .args([
            "provision",
            "--keystore",
            "tpm",
            "--tcti",
            &tpm.tcti(),
            "--dir",
        ])
        .arg(&w)
        .arg("--cloud-ca")
        .arg(&ca));
    assert!(ok, "{err}");
    assert!(out.contains("TPM 2.0"), "{out}");
    assert!(
        !w.join("device.key").exists(),
        "no key file: the key is in the TPM"
    );
    assert!(w.join("device.tpmkey").exists());

    assert!(run(cloud().args(["factory", "init", "--dir"]).arg(&f)).0);
    // A factory that trusts no TPM maker says what to do.
    let request = w.join(provisioning::ATTESTATION_REQUEST_FILE);
    let challenge = tmp.path().join("challenge.json");
    let challenge_cmd = |cmd: &mut Command| {
        run(cmd
            .args(["factory", "challenge", "--tcti", &station.tcti(), "--dir"])
            .arg(&f)
            .arg("--request")
            .arg(&request)
            .arg("--out")
            .arg(&challenge))
    };
    let (ok, _, err) = challenge_cmd(&mut cloud());
    assert!(!ok);
    assert!(err.contains("trust-tpm-vendor"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let maker_pem = tmp.path().join("maker.pem");
    std::fs::write(&maker_pem, maker.ca_bundle_pem().unwrap()).unwrap();
    assert!(
        run(cloud()
            .args(["factory", "trust-tpm-vendor", "--dir"])
            .arg(&f)
            .arg("--ca")
            .arg(&maker_pem))
        .0
    );
    let (ok, _, err) = challenge_cmd(&mut cloud());
    assert!(ok, "{err}");

    let answer = tmp.path().join("answer.json");
    let attest = |dir: &Path, out: &Path| {
        run(watch()
            .args(["attest", "--dir"])
            .arg(dir)
            .arg("--challenge")
            .arg(&challenge)
            .arg("--out")
            .arg(out))
    };
    let (ok, _, err) = attest(&w, &answer);
    assert!(ok, "{err}");

    let cert = tmp.path().join("cert.pem");
    let sign = |cmd: &mut Command| {
        run(cmd
            .args([
                "factory",
                "sign",
                "--require-tpm",
                "--serial",
                "WM-1",
                "--model",
                "Kids 1",
                "--dir",
            ])
            .arg(&f)
            .arg("--csr")
            .arg(w.join("device.csr"))
            .arg("--attestation")
            .arg(&answer)
            .arg("--out")
            .arg(&cert))
    };
    let (ok, _, err) = sign(&mut cloud());
    assert!(ok, "{err}");
    // The same answer again is a replay.
    std::fs::remove_file(&cert).unwrap();
    let (ok, _, err) = sign(&mut cloud());
    assert!(!ok && err.contains("replayed"), "{err}");
    assert!(!cert.exists());
    // --require-tpm without evidence is refused by the command line itself.
    let (ok, _, _) = run(cloud()
        .args([
            "factory",
            "sign",
            "--require-tpm",
            "--serial",
            "S",
            "--model",
            "M",
            "--dir",
        ])
        .arg(&f)
        .arg("--csr")
        .arg(w.join("device.csr")));
    assert!(!ok);

    // Sign once more with a fresh challenge, then install and look.
    let (ok, _, err) = challenge_cmd(&mut cloud());
    assert!(ok, "{err}");
    let (ok, _, err) = attest(&w, &answer);
    assert!(ok, "{err}");
    let (ok, _, err) = sign(&mut cloud());
    assert!(ok, "{err}");
    let (ok, _, err) = run(watch()
        .args(["install-cert", "--dir"])
        .arg(&w)
        .arg("--cert")
        .arg(&cert));
    assert!(ok, "{err}");
    let (ok, info, err) = run(watch().args(["info", "--dir"]).arg(&w));
    assert!(ok, "{err}");
    assert!(info.contains("TPM 2.0 at swtpm:"), "{info}");
    assert!(info.contains("hardware key"), "{info}");
    let id = Watch::open(&w).unwrap().device_id;
    assert!(info.contains(&id), "{info}");

    // A file-key watch has nothing a TPM could attest, and says so in one line.
    let file_watch = tmp.path().join("file-watch");
    assert!(
        run(watch()
            .args(["provision", "--dir"])
            .arg(&file_watch)
            .arg("--cloud-ca")
            .arg(&ca))
        .0
    );
    let (ok, _, err) = attest(&file_watch, &tmp.path().join("x.json"));
    assert!(!ok && err.contains("not a TPM"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let (_, info, _) = run(watch().args(["info", "--dir"]).arg(&file_watch));
    assert!(info.contains("file (device.key"), "{info}");
}

#[test]
fn a_copied_watch_directory_cannot_sign_without_its_tpm() {
    let maker = TpmMaker::new().unwrap();
    let mut tpm = SoftTpm::manufacture(&maker).unwrap();
    let other = SoftTpm::manufacture(&maker).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("watch");
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, "").unwrap();
    provisioning::provision(
        &w,
        "https://localhost:8443",
        &ca,
        &KeyStoreChoice::Tpm { tcti: tpm.tcti() },
    )
    .unwrap();

    // The copy, pointed at another TPM: its blob does not load there.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(&w).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let settings = copy.join(provisioning::SETTINGS_FILE);
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, text.replace(&tpm.tcti(), &other.tcti())).unwrap();
    let choice = KeyStoreChoice::Tpm { tcti: other.tcti() };
    let err = choice
        .open(&copy)
        .err()
        .expect("another TPM cannot load the key");
    let why = format!("{err:#}");
    assert!(
        why.contains("cannot load this watch's key") && why.contains("another TPM"),
        "{why}"
    );
    // `info` through the program still shows what it can, and why the key is unusable.
    let (ok, info, err) = run(Command::new(watch_binary())
        .args(["info", "--dir"])
        .arg(&copy));
    assert!(ok, "{err}");
    assert!(info.contains("cannot load this watch's key"), "{info}");
    // Any command that must sign fails with the cause in one line.
    let (ok, _, err) = run(Command::new(watch_binary())
        .args(["pair", "--no-wait", "--dir"])
        .arg(&copy));
    assert!(!ok);
    assert!(err.contains("cannot load this watch's key"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // The original still signs in its own TPM.
    let original = KeyStoreChoice::Tpm { tcti: tpm.tcti() }.open(&w).unwrap();
    assert!(original.sign(b"x").is_ok());
    drop(original);

    // Revocation's wipe takes the TPM blobs: the key can never be loaded again.
    waymark_watch::revocation::wipe(&copy).unwrap();
    assert!(!copy.join("device.tpmkey").exists() && !copy.join("attestation-key.tpmkey").exists());
    let gone = format!(
        "{:#}",
        KeyStoreChoice::Tpm { tcti: tpm.tcti() }
            .open(&copy)
            .err()
            .unwrap()
    );
    assert!(gone.contains("no TPM key blob"), "{gone}");

    // With its TPM gone, the watch cannot sign either, and says why.
    tpm.stop();
    let err = KeyStoreChoice::Tpm { tcti: tpm.tcti() }
        .open(&w)
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("cannot reach the TPM"),
        "{err:#}"
    );
}

#[test]
fn the_factory_refuses_evidence_that_does_not_hold() {
    let maker = TpmMaker::new().unwrap();
    let stranger = TpmMaker::new().unwrap();
    let tpm = SoftTpm::manufacture(&maker).unwrap();
    let second = SoftTpm::manufacture(&maker).unwrap();
    let untrusted = SoftTpm::manufacture(&stranger).unwrap();
    let station = SoftTpm::manufacture(&maker).unwrap();
    let f = tempfile::tempdir().unwrap();
    factory::init(f.path(), false).unwrap();
    trust(f.path(), &maker);
    let challenge_for = |req: &waymark_protocol::attestation::AttestationRequest| {
        factory::challenge(
            f.path(),
            &serde_json::to_vec(req).unwrap(),
            &station.tcti(),
            now_ms(),
        )
    };

    let (key, ak) = TpmKey::create(&tpm.tcti()).unwrap();
    let csr = csr_for(&key);
    let (request, ak_blob) = key.attestation_request().unwrap();
    let _ = ak;

    // A certificate request for a software key, with a genuine TPM's answer.
    let software = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let software_csr = csr_for(&software);
    let answer = key
        .answer(&ak_blob, &challenge_for(&request).unwrap())
        .unwrap();
    assert!(matches!(
        factory::sign_tpm_attested(f.path(), &software_csr, "S", "M", &answer, now_ms()),
        Err(FactoryError::KeyNotAttested)
    ));
    // A public area that is not a plain TPM signing key (here: the AK's) is refused up front.
    let mut not_device = request.clone();
    not_device.device_key = request.attestation_key.clone();
    assert!(matches!(
        challenge_for(&not_device),
        Err(FactoryError::Evidence(EvidenceError::NotTpmKey(_)))
    ));

    // A TPM whose EK certificate comes from a maker the factory does not trust.
    let (foreign, _) = TpmKey::create(&untrusted.tcti()).unwrap();
    let (foreign_request, _) = foreign.attestation_request().unwrap();
    assert!(matches!(
        challenge_for(&foreign_request),
        Err(FactoryError::Evidence(EvidenceError::UntrustedEndorsement))
    ));

    // Keys in one TPM presented with another (trusted) TPM's EK certificate:
    // only the TPM holding that EK can open the challenge.
    let (elsewhere, _) = TpmKey::create(&second.tcti()).unwrap();
    let (second_request, second_ak) = elsewhere.attestation_request().unwrap();
    let mut borrowed = second_request.clone();
    borrowed.ek_certificate = request.ek_certificate.clone();
    let challenge = challenge_for(&borrowed).unwrap();
    let err = elsewhere
        .answer(&second_ak, &challenge)
        .expect_err("the other TPM cannot open it");
    assert!(
        err.to_string().contains("another TPM's endorsement key"),
        "{err}"
    );
    // Its best forgery: its own statement over the nonce from a challenge it
    // could open, with a guessed secret.
    let own = elsewhere
        .answer(&second_ak, &challenge_for(&second_request).unwrap())
        .unwrap();
    let forged = AttestationAnswer {
        challenge: challenge.id.clone(),
        secret: waymark_protocol::signing::b64(&[1u8; 32]),
        ..own
    };
    let second_csr = csr_for(&elsewhere);
    assert!(matches!(
        factory::sign_tpm_attested(f.path(), &second_csr, "S", "M", &forged, now_ms()),
        Err(FactoryError::Evidence(EvidenceError::WrongSecret))
    ));

    // The honest answer is certified once, with the hardware-key mark; its replay is refused.
    let honest = key
        .answer(&ak_blob, &challenge_for(&request).unwrap())
        .unwrap();
    let cert =
        factory::sign_tpm_attested(f.path(), &csr, "WM-7", "Kids 1", &honest, now_ms()).unwrap();
    let der = ders(&cert).remove(0);
    assert!(waymark_protocol::device::hardware_key(&der));
    assert!(matches!(
        factory::sign_tpm_attested(f.path(), &csr, "WM-7", "Kids 1", &honest, now_ms()),
        Err(FactoryError::Evidence(EvidenceError::UnknownChallenge))
    ));
    // A statement over another challenge's nonce does not answer this one.
    let first: AttestationChallenge = challenge_for(&request).unwrap();
    let second_challenge = challenge_for(&request).unwrap();
    let for_first = key.answer(&ak_blob, &first).unwrap();
    let for_second = key.answer(&ak_blob, &second_challenge).unwrap();
    let mixed = AttestationAnswer {
        certify_info: for_first.certify_info.clone(),
        signature: for_first.signature.clone(),
        ..for_second
    };
    assert!(matches!(
        factory::sign_tpm_attested(f.path(), &csr, "S", "M", &mixed, now_ms()),
        Err(FactoryError::Evidence(EvidenceError::BadStatement(_)))
    ));
    // A software-key certificate never carries the mark.
    let plain = factory::sign(f.path(), &software_csr, "S", "M").unwrap();
    assert!(!waymark_protocol::device::hardware_key(
        &ders(&plain).remove(0)
    ));
}

async fn watches(cloud: &TestCloud, parent: &Parent) -> Vec<Value> {
    let (status, body) = api(cloud, Method::GET, "/api/v1/watches", parent.access(), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_tpm_watch_pairs_and_reports_like_any_watch_and_a_strict_cloud_takes_only_those() {
    let maker = TpmMaker::new().unwrap();
    let tpm = SoftTpm::manufacture(&maker).unwrap();
    let station = SoftTpm::manufacture(&maker).unwrap();
    let mut cloud = TestCloud::start().await.unwrap();
    trust(&cloud.factory_dir(), &maker);
    let parent = Parent::sign_up(&cloud, "Sam").await.unwrap();

    // Before the policy: a file-key watch pairs and reports.
    let file_watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &parent, &file_watch).await.unwrap();
    file_watch.reporter.record(fix_at(now_ms(), 0)).unwrap();
    assert_eq!(file_watch.reporter.drain().await.unwrap(), Drain::Done(1));

    cloud.halt().await.unwrap();
    cloud.config.require_hardware_keys = true;
    cloud.resume().await.unwrap();

    // The TPM watch: same pairing, same signed batches, same history.
    let tpm_watch = TestWatch::with_tpm(&cloud, &tpm, &station).unwrap();
    let info = pair(&cloud, &parent, &tpm_watch).await.unwrap();
    assert_eq!(info["hardware_key"], json!(true), "{info}");
    let t0 = now_ms() - 3_000;
    for i in 0..3 {
        tpm_watch
            .reporter
            .record(fix_at(t0 + i * 1000, i as u32))
            .unwrap();
    }
    // One signed batch, made inside the TPM.
    assert_eq!(tpm_watch.reporter.drain().await.unwrap(), Drain::Done(1));
    let (status, history) = history_page(
        &cloud,
        &parent,
        &format!("/api/v1/watches/{}/history", tpm_watch.id()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(history["fixes"].as_array().unwrap().len(), 3, "{history}");
    let listed = watches(&cloud, &parent).await;
    let hw = |id: &str| listed.iter().find(|w| w["id"] == id).unwrap()["hardware_key"].clone();
    assert_eq!(hw(tpm_watch.id()), json!(true));
    assert_eq!(hw(file_watch.id()), json!(false));

    // A new file-key watch's pairing offer is refused with a clear error.
    let newcomer = TestWatch::new(&cloud).unwrap();
    let err = newcomer.show_code().await.expect_err("refused");
    let why = format!("{err:#}");
    assert!(
        why.contains("hardware_key_required") && why.contains("TPM"),
        "{why}"
    );
    // And the file-key watch paired before the switch is refused too.
    file_watch.reporter.record(fix_at(now_ms(), 1)).unwrap();
    let (status, body) = upload(&cloud, &file_watch.sign(2, vec![fix_at(now_ms(), 2)])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("hardware_key_required")),
        "{body}"
    );
    cloud.stop().await.unwrap();
}

/// A watch process killed in the middle of a signature leaves its keys
/// loaded in a TPM that has no resource manager; after a few, the TPM's
/// object memory is full. The next connection flushes what was left, so the
/// restarted watch signs. (`tpm2_createprimary` leaves its key loaded the
/// same way when it exits.)
#[test]
fn keys_a_killed_process_left_in_the_tpm_do_not_stop_the_next_signature() {
    let maker = TpmMaker::new().unwrap();
    let tpm = SoftTpm::manufacture(&maker).unwrap();
    let (key, _blob) = TpmKey::create(&tpm.tcti()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Fill the TPM's object memory with keys no process will flush.
    let mut left = 0;
    for i in 0..8 {
        let (ok, _, err) = run(Command::new("tpm2_createprimary")
            .env("TPM2TOOLS_TCTI", tpm.tcti())
            .args(["-C", "o", "-G", "ecc256", "-c"])
            .arg(dir.path().join(format!("left-{i}.ctx"))));
        if !ok {
            assert!(err.contains("0x902") || err.contains("memory"), "{err}");
            break;
        }
        left += 1;
    }
    assert!(left >= 2, "the TPM kept {left} keys loaded");
    let (ok, _, err) = run(Command::new("tpm2_createprimary")
        .env("TPM2TOOLS_TCTI", tpm.tcti())
        .args(["-C", "o", "-G", "ecc256", "-c"])
        .arg(dir.path().join("one-more.ctx")));
    assert!(!ok, "the TPM's object memory is full: {err}");

    let message = b"a batch after a restart";
    let signature = key.sign(message).expect("the left keys are flushed first");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key.point())
        .verify(message, &signature)
        .unwrap();
}
