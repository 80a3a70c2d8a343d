//! The family this watch reports to, as its pairing brought it: the key
//! epoch it seals fixes to and the roster whose computers may move it to a
//! later epoch. Public values only; kept beside the queue, erased with it.
//!
//! After pairing the watch follows the family on its status polls: a roster
//! version is taken only if it chains to the one held and is signed by one
//! of its computers (or the recovery key), and a key epoch switch only if a
//! computer of the roster it was made under signed it. The cloud relays both
//! and can make neither; whatever does not check is refused and the watch
//! keeps what it held (design §7).

use std::fs;
use std::path::Path;

use waymark_protocol::pairing::WatchFamilyBundle;
use waymark_protocol::roster::{FamilyRosters, RosterError, TrustedRoster};

use crate::cloud_link::{CloudLink, LinkError};
use crate::provisioning::Watch;

pub const FAMILY_FILE: &str = "family.json";

/// Written beside and renamed over, so a crash never leaves half a file.
pub fn save(dir: &Path, bundle: &WatchFamilyBundle) -> anyhow::Result<()> {
    let tmp = dir.join("family.json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(bundle)?)?;
    fs::rename(tmp, dir.join(FAMILY_FILE))?;
    Ok(())
}

pub fn load(dir: &Path) -> Option<WatchFamilyBundle> {
    serde_json::from_slice(&fs::read(dir.join(FAMILY_FILE)).ok()?).ok()
}

/// What following the family's published state did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Nothing newer, or no family held (a watch paired before pairing v2).
    Unchanged,
    /// Took newer roster versions and/or key epochs; now at this epoch.
    Advanced { roster_version: u64, epoch: u32 },
    /// Something did not check; the watch keeps what it reached before it.
    Refused {
        why: RosterError,
        roster_version: u64,
        epoch: u32,
    },
}

/// Advances `held` along what the cloud published: roster versions in
/// order, and at each version the epoch switches made under it.
pub fn follow(held: &mut WatchFamilyBundle, published: &FamilyRosters) -> Followed {
    let Ok(mut trusted) = TrustedRoster::from_pairing(&held.roster) else {
        return Followed::Refused {
            why: RosterError::Malformed,
            roster_version: held.roster.roster.version,
            epoch: held.epoch,
        };
    };
    let before = (held.roster.roster.version, held.epoch);
    let refused = |why, held: &WatchFamilyBundle| Followed::Refused {
        why,
        roster_version: held.roster.roster.version,
        epoch: held.epoch,
    };
    loop {
        let version = trusted.roster().version;
        let mut switches: Vec<_> = published
            .switches
            .iter()
            .filter(|s| s.switch.roster_version == version && s.switch.epoch > held.epoch)
            .collect();
        switches.sort_by_key(|s| s.switch.epoch);
        for switch in switches {
            if let Err(why) = switch.check(&trusted, held.epoch) {
                return refused(why, held);
            }
            held.epoch = switch.switch.epoch;
            held.epoch_public = switch.switch.public;
        }
        let Some(next) = published
            .rosters
            .iter()
            .find(|r| r.roster.version == version + 1)
        else {
            break;
        };
        if let Err(why) = trusted.advance(next) {
            return refused(why, held);
        }
        held.roster = next.clone();
    }
    if (held.roster.roster.version, held.epoch) == before {
        Followed::Unchanged
    } else {
        Followed::Advanced {
            roster_version: held.roster.roster.version,
            epoch: held.epoch,
        }
    }
}

/// One status poll, and the family followed as far as it checks; what was
/// taken is saved before this returns.
pub async fn keep_in_step(
    watch: &Watch,
    link: &CloudLink,
    dir: &Path,
) -> Result<Followed, LinkError> {
    let status = link.status(watch).await?;
    follow_published(dir, status.family.as_ref())
}

/// What a status poll said of the family, followed as far as it checks and
/// saved before this returns.
pub fn follow_published(
    dir: &Path,
    published: Option<&FamilyRosters>,
) -> Result<Followed, LinkError> {
    let (Some(published), Some(mut held)) = (published, load(dir)) else {
        return Ok(Followed::Unchanged);
    };
    let followed = follow(&mut held, published);
    match &followed {
        Followed::Unchanged => {}
        Followed::Advanced { .. } => tracing::info!(?followed, "family followed"),
        Followed::Refused { .. } => tracing::warn!(?followed, "family update refused"),
    }
    if !matches!(followed, Followed::Unchanged) {
        save(dir, &held).map_err(|e| LinkError::Offline(format!("cannot save: {e}")))?;
    }
    Ok(followed)
}
