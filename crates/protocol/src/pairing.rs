//! Pairing codes and the signed pairing offer. A watch makes a fresh code
//! (10 characters of Crockford base32: 50 bits), signs an offer that holds
//! only the code's hash, and shows the code; the parent types it in the app.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::device::{DeviceError, verify_b64_signature};
use crate::signing::{Canonical, OFFER_TAG};

/// Crockford's base32: no I, L, O or U; typing O, I or L is forgiven.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const CODE_CHARS: usize = 10;
/// The QR code on the watch holds `waymark-pair:` followed by the code.
pub const QR_PREFIX: &str = "waymark-pair:";
/// An offer may live at most this long.
pub const MAX_OFFER_MS: i64 = 10 * 60 * 1000;

/// A pairing code in canonical form (10 characters, upper case, no dashes).
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode(String);

impl PairingCode {
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        Self(
            (0..CODE_CHARS)
                .map(|_| ALPHABET[rng.gen_range(0..32)] as char)
                .collect(),
        )
    }

    /// Accepts what a person types or pastes: any case, spaces and dashes,
    /// O for 0 and I/L for 1.
    pub fn parse(input: &str) -> Option<Self> {
        let trimmed = input.trim();
        let input = match trimmed.get(..QR_PREFIX.len()) {
            Some(p) if p.eq_ignore_ascii_case(QR_PREFIX) => &trimmed[QR_PREFIX.len()..],
            _ => trimmed,
        };
        let mut out = String::with_capacity(CODE_CHARS);
        for c in input.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' | '\u{2010}'..='\u{2015}' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return None,
            };
            out.push(c);
            if out.len() > CODE_CHARS {
                return None;
            }
        }
        (out.len() == CODE_CHARS).then_some(Self(out))
    }

    /// Grouped for reading aloud: `7KQ2-M9XH-4T`.
    pub fn display(&self) -> String {
        format!("{}-{}-{}", &self.0[..4], &self.0[4..8], &self.0[8..])
    }

    /// What the watch's QR code holds.
    pub fn qr_payload(&self) -> String {
        format!("{QR_PREFIX}{}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the offer (and the cloud) hold instead of the code.
    pub fn hash(&self) -> String {
        let digest =
            Sha256::digest([b"waymark/pair-code/v1\0".as_slice(), self.0.as_bytes()].concat());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairingCode(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingOffer {
    pub device_id: String,
    /// Hex SHA-256 of the code (see [`PairingCode::hash`]).
    pub code_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl PairingOffer {
    pub fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(OFFER_TAG)
            .str(&self.device_id)
            .str(&self.code_hash)
            .i64(self.created_at)
            .i64(self.expires_at)
            .finish()
    }
}

/// `POST /device/v1/pairing-offers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The parent's `POST /api/v1/pairings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairRequest {
    /// As shown on the watch; case, dashes and spaces are forgiven.
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_forgiving_to_type_and_strict_in_shape() {
        let c = PairingCode::parse("7kq2-m9xh-4t").unwrap();
        assert_eq!(c.display(), "7KQ2-M9XH-4T");
        assert_eq!(PairingCode::parse(" 7KQ2 M9XH 4T ").unwrap(), c);
        assert_eq!(
            PairingCode::parse("OIL0000000").unwrap().as_str(),
            "0110000000"
        );
        assert!(PairingCode::parse("7KQ2-M9XH-4").is_none());
        assert!(PairingCode::parse("7KQ2-M9XH-4TT").is_none());
        assert!(
            PairingCode::parse("7KQ2-M9XH-4U").is_none(),
            "U is not in the alphabet"
        );
        assert!(PairingCode::parse("7KQ2-M9XH-4é").is_none());
        assert_eq!(PairingCode::parse(&c.qr_payload()), Some(c.clone()));
        let fresh = PairingCode::generate();
        assert_eq!(PairingCode::parse(&fresh.display()), Some(fresh.clone()));
        assert_ne!(fresh, PairingCode::generate());
    }

    #[test]
    fn offer_encoding_vector() {
        let offer = PairingOffer {
            device_id: "00112233445566778899aabbccddeeff".into(),
            code_hash: PairingCode::parse("7KQ2M9XH4T").unwrap().hash(),
            created_at: 1_700_000_000_000,
            expires_at: 1_700_000_600_000,
        };
        assert_eq!(
            offer.code_hash,
            "4acb6fdf172e5dbde8585bd9a86477e716ecd96798d9120c482f1143ba2f2008"
        );
        let bytes = offer.signing_bytes();
        assert!(bytes.starts_with(b"waymark/pair-offer/v1\0\0\0\0\x2000112233"));
        assert_eq!(bytes.len(), 22 + 4 + 32 + 4 + 64 + 8 + 8);
        assert_eq!(
            &bytes[bytes.len() - 16..],
            &[
                0, 0, 1, 139, 207, 229, 104, 0, 0, 0, 1, 139, 207, 238, 143, 192
            ]
        );
    }

    /// A signature made outside this code base (OpenSSL, see testdata/README.md)
    /// over the offer above must verify, and must not once a field changes.
    #[test]
    fn offer_signature_vector() {
        let cert = include_bytes!("../testdata/vector-device.der");
        let sig = include_bytes!("../testdata/vector-offer.sig");
        let offer = PairingOffer {
            device_id: "00112233445566778899aabbccddeeff".into(),
            code_hash: PairingCode::parse("7KQ2M9XH4T").unwrap().hash(),
            created_at: 1_700_000_000_000,
            expires_at: 1_700_000_600_000,
        };
        let signed = SignedOffer {
            offer: offer.clone(),
            certificate: crate::signing::b64(cert),
            signature: crate::signing::b64(sig),
        };
        assert_eq!(signed.verify(cert), Ok(()));
        let mut later = signed.clone();
        later.offer.expires_at += 1;
        assert_eq!(later.verify(cert), Err(DeviceError::BadSignature));
    }
}
