//! The family's keys at sign-in (issue 13, `docs/end-to-end-encryption.md`
//! §12 step 1): the first computer of an account founds the family (its
//! first location key, roster version 1 and a recovery key shown once) and
//! publishes what the cloud keeps; a later computer of the account waits
//! for approval from one that holds the keys. A trusted computer keeps its
//! roster chain in step with the cloud's, accepting only versions that
//! follow the chain it already trusts.

use reqwest::Method;
use serde::Serialize;
use waymark_protocol::error::ErrorCode;
use waymark_protocol::family_roster::{EpochKeyBlob, RecoveryKey};
use waymark_protocol::ids::{AccountId, FamilyId};
use waymark_protocol::roster::{FamilyRosters, ThisComputer};
use waymark_protocol::signing::b64;

use crate::Core;
use crate::error::AppError;
use crate::family_keys::{FamilyKeys, KeyFile, RestoreError};

/// What the window shows of the family's keys on this computer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FamilyKeysView {
    /// This computer holds the family's keys.
    Trusted {
        /// The names of the family's computers that hold the keys.
        computers: Vec<String>,
        /// The recovery key, shown until the parent says it is saved.
        recovery_key: Option<String>,
    },
    /// Signed in, but no family computer has approved this one yet: it sees
    /// the watch list, never a sealed location.
    WaitingForApproval,
}

impl Core {
    /// Loads (or makes) this computer's keys for the signed-in account and
    /// brings them in step with the cloud: founds the family if the account
    /// has none yet, publishes versions the cloud lacks, accepts newer ones.
    pub async fn family_keys(&self) -> Result<FamilyKeysView, AppError> {
        let _one = self.family_lock.lock().await;
        let (file, account) = self.family_key_file().await?;
        let mut keys = match file.load().await? {
            Some(keys) => keys,
            None => {
                let keys = FamilyKeys::new_computer();
                file.save(&keys).await?;
                keys
            }
        };
        let cloud: FamilyRosters = self.get("/api/v1/family").await?;
        if !keys.is_trusted() && cloud.rosters.is_empty() {
            keys.found_family(&self.settings().session_name, account.as_str());
            // Kept before it is published: a crash in between republishes it.
            file.save(&keys).await?;
        }
        if keys.is_trusted() {
            let outcome = self.keep_in_step(&mut keys, &cloud).await;
            file.save(&keys).await?;
            outcome?;
        }
        // The cloud learns which computer this session is, so that when it
        // ends the family's other computers replace the key.
        let this = ThisComputer {
            signing: keys.computer().signing_public(),
        };
        self.send_empty(Method::POST, "/api/v1/family/this-computer", Some(&this))
            .await?;
        if keys.is_trusted() && keys.is_member() {
            let me = keys.computer().signing_public();
            let leaving: Vec<_> = cloud.ended.iter().copied().filter(|k| *k != me).collect();
            if !leaving.is_empty() {
                let rotated = self.rotate(&mut keys, &leaving).await;
                file.save(&keys).await?;
                rotated?;
            }
        }
        if !keys.is_trusted() || !keys.is_member() {
            self.ask_to_join(&keys).await?;
        }
        Ok(view(&keys))
    }

    /// On a computer without the keys: restores the family's keys with the
    /// recovery key typed in (when every computer that held them is lost).
    pub async fn restore_with_recovery_key(&self, typed: &str) -> Result<FamilyKeysView, AppError> {
        let recovery = RecoveryKey::parse(typed).ok_or(AppError::BadRecoveryKey)?;
        let _one = self.family_lock.lock().await;
        let (file, account) = self.family_key_file().await?;
        let mut keys = file.load().await?.unwrap_or_else(FamilyKeys::new_computer);
        if keys.is_trusted() {
            return Ok(view(&keys));
        }
        let family: FamilyRosters = self.get("/api/v1/family").await?;
        let recipient = b64(&recovery.public().sealing.0);
        let blobs: Vec<EpochKeyBlob> = self
            .get(&format!("/api/v1/family/key-blobs?recipient={recipient}"))
            .await?;
        let update = keys
            .restore(
                &recovery,
                &family,
                &blobs,
                &self.settings().session_name,
                account.as_str(),
            )
            .map_err(|e| match e {
                RestoreError::WrongKey => AppError::RecoveryKeyWrong,
                RestoreError::Refused => AppError::FamilyRosterRefused,
            })?;
        // Kept only once the cloud took it (as with an approval); a failure
        // changes nothing, and the recovery key can be typed again.
        self.send_empty(Method::POST, "/api/v1/family/rosters", Some(&update))
            .await?;
        keys.mark_published(update.roster.roster.version);
        file.save(&keys).await?;
        Ok(view(&keys))
    }

    /// The parent saved (or printed) the recovery key: it is not shown again.
    pub async fn recovery_key_saved(&self) -> Result<(), AppError> {
        let _one = self.family_lock.lock().await;
        let (file, _) = self.family_key_file().await?;
        if let Some(mut keys) = file.load().await? {
            keys.recovery_saved();
            file.save(&keys).await?;
        }
        Ok(())
    }

    /// Writes the recovery key (while it is still shown) to a text file in
    /// `dir`, readable by this user only, and says where.
    pub async fn save_recovery_key(&self, dir: &std::path::Path) -> Result<String, AppError> {
        let _one = self.family_lock.lock().await;
        let keys = self.family_key_file().await?.0.load().await?;
        let Some(key) = keys.as_ref().and_then(FamilyKeys::recovery_to_show) else {
            return Err(AppError::Settings(
                "The recovery key is no longer shown on this computer, so it cannot be saved again.".into(),
            ));
        };
        let path = dir.join("Waymark recovery key.txt");
        let text = format!(
            "Waymark family recovery key\n\n    {key}\n\nWith this key, a new computer can restore your family's keys if every computer that holds them is lost.\nKeep it offline and private: whoever has it and your passkey can read your family's locations.\n"
        );
        crate::family_keys::write_private(&path, text.as_bytes())
            .await
            .map_err(|e| {
                AppError::Settings(format!(
                    "The recovery key could not be saved to {} ({e}). Print it or write it down instead.",
                    path.display()
                ))
            })?;
        Ok(path.display().to_string())
    }

    /// The key file of the signed-in account in its current family, and the
    /// account's id (a roster entry's member). One file per account and
    /// family: joining another family starts a new one (this computer then
    /// waits for approval there), and leaving finds the old one again.
    pub(crate) async fn family_key_file(&self) -> Result<(KeyFile, String), AppError> {
        let me = self.me().await?;
        let account = AccountId::parse(&me.account_id).ok_or(AppError::BadAnswer)?;
        let family = FamilyId::parse(&me.family_id).ok_or(AppError::BadAnswer)?;
        let label = key_file_label(&account, &family);
        Ok((self.key_file(&label)?, me.account_id))
    }

    /// The key file named by `label` ([`key_file_label`]).
    pub(crate) fn key_file(&self, label: &str) -> Result<KeyFile, AppError> {
        let settings = self.settings();
        if settings.data_dir.as_os_str().is_empty() {
            return Err(AppError::Settings(
                "Waymark has no folder for its data on this computer. Check that HOME is set, then restart Waymark.".into(),
            ));
        }
        Ok(KeyFile::new(
            &settings.data_dir,
            &settings.keychain_service,
            &self.cloud().origin().origin().ascii_serialization(),
            label,
        ))
    }

    /// Accepts the cloud's newer versions along the trusted chain and
    /// publishes the ones it lacks. A cloud whose chain departs from this
    /// computer's is refused and changes nothing, except for a family this
    /// computer founded that the cloud never took (another computer of the
    /// account founded first): that one is dropped and this computer waits.
    /// Replaces the family's key away from `leaving` and publishes it. If
    /// another computer rotated first, its version is taken at the next start.
    async fn rotate(
        &self,
        keys: &mut FamilyKeys,
        leaving: &[waymark_protocol::roster::SigningPublicKey],
    ) -> Result<(), AppError> {
        let saved = keys.clone_state();
        let update = keys
            .rotate(leaving)
            .map_err(|_| AppError::FamilyRosterRefused)?;
        match self
            .send_empty(Method::POST, "/api/v1/family/rosters", Some(&update))
            .await
        {
            Ok(()) => {
                keys.mark_published(update.roster.roster.version);
                tracing::info!(computers_left = leaving.len(), "family key replaced");
                Ok(())
            }
            Err(AppError::Cloud {
                code: ErrorCode::RosterConflict,
                ..
            }) => {
                // Someone else's rotation won: drop ours, take theirs next time.
                keys.restore_state(saved);
                Ok(())
            }
            Err(e) => {
                keys.restore_state(saved);
                Err(e)
            }
        }
    }

    async fn keep_in_step(
        &self,
        keys: &mut FamilyKeys,
        family: &FamilyRosters,
    ) -> Result<(), AppError> {
        let cloud = &family.rosters;
        let held = keys.rosters().len();
        let departs = cloud.iter().zip(keys.rosters()).any(|(c, k)| c != k);
        if departs {
            if keys.abandon_unpublished_family() {
                return Ok(());
            }
            return Err(AppError::FamilyRosterRefused);
        }
        for newer in cloud.iter().skip(held) {
            keys.accept_roster(newer.clone())
                .map_err(|_| AppError::FamilyRosterRefused)?;
        }
        keys.mark_published(cloud.len() as u64);
        // New epochs made by other computers: this computer's key for each.
        let newer: Vec<_> = family
            .switches
            .iter()
            .filter(|s| keys.current_epoch().is_some_and(|e| s.switch.epoch > e))
            .collect();
        if !newer.is_empty() && keys.is_member() {
            let mine = b64(&keys.computer().sealing_public().0);
            let blobs: Vec<EpochKeyBlob> = self
                .get(&format!("/api/v1/family/key-blobs?recipient={mine}"))
                .await?;
            for switch in newer {
                let Some(blob) = blobs.iter().find(|b| b.epoch == switch.switch.epoch) else {
                    break;
                };
                keys.accept_epoch(switch, blob)
                    .map_err(|_| AppError::FamilyRosterRefused)?;
            }
        }
        for version in (cloud.len() as u64 + 1)..=(held as u64) {
            let Some(update) = keys.update_for(version) else {
                break;
            };
            match self
                .send_empty(Method::POST, "/api/v1/family/rosters", Some(&update))
                .await
            {
                Ok(()) => keys.mark_published(version),
                // Another computer of the account founded the family between
                // our read and our write.
                Err(AppError::Cloud {
                    code: ErrorCode::RosterConflict,
                    ..
                }) if keys.abandon_unpublished_family() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// An account in its own family keeps the name key files had before
/// co-parents; in another family, the file names both.
pub fn key_file_label(account: &AccountId, family: &FamilyId) -> String {
    if account.as_str() == family.as_str() {
        account.to_string()
    } else {
        format!("{account}-in-{family}")
    }
}

fn view(keys: &FamilyKeys) -> FamilyKeysView {
    match keys
        .trusted_roster()
        .filter(|_| keys.is_trusted() && keys.is_member())
    {
        Some(trusted) => FamilyKeysView::Trusted {
            computers: trusted
                .roster()
                .computers
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            recovery_key: keys.recovery_to_show().map(str::to_owned),
        },
        None => FamilyKeysView::WaitingForApproval,
    }
}
