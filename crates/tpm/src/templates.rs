//! The shapes of the TPM objects Waymark makes, and the checks a verifier
//! applies to a public area it was sent: one place, so what the watch makes
//! and what the factory accepts cannot drift apart.

use sha2::{Digest as _, Sha256};
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::structures::{
    EccPoint, EccScheme, HashScheme, KeyDerivationFunctionScheme, Public, PublicBuilder,
    PublicEccParametersBuilder, SymmetricDefinitionObject,
};
use tss_esapi::traits::Marshall;

use crate::TpmError;

/// Attributes of a key made inside this TPM that can never leave it, used
/// with an empty password (the TPM, not a secret, is what protects it).
fn bound_to_tpm() -> ObjectAttributesBuilder {
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
}

/// The storage key (SRK) the device key lives under: an ECC P-256 primary in
/// the owner hierarchy, derived again from the TPM's seed at every start, so
/// nothing of it is stored.
pub(crate) fn storage_key() -> Result<Public, TpmError> {
    let attributes = bound_to_tpm()
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .map_err(invalid)?;
    p256(
        attributes,
        PublicEccParametersBuilder::new_restricted_decryption_key(
            SymmetricDefinitionObject::AES_128_CFB,
            EccCurve::NistP256,
        ),
    )
}

/// The device key: P-256 ECDSA/SHA-256, sign-only, made inside the TPM
/// (`sensitiveDataOrigin`) and bound to it and to its parent (`fixedTPM`,
/// `fixedParent`), so the TPM will never export it.
pub(crate) fn device_key() -> Result<Public, TpmError> {
    let attributes = bound_to_tpm()
        .with_sign_encrypt(true)
        .build()
        .map_err(invalid)?;
    p256(
        attributes,
        PublicEccParametersBuilder::new()
            .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
            .with_curve(EccCurve::NistP256)
            .with_is_signing_key(true)
            .with_is_decryption_key(false)
            .with_restricted(false)
            .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
            .with_symmetric(SymmetricDefinitionObject::Null),
    )
}

/// A P-256 public area template with SHA-256 names: the TPM fills in the point.
fn p256(
    attributes: tss_esapi::attributes::ObjectAttributes,
    parameters: PublicEccParametersBuilder,
) -> Result<Public, TpmError> {
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(parameters.build().map_err(invalid)?)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .map_err(invalid)
}

/// What a signing key's public area must say for the factory to believe
/// the key cannot leave the TPM. `restricted`: an attestation key (signs
/// only what the TPM itself produced); otherwise a general signing key.
pub(crate) fn check_signing_key(public: &Public, restricted: bool) -> Result<[u8; 65], String> {
    let Public::Ecc {
        object_attributes: a,
        name_hashing_algorithm,
        parameters,
        unique,
        ..
    } = public
    else {
        return Err("it is not an ECC key".into());
    };
    let rules = [
        (
            a.fixed_tpm(),
            "fixedTPM is not set: the key could be duplicated to another TPM",
        ),
        (
            a.fixed_parent(),
            "fixedParent is not set: the key could be moved",
        ),
        (
            a.sensitive_data_origin(),
            "sensitiveDataOrigin is not set: the key was imported, so a copy may exist outside",
        ),
        (a.sign_encrypt(), "it is not a signing key"),
        (!a.decrypt(), "it is also a decryption key"),
        (
            a.restricted() == restricted,
            if restricted {
                "an attestation key must be restricted (sign only what the TPM made)"
            } else {
                "a device key must not be restricted"
            },
        ),
        (
            *name_hashing_algorithm == HashingAlgorithm::Sha256,
            "its name is not SHA-256",
        ),
        (
            parameters.ecc_curve() == EccCurve::NistP256,
            "it is not P-256",
        ),
        (
            parameters.ecc_scheme() == EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
            "its scheme is not ECDSA with SHA-256",
        ),
    ];
    if let Some((_, why)) = rules.iter().find(|(ok, _)| !ok) {
        return Err((*why).into());
    }
    sec1_point(unique).ok_or_else(|| "its public point is not 32-byte coordinates".into())
}

/// The uncompressed SEC1 encoding `04 || x || y` of a P-256 point.
pub(crate) fn sec1_point(point: &EccPoint) -> Option<[u8; 65]> {
    let (x, y) = (point.x().value(), point.y().value());
    if x.len() > 32 || y.len() > 32 {
        return None;
    }
    let mut out = [0u8; 65];
    out[0] = 4;
    out[1 + 32 - x.len()..33].copy_from_slice(x);
    out[33 + 32 - y.len()..].copy_from_slice(y);
    Some(out)
}

/// The object's TPM name: its name algorithm (SHA-256, `000b`) followed by
/// the digest of its marshalled public area (TPM 2.0 Part 1, 16).
pub(crate) fn name_of(public: &Public) -> Result<Vec<u8>, TpmError> {
    let area = public.marshall().map_err(invalid)?;
    let mut name = vec![0x00, 0x0b];
    name.extend_from_slice(&Sha256::digest(&area));
    Ok(name)
}

fn invalid(e: tss_esapi::Error) -> TpmError {
    TpmError::Invalid(format!("cannot build a TPM structure: {e}"))
}
