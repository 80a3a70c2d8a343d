//! The factory's side: believe a key lives in a genuine TPM only when
//! - the endorsement key (EK) certificate chains to a TPM maker's CA the
//!   factory trusts;
//! - the attestation key (AK) is in the TPM holding that EK: only that TPM can
//!   recover a secret sealed to the EK and bound to the AK's name
//!   (MakeCredential / ActivateCredential);
//! - the device key is in the TPM holding that AK, with attributes that keep
//!   it there: the AK's signed `TPM2_Certify` statement names it, over the
//!   factory's one-time nonce.

use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tss_esapi::abstraction::ek;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::structure_tags::AttestationType;
use tss_esapi::structures::{Attest, AttestInfo, Digest, Name, Public, PublicKeyRsa, Signature};
use tss_esapi::traits::{Marshall, UnMarshall};
use waymark_protocol::attestation::{
    AttestationAnswer, AttestationChallenge, AttestationRequest, CHALLENGE_TTL_MS,
};
use waymark_protocol::signing::{b64, unb64};

use crate::attestation::EK;
use crate::connection::refused;
use crate::templates::{check_signing_key, name_of};
use crate::{Tpm, TpmError};

/// Why the factory refused the evidence.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("the attestation is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "the TPM's endorsement key certificate does not chain to a TPM maker this factory trusts"
    )]
    UntrustedEndorsement,
    #[error("the attestation key is not a TPM attestation key: {0}")]
    NotAttestationKey(String),
    #[error("the device key is not a key that cannot leave a TPM: {0}")]
    NotTpmKey(String),
    #[error(
        "the answer is for a challenge this factory has not got open (already used, expired or never issued): a replayed attestation is refused"
    )]
    UnknownChallenge,
    #[error(
        "the TPM did not recover the factory's secret: the attestation key is not in the TPM whose endorsement key was presented"
    )]
    WrongSecret,
    #[error("the TPM's statement about the device key does not hold: {0}")]
    BadStatement(&'static str),
    #[error(transparent)]
    Tpm(#[from] TpmError),
}

/// What the factory keeps about an open challenge until it is answered.
/// The secret itself is not kept, only its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenChallenge {
    pub id: String,
    pub secret_sha256: String,
    pub nonce: String,
    pub attestation_key: String,
    pub device_key: String,
    pub issued_at: i64,
}

/// The TCG EK certificate purpose, `tcg-kp-EKCertificate` (2.23.133.8.1), DER content.
const EK_CERTIFICATE_PURPOSE: &[u8] = &[0x67, 0x81, 0x05, 0x08, 0x01];

/// Checks the request and seals a fresh secret to its EK, bound to its AK.
/// `tpm` is the factory station's own TPM: TPM2_MakeCredential uses no
/// secret of it, only its implementation of the TCG scheme.
pub fn challenge(
    request: &AttestationRequest,
    vendor_cas: &[Vec<u8>],
    now_ms: i64,
    tpm: &mut Tpm,
) -> Result<(AttestationChallenge, OpenChallenge), EvidenceError> {
    let ek_der = unb64(&request.ek_certificate)
        .ok_or(EvidenceError::Malformed("ek_certificate is not base64url"))?;
    trusted_endorsement(&ek_der, vendor_cas, now_ms)?;
    let ak = public_area(&request.attestation_key)?;
    check_signing_key(&ak, true).map_err(EvidenceError::NotAttestationKey)?;
    let device = public_area(&request.device_key)?;
    check_signing_key(&device, false).map_err(EvidenceError::NotTpmKey)?;

    let ek_public = endorsement_public(&ek_der)?;
    let secret: [u8; 32] = rand::random();
    let nonce: [u8; 32] = rand::random();
    let ak_name = Name::try_from(name_of(&ak)?).map_err(|_| EvidenceError::Malformed("AK name"))?;
    let loaded = tpm
        .ctx
        .load_external_public(ek_public, Hierarchy::Null)
        .map_err(refused("load the endorsement key for MakeCredential"))?;
    let made = tpm.ctx.make_credential(
        loaded,
        Digest::try_from(secret.to_vec()).map_err(|_| EvidenceError::Malformed("secret"))?,
        ak_name,
    );
    let _ = tpm.ctx.flush_context(loaded.into());
    let (blob, encrypted) = made.map_err(refused("make the credential"))?;
    let id = b64(&rand::random::<[u8; 16]>());
    Ok((
        AttestationChallenge {
            id: id.clone(),
            credential_blob: b64(blob.value()),
            encrypted_secret: b64(encrypted.value()),
            nonce: b64(&nonce),
        },
        OpenChallenge {
            id,
            secret_sha256: b64(&Sha256::digest(secret)),
            nonce: b64(&nonce),
            attestation_key: request.attestation_key.clone(),
            device_key: request.device_key.clone(),
            issued_at: now_ms,
        },
    ))
}

/// Checks the answer to `open` (which the caller has already removed from
/// its open challenges, so no answer is accepted twice). Returns the device
/// key's SEC1 point, which the certificate request must carry.
pub fn verify(
    open: &OpenChallenge,
    answer: &AttestationAnswer,
    now_ms: i64,
) -> Result<[u8; 65], EvidenceError> {
    if answer.challenge != open.id || now_ms - open.issued_at > CHALLENGE_TTL_MS {
        return Err(EvidenceError::UnknownChallenge);
    }
    let secret = unb64(&answer.secret).ok_or(EvidenceError::Malformed("secret"))?;
    if b64(&Sha256::digest(&secret)) != open.secret_sha256 {
        return Err(EvidenceError::WrongSecret);
    }
    let ak = public_area(&open.attestation_key)?;
    let ak_point = check_signing_key(&ak, true).map_err(EvidenceError::NotAttestationKey)?;
    let device = public_area(&open.device_key)?;
    let device_point = check_signing_key(&device, false).map_err(EvidenceError::NotTpmKey)?;

    let info = unb64(&answer.certify_info).ok_or(EvidenceError::Malformed("certify_info"))?;
    let signature = unb64(&answer.signature)
        .and_then(|s| Signature::unmarshall(&s).ok())
        .ok_or(EvidenceError::Malformed("signature"))?;
    let Signature::EcDsa(sig) = signature else {
        return Err(EvidenceError::BadStatement("not an ECDSA signature"));
    };
    if sig.hashing_algorithm() != HashingAlgorithm::Sha256 {
        return Err(EvidenceError::BadStatement("not signed over SHA-256"));
    }
    let (r, s) = (sig.signature_r().value(), sig.signature_s().value());
    if r.len() > 32 || s.len() > 32 {
        return Err(EvidenceError::BadStatement("the signature is not P-256"));
    }
    let mut fixed = [0u8; 64];
    fixed[32 - r.len()..32].copy_from_slice(r);
    fixed[64 - s.len()..].copy_from_slice(s);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, ak_point)
        .verify(&info, &fixed)
        .map_err(|_| {
            EvidenceError::BadStatement("the attestation key's signature does not verify")
        })?;
    // Unmarshalling checks TPM_GENERATED_VALUE: with a restricted AK, only
    // the TPM itself can have produced a structure that starts with it.
    let attest = Attest::unmarshall(&info)
        .map_err(|_| EvidenceError::BadStatement("not a TPM-generated statement"))?;
    if attest.attestation_type() != AttestationType::Certify {
        return Err(EvidenceError::BadStatement("not a TPM2_Certify statement"));
    }
    if Some(attest.extra_data().value()) != unb64(&open.nonce).as_deref() {
        return Err(EvidenceError::BadStatement(
            "not made over this challenge's nonce",
        ));
    }
    let AttestInfo::Certify { info } = attest.attested() else {
        return Err(EvidenceError::BadStatement("not a TPM2_Certify statement"));
    };
    if info.name().value() != name_of(&device)?.as_slice() {
        return Err(EvidenceError::BadStatement("it certifies another key"));
    }
    Ok(device_point)
}

fn public_area(b64_area: &str) -> Result<Public, EvidenceError> {
    let bytes =
        unb64(b64_area).ok_or(EvidenceError::Malformed("a public area is not base64url"))?;
    let public =
        Public::unmarshall(&bytes).map_err(|_| EvidenceError::Malformed("a public area"))?;
    // Names are over the exact bytes; refuse any encoding we would not reproduce.
    if public.marshall().ok().as_deref() != Some(bytes.as_slice()) {
        return Err(EvidenceError::Malformed(
            "a public area has trailing or non-canonical bytes",
        ));
    }
    Ok(public)
}

/// The EK certificate chains (directly or through the bundle) to a vendor CA.
fn trusted_endorsement(
    ek_der: &[u8],
    vendor_cas: &[Vec<u8>],
    now_ms: i64,
) -> Result<(), EvidenceError> {
    let cert = CertificateDer::from(ek_der);
    let ee = webpki::EndEntityCert::try_from(&cert)
        .map_err(|_| EvidenceError::Malformed("the EK certificate is not X.509"))?;
    let cas: Vec<CertificateDer<'_>> = vendor_cas
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &cas,
        UnixTime::since_unix_epoch(std::time::Duration::from_millis(now_ms.max(0) as u64)),
        webpki::KeyUsage::required_if_present(EK_CERTIFICATE_PURPOSE),
        None,
        None,
    )
    .map_err(|_| EvidenceError::UntrustedEndorsement)?;
    Ok(())
}

/// The EK's public area: the TCG default template with the certificate's modulus.
fn endorsement_public(ek_der: &[u8]) -> Result<Public, EvidenceError> {
    use x509_parser::public_key::PublicKey;
    let (_, cert) = x509_parser::parse_x509_certificate(ek_der)
        .map_err(|_| EvidenceError::Malformed("the EK certificate is not X.509"))?;
    let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
        return Err(EvidenceError::Malformed(
            "the EK certificate is not for an RSA key",
        ));
    };
    let modulus = rsa.modulus.strip_prefix(&[0]).unwrap_or(rsa.modulus);
    if modulus.len() != 256 || rsa.try_exponent().ok() != Some(65537) {
        return Err(EvidenceError::Malformed(
            "the EK is not RSA 2048 with exponent 65537",
        ));
    }
    let template = ek::create_ek_public_from_default_template_2(EK, None)
        .map_err(refused("build the EK template"))?;
    let Public::Rsa {
        object_attributes,
        name_hashing_algorithm,
        auth_policy,
        parameters,
        ..
    } = template
    else {
        return Err(EvidenceError::Malformed("the EK template is not RSA"));
    };
    Ok(Public::Rsa {
        object_attributes,
        name_hashing_algorithm,
        auth_policy,
        parameters,
        unique: PublicKeyRsa::try_from(modulus.to_vec())
            .map_err(|_| EvidenceError::Malformed("the EK modulus"))?,
    })
}
