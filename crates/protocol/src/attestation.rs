//! The messages between a watch's TPM and the factory on the production
//! line (files, not cloud requests): the watch's attestation request, the
//! factory's challenge, the watch's answer. Binary TPM structures travel
//! as base64url of their TPM 2.0 marshalled form.
//!
//! The exchange, after TCG's "credential activation":
//! 1. request: the TPM's endorsement key certificate, a new attestation key's
//!    public area, the device key's public area;
//! 2. challenge: a secret encrypted to the endorsement key and bound to the
//!    attestation key's name (`TPM2_MakeCredential`), and a fresh nonce;
//! 3. answer: the secret the TPM recovered (`TPM2_ActivateCredential`, only
//!    possible in the TPM holding both keys), and the attestation key's
//!    statement about the device key over the nonce (`TPM2_Certify`).

use serde::{Deserialize, Serialize};

/// How long a factory challenge can be answered, in milliseconds.
pub const CHALLENGE_TTL_MS: i64 = 10 * 60 * 1000;

/// What the watch sends first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationRequest {
    /// The endorsement key's X.509 certificate from the TPM maker, DER.
    pub ek_certificate: String,
    /// The attestation key's TPMT_PUBLIC.
    pub attestation_key: String,
    /// The device key's TPMT_PUBLIC.
    pub device_key: String,
}

/// The factory's challenge; answerable once, within [`CHALLENGE_TTL_MS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationChallenge {
    pub id: String,
    /// TPM2B_ID_OBJECT contents from TPM2_MakeCredential.
    pub credential_blob: String,
    /// TPM2B_ENCRYPTED_SECRET contents from TPM2_MakeCredential.
    pub encrypted_secret: String,
    /// The qualifying data the TPM must sign into its statement.
    pub nonce: String,
}

/// The watch's answer to one challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationAnswer {
    /// The challenge this answers.
    pub challenge: String,
    /// The secret TPM2_ActivateCredential recovered.
    pub secret: String,
    /// TPMS_ATTEST from TPM2_Certify over the device key.
    pub certify_info: String,
    /// TPMT_SIGNATURE by the attestation key over `certify_info`.
    pub signature: String,
}
