//! The watch's side of the factory's TPM check: it proves that its device key
//! lives in the same genuine TPM as the endorsement key its maker certified.

use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, ak, ek};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Data, EncryptedSecret, IdObject, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::traits::Marshall;
use waymark_protocol::attestation::{AttestationAnswer, AttestationChallenge, AttestationRequest};
use waymark_protocol::signing::{b64, unb64};

use crate::connection::refused;
use crate::device_key::{KeyBlob, public_b64};
use crate::{Tpm, TpmError, TpmKey};

/// The endorsement key Waymark uses: the TCG default RSA 2048 EK, whose
/// certificate the TPM maker stores at NV index 0x01c00002.
pub(crate) const EK: AsymmetricAlgorithmSelection =
    AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048);

impl TpmKey {
    /// Makes an attestation key under the endorsement key and returns the
    /// request for the factory, with the attestation key's blob (kept by
    /// the watch until it answers).
    pub fn attestation_request(&self) -> Result<(AttestationRequest, KeyBlob), TpmError> {
        let device_key = public_b64(&self.public)?;
        request_in(&mut Tpm::open(self.tcti())?, device_key)
    }

    /// Answers the factory's challenge: recovers its secret (which only
    /// this TPM can) and has the attestation key certify the device key
    /// over the factory's nonce.
    pub fn answer(
        &self,
        attestation_key: &KeyBlob,
        challenge: &AttestationChallenge,
    ) -> Result<AttestationAnswer, TpmError> {
        self.with_loaded(|tpm, device| answer_in(tpm, device, attestation_key, challenge))
    }
}

fn request_in(
    tpm: &mut Tpm,
    device_key: String,
) -> Result<(AttestationRequest, KeyBlob), TpmError> {
    let ek_certificate = ek::retrieve_ek_pubcert(&mut tpm.ctx, EK).map_err(|e| {
        TpmError::Invalid(format!(
            "this TPM holds no endorsement key certificate ({e}); a genuine TPM carries one \
             from its maker, and the factory accepts only keys it can trace to one"
        ))
    })?;
    let ek = endorsement_key(tpm)?;
    let made = ak::create_ak_2(
        &mut tpm.ctx,
        ek,
        HashingAlgorithm::Sha256,
        AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        SignatureSchemeAlgorithm::EcDsa,
        None,
        None,
    );
    let _ = tpm.ctx.flush_context(ek.into());
    let made = made.map_err(refused("make an attestation key"))?;
    let blob = KeyBlob::new(&made.out_public, &made.out_private)?;
    let request = AttestationRequest {
        ek_certificate: b64(&ek_certificate),
        attestation_key: blob.public.clone(),
        device_key,
    };
    Ok((request, blob))
}

fn answer_in(
    tpm: &mut Tpm,
    device: KeyHandle,
    attestation_key: &KeyBlob,
    challenge: &AttestationChallenge,
) -> Result<AttestationAnswer, TpmError> {
    let bad = |what: &str| TpmError::Invalid(format!("the challenge's {what} is not valid"));
    let blob =
        IdObject::try_from(unb64(&challenge.credential_blob).ok_or_else(|| bad("credential"))?)
            .map_err(|_| bad("credential"))?;
    let secret =
        EncryptedSecret::try_from(unb64(&challenge.encrypted_secret).ok_or_else(|| bad("secret"))?)
            .map_err(|_| bad("secret"))?;
    let nonce = Data::try_from(unb64(&challenge.nonce).ok_or_else(|| bad("nonce"))?)
        .map_err(|_| bad("nonce"))?;
    let (ak_public, ak_private) = attestation_key.parts()?;

    let ek = endorsement_key(tpm)?;
    let ak = ak::load_ak(&mut tpm.ctx, ek, None, ak_private, ak_public);
    let ak = match ak {
        Ok(ak) => ak,
        Err(e) => {
            let _ = tpm.ctx.flush_context(ek.into());
            return Err(TpmError::Invalid(format!(
                "this TPM cannot load the attestation key made at provisioning ({e}): \
                 answer the challenge on the watch that made the request"
            )));
        }
    };
    let recovered = activate(tpm, ak, ek, blob, secret);
    let _ = tpm.ctx.flush_context(ek.into());
    let certified = recovered.and_then(|secret| {
        let (attest, signature) = tpm
            .ctx
            .execute_with_sessions(
                (
                    Some(AuthSession::Password),
                    Some(AuthSession::Password),
                    None,
                ),
                |ctx| ctx.certify(device.into(), ak, nonce, SignatureScheme::Null),
            )
            .map_err(refused("certify the device key"))?;
        Ok((secret, attest, signature))
    });
    let _ = tpm.ctx.flush_context(ak.into());
    let (secret, attest, signature) = certified?;
    let marshal = |r: tss_esapi::Result<Vec<u8>>| {
        r.map_err(|e| TpmError::Invalid(format!("cannot marshal the TPM's answer: {e}")))
    };
    Ok(AttestationAnswer {
        challenge: challenge.id.clone(),
        secret: b64(&secret),
        certify_info: b64(&marshal(attest.marshall())?),
        signature: b64(&marshal(signature.marshall())?),
    })
}

/// The endorsement key, made again from the TPM's endorsement seed.
fn endorsement_key(tpm: &mut Tpm) -> Result<KeyHandle, TpmError> {
    ek::create_ek_object_2(&mut tpm.ctx, EK, None).map_err(refused("load its endorsement key"))
}

/// TPM2_ActivateCredential: the endorsement key is used under a policy
/// session that proves endorsement-hierarchy authorisation (the TCG EK policy).
fn activate(
    tpm: &mut Tpm,
    ak: KeyHandle,
    ek: KeyHandle,
    blob: IdObject,
    secret: EncryptedSecret,
) -> Result<Vec<u8>, TpmError> {
    let session = tpm
        .ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(refused("start a policy session"))?
        .ok_or_else(|| TpmError::Invalid("the TPM gave no policy session".into()))?;
    let result = (|| {
        let policy = PolicySession::try_from(session)
            .map_err(|e| TpmError::Invalid(format!("not a policy session: {e}")))?;
        tpm.ctx
            .execute_with_nullauth_session(|ctx| {
                ctx.policy_secret(
                    policy,
                    AuthHandle::Endorsement,
                    Default::default(),
                    Default::default(),
                    Default::default(),
                    None,
                )
            })
            .map_err(refused("authorise its endorsement key"))?;
        tpm.ctx
            .execute_with_sessions((Some(AuthSession::Password), Some(session), None), |ctx| {
                ctx.activate_credential(ak, ek, blob, secret)
            })
            .map(|digest| digest.value().to_vec())
            .map_err(|e| {
                TpmError::Invalid(format!(
                    "this TPM cannot open the factory's challenge ({e}): it was made for \
                     another TPM's endorsement key"
                ))
            })
    })();
    let _ = tpm.ctx.flush_context(SessionHandle::from(session).into());
    result
}
