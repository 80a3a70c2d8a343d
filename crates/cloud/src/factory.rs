//! `waymark-cloud factory …`: plays the watch manufacturer. It keeps a
//! manufacturer CA (P-256) and turns a watch's certificate request into a
//! device certificate, like a Matter DAC or an AWS IoT device certificate.
//! The watch's private key never leaves the watch; only its CSR comes here.
//!
//! With `--require-tpm` the factory first checks that the key lives in a
//! genuine TPM (`waymark_tpm::evidence`): it trusts the TPM makers' CAs in
//! `tpm-vendor-cas.pem`, keeps each open challenge in `tpm-challenges/`
//! until it is answered once, and marks the certificate it then issues with
//! the hardware-key extension.

use std::fs;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use waymark_protocol::attestation::{AttestationAnswer, AttestationChallenge, AttestationRequest};
use waymark_protocol::device::{HARDWARE_KEY_OID, HARDWARE_KEY_VALUE};
use waymark_tpm::evidence::{self, EvidenceError, OpenChallenge};
use waymark_tpm::{Tpm, TpmError};

use crate::local_ca::write_private;

/// The TPM makers' CA certificates this factory trusts (PEM bundle).
pub const TPM_VENDOR_CAS: &str = "tpm-vendor-cas.pem";
/// Open challenges, one file each, removed when answered.
pub const TPM_CHALLENGES: &str = "tpm-challenges";

#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error("{0} already holds a manufacturer CA; pass --force to replace it")]
    Exists(String),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the certificate request is not valid: {0}")]
    BadCsr(String),
    #[error("the serial or model is not valid: {0}")]
    BadName(String),
    #[error("cannot make the certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error(
        "this factory trusts no TPM maker yet; run `waymark-cloud factory trust-tpm-vendor --ca VENDOR-CA.pem`"
    )]
    NoTpmVendor,
    #[error("{0} holds no X.509 certificate")]
    NotCertificates(String),
    #[error("not a valid {what}: {why}")]
    BadFile { what: &'static str, why: String },
    #[error("the TPM evidence is refused: {0}")]
    Evidence(#[from] EvidenceError),
    #[error(transparent)]
    Tpm(#[from] TpmError),
    #[error(
        "the certificate request is for another key than the one the TPM attested (a software key?)"
    )]
    KeyNotAttested,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FactoryError + use<> {
    let path = path.display().to_string();
    move |source| FactoryError::Io { path, source }
}

/// Creates `dir/manufacturer-ca.pem` and `dir/manufacturer-ca.key` (0600).
pub fn init(dir: &Path, force: bool) -> Result<(), FactoryError> {
    let cert_path = dir.join("manufacturer-ca.pem");
    if cert_path.exists() && !force {
        return Err(FactoryError::Exists(dir.display().to_string()));
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        "Waymark watch manufacturer CA (development)",
    );
    name.push(DnType::OrganizationName, "Waymark factory");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365 * 25);
    let cert = params.self_signed(&key)?;
    write_private(
        &dir.join("manufacturer-ca.key"),
        key.serialize_pem().as_bytes(),
    )
    .map_err(io(&dir.join("manufacturer-ca.key")))?;
    write_private(&cert_path, cert.pem().as_bytes()).map_err(io(&cert_path))?;
    Ok(())
}

/// Adds the CA certificates in `ca_pem` to the TPM makers this factory trusts.
/// Returns how many certificates were added.
pub fn trust_tpm_vendor(dir: &Path, ca_pem: &Path) -> Result<usize, FactoryError> {
    let text = fs::read(ca_pem).map_err(io(ca_pem))?;
    let count = CertificateDer::pem_slice_iter(&text)
        .map(|c| {
            c.ok()
                .filter(|c| x509_parser::parse_x509_certificate(c).is_ok())
                .ok_or_else(|| FactoryError::NotCertificates(ca_pem.display().to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?
        .len();
    if count == 0 {
        return Err(FactoryError::NotCertificates(ca_pem.display().to_string()));
    }
    let path = dir.join(TPM_VENDOR_CAS);
    let mut bundle = fs::read(&path).unwrap_or_default();
    bundle.extend_from_slice(&text);
    fs::write(&path, bundle).map_err(io(&path))?;
    Ok(count)
}

/// Checks a TPM watch's attestation request and returns the challenge its
/// TPM must answer. `tcti` names the factory station's own TPM, which
/// computes TPM2_MakeCredential (it uses no secret of that TPM).
pub fn challenge(
    dir: &Path,
    request_json: &[u8],
    tcti: &str,
    now_ms: i64,
) -> Result<AttestationChallenge, FactoryError> {
    let request: AttestationRequest =
        serde_json::from_slice(request_json).map_err(|e| FactoryError::BadFile {
            what: "attestation request",
            why: e.to_string(),
        })?;
    let cas_path = dir.join(TPM_VENDOR_CAS);
    let cas: Vec<Vec<u8>> = match fs::read(&cas_path) {
        Ok(pem) => CertificateDer::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect(),
        Err(_) => vec![],
    };
    if cas.is_empty() {
        return Err(FactoryError::NoTpmVendor);
    }
    let mut tpm = Tpm::open(tcti)?;
    let (challenge, open) = evidence::challenge(&request, &cas, now_ms, &mut tpm)?;
    let open_dir = dir.join(TPM_CHALLENGES);
    fs::create_dir_all(&open_dir).map_err(io(&open_dir))?;
    let path = open_dir.join(format!("{}.json", open.id));
    let json = serde_json::to_vec(&open).map_err(|e| FactoryError::BadFile {
        what: "challenge",
        why: e.to_string(),
    })?;
    write_private(&path, &json).map_err(io(&path))?;
    Ok(challenge)
}

/// Signs a TPM watch's CSR after checking its TPM's answer to an open
/// challenge. The challenge is used up whether or not the answer holds, so
/// no answer can be tried twice. The certificate says the key is TPM-resident.
pub fn sign_tpm_attested(
    dir: &Path,
    csr_pem: &str,
    serial: &str,
    model: &str,
    answer: &AttestationAnswer,
    now_ms: i64,
) -> Result<String, FactoryError> {
    let open = take_challenge(dir, &answer.challenge)?;
    let point = evidence::verify(&open, answer, now_ms)?;
    issue(dir, csr_pem, serial, model, Some(&point))
}

/// Reads and removes an open challenge: of two takers, only one removes it.
fn take_challenge(dir: &Path, id: &str) -> Result<OpenChallenge, FactoryError> {
    // Ids are base64url; anything else cannot name a file we wrote.
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(EvidenceError::UnknownChallenge.into());
    }
    let path = dir.join(TPM_CHALLENGES).join(format!("{id}.json"));
    let bytes = fs::read(&path).map_err(|_| EvidenceError::UnknownChallenge)?;
    fs::remove_file(&path).map_err(|_| EvidenceError::UnknownChallenge)?;
    serde_json::from_slice(&bytes).map_err(|e| FactoryError::BadFile {
        what: "open challenge",
        why: e.to_string(),
    })
}

/// Signs a watch's CSR (PEM) as a device certificate (PEM) for `serial` and `model`.
pub fn sign(dir: &Path, csr_pem: &str, serial: &str, model: &str) -> Result<String, FactoryError> {
    issue(dir, csr_pem, serial, model, None)
}

/// `attested`: the TPM-attested public point the CSR must carry; the
/// certificate then gets the hardware-key extension.
fn issue(
    dir: &Path,
    csr_pem: &str,
    serial: &str,
    model: &str,
    attested: Option<&[u8; 65]>,
) -> Result<String, FactoryError> {
    for (what, v) in [("serial", serial), ("model", model)] {
        if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(FactoryError::BadName(format!(
                "{what} must be 1–64 printable ASCII characters"
            )));
        }
    }
    let key_path = dir.join("manufacturer-ca.key");
    let cert_path = dir.join("manufacturer-ca.pem");
    let ca_key = KeyPair::from_pem(&fs::read_to_string(&key_path).map_err(io(&key_path))?)?;
    let issuer = Issuer::from_ca_cert_pem(
        &fs::read_to_string(&cert_path).map_err(io(&cert_path))?,
        ca_key,
    )?;
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| FactoryError::BadCsr(e.to_string()))?;
    if csr.public_key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
        return Err(FactoryError::BadCsr(
            "the watch key must be ECDSA P-256".into(),
        ));
    }
    if attested.is_some_and(|point| csr.public_key.der_bytes() != point.as_slice()) {
        return Err(FactoryError::KeyNotAttested);
    }
    // The factory decides what the certificate says, not the request.
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, serial);
    name.push(DnType::OrganizationalUnitName, model);
    name.push(DnType::OrganizationName, "Waymark factory");
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365 * 15);
    params.serial_number = Some(SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
    if attested.is_some() {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                HARDWARE_KEY_OID,
                yasna::construct_der(|w| w.write_utf8_string(HARDWARE_KEY_VALUE)),
            ));
    }
    csr.params = params;
    Ok(csr.signed_by(&issuer)?.pem())
}
