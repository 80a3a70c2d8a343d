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
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::location_sealing::LocationSecretKey;
use crate::signing::Canonical;
// The wire types, here too: who makes them imports them from here.
pub use crate::roster::{
    EpochKeyBlob, EpochSwitch, RecoveryAnchor, RecoveryPublic, Roster, RosterEntry, RosterError,
    SignedEpochSwitch, SignedRoster, SigningPublicKey, TrustedRoster,
};
use crate::sealed_report::{EncappedKey, LocationPublicKey};
use crate::signing::{b64, unb64};

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

impl Roster {
    pub fn sign(self, by: &FamilyKeyPair) -> SignedRoster {
        let signature = by.sign(&self.signing_bytes());
        SignedRoster {
            roster: self,
            signer: by.signing_public(),
            signature,
        }
    }
}

impl EpochSwitch {
    pub fn sign(self, by: &FamilyKeyPair) -> SignedEpochSwitch {
        let signature = by.sign(&self.signing_bytes());
        SignedEpochSwitch {
            switch: self,
            signer: by.signing_public(),
            signature,
        }
    }
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

/// The family's recovery key: 128 random bits, shown once as 26 characters.
pub struct RecoveryKey([u8; 16]);

impl RecoveryKey {
    pub fn generate() -> Self {
        Self(crate::typed_code::random_128())
    }

    /// `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-X`: 26 characters in groups of five.
    pub fn display(&self) -> String {
        crate::typed_code::display(&self.0)
    }

    /// Accepts what a person types: any case, spaces and dashes, O for 0
    /// and I/L for 1.
    pub fn parse(input: &str) -> Option<Self> {
        crate::typed_code::parse(input).map(Self)
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

impl RecoveryKey {
    /// Signs the family's first roster and first location key (see
    /// [`RecoveryAnchor`]); done once, at founding.
    pub fn anchor(&self, first: &Roster, epoch_public: &LocationPublicKey) -> RecoveryAnchor {
        let roster = first.hash();
        let signature = self
            .key_pair()
            .sign(&RecoveryAnchor::signing_bytes(&roster, epoch_public));
        RecoveryAnchor {
            roster,
            epoch_public: *epoch_public,
            signature,
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
    use crate::roster::{RosterUpdate, check_chain};
    use crate::sealed_report::ChainHash;

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
        let v3 = trusted
            .roster()
            .next(vec![entry("Thief", &guess.key_pair())])
            .sign(&guess.key_pair());
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

    #[test]
    fn the_cloud_takes_only_the_next_signed_roster_with_blobs_for_its_members() {
        let (first, recovery, v1) = founded();
        let (epoch_key, _) = LocationSecretKey::generate();
        let to_recovery = EpochKeyBlob::seal(0, &epoch_key, &recovery.public().sealing);
        let founding = RosterUpdate {
            roster: v1.clone(),
            key_blobs: vec![to_recovery.clone()],
            recovery_anchor: Some(recovery.anchor(&v1.roster, &epoch_key.public_key())),
            epoch_switch: None,
        };
        // Without its anchor, or anchored by another recovery key: refused.
        let unanchored = RosterUpdate {
            recovery_anchor: None,
            ..founding.clone()
        };
        assert_eq!(
            unanchored.check(&[], 0).unwrap_err(),
            RosterError::BadSignature
        );
        let misanchored = RosterUpdate {
            recovery_anchor: Some(
                RecoveryKey::generate().anchor(&v1.roster, &epoch_key.public_key()),
            ),
            ..founding.clone()
        };
        assert_eq!(
            misanchored.check(&[], 0).unwrap_err(),
            RosterError::BadSignature
        );
        // The honest founding and the honest next version are taken.
        assert!(founding.check(&[], 0).is_ok());
        let second = FamilyKeyPair::generate();
        let v2 = v1
            .roster
            .next(vec![entry("Desk", &first), entry("Laptop", &second)])
            .sign(&first);
        let next = RosterUpdate {
            roster: v2.clone(),
            key_blobs: vec![EpochKeyBlob::seal(0, &epoch_key, &second.sealing_public())],
            recovery_anchor: None,
            epoch_switch: None,
        };
        assert!(next.check(std::slice::from_ref(&v1), 0).is_ok());
        assert!(check_chain(&[v1.clone(), v2.clone()]).unwrap().is_some());

        // A second founding, a replay and a skip are not the next version.
        assert_eq!(
            founding.check(std::slice::from_ref(&v1), 0).unwrap_err(),
            RosterError::NotNext
        );
        assert_eq!(
            next.check(&[v1.clone(), v2.clone()], 0).unwrap_err(),
            RosterError::NotNext
        );
        assert_eq!(next.check(&[], 0).unwrap_err(), RosterError::NotNext);
        // Made by a key the family never listed.
        let outsider = FamilyKeyPair::generate();
        let forged = RosterUpdate {
            roster: v1
                .roster
                .next(vec![entry("Desk", &outsider)])
                .sign(&outsider),
            key_blobs: vec![],
            recovery_anchor: None,
            epoch_switch: None,
        };
        assert_eq!(
            forged.check(std::slice::from_ref(&v1), 0).unwrap_err(),
            RosterError::UnknownSigner
        );
        // A blob for someone the roster does not list.
        let stray = RosterUpdate {
            roster: v2.clone(),
            key_blobs: vec![EpochKeyBlob::seal(
                0,
                &epoch_key,
                &outsider.sealing_public(),
            )],
            recovery_anchor: None,
            epoch_switch: None,
        };
        assert_eq!(
            stray.check(std::slice::from_ref(&v1), 0).unwrap_err(),
            RosterError::KeyBlob
        );
        // Malformed: no computer, a control character, one key twice.
        for computers in [
            vec![],
            vec![entry("Desk\u{7}", &first)],
            vec![entry("Desk", &first), entry("Desk again", &first)],
        ] {
            let bad = Roster {
                version: 1,
                computers,
                recovery: None,
                prev: ChainHash::GENESIS,
            }
            .sign(&first);
            assert_eq!(
                TrustedRoster::founding(&bad).unwrap_err(),
                RosterError::Malformed
            );
        }
    }

    #[test]
    fn a_rotation_is_taken_only_as_the_next_epoch_with_its_key_for_everyone_who_stays() {
        let (first, recovery, v1) = founded();
        let second = FamilyKeyPair::generate();
        let v2 = v1
            .roster
            .next(vec![entry("Desk", &first), entry("Laptop", &second)])
            .sign(&first);
        // The laptop leaves: version 3 without it, and epoch 1.
        let v3 = v2.roster.next(vec![entry("Desk", &first)]).sign(&first);
        let (key, _) = LocationSecretKey::generate();
        let switch = |epoch: u32, by: &FamilyKeyPair| {
            EpochSwitch {
                epoch,
                public: key.public_key(),
                roster_version: 3,
            }
            .sign(by)
        };
        let blobs = vec![
            EpochKeyBlob::seal(1, &key, &first.sealing_public()),
            EpochKeyBlob::seal(1, &key, &recovery.public().sealing),
        ];
        let rotation = RosterUpdate {
            roster: v3,
            key_blobs: blobs.clone(),
            recovery_anchor: None,
            epoch_switch: Some(switch(1, &first)),
        };
        let chain = [v1, v2];
        assert!(rotation.check(&chain, 0).is_ok());
        // A replayed or skipped epoch, a switch by the computer that left,
        // and a rotation that leaves the recovery key without the new key.
        assert_eq!(
            rotation.check(&chain, 1).unwrap_err(),
            RosterError::OldEpoch
        );
        let skipping = RosterUpdate {
            epoch_switch: Some(switch(2, &first)),
            ..rotation.clone()
        };
        assert_eq!(
            skipping.check(&chain, 0).unwrap_err(),
            RosterError::OldEpoch
        );
        let by_leaver = RosterUpdate {
            epoch_switch: Some(switch(1, &second)),
            ..rotation.clone()
        };
        assert_eq!(
            by_leaver.check(&chain, 0).unwrap_err(),
            RosterError::UnknownSigner
        );
        let short = RosterUpdate {
            key_blobs: blobs[..1].to_vec(),
            ..rotation.clone()
        };
        assert_eq!(short.check(&chain, 0).unwrap_err(), RosterError::KeyBlob);
    }
}
