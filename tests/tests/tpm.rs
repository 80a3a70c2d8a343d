//! Watch keys inside a TPM (swtpm, manufactured with an EK certificate):
//! the key signs only in its TPM, and the factory certifies it only with
//! evidence that it lives in a genuine TPM.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use waymark_system_tests::swtpm::{SoftTpm, TpmMaker};
use waymark_tpm::evidence::{self, EvidenceError};
use waymark_tpm::{Tpm, TpmKey};

fn ders(pem: &str) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect()
}

fn now_ms() -> i64 {
    waymark_system_tests::now_ms()
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
    let point = evidence::verify(&open, &answer, now_ms()).unwrap();
    assert_eq!(&point, key.point());

    // A wrong secret is refused, even with a valid statement.
    let mut forged = answer.clone();
    forged.secret = waymark_protocol::signing::b64(&[7u8; 32]);
    assert!(matches!(
        evidence::verify(&open, &forged, now_ms()),
        Err(EvidenceError::WrongSecret)
    ));
}
