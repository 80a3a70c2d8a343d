//! Sealed location reports (batch v2, issue 13): what a watch uploads once
//! its fixes are encrypted to the family, and how a reader authenticates a
//! range of them with one signature check.
//!
//! The cloud sees the header (watch, sequence, key epoch, setup, the fixes'
//! times, the previous batch's hash) and verifies the device signature over
//! header and ciphertext exactly as it does for v1 batches; it never sees a
//! coordinate. Each batch names the hash of the one before it, so the family's
//! app checks one signature for the newest batch of a run and a SHA-256 per
//! older one ([`authenticate_chain`]); a batch the cloud drops, alters or
//! reorders shows as a break, never as a location. The encryption itself
//! lives in [`crate::location_sealing`] (feature `e2e`), so the cloud does not
//! even link the code that could decrypt.

use std::borrow::Borrow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::device::{DeviceError, verify_b64_signature};
use crate::report::{MAX_FIX_AGE_MS, MAX_FIXES_PER_BATCH, MAX_FUTURE_SKEW_MS};
use crate::signing::{BATCH_V2_TAG, Canonical, FIX_SETUP_TAG};

/// Bytes of one fix inside the ciphertext: latitude, longitude and accuracy as
/// f64 bits and the battery percentage (the time stays in the header).
pub const SEALED_FIX_LEN: usize = 8 + 8 + 8 + 1;
/// The AEAD tag (ChaCha20-Poly1305) appended to every ciphertext.
pub const AEAD_TAG_LEN: usize = 16;

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The value written as base64url, if it has exactly the right length.
            pub fn parse(raw: &str) -> Option<Self> {
                $crate::signing::unb64(raw)?.try_into().ok().map(Self)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), $crate::signing::b64(&self.0))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&$crate::signing::b64(&self.0))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::parse(&raw).ok_or_else(|| {
                    ::serde::de::Error::custom(concat!(
                        "not a ",
                        stringify!($name),
                        " (base64url of ",
                        stringify!($len),
                        " bytes)"
                    ))
                })
            }
        }
    };
}

/// Also for the other fixed-width keys of the end-to-end messages.
pub(crate) use fixed_bytes;

fixed_bytes!(
    /// Names one HPKE setup of a watch: the first 16 bytes of SHA-256 of its
    /// encapsulated key, so the cloud cannot give two setups one name.
    SetupId,
    16
);
fixed_bytes!(
    /// SHA-256 of a sealed batch's signing bytes: what the next batch names
    /// as its predecessor. All zero before a watch's first batch.
    ChainHash,
    32
);
fixed_bytes!(
    /// An HPKE encapsulated key (DHKEM(X25519, HKDF-SHA256)).
    EncappedKey,
    32
);
fixed_bytes!(
    /// The public half of a family location key (X25519).
    LocationPublicKey,
    32
);

impl ChainHash {
    /// What the first batch a watch ever sends names as its predecessor.
    pub const GENESIS: Self = Self([0; 32]);
}

impl Default for ChainHash {
    fn default() -> Self {
        Self::GENESIS
    }
}

impl SetupId {
    pub fn of(enc: &EncappedKey) -> Self {
        let digest = Sha256::digest(enc.0);
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }
}

/// A watch's announcement of a new encryption setup under a family key epoch:
/// the apps need `enc` to derive the keys of every batch that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetupRecord {
    pub device_id: String,
    pub epoch: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{21}[AQgw]$"))]
    pub setup_id: SetupId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub enc: EncappedKey,
}

impl SetupRecord {
    pub fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(FIX_SETUP_TAG)
            .str(&self.device_id)
            .u64(self.epoch.into())
            .bytes(&self.setup_id.0)
            .bytes(&self.enc.0)
            .finish()
    }

    /// The setup id must be derived from `enc`, never chosen.
    pub fn is_consistent(&self) -> bool {
        SetupId::of(&self.enc) == self.setup_id
    }
}

/// `POST /device/v1/setups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedSetupRecord {
    pub setup: SetupRecord,
    pub signature: String,
}

impl SignedSetupRecord {
    pub fn verify(&self, cert_der: &[u8]) -> Result<(), DeviceError> {
        if !self.setup.is_consistent() {
            return Err(DeviceError::BadSignature);
        }
        verify_b64_signature(cert_der, &self.setup.signing_bytes(), &self.signature)
    }
}

/// What the cloud may read of a sealed batch. Every field is authenticated:
/// it is the AEAD's associated data and part of the signed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedHeader {
    pub device_id: String,
    /// Strictly increasing per device, starting at 1.
    pub seq: u64,
    pub epoch: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{21}[AQgw]$"))]
    pub setup_id: SetupId,
    /// How often the watch changed this batch under the same sequence number
    /// (a clock repair restamps it): the AEAD nonce, so a changed batch
    /// never reuses a key and nonce pair.
    pub version: u32,
    /// Each fix's time, ms since the Unix epoch, in the order of the fixes.
    pub times: Vec<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub prev_hash: ChainHash,
}

impl SealedHeader {
    /// The canonical bytes of the header: the AEAD's associated data and the
    /// start of the signed bytes.
    pub fn aad(&self) -> Vec<u8> {
        let mut c = Canonical::new(BATCH_V2_TAG)
            .str(&self.device_id)
            .u64(self.seq)
            .u64(self.epoch.into())
            .bytes(&self.setup_id.0)
            .u64(self.version.into())
            .u64(self.times.len() as u64);
        for t in &self.times {
            c = c.i64(*t);
        }
        c.bytes(&self.prev_hash.0).finish()
    }
}

/// Why a sealed batch is refused before anyone tries to open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeError {
    NoFixes,
    TooManyFixes,
    CiphertextLength,
    SequenceZero,
    InFuture,
    TooOld,
}

impl ShapeError {
    pub fn message(self) -> &'static str {
        match self {
            Self::NoFixes => "a batch must hold at least one fix",
            Self::TooManyFixes => "a batch holds at most 500 fixes",
            Self::CiphertextLength => "the ciphertext's length does not match the number of fixes",
            Self::SequenceZero => "sequence numbers start at 1",
            Self::InFuture => "a fix is timed in the future",
            Self::TooOld => "a fix is older than 30 days",
        }
    }
}

/// A batch of fixes encrypted to the family, as uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedBatch {
    pub header: SealedHeader,
    /// base64url, 25 bytes a fix and a 16-byte tag.
    #[serde(with = "b64_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]+$"))]
    pub ciphertext: Vec<u8>,
}

impl SealedBatch {
    /// What the device key signs: the header, then the ciphertext.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = self.header.aad();
        bytes.extend_from_slice(&(self.ciphertext.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&self.ciphertext);
        bytes
    }

    /// What the next batch of this watch names as `prev_hash`.
    pub fn chain_hash(&self) -> ChainHash {
        ChainHash(Sha256::digest(self.signing_bytes()).into())
    }

    /// The checks anyone can make without a key (the cloud makes them on
    /// upload, as it checks v1 fixes).
    pub fn check_shape(&self, now_ms: i64) -> Result<(), ShapeError> {
        let n = self.header.times.len();
        if n == 0 {
            return Err(ShapeError::NoFixes);
        }
        if n > MAX_FIXES_PER_BATCH {
            return Err(ShapeError::TooManyFixes);
        }
        if self.ciphertext.len() != n * SEALED_FIX_LEN + AEAD_TAG_LEN {
            return Err(ShapeError::CiphertextLength);
        }
        if self.header.seq == 0 {
            return Err(ShapeError::SequenceZero);
        }
        for &t in &self.header.times {
            if t > now_ms + MAX_FUTURE_SKEW_MS {
                return Err(ShapeError::InFuture);
            }
            if t < now_ms - MAX_FIX_AGE_MS {
                return Err(ShapeError::TooOld);
            }
        }
        Ok(())
    }
}

/// `POST /device/v2/batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedSealedBatch {
    pub batch: SealedBatch,
    pub signature: String,
}

impl SignedSealedBatch {
    pub fn verify(&self, cert_der: &[u8]) -> Result<(), DeviceError> {
        verify_b64_signature(cert_der, &self.batch.signing_bytes(), &self.signature)
    }
}

/// How one batch of a range was authenticated, or why it was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticity {
    /// Its own device signature verified (the newest batch of a run).
    Signed,
    /// A later authenticated batch names its hash as predecessor.
    Chained,
    /// Neither: the cloud altered it or its signature is bad. Never shown.
    Refused,
}

/// Sequence numbers missing from a range: the cloud lost or withheld them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first and last missing sequence numbers.
    pub first: u64,
    pub last: u64,
}

/// The outcome of [`authenticate_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// One entry per batch, in the order given.
    pub batches: Vec<Authenticity>,
    pub gaps: Vec<Gap>,
    /// How many signatures had to be checked (one per unbroken run).
    pub signatures_checked: usize,
}

/// Authenticates one watch's batches, given in increasing sequence order, from
/// the newest back: the newest batch of each unbroken run is checked by
/// `verify_signature`, every older one by the hash its successor names. A run
/// ends at a missing sequence number (recorded as a [`Gap`]), at a batch out
/// of order, or at a hash that does not match; the batch before such a break
/// must then carry its own good signature.
/// The batches may be owned or borrowed (`&[SignedSealedBatch]` or
/// `&[&SignedSealedBatch]`), so a caller that sorted references need not copy.
pub fn authenticate_chain<B: Borrow<SignedSealedBatch>>(
    batches: &[B],
    mut verify_signature: impl FnMut(&SignedSealedBatch) -> bool,
) -> ChainCheck {
    let mut result = vec![Authenticity::Refused; batches.len()];
    let mut gaps = Vec::new();
    let mut signatures_checked = 0;
    // The hash the batch just below the current position must have, if the
    // one above it was authenticated and follows it directly.
    let mut expected: Option<ChainHash> = None;
    for i in (0..batches.len()).rev() {
        let batch = &batches[i].borrow().batch;
        if let Some(next) = batches.get(i + 1).map(Borrow::borrow) {
            let (seq, next_seq) = (batch.header.seq, next.batch.header.seq);
            if next_seq > seq + 1 {
                gaps.push(Gap {
                    first: seq + 1,
                    last: next_seq - 1,
                });
            }
            if next_seq != seq + 1 {
                expected = None;
            }
        }
        let chained = expected.is_some_and(|hash| batch.chain_hash() == hash);
        result[i] = if chained {
            Authenticity::Chained
        } else {
            signatures_checked += 1;
            if verify_signature(batches[i].borrow()) {
                Authenticity::Signed
            } else {
                Authenticity::Refused
            }
        };
        expected = (result[i] != Authenticity::Refused).then_some(batch.header.prev_hash);
    }
    gaps.reverse();
    ChainCheck {
        batches: result,
        gaps,
        signatures_checked,
    }
}

/// Byte strings as base64url on the wire, like signatures.
mod b64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::signing::b64(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let raw = String::deserialize(d)?;
        crate::signing::unb64(&raw).ok_or_else(|| serde::de::Error::custom("not base64url"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::b64;

    fn batch(seq: u64, prev: ChainHash) -> SignedSealedBatch {
        SignedSealedBatch {
            batch: SealedBatch {
                header: SealedHeader {
                    device_id: "w".into(),
                    seq,
                    epoch: 0,
                    setup_id: SetupId([1; 16]),
                    version: 0,
                    times: vec![seq as i64],
                    prev_hash: prev,
                },
                ciphertext: vec![seq as u8; SEALED_FIX_LEN + AEAD_TAG_LEN],
            },
            // Stands for a device signature: the tests below decide which are good.
            signature: format!("sig-{seq}"),
        }
    }

    fn chain(from: u64, to: u64) -> Vec<SignedSealedBatch> {
        let mut prev = ChainHash::GENESIS;
        let mut out = Vec::new();
        for seq in from..=to {
            let b = batch(seq, prev);
            prev = b.batch.chain_hash();
            out.push(b);
        }
        out
    }

    #[test]
    fn one_signature_authenticates_an_unbroken_run() {
        let batches = chain(1, 50);
        let mut asked = Vec::new();
        let check = authenticate_chain(&batches, |b| {
            asked.push(b.batch.header.seq);
            true
        });
        assert_eq!(
            asked,
            vec![50],
            "only the newest batch's signature is checked"
        );
        assert_eq!(check.signatures_checked, 1);
        assert_eq!(check.batches[49], Authenticity::Signed);
        assert!(
            check.batches[..49]
                .iter()
                .all(|a| *a == Authenticity::Chained)
        );
        assert!(check.gaps.is_empty());
    }

    #[test]
    fn an_altered_batch_is_refused_and_its_predecessors_need_their_own_signature() {
        let mut batches = chain(1, 10);
        // The cloud changes one byte of batch 6's ciphertext.
        batches[5].batch.ciphertext[0] ^= 1;
        // Only signatures of batches the cloud did not touch are good.
        let honest = chain(1, 10);
        let check = authenticate_chain(&batches, |b| honest.iter().any(|h| h == b));
        assert_eq!(check.batches[5], Authenticity::Refused);
        assert!(
            check.batches[6..]
                .iter()
                .all(|a| *a != Authenticity::Refused)
        );
        // Batch 5 is not covered by the chain through the altered batch 6: its
        // own signature is checked, and then the chain covers 1..=4.
        assert_eq!(check.batches[4], Authenticity::Signed);
        assert!(
            check.batches[..4]
                .iter()
                .all(|a| *a == Authenticity::Chained)
        );
        assert_eq!(check.signatures_checked, 3);
    }

    #[test]
    fn a_dropped_batch_shows_as_a_gap() {
        let mut batches = chain(1, 10);
        batches.remove(6); // seq 7
        let check = authenticate_chain(&batches, |_| true);
        assert_eq!(check.gaps, vec![Gap { first: 7, last: 7 }]);
        assert_eq!(check.signatures_checked, 2);
        assert!(check.batches.iter().all(|a| *a != Authenticity::Refused));
    }

    #[test]
    fn a_replayed_batch_in_place_of_another_breaks_the_chain() {
        let mut batches = chain(1, 5);
        // The cloud serves batch 2 again, renumbered as 3 (its signature is
        // then bad) or unchanged in position 3 (out of order).
        let mut renumbered = batches[1].clone();
        renumbered.batch.header.seq = 3;
        batches[2] = renumbered;
        let honest = chain(1, 5);
        let check = authenticate_chain(&batches, |b| honest.iter().any(|h| h == b));
        assert_eq!(check.batches[2], Authenticity::Refused);
        assert_eq!(check.batches[1], Authenticity::Signed);
    }

    #[test]
    fn shape_is_checked_without_a_key() {
        let now = 1_700_000_000_000;
        let mut b = batch(1, ChainHash::GENESIS).batch;
        b.header.times = vec![now];
        assert_eq!(b.check_shape(now), Ok(()));
        let mut short = b.clone();
        short.ciphertext.pop();
        assert_eq!(short.check_shape(now), Err(ShapeError::CiphertextLength));
        let mut future = b.clone();
        future.header.times = vec![now + MAX_FUTURE_SKEW_MS + 1];
        assert_eq!(future.check_shape(now), Err(ShapeError::InFuture));
        let mut zero = b.clone();
        zero.header.seq = 0;
        assert_eq!(zero.check_shape(now), Err(ShapeError::SequenceZero));
    }

    #[test]
    fn every_header_field_is_signed() {
        let b = batch(3, ChainHash([7; 32])).batch;
        let base = b.signing_bytes();
        let variants: Vec<fn(&mut SealedBatch)> = vec![
            |b| b.header.device_id.push('x'),
            |b| b.header.seq += 1,
            |b| b.header.epoch += 1,
            |b| b.header.setup_id.0[0] ^= 1,
            |b| b.header.version += 1,
            |b| b.header.times[0] += 1,
            |b| b.header.prev_hash.0[31] ^= 1,
            |b| b.ciphertext[3] ^= 1,
        ];
        for change in variants {
            let mut other = b.clone();
            change(&mut other);
            assert_ne!(other.signing_bytes(), base);
        }
    }

    #[test]
    fn json_names_the_bad_field() {
        let b = batch(1, ChainHash::GENESIS);
        let json = serde_json::to_string(&b).unwrap();
        let back: SignedSealedBatch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        let bad = json.replace(&b64(&[0u8; 32]), "AAAA");
        let err = serde_json::from_str::<SignedSealedBatch>(&bad).unwrap_err();
        assert!(err.to_string().contains("ChainHash"), "{err}");
    }
}
