//! Which computers a family trusts, and the keys that move between them
//! (issue 13; `docs/end-to-end-encryption.md` §6–§8).
//!
//! - The **roster** is a signed, versioned list of the family's computers.
//!   Each version names the hash of the one before and is signed by a
//!   computer of that previous version (or by the family's recovery key), so
//!   a reader who trusts one version accepts a later one only along the
//!   chain: the cloud stores rosters but cannot make one.
//! - An **epoch switch** tells the watches the family's new location key; it
//!   is signed by a computer of the roster the watch holds.
//! - An **epoch key blob** carries one epoch's private location key to one
//!   computer (or to the recovery key): HPKE base mode, DHKEM(X25519,
//!   HKDF-SHA256), ChaCha20-Poly1305, bound to the epoch and the recipient.
//! - The **recovery key** is 128 random bits shown once; both its key pairs
//!   are derived from it with HKDF-SHA256.
//!
//! Ed25519 signatures and HKDF are `ring`'s; HPKE is the `hpke` crate's.

use std::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand::RngCore;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::location_sealing::LocationSecretKey;
use crate::sealed_report::{ChainHash, EncappedKey, LocationPublicKey};
use crate::signing::{Canonical, b64, unb64};

const ROSTER_TAG: &str = "waymark/roster/v1";
const EPOCH_SWITCH_TAG: &str = "waymark/epoch-switch/v1";

crate::sealed_report::fixed_bytes!(
    /// An Ed25519 public key (a family computer's, or the recovery key's).
    SigningPublicKey,
    32
);

/// A computer's (or the recovery key's) two key pairs: Ed25519 to sign
/// rosters and switches, X25519 to receive epoch keys.
pub struct FamilyKeyPair {
    signing: Ed25519KeyPair,
    seed: [u8; 32],
    sealing: LocationSecretKey,
}

impl FamilyKeyPair {
    pub fn generate() -> Self {
        let mut seed = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let (sealing, _) = LocationSecretKey::generate();
        Self::from_parts(seed, sealing)
    }

    /// From the 64 bytes [`to_bytes`](Self::to_bytes) wrote.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut seed = [0; 32];
        seed.copy_from_slice(&bytes[..32]);
        let mut sealing = [0; 32];
        sealing.copy_from_slice(&bytes[32..]);
        Self::from_parts(seed, LocationSecretKey::from_bytes(&sealing))
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0; 64];
        out[..32].copy_from_slice(&self.seed);
        out[32..].copy_from_slice(&self.sealing.to_bytes());
        out
    }

    fn from_parts(seed: [u8; 32], sealing: LocationSecretKey) -> Self {
        // Every 32-byte seed is a valid Ed25519 private key.
        let signing = Ed25519KeyPair::from_seed_unchecked(&seed).expect("32-byte Ed25519 seed");
        Self {
            signing,
            seed,
            sealing,
        }
    }

    pub fn signing_public(&self) -> SigningPublicKey {
        let mut out = [0; 32];
        out.copy_from_slice(self.signing.public_key().as_ref());
        SigningPublicKey(out)
    }

    pub fn sealing_public(&self) -> LocationPublicKey {
        self.sealing.public_key()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> String {
        b64(self.signing.sign(message).as_ref())
    }
}

impl fmt::Debug for FamilyKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyKeyPair({:?})", self.signing_public())
    }
}

pub(crate) fn verify(key: &SigningPublicKey, message: &[u8], signature: &str) -> bool {
    unb64(signature).is_some_and(|sig| {
        UnparsedPublicKey::new(&ED25519, key.0)
            .verify(message, &sig)
            .is_ok()
    })
}

/// One computer the family trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    /// The session name the parent gave it ("Kitchen laptop").
    pub name: String,
    /// The account (family member) it belongs to.
    pub member: String,
    pub signing: SigningPublicKey,
    pub sealing: LocationPublicKey,
}

/// The recovery key's public halves, in every roster version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryPublic {
    pub signing: SigningPublicKey,
    pub sealing: LocationPublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// 1 for the family's first roster, then one more each change.
    pub version: u64,
    pub computers: Vec<RosterEntry>,
    pub recovery: Option<RecoveryPublic>,
    /// [`Roster::hash`] of the previous version; all zero for version 1.
    pub prev: ChainHash,
}

impl Roster {
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut c = Canonical::new(ROSTER_TAG)
            .u64(self.version)
            .u64(self.computers.len() as u64);
        for e in &self.computers {
            c = c
                .str(&e.name)
                .str(&e.member)
                .bytes(&e.signing.0)
                .bytes(&e.sealing.0);
        }
        c = match &self.recovery {
            Some(r) => c.u8(1).bytes(&r.signing.0).bytes(&r.sealing.0),
            None => c.u8(0),
        };
        c.bytes(&self.prev.0).finish()
    }

    pub fn hash(&self) -> ChainHash {
        ChainHash(Sha256::digest(self.signing_bytes()).into())
    }

    pub fn contains(&self, key: &SigningPublicKey) -> bool {
        self.computers.iter().any(|e| e.signing == *key)
    }

    /// The next version: `computers` in place of this one's.
    pub fn next(&self, computers: Vec<RosterEntry>) -> Roster {
        Roster {
            version: self.version + 1,
            computers,
            recovery: self.recovery,
            prev: self.hash(),
        }
    }

    pub fn sign(self, by: &FamilyKeyPair) -> SignedRoster {
        let signature = by.sign(&self.signing_bytes());
        SignedRoster {
            roster: self,
            signer: by.signing_public(),
            signature,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRoster {
    pub roster: Roster,
    pub signer: SigningPublicKey,
    pub signature: String,
}

/// Why a roster, switch or key blob was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterError {
    /// Not signed by a key the reader trusts for this step.
    UnknownSigner,
    BadSignature,
    /// Not the version after the trusted one: replayed, or skipping ahead.
    NotNext,
    /// Does not name the trusted version's hash.
    BrokenChain,
    /// A first roster must list the computer that signed it.
    FounderMissing,
    /// An epoch switch that is not newer than the watch's epoch.
    OldEpoch,
    /// A key blob for another recipient or epoch, or altered.
    KeyBlob,
}

/// The roster a reader trusts now, advanced only along the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoster(Roster);

impl TrustedRoster {
    /// A family's first roster, as its founding computer made it (or as a
    /// watch received it over the code-authenticated pairing channel).
    pub fn founding(signed: &SignedRoster) -> Result<Self, RosterError> {
        let r = &signed.roster;
        if r.version != 1 || r.prev != ChainHash::GENESIS {
            return Err(RosterError::NotNext);
        }
        if !r.contains(&signed.signer) {
            return Err(RosterError::FounderMissing);
        }
        if !verify(&signed.signer, &r.signing_bytes(), &signed.signature) {
            return Err(RosterError::BadSignature);
        }
        Ok(Self(r.clone()))
    }

    /// Trusts `signed` in place of the current roster if it is the next
    /// version, chained to the current one and signed by one of its
    /// computers or by the recovery key.
    pub fn advance(&mut self, signed: &SignedRoster) -> Result<(), RosterError> {
        let (current, next) = (&self.0, &signed.roster);
        if next.version != current.version + 1 {
            return Err(RosterError::NotNext);
        }
        if next.prev != current.hash() {
            return Err(RosterError::BrokenChain);
        }
        let by_recovery = current.recovery.is_some_and(|r| r.signing == signed.signer);
        if !current.contains(&signed.signer) && !by_recovery {
            return Err(RosterError::UnknownSigner);
        }
        if !verify(&signed.signer, &next.signing_bytes(), &signed.signature) {
            return Err(RosterError::BadSignature);
        }
        self.0 = next.clone();
        Ok(())
    }

    pub fn roster(&self) -> &Roster {
        &self.0
    }
}

/// "From now on, seal to this key": the family's new location key epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochSwitch {
    pub epoch: u32,
    pub public: LocationPublicKey,
    /// The roster version the switch was made under.
    pub roster_version: u64,
}

impl EpochSwitch {
    fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(EPOCH_SWITCH_TAG)
            .u64(self.epoch.into())
            .bytes(&self.public.0)
            .u64(self.roster_version)
            .finish()
    }

    pub fn sign(self, by: &FamilyKeyPair) -> SignedEpochSwitch {
        let signature = by.sign(&self.signing_bytes());
        SignedEpochSwitch {
            switch: self,
            signer: by.signing_public(),
            signature,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEpochSwitch {
    pub switch: EpochSwitch,
    pub signer: SigningPublicKey,
    pub signature: String,
}

impl SignedEpochSwitch {
    /// What a watch checks before sealing to a new key: signed by a
    /// computer of the roster it trusts, made under that roster, and newer
    /// than the epoch it seals to now.
    pub fn check(&self, trusted: &TrustedRoster, current_epoch: u32) -> Result<(), RosterError> {
        let roster = trusted.roster();
        if !roster.contains(&self.signer) {
            return Err(RosterError::UnknownSigner);
        }
        if self.switch.roster_version != roster.version {
            return Err(RosterError::NotNext);
        }
        if self.switch.epoch <= current_epoch {
            return Err(RosterError::OldEpoch);
        }
        if !verify(&self.signer, &self.switch.signing_bytes(), &self.signature) {
            return Err(RosterError::BadSignature);
        }
        Ok(())
    }
}

/// One epoch's private location key, encrypted to one recipient's X25519
/// key. The cloud stores it and hands it to that recipient only; it cannot
/// open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochKeyBlob {
    pub epoch: u32,
    pub recipient: LocationPublicKey,
    pub enc: EncappedKey,
    pub ciphertext: String,
}

fn blob_info(epoch: u32, recipient: &LocationPublicKey) -> Vec<u8> {
    Canonical::new("waymark/epoch-key/v1")
        .u64(epoch.into())
        .bytes(&recipient.0)
        .finish()
}

type Kem = X25519HkdfSha256;

impl EpochKeyBlob {
    pub fn seal(epoch: u32, key: &LocationSecretKey, recipient: &LocationPublicKey) -> Self {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.0)
            .expect("a roster's sealing key is 32 bytes");
        let info = blob_info(epoch, recipient);
        let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeS::Base,
            &pk,
            &info,
            &key.to_bytes(),
            &info,
        )
        .expect("X25519 encapsulation to a valid key");
        let mut enc_bytes = [0; 32];
        enc_bytes.copy_from_slice(&enc.to_bytes());
        Self {
            epoch,
            recipient: *recipient,
            enc: EncappedKey(enc_bytes),
            ciphertext: b64(&ciphertext),
        }
    }

    pub fn open(&self, mine: &FamilyKeyPair) -> Result<LocationSecretKey, RosterError> {
        if self.recipient != mine.sealing_public() {
            return Err(RosterError::KeyBlob);
        }
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&self.enc.0)
            .map_err(|_| RosterError::KeyBlob)?;
        let ciphertext = unb64(&self.ciphertext).ok_or(RosterError::KeyBlob)?;
        let info = blob_info(self.epoch, &self.recipient);
        let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            mine.sealing.hpke_key(),
            &enc,
            &info,
            &ciphertext,
            &info,
        )
        .map_err(|_| RosterError::KeyBlob)?;
        let bytes: [u8; 32] = plain.try_into().map_err(|_| RosterError::KeyBlob)?;
        Ok(LocationSecretKey::from_bytes(&bytes))
    }
}

/// What a trusted computer sends a computer it approves, over the channel the
/// approval code authenticated (`code_exchange`): the roster chain from the
/// family's first version to one listing the new computer, and every epoch
/// key sealed to the new computer's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBundle {
    pub rosters: Vec<SignedRoster>,
    pub keys: Vec<EpochKeyBlob>,
}

/// Crockford base32, as pairing codes use.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RECOVERY_CHARS: usize = 26;

/// The family's recovery key: 128 random bits, shown once as 26 characters.
pub struct RecoveryKey([u8; 16]);

impl RecoveryKey {
    pub fn generate() -> Self {
        let mut r = [0; 16];
        rand::rngs::OsRng.fill_bytes(&mut r);
        Self(r)
    }

    /// `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-X`: 26 characters in groups of five.
    pub fn display(&self) -> String {
        let value = u128::from_be_bytes(self.0);
        let chars: Vec<char> = (0..RECOVERY_CHARS)
            .rev()
            .map(|i| RECOVERY_ALPHABET[((value >> (5 * i)) & 31) as usize] as char)
            .collect();
        chars
            .chunks(5)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Accepts what a person types: any case, spaces and dashes, O for 0
    /// and I/L for 1.
    pub fn parse(input: &str) -> Option<Self> {
        let mut value: u128 = 0;
        let mut n = 0;
        for c in input.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            let digit = RECOVERY_ALPHABET.iter().position(|&a| a as char == c)? as u128;
            n += 1;
            if n > RECOVERY_CHARS {
                return None;
            }
            // 26 characters hold 130 bits: the first may carry only 3.
            if n == 1 && digit > 7 {
                return None;
            }
            value = (value << 5) | digit;
        }
        (n == RECOVERY_CHARS).then(|| Self(value.to_be_bytes()))
    }

    /// The key pairs the roster names as the family's recovery key.
    pub fn key_pair(&self) -> FamilyKeyPair {
        let prk =
            ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"waymark/recovery/v1").extract(&self.0);
        let expand = |label: &str| -> [u8; 32] {
            let mut out = [0; 32];
            prk.expand(&[label.as_bytes()], ring::hkdf::HKDF_SHA256)
                .and_then(|okm| okm.fill(&mut out))
                .expect("32 bytes is within HKDF-SHA256's limit");
            out
        };
        FamilyKeyPair::from_parts(
            expand("signing"),
            LocationSecretKey::from_bytes(&expand("sealing")),
        )
    }

    pub fn public(&self) -> RecoveryPublic {
        let pair = self.key_pair();
        RecoveryPublic {
            signing: pair.signing_public(),
            sealing: pair.sealing_public(),
        }
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, keys: &FamilyKeyPair) -> RosterEntry {
        RosterEntry {
            name: name.into(),
            member: "acct-1".into(),
            signing: keys.signing_public(),
            sealing: keys.sealing_public(),
        }
    }

    fn founded() -> (FamilyKeyPair, RecoveryKey, SignedRoster) {
        let first = FamilyKeyPair::generate();
        let recovery = RecoveryKey::generate();
        let roster = Roster {
            version: 1,
            computers: vec![entry("Desk", &first)],
            recovery: Some(recovery.public()),
            prev: ChainHash::GENESIS,
        }
        .sign(&first);
        (first, recovery, roster)
    }

    #[test]
    fn a_roster_advances_only_along_its_chain() {
        let (first, _, v1) = founded();
        let mut trusted = TrustedRoster::founding(&v1).unwrap();
        let second = FamilyKeyPair::generate();
        let v2 = v1
            .roster
            .next(vec![entry("Desk", &first), entry("Kitchen", &second)])
            .sign(&first);
        trusted.advance(&v2).unwrap();
        assert_eq!(trusted.roster().version, 2);
        // Replaying v2, or v1, changes nothing.
        assert_eq!(trusted.advance(&v2), Err(RosterError::NotNext));
        assert_eq!(trusted.advance(&v1), Err(RosterError::NotNext));
        // The cloud makes its own v3 with its own key: refused...
        let cloud = FamilyKeyPair::generate();
        let forged = trusted
            .roster()
            .next(vec![entry("Cloud", &cloud)])
            .sign(&cloud);
        assert_eq!(trusted.advance(&forged), Err(RosterError::UnknownSigner));
        // ...or alters one a computer signed.
        let mut altered = trusted
            .roster()
            .next(vec![entry("Desk", &first)])
            .sign(&second);
        altered.roster.computers.push(entry("Cloud", &cloud));
        assert_eq!(trusted.advance(&altered), Err(RosterError::BadSignature));
        // A v3 chained to another v2 is refused.
        let other_v2 = v1.roster.next(vec![entry("Desk", &first)]);
        let off_chain = other_v2.next(vec![entry("Desk", &first)]).sign(&first);
        assert_eq!(trusted.advance(&off_chain), Err(RosterError::BrokenChain));
        // The honest v3 (removing the kitchen computer) is accepted.
        let v3 = trusted
            .roster()
            .next(vec![entry("Desk", &first)])
            .sign(&second);
        trusted.advance(&v3).unwrap();
        assert!(!trusted.roster().contains(&second.signing_public()));
    }

    #[test]
    fn a_first_roster_must_list_its_signer() {
        let (_, _, v1) = founded();
        assert!(TrustedRoster::founding(&v1).is_ok());
        let stranger = FamilyKeyPair::generate();
        let resigned = v1.roster.clone().sign(&stranger);
        assert_eq!(
            TrustedRoster::founding(&resigned),
            Err(RosterError::FounderMissing)
        );
    }

    #[test]
    fn the_recovery_key_can_sign_the_next_roster() {
        let (_, recovery, v1) = founded();
        let mut trusted = TrustedRoster::founding(&v1).unwrap();
        // Every computer lost: a new one restores with the recovery key.
        let restored = FamilyKeyPair::generate();
        let typed = RecoveryKey::parse(&recovery.display().to_lowercase()).unwrap();
        let v2 = v1
            .roster
            .next(vec![entry("New laptop", &restored)])
            .sign(&typed.key_pair());
        trusted.advance(&v2).unwrap();
        // A guessed recovery key is not the family's.
        let guess = RecoveryKey::generate();
        let v3 = trusted.roster().next(vec![]).sign(&guess.key_pair());
        assert_eq!(trusted.advance(&v3), Err(RosterError::UnknownSigner));
    }

    #[test]
    fn recovery_keys_are_typed_forgivingly_and_checked_strictly() {
        let key = RecoveryKey::generate();
        let shown = key.display();
        assert_eq!(shown.len(), 26 + 5);
        assert_eq!(RecoveryKey::parse(&shown).unwrap().0, key.0);
        assert_eq!(
            RecoveryKey::parse(&shown.replace('-', " ").to_lowercase())
                .unwrap()
                .0,
            key.0
        );
        assert!(RecoveryKey::parse(&shown[..shown.len() - 1]).is_none());
        assert!(RecoveryKey::parse(&format!("{shown}0")).is_none());
        assert!(RecoveryKey::parse("U0000-00000-00000-00000-00000-0").is_none());
        // 130 bits of characters cannot carry more than 128.
        assert!(RecoveryKey::parse("Z0000-00000-00000-00000-00000-0").is_none());
        assert_eq!(
            RecoveryKey::parse("70000-00000-00000-00000-00000-0")
                .unwrap()
                .0[0],
            0xE0
        );
    }

    #[test]
    fn an_epoch_switch_needs_a_roster_computer_and_a_newer_epoch() {
        let (first, _, v1) = founded();
        let trusted = TrustedRoster::founding(&v1).unwrap();
        let (_, pk) = LocationSecretKey::generate();
        let switch = EpochSwitch {
            epoch: 1,
            public: pk,
            roster_version: 1,
        };
        assert_eq!(switch.clone().sign(&first).check(&trusted, 0), Ok(()));
        // Replayed after the watch moved on.
        assert_eq!(
            switch.clone().sign(&first).check(&trusted, 1),
            Err(RosterError::OldEpoch)
        );
        let cloud = FamilyKeyPair::generate();
        assert_eq!(
            switch.clone().sign(&cloud).check(&trusted, 0),
            Err(RosterError::UnknownSigner)
        );
        let mut swapped = switch.sign(&first);
        swapped.switch.public = LocationSecretKey::generate().1;
        assert_eq!(swapped.check(&trusted, 0), Err(RosterError::BadSignature));
    }

    #[test]
    fn an_epoch_key_opens_only_for_its_recipient() {
        let (epoch_key, epoch_pk) = LocationSecretKey::generate();
        let kitchen = FamilyKeyPair::generate();
        let blob = EpochKeyBlob::seal(2, &epoch_key, &kitchen.sealing_public());
        let opened = blob.open(&kitchen).unwrap();
        assert_eq!(opened.public_key(), epoch_pk);
        let removed = FamilyKeyPair::generate();
        assert_eq!(blob.open(&removed).err(), Some(RosterError::KeyBlob));
        // The cloud relabels it as another epoch: the HPKE info no longer matches.
        let mut relabelled = blob.clone();
        relabelled.epoch = 3;
        assert_eq!(relabelled.open(&kitchen).err(), Some(RosterError::KeyBlob));
        let json = serde_json::to_string(&blob).unwrap();
        assert!(!json.contains(&b64(&epoch_key.to_bytes())));
    }

    #[test]
    fn key_pairs_round_trip() {
        let k = FamilyKeyPair::generate();
        let back = FamilyKeyPair::from_bytes(&k.to_bytes());
        assert_eq!(back.signing_public(), k.signing_public());
        assert_eq!(back.sealing_public(), k.sealing_public());
    }
}
