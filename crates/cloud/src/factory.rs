//! `waymark-cloud factory …`: plays the watch manufacturer. It keeps a
//! manufacturer CA (P-256) and turns a watch's certificate request into a
//! device certificate, like a Matter DAC or an AWS IoT device certificate.
//! The watch's private key never leaves the watch; only its CSR comes here.

use std::fs;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::local_ca::write_private;

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

/// Signs a watch's CSR (PEM) as a device certificate (PEM) for `serial` and `model`.
pub fn sign(dir: &Path, csr_pem: &str, serial: &str, model: &str) -> Result<String, FactoryError> {
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
    csr.params = params;
    Ok(csr.signed_by(&issuer)?.pem())
}
