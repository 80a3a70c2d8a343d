//! Pairing a watch (issue 13, `docs/end-to-end-encryption.md` §4): the code
//! the watch shows, its signed offer, the family's answer the cloud relays
//! to the watch, and the watch's signed confirmation that lets the cloud bind
//! it. The offer carries a public locator and SPAKE2's first message, never
//! anything derived from the code's secret, so whoever holds the cloud's
//! database has nothing to guess the code from offline.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::device::{DeviceError, verify_b64_signature};
use crate::roster::SignedRoster;
use crate::sealed_report::LocationPublicKey;
use crate::signing::{Canonical, OFFER_TAG, PAIRING_CONFIRMATION_TAG, unb64};
use crate::watches::WatchRecord;

/// Crockford's base32: no I, L, O or U; typing O, I or L is forgiven.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// The locator's characters (20 bits): public, names the offer.
pub const LOCATOR_CHARS: usize = 4;
/// Locator and secret (40 bits): the whole code a watch shows.
pub const CODE_CHARS: usize = 12;
/// The QR code on the watch holds `waymark-pair:` followed by the code.
pub const QR_PREFIX: &str = "waymark-pair:";
/// An offer may live at most this long.
pub const MAX_OFFER_MS: i64 = 10 * 60 * 1000;
/// The answering side's identity in the exchange: the watch cannot know
/// which family computer will answer (the bundle names the family).
pub const FAMILY_IDENTITY: &[u8] = b"waymark-family";
/// The most bytes a SPAKE2 message may have (Ed25519 group: 33).
pub const MAX_MESSAGE_BYTES: usize = 64;
/// The most characters of a sealed family bundle (base64url).
pub const MAX_BUNDLE_CHARS: usize = 32 * 1024;

/// `len` random characters of the alphabet.
pub(crate) fn generate_code(len: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..32)] as char)
        .collect()
}

/// What a person types or pastes, in canonical form if it has `len`
/// characters: any case, spaces and dashes, O for 0 and I/L for 1, and the
/// QR code's prefix are forgiven.
pub(crate) fn parse_code(input: &str, len: usize) -> Option<String> {
    let trimmed = input.trim();
    let input = match trimmed.get(..QR_PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(QR_PREFIX) => &trimmed[QR_PREFIX.len()..],
        _ => trimmed,
    };
    let mut out = String::with_capacity(len);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' | '\u{2010}'..='\u{2015}' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// A canonical code grouped for reading aloud: four, four, then the rest.
pub(crate) fn group_code(canonical: &str) -> String {
    format!(
        "{}-{}-{}",
        &canonical[..4],
        &canonical[4..8],
        &canonical[8..]
    )
}

/// A watch's pairing code in canonical form: 12 characters, the locator
/// first, then the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode(String);

impl PairingCode {
    pub fn generate() -> Self {
        Self(generate_code(CODE_CHARS))
    }

    pub fn parse(input: &str) -> Option<Self> {
        parse_code(input, CODE_CHARS).map(Self)
    }

    /// Grouped for reading aloud: `7KQ2-M9XH-4TRB`.
    pub fn display(&self) -> String {
        group_code(&self.0)
    }

    /// What the watch's QR code holds.
    pub fn qr_payload(&self) -> String {
        format!("{QR_PREFIX}{}", self.0)
    }

    /// The whole code: with the exchange's purpose, SPAKE2's password.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn locator(&self) -> Locator {
        Locator(self.0[..LOCATOR_CHARS].to_owned())
    }
}

impl std::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairingCode(..)")
    }
}

/// The public first part of a pairing code: which offer the code belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locator(String);

impl Locator {
    /// Exactly four characters of the alphabet, upper case (as in a path).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == LOCATOR_CHARS && raw.bytes().all(|b| ALPHABET.contains(&b)))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A base64url field of 1..=`max` bytes (exactly `exact` if given).
pub(crate) fn bytes_ok(raw: &str, max: usize, exact: Option<usize>) -> bool {
    unb64(raw)
        .is_some_and(|b| !b.is_empty() && b.len() <= max && exact.is_none_or(|n| b.len() == n))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingOffer {
    pub device_id: String,
    /// The code's first four characters (see [`Locator`]).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9A-HJKMNP-TV-Z]{4}$"))]
    pub locator: String,
    /// The watch's SPAKE2 message, base64url.
    pub message: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl PairingOffer {
    pub fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(OFFER_TAG)
            .str(&self.device_id)
            .str(&self.locator)
            .str(&self.message)
            .i64(self.created_at)
            .i64(self.expires_at)
            .finish()
    }

    pub fn is_well_formed(&self) -> bool {
        Locator::parse(&self.locator).is_some() && bytes_ok(&self.message, MAX_MESSAGE_BYTES, None)
    }
}

/// `POST /device/v1/pairing-offers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedOffer {
    pub offer: PairingOffer,
    /// The device certificate, DER, base64url.
    pub certificate: String,
    /// ECDSA P-256 SHA-256 signature over `offer.signing_bytes()`, DER, base64url.
    pub signature: String,
}

impl SignedOffer {
    /// Checks the signature with the (already verified) certificate.
    pub fn verify(&self, cert_der: &[u8]) -> Result<(), DeviceError> {
        verify_b64_signature(cert_der, &self.offer.signing_bytes(), &self.signature)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferAccepted {
    pub expires_at: i64,
}

/// `POST /api/v1/pairing-offers/{locator}/answer`: the family's SPAKE2
/// message, its key confirmation, and the family bundle sealed under the
/// exchange's key. One answer spends the offer, right code or wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingAnswer {
    /// SPAKE2 message, base64url.
    pub message: String,
    /// HMAC-SHA256 key confirmation, base64url.
    pub confirmation: String,
    /// The [`WatchFamilyBundle`] sealed under the exchange's key, base64url
    /// (at most 32 KiB of it; more is refused with `invalid_request`).
    pub bundle: String,
}

impl PairingAnswer {
    pub fn is_well_formed(&self) -> bool {
        bytes_ok(&self.message, MAX_MESSAGE_BYTES, None)
            && bytes_ok(&self.confirmation, 32, Some(32))
            && self.bundle.len() <= MAX_BUNDLE_CHARS
            && bytes_ok(&self.bundle, MAX_BUNDLE_CHARS, None)
    }
}

/// Where an offer is, as the family that answered it reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OfferState {
    /// Shown on the watch, not answered yet.
    Open,
    /// Answered; the watch has not said yet whether the code matched.
    Answered,
    /// The watch confirmed the exchange and is bound to the answering account.
    Paired,
    /// The watch found the code did not match; it shows a new one.
    WrongCode,
}

/// `GET /api/v1/pairing-offers/{locator}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferView {
    /// The offer exactly as the watch signed it.
    pub signed: SignedOffer,
    pub state: OfferState,
    /// Once paired: the watch's key confirmation, base64url.
    pub watch_confirmation: Option<String>,
    /// Once paired: the watch as the account's list shows it.
    pub watch: Option<WatchRecord>,
}

/// In the watch's status while one of its offers is answered: the answer,
/// and the account the watch binds to if the code matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnswerForWatch {
    pub locator: String,
    pub account_id: String,
    pub answer: PairingAnswer,
}

/// What the watch made of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PairingOutcome {
    /// The code matched and the family bundle opened: bind me.
    Accepted,
    /// The code did not match (or the answer was altered): bind nothing.
    WrongCode,
}

impl PairingOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::WrongCode => "wrong_code",
        }
    }
}

/// The watch's word on one answered offer. Signed by its device key, so the
/// cloud can bind a watch only to the account whose answer the watch took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingConfirmation {
    pub device_id: String,
    pub locator: String,
    pub account_id: String,
    pub outcome: PairingOutcome,
    /// Accepted: SHA-256 of the exchange's transcript, base64url (else empty).
    pub transcript_hash: String,
    /// Accepted: the watch's key confirmation, base64url (else empty).
    pub confirmation: String,
}

impl PairingConfirmation {
    pub fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(PAIRING_CONFIRMATION_TAG)
            .str(&self.device_id)
            .str(&self.locator)
            .str(&self.account_id)
            .str(self.outcome.as_str())
            .str(&self.transcript_hash)
            .str(&self.confirmation)
            .finish()
    }

    pub fn is_well_formed(&self) -> bool {
        let fields = [&self.transcript_hash, &self.confirmation];
        Locator::parse(&self.locator).is_some()
            && match self.outcome {
                PairingOutcome::Accepted => fields.iter().all(|f| bytes_ok(f, 32, Some(32))),
                PairingOutcome::WrongCode => fields.iter().all(|f| f.is_empty()),
            }
    }
}

/// `POST /device/v1/pairing-confirmations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedPairingConfirmation {
    pub confirmation: PairingConfirmation,
    /// ECDSA P-256 SHA-256 signature over `confirmation.signing_bytes()`, DER, base64url.
    pub signature: String,
}

impl SignedPairingConfirmation {
    pub fn verify(&self, cert_der: &[u8]) -> Result<(), DeviceError> {
        verify_b64_signature(
            cert_der,
            &self.confirmation.signing_bytes(),
            &self.signature,
        )
    }
}

/// What the family gives a watch at pairing, sealed under the exchange's
/// key: the key epoch to seal fixes to and the roster whose computers may
/// later switch it to another epoch. All public values; the channel makes
/// them authentic (only someone who typed the code could seal them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFamilyBundle {
    pub epoch: u32,
    pub epoch_public: LocationPublicKey,
    pub roster: SignedRoster,
}

/// The associated data the bundle is sealed with: bound to this watch and
/// this offer, so a bundle cannot be moved to another.
pub fn bundle_context(device_id: &str, locator: &str) -> Vec<u8> {
    Canonical::new("waymark/watch-family-bundle/v1")
        .str(device_id)
        .str(locator)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_forgiving_to_type_and_strict_in_shape() {
        let c = PairingCode::parse("7kq2-m9xh-4trb").unwrap();
        assert_eq!(c.display(), "7KQ2-M9XH-4TRB");
        assert_eq!(c.locator().as_str(), "7KQ2");
        assert_eq!(PairingCode::parse(" 7KQ2 M9XH 4TRB ").unwrap(), c);
        assert_eq!(
            PairingCode::parse("OIL000000000").unwrap().as_str(),
            "011000000000"
        );
        assert!(PairingCode::parse("7KQ2-M9XH-4TR").is_none());
        assert!(PairingCode::parse("7KQ2-M9XH-4TRBB").is_none());
        assert!(
            PairingCode::parse("7KQ2-M9XH-4TRU").is_none(),
            "U is not in the alphabet"
        );
        assert!(PairingCode::parse("7KQ2-M9XH-4TRé").is_none());
        assert_eq!(PairingCode::parse(&c.qr_payload()), Some(c.clone()));
        let fresh = PairingCode::generate();
        assert_eq!(PairingCode::parse(&fresh.display()), Some(fresh.clone()));
        assert_ne!(fresh, PairingCode::generate());
    }

    #[test]
    fn locators_in_paths_are_strict() {
        assert!(Locator::parse("7KQ2").is_some());
        for bad in ["7kq2", "7KQ", "7KQ2M", "7KQU", "../a", ""] {
            assert!(Locator::parse(bad).is_none(), "{bad}");
        }
    }

    fn offer() -> PairingOffer {
        PairingOffer {
            device_id: "00112233445566778899aabbccddeeff".into(),
            locator: "7KQ2".into(),
            message: crate::signing::b64(&[0x41; 33]),
            created_at: 1_700_000_000_000,
            expires_at: 1_700_000_600_000,
        }
    }

    #[test]
    fn offer_encoding_vector() {
        let bytes = offer().signing_bytes();
        assert!(bytes.starts_with(b"waymark/pair-offer/v2\0\0\0\0\x2000112233"));
        assert_eq!(bytes.len(), 22 + 4 + 32 + 4 + 4 + 4 + 44 + 8 + 8);
        assert_eq!(
            &bytes[bytes.len() - 16..],
            &[
                0, 0, 1, 139, 207, 229, 104, 0, 0, 0, 1, 139, 207, 238, 143, 192
            ]
        );
        assert!(offer().is_well_formed());
        let mut bad = offer();
        bad.locator = "7kq2".into();
        assert!(!bad.is_well_formed());
        bad = offer();
        bad.message = crate::signing::b64(&[1; 65]);
        assert!(!bad.is_well_formed());
    }

    /// A signature made outside this code base (OpenSSL, see testdata/README.md)
    /// over the offer above must verify, and must not once a field changes.
    #[test]
    fn offer_signature_vector() {
        let cert = include_bytes!("../testdata/vector-device.der");
        let sig = include_bytes!("../testdata/vector-offer.sig");
        let signed = SignedOffer {
            offer: offer(),
            certificate: crate::signing::b64(cert),
            signature: crate::signing::b64(sig),
        };
        assert_eq!(signed.verify(cert), Ok(()));
        let mut later = signed.clone();
        later.offer.expires_at += 1;
        assert_eq!(later.verify(cert), Err(DeviceError::BadSignature));
    }

    #[test]
    fn a_confirmation_carries_proof_only_when_accepted() {
        let b = crate::signing::b64(&[7; 32]);
        let mut c = PairingConfirmation {
            device_id: "00112233445566778899aabbccddeeff".into(),
            locator: "7KQ2".into(),
            account_id: "acc".into(),
            outcome: PairingOutcome::Accepted,
            transcript_hash: b.clone(),
            confirmation: b.clone(),
        };
        assert!(c.is_well_formed());
        c.outcome = PairingOutcome::WrongCode;
        assert!(!c.is_well_formed());
        c.transcript_hash.clear();
        c.confirmation.clear();
        assert!(c.is_well_formed());
        c.outcome = PairingOutcome::Accepted;
        assert!(!c.is_well_formed());
    }
}
