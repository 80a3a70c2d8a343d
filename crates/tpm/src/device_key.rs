//! The device key inside the TPM. On disk is only its blob: the public area
//! and the private part as the TPM wrapped it under its storage key, which
//! only the same TPM can load. Every signature is made inside the TPM.

use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{Digest, Private, Public, Signature, SignatureScheme};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use waymark_protocol::signing::{b64, unb64};

use crate::connection::refused;
use crate::templates;
use crate::{Tpm, TpmError};

/// A key as the TPM wrapped it: useless without the TPM that made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBlob {
    /// Marshalled TPMT_PUBLIC, base64url.
    pub public: String,
    /// TPM2B_PRIVATE contents, encrypted and integrity-protected by the parent, base64url.
    pub private: String,
}

impl KeyBlob {
    pub(crate) fn new(public: &Public, private: &Private) -> Result<Self, TpmError> {
        Ok(Self {
            public: public_b64(public)?,
            private: b64(private.value()),
        })
    }

    pub(crate) fn parts(&self) -> Result<(Public, Private), TpmError> {
        let bad = || TpmError::Invalid("the key blob is damaged".into());
        let public =
            Public::unmarshall(&unb64(&self.public).ok_or_else(bad)?).map_err(|_| bad())?;
        let private =
            Private::try_from(unb64(&self.private).ok_or_else(bad)?).map_err(|_| bad())?;
        Ok((public, private))
    }
}

/// A public area as it travels: marshalled TPMT_PUBLIC, base64url.
pub(crate) fn public_b64(public: &Public) -> Result<String, TpmError> {
    Ok(b64(&public.marshall().map_err(|e| {
        TpmError::Invalid(format!("cannot marshal a public area: {e}"))
    })?))
}

/// The device key. Each operation connects to the TPM, loads the key, uses
/// it and flushes it again: no connection is held between signatures, so
/// other programs can use the TPM in between (swtpm serves one connection at
/// a time and has no resource manager), and nothing stays loaded when a
/// program ends, however it ends.
pub struct TpmKey {
    tcti: String,
    pub(crate) public: Public,
    private: Private,
    point: [u8; 65],
}

impl TpmKey {
    /// Makes a new device key inside the TPM at `tcti`.
    pub fn create(tcti: &str) -> Result<(Self, KeyBlob), TpmError> {
        let mut tpm = Tpm::open(tcti)?;
        let template = templates::device_key()?;
        let srk = storage_key(&mut tpm)?;
        let made = tpm
            .ctx
            .execute_with_nullauth_session(|ctx| ctx.create(srk, template, None, None, None, None));
        let _ = tpm.ctx.flush_context(srk.into());
        let made = made.map_err(refused("make the device key"))?;
        let blob = KeyBlob::new(&made.out_public, &made.out_private)?;
        drop(tpm);
        Ok((Self::load(tcti, &blob)?, blob))
    }

    /// Opens the key from its blob and checks that this TPM can load it.
    /// Only the TPM that made it can: any other TPM (or this one after a
    /// clear) fails the blob's integrity check.
    pub fn load(tcti: &str, blob: &KeyBlob) -> Result<Self, TpmError> {
        let (public, private) = blob.parts()?;
        let point = templates::check_signing_key(&public, false).map_err(TpmError::Invalid)?;
        let key = Self {
            tcti: tcti.to_owned(),
            public,
            private,
            point,
        };
        key.with_loaded(|_, _| Ok(()))?;
        Ok(key)
    }

    /// Connects, loads the key, runs `f` with it, and flushes it whatever `f` did.
    pub(crate) fn with_loaded<R>(
        &self,
        f: impl FnOnce(&mut Tpm, KeyHandle) -> Result<R, TpmError>,
    ) -> Result<R, TpmError> {
        let mut tpm = Tpm::open(&self.tcti)?;
        let srk = storage_key(&mut tpm)?;
        let (private, public) = (self.private.clone(), self.public.clone());
        let loaded = tpm
            .ctx
            .execute_with_nullauth_session(|ctx| ctx.load(srk, private, public));
        let _ = tpm.ctx.flush_context(srk.into());
        let handle = loaded.map_err(|source| {
            TpmError::Invalid(format!(
                "the TPM at {} cannot load this watch's key ({source}): the key was made by \
                 another TPM, or this TPM was cleared. A key made in a TPM works only there; \
                 this watch needs its own TPM, or to be provisioned again",
                self.tcti
            ))
        })?;
        let result = f(&mut tpm, handle);
        let _ = tpm.ctx.flush_context(handle.into());
        result
    }

    /// The TPM this key lives in.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// The public key as an uncompressed SEC1 point.
    pub fn point(&self) -> &[u8; 65] {
        &self.point
    }

    /// ECDSA P-256 over SHA-256(`message`), made inside the TPM; DER-encoded.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TpmError> {
        let digest = Digest::try_from(Sha256::digest(message).to_vec())
            .map_err(|e| TpmError::Invalid(e.to_string()))?;
        self.with_loaded(|tpm, handle| sign_digest(tpm, handle, digest))
    }
}

fn sign_digest(tpm: &mut Tpm, handle: KeyHandle, digest: Digest) -> Result<Vec<u8>, TpmError> {
    // The null ticket: this key is unrestricted, so the TPM need not
    // have hashed the message itself.
    let ticket = TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    }
    .try_into()
    .map_err(|e: tss_esapi::Error| TpmError::Invalid(e.to_string()))?;
    let signature = tpm
        .ctx
        .execute_with_nullauth_session(|ctx| {
            ctx.sign(handle, digest, SignatureScheme::Null, ticket)
        })
        .map_err(refused("sign"))?;
    let Signature::EcDsa(sig) = signature else {
        return Err(TpmError::Invalid(
            "the TPM made a signature of another kind".into(),
        ));
    };
    Ok(der_signature(
        sig.signature_r().value(),
        sig.signature_s().value(),
    ))
}

/// Recreates the storage key from the TPM's seed (same template, same key).
pub(crate) fn storage_key(tpm: &mut Tpm) -> Result<KeyHandle, TpmError> {
    let template = templates::storage_key()?;
    Ok(tpm
        .ctx
        .execute_with_nullauth_session(|ctx| {
            ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .map_err(refused("make its storage key"))?
        .key_handle)
}

/// An ECDSA signature as X.509 and the Waymark wire carry it:
/// `SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 2.2.3).
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(r, true);
            w.next().write_bigint_bytes(s, true);
        })
    })
}

/// rcgen signs the certificate request through the TPM.
impl PublicKeyData for TpmKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for TpmKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        TpmKey::sign(self, msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}
