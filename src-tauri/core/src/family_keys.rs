//! The family's keys on this computer (issue 13; `docs/end-to-end-encryption.md`
//! §2): this computer's own key pairs, every location key epoch it was given,
//! and the roster chain it trusts.
//!
//! They live in one file in the app's data directory, sealed with
//! ChaCha20-Poly1305 under a random 256-bit key that lives only in the OS
//! keychain (keychain entries are size-limited on some systems; the roster
//! grows). A copy of the file without the keychain is useless, and a file
//! changed on disk is refused rather than half-read. The file is not meant to
//! be backed up: the family's recovery key is the backup.
//!
//! Nothing here is shown to the window or written to a log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::RngCore;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use waymark_protocol::family_roster::{
    ApprovalBundle, EpochKeyBlob, FamilyKeyPair, RecoveryKey, Roster, RosterEntry, RosterError,
    SignedRoster, TrustedRoster,
};
use waymark_protocol::family_roster::{EpochSwitch, SignedEpochSwitch, SigningPublicKey};
use waymark_protocol::location_sealing::{FamilyOpener, LocationSecretKey};
use waymark_protocol::roster::{FamilyRosters, RecoveryAnchor, RosterUpdate, check_chain};
use waymark_protocol::sealed_report::{ChainHash, LocationPublicKey};
use waymark_protocol::signing::{b64, unb64};

use crate::error::AppError;
use crate::tokens::Keychain;

/// The file's first bytes: format and version.
const MAGIC: &[u8; 8] = b"WMKEYS01";

/// What this computer holds of the family's keys.
pub struct FamilyKeys {
    computer: FamilyKeyPair,
    epochs: BTreeMap<u32, LocationSecretKey>,
    /// Every roster version this computer accepted, oldest first.
    rosters: Vec<SignedRoster>,
    /// The highest of those versions the cloud is known to hold.
    published: u64,
    /// The recovery key as shown, kept (sealed in the file, like every key
    /// here) only until the parent says it is saved, so a crash or a closed
    /// window does not lose the one showing.
    recovery_to_show: Option<String>,
    /// The recovery key's anchor of version 1, to publish with it.
    anchor: Option<RecoveryAnchor>,
}

/// The keys and rosters as they were before a change (see
/// [`FamilyKeys::clone_state`]).
pub struct Snapshot {
    epochs: BTreeMap<u32, LocationSecretKey>,
    rosters: Vec<SignedRoster>,
    published: u64,
}

/// Why a recovery key did not restore the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    /// Not this family's recovery key.
    WrongKey,
    /// What the cloud sent does not check: no anchor, a broken chain, or an
    /// epoch key the recovery key never vouched for.
    Refused,
}

/// What a family's founding computer shows the parent once.
pub struct Founded {
    pub roster: SignedRoster,
    pub recovery: RecoveryKey,
}

impl FamilyKeys {
    /// A computer that has its own keys and nothing of the family's yet: it
    /// waits for approval from a trusted family computer (or a recovery key).
    pub fn new_computer() -> Self {
        Self {
            computer: FamilyKeyPair::generate(),
            epochs: BTreeMap::new(),
            rosters: Vec::new(),
            published: 0,
            recovery_to_show: None,
            anchor: None,
        }
    }

    /// Makes the family's first location key and roster, with this computer
    /// as its only member, and a recovery key.
    pub fn found_family(&mut self, name: &str, member: &str) -> Founded {
        let recovery = RecoveryKey::generate();
        let (epoch_key, _) = LocationSecretKey::generate();
        let recovery_public = recovery.public();
        let roster = Roster {
            version: 1,
            computers: vec![self.entry(name, member)],
            recovery: Some(recovery_public),
            prev: ChainHash::GENESIS,
        }
        .sign(&self.computer);
        self.anchor = Some(recovery.anchor(&roster.roster, &epoch_key.public_key()));
        self.epochs.insert(0, epoch_key);
        self.rosters = vec![roster.clone()];
        self.published = 0;
        self.recovery_to_show = Some(recovery.display());
        Founded { roster, recovery }
    }

    pub fn entry(&self, name: &str, member: &str) -> RosterEntry {
        RosterEntry {
            name: name.to_owned(),
            member: member.to_owned(),
            signing: self.computer.signing_public(),
            sealing: self.computer.sealing_public(),
        }
    }

    /// True once this computer can read the family's locations.
    pub fn is_trusted(&self) -> bool {
        !self.epochs.is_empty() && self.trusted_roster().is_some()
    }

    /// The roster this computer trusts now, checked along the whole chain it
    /// holds.
    pub fn trusted_roster(&self) -> Option<TrustedRoster> {
        let (first, rest) = self.rosters.split_first()?;
        let mut trusted = TrustedRoster::founding(first).ok()?;
        for next in rest {
            trusted.advance(next).ok()?;
        }
        Some(trusted)
    }

    /// Accepts the next roster version (made by another family computer).
    pub fn accept_roster(&mut self, next: SignedRoster) -> Result<(), RosterError> {
        let mut trusted = self.trusted_roster().ok_or(RosterError::BrokenChain)?;
        trusted.advance(&next)?;
        self.rosters.push(next);
        Ok(())
    }

    /// Approves another computer: the next roster with it added (signed by
    /// this computer) and every epoch key sealed to it. The caller sends the
    /// bundle only over a confirmed approval-code channel, and publishes the
    /// new roster.
    pub fn approve(
        &mut self,
        name: &str,
        member: &str,
        newcomer: &RosterEntry,
    ) -> Result<ApprovalBundle, RosterError> {
        let trusted = self.trusted_roster().ok_or(RosterError::BrokenChain)?;
        let mut computers = trusted.roster().computers.clone();
        computers.push(RosterEntry {
            name: name.to_owned(),
            member: member.to_owned(),
            ..newcomer.clone()
        });
        let next = trusted.roster().next(computers).sign(&self.computer);
        self.accept_roster(next)?;
        let keys = self
            .epochs
            .iter()
            .map(|(epoch, key)| EpochKeyBlob::seal(*epoch, key, &newcomer.sealing))
            .collect();
        Ok(ApprovalBundle {
            rosters: self.rosters.clone(),
            keys,
        })
    }

    /// Takes in what an approving computer sent: the roster chain must be
    /// whole from the family's first version and list this computer last,
    /// and every key must open. Nothing is kept unless all of it checks.
    pub fn accept_approval(&mut self, bundle: &ApprovalBundle) -> Result<(), RosterError> {
        let (first, rest) = bundle
            .rosters
            .split_first()
            .ok_or(RosterError::BrokenChain)?;
        let mut trusted = TrustedRoster::founding(first)?;
        for next in rest {
            trusted.advance(next)?;
        }
        if !trusted.roster().contains(&self.computer.signing_public()) {
            return Err(RosterError::UnknownSigner);
        }
        let mut epochs = BTreeMap::new();
        for blob in &bundle.keys {
            epochs.insert(blob.epoch, blob.open(&self.computer)?);
        }
        if epochs.is_empty() {
            return Err(RosterError::KeyBlob);
        }
        self.rosters = bundle.rosters.clone();
        self.epochs = epochs;
        // The approving computer publishes the roster naming this one.
        self.published = self.rosters.len() as u64 - 1;
        Ok(())
    }

    /// The public half of an epoch's key (what the watches seal to).
    pub fn epoch_public(&self, epoch: u32) -> Option<LocationPublicKey> {
        self.epochs.get(&epoch).map(LocationSecretKey::public_key)
    }

    /// The private half of the epoch key whose public half is `public`.
    pub fn epoch_secret_for(&self, public: &LocationPublicKey) -> Option<&LocationSecretKey> {
        self.epochs.values().find(|k| k.public_key() == *public)
    }

    pub fn has_epoch(&self, epoch: u32) -> bool {
        self.epochs.contains_key(&epoch)
    }

    pub fn current_epoch(&self) -> Option<u32> {
        self.epochs.keys().next_back().copied()
    }

    /// Every roster version this computer trusts, oldest first.
    pub fn rosters(&self) -> &[SignedRoster] {
        &self.rosters
    }

    /// The highest roster version the cloud is known to hold.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Notes that the cloud holds every version up to `version`.
    pub fn mark_published(&mut self, version: u64) {
        self.published = self.published.max(version);
    }

    /// What to publish of roster `version` (one this computer holds): the
    /// signed roster and, with the founding one, every epoch key sealed to
    /// the recovery key (blobs are made afresh; the cloud keeps one per
    /// recipient and epoch).
    pub fn update_for(&self, version: u64) -> Option<RosterUpdate> {
        let roster = self.rosters.iter().find(|r| r.roster.version == version)?;
        let key_blobs = match roster.roster.recovery.filter(|_| version == 1) {
            Some(recovery) => self
                .epochs
                .iter()
                .map(|(epoch, key)| EpochKeyBlob::seal(*epoch, key, &recovery.sealing))
                .collect(),
            None => Vec::new(),
        };
        Some(RosterUpdate {
            roster: roster.clone(),
            key_blobs,
            recovery_anchor: self.anchor.clone().filter(|_| version == 1),
            epoch_switch: None,
        })
    }

    /// Drops a family this computer founded that the cloud never took
    /// (another computer of the account founded it first): back to waiting
    /// for approval, with the same computer keys. Never after publishing.
    pub fn abandon_unpublished_family(&mut self) -> bool {
        if self.published > 0 {
            return false;
        }
        self.epochs.clear();
        self.rosters.clear();
        self.recovery_to_show = None;
        true
    }

    /// Restores the family's keys on this computer with the recovery key
    /// (design §8): the cloud's chain must start at the version the recovery
    /// key anchored and still name that key; epoch 0's key sealed to the
    /// recovery key must be the one it anchored, and each later one the one
    /// its signed epoch switch names. The next roster, adding
    /// this computer and signed with the recovery key, is returned to be
    /// published. Nothing changes unless all of it checks.
    pub fn restore(
        &mut self,
        recovery: &RecoveryKey,
        family: &FamilyRosters,
        blobs: &[EpochKeyBlob],
        name: &str,
        member: &str,
    ) -> Result<RosterUpdate, RestoreError> {
        let (chain, anchor, switches) = (
            &family.rosters[..],
            family.recovery_anchor.as_ref(),
            &family.switches[..],
        );
        let public = recovery.public();
        let first = chain.first().ok_or(RestoreError::Refused)?;
        if first.roster.recovery != Some(public) {
            return Err(RestoreError::WrongKey);
        }
        let anchor = anchor
            .filter(|a| a.check(&first.roster))
            .ok_or(RestoreError::Refused)?;
        let trusted = check_chain(chain)
            .ok()
            .flatten()
            .ok_or(RestoreError::Refused)?;
        if trusted.roster().recovery != Some(public) {
            return Err(RestoreError::WrongKey);
        }
        let pair = recovery.key_pair();
        // Each epoch key must be the one vouched for: epoch 0's by the
        // anchor, every later one by its signed switch (design §7).
        let recovery_sealing = public.sealing;
        let opened = |epoch: u32, vouched: &LocationPublicKey| {
            blobs
                .iter()
                .filter(|b| b.epoch == epoch && b.recipient == recovery_sealing)
                .find_map(|b| b.open(&pair).ok())
                .filter(|key| key.public_key() == *vouched)
                .ok_or(RestoreError::Refused)
        };
        let mut epochs = BTreeMap::from([(0, opened(0, &anchor.epoch_public)?)]);
        for switch in switches {
            let upto = usize::try_from(switch.switch.roster_version)
                .ok()
                .filter(|v| *v <= chain.len())
                .ok_or(RestoreError::Refused)?;
            let at_version = check_chain(&chain[..upto])
                .ok()
                .flatten()
                .ok_or(RestoreError::Refused)?;
            let current = epochs.keys().next_back().copied().unwrap_or(0);
            switch
                .check(&at_version, current)
                .map_err(|_| RestoreError::Refused)?;
            epochs.insert(
                switch.switch.epoch,
                opened(switch.switch.epoch, &switch.switch.public)?,
            );
        }
        let mut computers = trusted.roster().computers.clone();
        let me = self.entry(name, member);
        computers.retain(|c| c.signing != me.signing);
        computers.push(me);
        let next = trusted.roster().next(computers).sign(&pair);
        let mut rosters = chain.to_vec();
        rosters.push(next.clone());
        self.rosters = rosters;
        self.epochs = epochs;
        self.published = chain.len() as u64;
        self.anchor = Some(anchor.clone());
        self.recovery_to_show = None;
        Ok(RosterUpdate {
            roster: next,
            key_blobs: Vec::new(),
            recovery_anchor: None,
            epoch_switch: None,
        })
    }

    /// What [`rotate`](Self::rotate) changes, to put back if the cloud
    /// refuses the rotation.
    pub fn clone_state(&self) -> Snapshot {
        Snapshot {
            epochs: self.epochs.clone(),
            rosters: self.rosters.clone(),
            published: self.published,
        }
    }

    pub fn restore_state(&mut self, snapshot: Snapshot) {
        self.epochs = snapshot.epochs;
        self.rosters = snapshot.rosters;
        self.published = snapshot.published;
    }

    /// True while the roster this computer trusts lists it.
    pub fn is_member(&self) -> bool {
        self.trusted_roster()
            .is_some_and(|t| t.roster().contains(&self.computer.signing_public()))
    }

    /// Replaces the family's key because `leaving` left (design §7): a new
    /// epoch, the next roster without them (signed by this computer), the
    /// new key sealed to every computer that stays and to the recovery key,
    /// and the epoch switch the watches will follow. Kept here at once; the
    /// caller publishes the returned update.
    pub fn rotate(&mut self, leaving: &[SigningPublicKey]) -> Result<RosterUpdate, RosterError> {
        let trusted = self.trusted_roster().ok_or(RosterError::BrokenChain)?;
        let current = self.current_epoch().ok_or(RosterError::KeyBlob)?;
        let staying: Vec<RosterEntry> = trusted
            .roster()
            .computers
            .iter()
            .filter(|c| !leaving.contains(&c.signing))
            .cloned()
            .collect();
        if !staying
            .iter()
            .any(|c| c.signing == self.computer.signing_public())
        {
            return Err(RosterError::UnknownSigner);
        }
        let next = trusted.roster().next(staying).sign(&self.computer);
        let (key, _) = LocationSecretKey::generate();
        let epoch = current + 1;
        let roster = &next.roster;
        let mut key_blobs: Vec<EpochKeyBlob> = roster
            .computers
            .iter()
            .map(|c| EpochKeyBlob::seal(epoch, &key, &c.sealing))
            .collect();
        if let Some(recovery) = roster.recovery {
            key_blobs.push(EpochKeyBlob::seal(epoch, &key, &recovery.sealing));
        }
        let switch = EpochSwitch {
            epoch,
            public: key.public_key(),
            roster_version: roster.version,
        }
        .sign(&self.computer);
        self.accept_roster(next.clone())?;
        self.epochs.insert(epoch, key);
        Ok(RosterUpdate {
            roster: next,
            key_blobs,
            recovery_anchor: None,
            epoch_switch: Some(switch),
        })
    }

    /// Takes a new epoch another family computer made: the switch must be
    /// signed by a computer of the roster version it names (one this
    /// computer trusts), and the key sealed to this computer must be the
    /// one it names.
    pub fn accept_epoch(
        &mut self,
        switch: &SignedEpochSwitch,
        blob: &EpochKeyBlob,
    ) -> Result<(), RosterError> {
        let version = switch.switch.roster_version;
        let upto = usize::try_from(version).map_err(|_| RosterError::NotNext)?;
        let at_version = check_chain(self.rosters.get(..upto).ok_or(RosterError::NotNext)?)?
            .ok_or(RosterError::NotNext)?;
        let current = self.current_epoch().ok_or(RosterError::KeyBlob)?;
        switch.check(&at_version, current)?;
        if blob.epoch != switch.switch.epoch {
            return Err(RosterError::KeyBlob);
        }
        let key = blob.open(&self.computer)?;
        if key.public_key() != switch.switch.public {
            return Err(RosterError::KeyBlob);
        }
        self.epochs.insert(switch.switch.epoch, key);
        Ok(())
    }

    /// The recovery key, until the parent says it is saved.
    pub fn recovery_to_show(&self) -> Option<&str> {
        self.recovery_to_show.as_deref()
    }

    pub fn recovery_saved(&mut self) {
        self.recovery_to_show = None;
    }

    /// A decryptor holding every epoch key this computer has.
    pub fn opener(&self) -> FamilyOpener {
        let mut opener = FamilyOpener::new();
        for (epoch, key) in &self.epochs {
            opener.add_epoch_key(*epoch, key.clone());
        }
        opener
    }

    pub fn computer(&self) -> &FamilyKeyPair {
        &self.computer
    }
}

/// The stored form (inside the sealed file).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    computer: String,
    epochs: BTreeMap<u32, String>,
    rosters: Vec<SignedRoster>,
    published: u64,
    recovery_to_show: Option<String>,
    anchor: Option<RecoveryAnchor>,
}

/// Where this computer's family keys are kept: the sealed file and the
/// keychain entry holding its key.
pub struct KeyFile {
    path: PathBuf,
    keychain: Keychain,
}

impl KeyFile {
    /// The keys for `account`'s family at `cloud_origin`, in `data_dir`:
    /// one file and keychain entry per account, so signing in to another
    /// account on this computer never mixes two families' keys.
    pub fn new(data_dir: &Path, keychain_service: &str, cloud_origin: &str, account: &str) -> Self {
        Self {
            path: data_dir.join(format!("family-keys-{account}.sealed")),
            keychain: Keychain::new(
                keychain_service,
                &format!("{cloud_origin} family keys {account}"),
            ),
        }
    }

    /// The sealed file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys held here, `None` if this computer has none yet.
    pub async fn load(&self) -> Result<Option<FamilyKeys>, AppError> {
        let sealed = match tokio::fs::read(&self.path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AppError::FamilyKeysUnreadable(e.to_string())),
        };
        let Some(secret) = self.keychain.load().await? else {
            return Err(AppError::FamilyKeysUnreadable(
                "the keychain no longer holds the file's key".into(),
            ));
        };
        let key = file_key(&secret)?;
        let (head, body) = sealed
            .split_at_checked(MAGIC.len() + 12)
            .filter(|(head, _)| head.starts_with(MAGIC))
            .ok_or_else(|| AppError::FamilyKeysUnreadable("not a Waymark key file".into()))?;
        let nonce = Nonce::try_assume_unique_for_key(&head[MAGIC.len()..])
            .map_err(|_| AppError::FamilyKeysUnreadable("not a Waymark key file".into()))?;
        let mut buf = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(MAGIC), &mut buf)
            .map_err(|_| {
                AppError::FamilyKeysUnreadable("the file was changed or belongs elsewhere".into())
            })?;
        let stored: Stored = serde_json::from_slice(plain).map_err(|_| {
            AppError::FamilyKeysUnreadable("the file's contents are damaged".into())
        })?;
        stored.into_keys().map(Some)
    }

    /// Writes the keys: a new file beside the old one, then renamed over it,
    /// so a crash leaves one whole file. Reuses the keychain's key if there
    /// is one.
    pub async fn save(&self, keys: &FamilyKeys) -> Result<(), AppError> {
        let secret = match self.keychain.load().await? {
            Some(secret) => secret,
            None => {
                let mut raw = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut raw);
                let secret = b64(&raw);
                self.keychain.save(&secret).await?;
                secret
            }
        };
        let key = file_key(&secret)?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = serde_json::to_vec(&Stored::from_keys(keys))
            .map_err(|e| AppError::FamilyKeysUnreadable(e.to_string()))?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(MAGIC),
            &mut buf,
        )
        .map_err(|_| AppError::FamilyKeysUnreadable("sealing failed".into()))?;
        let mut file = Vec::with_capacity(MAGIC.len() + 12 + buf.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&nonce);
        file.extend_from_slice(&buf);
        let write_error = |e: std::io::Error| AppError::FamilyKeysUnreadable(e.to_string());
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(write_error)?;
        }
        let tmp = self.path.with_extension("tmp");
        write_private(&tmp, &file).await.map_err(write_error)?;
        tokio::fs::rename(&tmp, &self.path)
            .await
            .map_err(write_error)
    }

    /// Forgets the keys on this computer (file and keychain entry).
    pub async fn forget(&self) -> Result<(), AppError> {
        match tokio::fs::remove_file(&self.path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(AppError::FamilyKeysUnreadable(e.to_string())),
        }
        self.keychain.delete().await
    }
}

/// Owner read/write only, on systems that have modes.
pub(crate) async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    file.sync_all().await
}

fn file_key(secret: &str) -> Result<LessSafeKey, AppError> {
    let raw = unb64(secret)
        .filter(|raw| raw.len() == 32)
        .ok_or_else(|| AppError::FamilyKeysUnreadable("the keychain's key is damaged".into()))?;
    Ok(LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &raw).expect("32-byte key"),
    ))
}

impl Stored {
    fn from_keys(keys: &FamilyKeys) -> Self {
        Self {
            computer: b64(&keys.computer.to_bytes()),
            epochs: keys
                .epochs
                .iter()
                .map(|(e, k)| (*e, b64(&k.to_bytes())))
                .collect(),
            rosters: keys.rosters.clone(),
            published: keys.published,
            recovery_to_show: keys.recovery_to_show.clone(),
            anchor: keys.anchor.clone(),
        }
    }

    fn into_keys(self) -> Result<FamilyKeys, AppError> {
        let damaged = || AppError::FamilyKeysUnreadable("the file's contents are damaged".into());
        let computer: [u8; 64] = unb64(&self.computer)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(damaged)?;
        let mut epochs = BTreeMap::new();
        for (epoch, key) in self.epochs {
            let bytes: [u8; 32] = unb64(&key)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(damaged)?;
            epochs.insert(epoch, LocationSecretKey::from_bytes(&bytes));
        }
        Ok(FamilyKeys {
            computer: FamilyKeyPair::from_bytes(&computer),
            epochs,
            rosters: self.rosters,
            published: self.published,
            recovery_to_show: self.recovery_to_show,
            anchor: self.anchor,
        })
    }
}
