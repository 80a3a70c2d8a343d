//! Device identity: a watch is its P-256 key, vouched for by a certificate
//! from a manufacturer CA (like a Matter DAC). Its id is derived from its
//! public key, so it cannot be chosen, and is checked against every message.

use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, KeyUsage};

/// Why a device certificate or signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// Not a DER X.509 certificate we can read.
    MalformedCertificate,
    /// Does not chain to a manufacturer CA the cloud trusts (or has expired).
    UntrustedCertificate,
    /// The message names another device than the certificate.
    WrongDevice,
    /// The signature does not verify with the device's key.
    BadSignature,
}

/// A device id: the first 128 bits of SHA-256 over the key's
/// SubjectPublicKeyInfo, hex. Opaque and unguessable, never a credential.
pub fn device_id_from_spki(spki_der: &[u8]) -> String {
    crate::ids::hex(&Sha256::digest(spki_der)[..16])
}

/// The certificate extension by which a factory says "this key was made in,
/// and cannot leave, a genuine TPM" (it saw the TPM's evidence first).
/// Waymark's development arc; a production factory uses its own registered
/// enterprise number. Its value is the DER UTF8String [`HARDWARE_KEY_VALUE`].
pub const HARDWARE_KEY_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 61212, 1, 1];
pub const HARDWARE_KEY_VALUE: &str = "tpm2";

/// Whether the certificate carries the factory's hardware-key extension.
/// Means something only for a certificate already verified to chain to a
/// trusted manufacturer.
pub fn hardware_key(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    cert.extensions().iter().any(|ext| {
        ext.oid
            .iter()
            .is_some_and(|arcs| arcs.eq(HARDWARE_KEY_OID.iter().copied()))
    })
}

/// What the cloud learns from a verified device certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    pub device_id: String,
    /// The manufacturer's serial (subject CN). Informational only.
    pub serial: String,
    /// The model (subject OU).
    pub model: String,
    /// The factory certified the key as TPM-resident ([`HARDWARE_KEY_OID`]).
    pub hardware_key: bool,
    pub der: Vec<u8>,
}

/// Verifies that `der` is a client-auth certificate chaining to one of the
/// manufacturer CAs (`anchors`, DER) at time `now_secs`.
pub fn verify_device_certificate(
    der: &[u8],
    anchors: &[Vec<u8>],
    now_secs: u64,
) -> Result<DeviceCertificate, DeviceError> {
    let cert_der = CertificateDer::from(der);
    let ee = EndEntityCert::try_from(&cert_der).map_err(|_| DeviceError::MalformedCertificate)?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|a| CertificateDer::from(a.as_slice()))
        .collect();
    let trust: Vec<_> = anchor_ders
        .iter()
        .filter_map(|a| webpki::anchor_from_trusted_cert(a).ok())
        .collect();
    ee.verify_for_usage(
        &[webpki::ring::ECDSA_P256_SHA256],
        &trust,
        &[],
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now_secs)),
        KeyUsage::client_auth(),
        None,
        None,
    )
    .map_err(|_| DeviceError::UntrustedCertificate)?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|_| DeviceError::MalformedCertificate)?;
    let subject = parsed.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(DeviceCertificate {
        device_id: device_id_from_spki(parsed.public_key().raw),
        serial: first(&mut subject.iter_common_name()),
        model: first(&mut subject.iter_organizational_unit()),
        hardware_key: hardware_key(der),
        der: der.to_vec(),
    })
}

/// Verifies an ECDSA P-256/SHA-256 signature by the certificate's key.
/// The certificate itself must already have been verified.
pub fn verify_signature(
    cert_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), DeviceError> {
    let cert_der = CertificateDer::from(cert_der);
    let ee = EndEntityCert::try_from(&cert_der).map_err(|_| DeviceError::MalformedCertificate)?;
    ee.verify_signature(webpki::ring::ECDSA_P256_SHA256, message, signature)
        .map_err(|_| DeviceError::BadSignature)
}

/// Verifies a base64url signature over `message` (the form every signed
/// watch message carries).
pub fn verify_b64_signature(
    cert_der: &[u8],
    message: &[u8],
    signature_b64: &str,
) -> Result<(), DeviceError> {
    let sig = crate::signing::unb64(signature_b64).ok_or(DeviceError::BadSignature)?;
    verify_signature(cert_der, message, &sig)
}
