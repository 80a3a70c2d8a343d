//! The family's roster and what the cloud stores and relays of the family's
//! keys, as wire types and the checks any reader runs (issue 13;
//! `docs/end-to-end-encryption.md` §6–§7). Outside the `e2e` feature: the
//! cloud checks what it stores with the same rules as the apps, so garbage
//! gets a 4xx, though no app relies on the cloud having checked.
//!
//! - The **roster** is a signed, versioned list of the family's computers.
//!   Each version names the hash of the one before and is signed by a
//!   computer of that previous version (or by the family's recovery key), so
//!   a reader who trusts one version accepts a later one only along the
//!   chain: the cloud stores rosters but cannot make one.
//! - An **epoch switch** tells the watches the family's new location key.
//! - An **epoch key blob** carries one epoch's private location key to one
//!   recipient; opening it needs that recipient's key (`family_roster`).
//!
//! Making and signing these, and opening blobs, is in `family_roster`.

use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::account::clean_name;
use crate::sealed_report::{ChainHash, EncappedKey, LocationPublicKey};
use crate::signing::{Canonical, unb64};

const ROSTER_TAG: &str = "waymark/roster/v1";
const EPOCH_SWITCH_TAG: &str = "waymark/epoch-switch/v1";
const RECOVERY_ANCHOR_TAG: &str = "waymark/recovery-anchor/v1";

/// The most computers a family roster lists (the cloud refuses more).
pub const MAX_COMPUTERS: usize = 32;
/// The most epoch key blobs one roster change may carry.
pub const MAX_KEY_BLOBS: usize = 2 * MAX_COMPUTERS;

crate::sealed_report::fixed_bytes!(
    /// An Ed25519 public key (a family computer's, or the recovery key's).
    SigningPublicKey,
    32
);

pub(crate) fn verify(key: &SigningPublicKey, message: &[u8], signature: &str) -> bool {
    unb64(signature).is_some_and(|sig| {
        UnparsedPublicKey::new(&ED25519, key.0)
            .verify(message, &sig)
            .is_ok()
    })
}

/// One computer the family trusts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    /// The session name the parent gave it ("Kitchen laptop").
    pub name: String,
    /// The account (family member) it belongs to.
    pub member: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub signing: SigningPublicKey,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub sealing: LocationPublicKey,
}

/// The recovery key's public halves, in every roster version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryPublic {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub signing: SigningPublicKey,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub sealing: LocationPublicKey,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// 1 for the family's first roster, then one more each change.
    pub version: u64,
    pub computers: Vec<RosterEntry>,
    pub recovery: Option<RecoveryPublic>,
    /// [`Roster::hash`] of the previous version; all zero for version 1.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
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

    /// What a reader refuses before any signature check: a version of 0,
    /// no computer or more than [`MAX_COMPUTERS`], a name or member that is
    /// not a clean name, or one key listed twice.
    pub fn check_shape(&self) -> Result<(), &'static str> {
        if self.version == 0 {
            return Err("a roster's version starts at 1");
        }
        if self.computers.is_empty() || self.computers.len() > MAX_COMPUTERS {
            return Err("a roster lists 1 to 32 computers");
        }
        for (i, e) in self.computers.iter().enumerate() {
            if clean_name(&e.name).as_deref() != Some(e.name.as_str())
                || clean_name(&e.member).as_deref() != Some(e.member.as_str())
            {
                return Err(
                    "a computer's name and member are 1–64 characters, trimmed, with no control characters",
                );
            }
            if self.computers[..i]
                .iter()
                .any(|o| o.signing == e.signing || o.sealing == e.sealing)
            {
                return Err("a roster lists each computer's keys once");
            }
        }
        Ok(())
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
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRoster {
    pub roster: Roster,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
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
    /// Refused by [`Roster::check_shape`].
    Malformed,
}

/// The roster a reader trusts now, advanced only along the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoster(Roster);

impl TrustedRoster {
    /// A family's first roster, as its founding computer made it (or as a
    /// watch received it over the code-authenticated pairing channel).
    pub fn founding(signed: &SignedRoster) -> Result<Self, RosterError> {
        let r = &signed.roster;
        r.check_shape().map_err(|_| RosterError::Malformed)?;
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

    /// The roster a watch received in its family bundle at pairing: any
    /// version, trusted because the code-authenticated channel brought it,
    /// but still whole and signed by one of its own computers or its
    /// recovery key.
    pub fn from_pairing(signed: &SignedRoster) -> Result<Self, RosterError> {
        let r = &signed.roster;
        r.check_shape().map_err(|_| RosterError::Malformed)?;
        let by_recovery = r.recovery.is_some_and(|k| k.signing == signed.signer);
        if !r.contains(&signed.signer) && !by_recovery {
            return Err(RosterError::UnknownSigner);
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
        next.check_shape().map_err(|_| RosterError::Malformed)?;
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EpochSwitch {
    pub epoch: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub public: LocationPublicKey,
    /// The roster version the switch was made under.
    pub roster_version: u64,
}

impl EpochSwitch {
    pub(crate) fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new(EPOCH_SWITCH_TAG)
            .u64(self.epoch.into())
            .bytes(&self.public.0)
            .u64(self.roster_version)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedEpochSwitch {
    pub switch: EpochSwitch,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochKeyBlob {
    pub epoch: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub recipient: LocationPublicKey,
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub enc: EncappedKey,
    pub ciphertext: String,
}

/// A whole roster chain, checked from the family's first version: what a
/// reader trusts at its end. `None` for an empty chain.
pub fn check_chain(chain: &[SignedRoster]) -> Result<Option<TrustedRoster>, RosterError> {
    let Some((first, rest)) = chain.split_first() else {
        return Ok(None);
    };
    let mut trusted = TrustedRoster::founding(first)?;
    for next in rest {
        trusted.advance(next)?;
    }
    Ok(Some(trusted))
}

/// The recovery key's own signature over the family's first roster and
/// its first location key, made at founding while the recovery key is in
/// hand. It is what a computer restoring with the recovery key trusts: the
/// roster's recovery public key is public, so without this a cloud could
/// offer a chain of its own making (listing that public key) and an epoch
/// key of its own sealed to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveryAnchor {
    /// [`Roster::hash`] of version 1.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub roster: ChainHash,
    /// Epoch 0's public location key.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub epoch_public: LocationPublicKey,
    pub signature: String,
}

impl RecoveryAnchor {
    pub(crate) fn signing_bytes(roster: &ChainHash, epoch_public: &LocationPublicKey) -> Vec<u8> {
        Canonical::new(RECOVERY_ANCHOR_TAG)
            .bytes(&roster.0)
            .bytes(&epoch_public.0)
            .finish()
    }

    /// True if the recovery key of `first` (the family's version 1) signed
    /// this anchor for that very roster.
    pub fn check(&self, first: &Roster) -> bool {
        first.version == 1
            && self.roster == first.hash()
            && first.recovery.is_some_and(|r| {
                verify(
                    &r.signing,
                    &Self::signing_bytes(&self.roster, &self.epoch_public),
                    &self.signature,
                )
            })
    }
}

/// `GET /api/v1/family`: every roster version the cloud holds for the
/// caller's family, oldest first (empty before the family is founded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FamilyRosters {
    pub rosters: Vec<SignedRoster>,
    /// The recovery key's anchor of version 1 (see [`RecoveryAnchor`]).
    pub recovery_anchor: Option<RecoveryAnchor>,
    /// Every epoch switch the family published, oldest first.
    #[serde(default)]
    pub switches: Vec<SignedEpochSwitch>,
    /// Computers of the current roster whose every session at this cloud
    /// has ended (signed out, or ended from another computer): the family's
    /// other computers rotate the key away from them. The cloud's word,
    /// which only ever makes a computer leave.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub ended: Vec<SigningPublicKey>,
}

/// `POST /api/v1/family/this-computer`: which roster computer the calling
/// session is, so the family learns when that computer's sessions end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ThisComputer {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub signing: SigningPublicKey,
}

/// `POST /api/v1/family/rosters`: the family's next roster version and the
/// epoch key blobs that go with it (at founding, epoch 0's key sealed to the
/// recovery key), stored together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RosterUpdate {
    pub roster: SignedRoster,
    #[serde(default)]
    pub key_blobs: Vec<EpochKeyBlob>,
    /// With version 1 of a family that has a recovery key: its anchor.
    #[serde(default)]
    pub recovery_anchor: Option<RecoveryAnchor>,
    /// A rotation (design §7): the new epoch, signed by a computer of this
    /// roster; `key_blobs` then carry its key to every computer listed and
    /// to the recovery key.
    #[serde(default)]
    pub epoch_switch: Option<SignedEpochSwitch>,
}

impl RosterUpdate {
    /// Checks the update against the chain the cloud holds: the next
    /// version, chained and signed as [`TrustedRoster::advance`] requires (or
    /// a valid founding roster on an empty chain), and every blob addressed
    /// to a computer of the new roster or to its recovery key.
    /// `current_epoch`: the newest epoch the family switched to (0 before
    /// any switch); a switch must be the next one.
    pub fn check(
        &self,
        chain: &[SignedRoster],
        current_epoch: u32,
    ) -> Result<TrustedRoster, RosterError> {
        let trusted = match check_chain(chain)? {
            None => TrustedRoster::founding(&self.roster)?,
            Some(mut current) => {
                current.advance(&self.roster)?;
                current
            }
        };
        let roster = trusted.roster();
        let anchored = match (&self.recovery_anchor, roster.version, roster.recovery) {
            (Some(anchor), 1, Some(_)) => anchor.check(roster),
            (None, 1, Some(_)) => false,
            (Some(_), _, _) => false,
            (None, _, _) => true,
        };
        if !anchored {
            return Err(RosterError::BadSignature);
        }
        if self.key_blobs.len() > MAX_KEY_BLOBS {
            return Err(RosterError::KeyBlob);
        }
        let addressed = |b: &EpochKeyBlob| {
            roster.computers.iter().any(|e| e.sealing == b.recipient)
                || roster.recovery.is_some_and(|r| r.sealing == b.recipient)
        };
        if let Some(switch) = &self.epoch_switch {
            switch.check(&trusted, current_epoch)?;
            if switch.switch.epoch != current_epoch + 1 {
                return Err(RosterError::OldEpoch);
            }
            let carried = |recipient: &LocationPublicKey| {
                self.key_blobs
                    .iter()
                    .any(|b| b.epoch == switch.switch.epoch && b.recipient == *recipient)
            };
            let everyone = roster
                .computers
                .iter()
                .map(|c| c.sealing)
                .chain(roster.recovery.map(|r| r.sealing));
            if !everyone.into_iter().all(|r| carried(&r)) {
                return Err(RosterError::KeyBlob);
            }
        }
        if !self.key_blobs.iter().all(addressed)
            || self
                .key_blobs
                .iter()
                .any(|b| unb64(&b.ciphertext).is_none_or(|c| c.len() != 32 + 16))
        {
            return Err(RosterError::KeyBlob);
        }
        Ok(trusted)
    }
}
