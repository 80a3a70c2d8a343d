//! Safe zones in the app (issue 16): what the family's zones are, which of
//! them each watch has put in force, and saving a new version. Zones are
//! family secrets: this computer seals the family's copy to the current key
//! epoch and each watch's copy to that watch's zone key, and signs both with
//! its roster key. What it reads back it believes only if a computer of the
//! family's roster signed it and it is not older than the newest version
//! this computer has seen; what a watch holds it believes only from the
//! watch's own signed word (its status poll), never from the cloud.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use reqwest::Method;
use serde::Serialize;
use waymark_protocol::family_time::FamilyTimeZone;
use waymark_protocol::family_zones::{FamilyZones, ZonesUpload};
use waymark_protocol::safe_zones::{Zone, ZoneId};
use waymark_protocol::sealed_report::LocationPublicKey;
use waymark_protocol::status_poll::SignedStatus;
use waymark_protocol::watches::WatchRecord;
use waymark_protocol::zone_relay::MAX_ZONES;
use waymark_protocol::zone_sealing::{SealedZoneSet, ZoneSet, ZoneSetError};

use crate::Core;
use crate::error::AppError;
use crate::family_keys::FamilyKeys;
use crate::reports::{Reader, WAITING};

/// The parent API takes bodies up to 64 KiB; a save is refused here, with
/// a reason, before it could be refused there.
const MAX_SAVE_BYTES: usize = 60 * 1024;

/// The family's zones as this computer shows them.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ZonesView {
    /// The version shown (0: the family has saved none yet).
    #[ts(type = "number")]
    pub version: u64,
    pub zones: Vec<Zone>,
    /// The IANA time zone the schedules are read in (with daylight saving):
    /// the family's, sealed in the set, or this computer's before a first save.
    pub time_zone: String,
    /// Why the family's zones are not shown (this computer waits for
    /// approval, or the cloud's copy did not check), in words.
    pub problem: Option<String>,
    /// Whether this computer can save zones (it holds the family's keys).
    pub can_edit: bool,
    pub watches: Vec<WatchZones>,
}

/// One watch's zones, as the watch itself said.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct WatchZones {
    pub watch_id: String,
    pub name: String,
    /// The version the watch checks its fixes against (0: none yet).
    #[ts(type = "number")]
    pub in_force: u64,
    /// When the watch said so (its signed poll), Unix ms.
    #[ts(type = "number | null")]
    pub said_at: Option<i64>,
    /// The watch refused the newest version: why, in words.
    pub refused: Option<String>,
    /// The watch has told its zone key: zones can be sealed to it.
    pub ready: bool,
}

/// What a watch said in its signed poll, once checked here.
struct CheckedWord {
    zone_key: LocationPublicKey,
    held: u64,
    at: i64,
    refused: Option<String>,
}

/// The words of a refusal code a watch reported.
fn refusal_message(code: &str) -> String {
    ZoneSetError::from_code(code).map_or_else(
        || format!("The watch refused the zones ({code})."),
        |e| format!("The watch refused the zones: {}", e.message()),
    )
}

/// The watch's word, if its device signature checks against the
/// certificate this app trusts and it names this watch.
fn check_word(reader: &Reader, record: &WatchRecord, word: &SignedStatus) -> Option<CheckedWord> {
    let cert = reader.certificate(&record.id, &record.certificate)?;
    if word.status.device_id != record.id || word.verify(&cert).is_err() {
        return None;
    }
    let zones = word.status.zones.as_ref()?;
    Some(CheckedWord {
        zone_key: zones.zone_key,
        held: zones.held,
        at: word.status.at,
        refused: zones.refused.as_ref().map(|r| refusal_message(&r.code)),
    })
}

/// Everything a load found, for a save to build on.
struct Loaded {
    view: ZonesView,
    /// Each ready watch's zone key, checked.
    keys: BTreeMap<String, LocationPublicKey>,
    /// The newest version the family has (shown or not).
    newest: u64,
    stored: HashMap<String, Option<u64>>,
    time_zone: FamilyTimeZone,
    /// The family's copy is one this computer checked, signed by a
    /// computer removed since: to be signed again by this one.
    resign: bool,
}

/// This computer's time zone, for a family's first zones (UTC when the
/// system names none the database knows).
fn computer_time_zone() -> FamilyTimeZone {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| FamilyTimeZone::parse(&name))
        .unwrap_or_else(FamilyTimeZone::utc)
}

/// The time zones a parent can choose from.
pub fn time_zone_names() -> Vec<String> {
    FamilyTimeZone::names()
}

impl Core {
    /// The family's zones and each watch's state.
    pub async fn zones(&self) -> Result<ZonesView, AppError> {
        Ok(self.load_zones().await?.view)
    }

    /// Zone names by id, for alerts and the history trail.
    pub async fn zone_names(&self) -> Result<HashMap<ZoneId, String>, AppError> {
        Ok(self
            .zones()
            .await?
            .zones
            .into_iter()
            .map(|z| (z.id, z.name))
            .collect())
    }

    async fn load_zones(&self) -> Result<Loaded, AppError> {
        let reader = self.reader().await?;
        let family: FamilyZones = self.get("/api/v1/zones").await?;
        let records: Vec<WatchRecord> = self.get("/api/v1/watches").await?;
        let seen_file = self.zones_seen_file().await?;
        let (seen, seen_digest) = read_seen(&seen_file);
        let mut resign = false;
        let mut time_zone = computer_time_zone();
        let mut view = ZonesView {
            version: 0,
            zones: Vec::new(),
            time_zone: String::new(),
            problem: None,
            can_edit: reader.keys().is_some(),
            watches: Vec::new(),
        };
        let newest = family.family.as_ref().map_or(0, |f| f.version).max(seen);
        match (reader.keys(), &family.family) {
            (None, _) => view.problem = Some(WAITING.into()),
            (Some(_), None) if seen > 0 => {
                view.problem = Some(ZoneSetError::Replayed.message().into());
            }
            (Some(_), None) => {}
            (Some(keys), Some(sealed)) => match open_family_copy(keys, sealed, seen, seen_digest) {
                Ok((set, signer_removed)) => {
                    write_seen(&seen_file, &set);
                    if signer_removed {
                        tracing::info!(
                            version = set.version,
                            "the family's zones were signed by a computer removed since; this one signs them again"
                        );
                        resign = true;
                    }
                    view.version = set.version;
                    view.zones = set.zones;
                    time_zone = set.time_zone;
                }
                Err(e) => {
                    tracing::warn!(code = e.code(), "the family's zones were refused");
                    view.problem = Some(e.message().into());
                }
            },
        }
        let mut keys = BTreeMap::new();
        let mut stored = HashMap::new();
        for w in &family.watches {
            let Some(record) = records.iter().find(|r| r.id == w.watch_id) else {
                continue;
            };
            let word = w.word.as_ref().and_then(|s| check_word(&reader, record, s));
            if let Some(word) = &word {
                keys.insert(record.id.clone(), word.zone_key);
            }
            stored.insert(record.id.clone(), w.stored);
            view.watches.push(WatchZones {
                watch_id: record.id.clone(),
                name: record.name.clone(),
                in_force: word.as_ref().map_or(0, |w| w.held),
                said_at: word.as_ref().map(|w| w.at),
                refused: word.and_then(|w| w.refused),
                ready: keys.contains_key(&record.id),
            });
        }
        view.time_zone = time_zone.name().to_owned();
        Ok(Loaded {
            view,
            keys,
            newest,
            stored,
            time_zone,
            resign,
        })
    }

    /// Saves `zones` as the family's next version: checked here first (each
    /// zone's rules, at most 20, only the family's watches), sealed to the
    /// family and to each watch that told its zone key, and signed. The
    /// schedules are read in `time_zone` (an IANA name), or in the zone
    /// set's own when it is `None`.
    pub async fn save_zones(
        &self,
        zones: Vec<Zone>,
        time_zone: Option<String>,
    ) -> Result<ZonesView, AppError> {
        let loaded = self.load_zones().await?;
        let time_zone = match time_zone {
            None => loaded.time_zone.clone(),
            Some(name) => FamilyTimeZone::parse(&name).ok_or_else(|| {
                AppError::Zone(format!(
                    "“{name}” is not a time zone this app knows. Choose one from the list."
                ))
            })?,
        };
        self.upload_zones(&loaded, zones, time_zone).await?;
        self.zones().await
    }

    /// Seals the family's zones again for watches that have told their zone
    /// key but do not have the newest set (a watch paired since the last
    /// save), and signs again a set whose signer was removed from the
    /// family since (else every app would refuse it and the parent would
    /// have to draw the zones anew): called by the family check. Returns
    /// whether it saved.
    pub async fn hand_zones_to_new_watches(&self) -> Result<bool, AppError> {
        let loaded = self.load_zones().await?;
        if !loaded.view.can_edit || loaded.view.problem.is_some() || loaded.view.version == 0 {
            return Ok(false);
        }
        let behind = loaded
            .keys
            .keys()
            .any(|id| loaded.stored.get(id).copied().flatten() < Some(loaded.view.version));
        if !behind && !loaded.resign {
            return Ok(false);
        }
        let zones = loaded.view.zones.clone();
        let time_zone = loaded.time_zone.clone();
        match self.upload_zones(&loaded, zones, time_zone).await {
            Ok(()) => Ok(true),
            // Another computer saved first: its save reached the watch.
            Err(AppError::Cloud { status: 409, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn upload_zones(
        &self,
        loaded: &Loaded,
        zones: Vec<Zone>,
        time_zone: FamilyTimeZone,
    ) -> Result<(), AppError> {
        let reader = self.reader().await?;
        let keys = reader.keys().ok_or(AppError::NotTrusted)?;
        if zones.len() > MAX_ZONES {
            return Err(AppError::Zone(format!(
                "A family can have at most {MAX_ZONES} zones. Delete one first."
            )));
        }
        for zone in &zones {
            zone.validate()
                .map_err(|e| AppError::Zone(format!("“{}”: {}", zone.name.trim(), e.message())))?;
            if let Some(w) = zone
                .watches
                .iter()
                .find(|w| !loaded.view.watches.iter().any(|v| v.watch_id == **w))
            {
                tracing::info!(watch = %w, "a zone names a watch the family no longer has");
                return Err(AppError::Zone(format!(
                    "“{}” names a watch that is no longer in the family. Choose its watches again.",
                    zone.name.trim()
                )));
            }
        }
        let version = loaded.newest + 1;
        let epoch = keys.current_epoch().ok_or(AppError::NotTrusted)?;
        let epoch_public = keys.epoch_public(epoch).ok_or(AppError::NotTrusted)?;
        let set = ZoneSet {
            version,
            time_zone,
            zones,
        };
        let family = SealedZoneSet::seal_for_family(&set, &epoch_public, keys.computer());
        let watches = loaded
            .keys
            .iter()
            .map(|(id, key)| {
                let own = ZoneSet {
                    version,
                    time_zone: set.time_zone.clone(),
                    zones: set
                        .zones
                        .iter()
                        .filter(|z| z.watches.iter().any(|w| w == id))
                        .cloned()
                        .collect(),
                };
                SealedZoneSet::seal(&own, id, key, keys.computer())
            })
            .collect();
        let upload = ZonesUpload { family, watches };
        let size = serde_json::to_vec(&upload).map(|b| b.len()).unwrap_or(0);
        if size > MAX_SAVE_BYTES {
            return Err(AppError::Zone(
                "These zones are too large to save together. Use fewer areas, or areas with fewer corners (circles are smallest)."
                    .into(),
            ));
        }
        self.send_empty(Method::PUT, "/api/v1/zones", Some(&upload))
            .await?;
        write_seen(&self.zones_seen_file().await?, &set);
        tracing::info!(version, "safe zones saved");
        Ok(())
    }

    /// Where this computer keeps the newest zone version it has seen for
    /// the family (beside the family's key file).
    async fn zones_seen_file(&self) -> Result<PathBuf, AppError> {
        let (file, _) = self.family_key_file().await?;
        Ok(file.path().with_extension("zones-seen"))
    }
}

/// Opens the family's copy: signed by a computer of the roster, or else
/// (the `bool`) by a computer removed since, when it is exactly the set this
/// computer last checked (`seen`, `seen_digest`).
fn open_family_copy(
    keys: &FamilyKeys,
    sealed: &SealedZoneSet,
    seen: u64,
    seen_digest: Option<[u8; 32]>,
) -> Result<(ZoneSet, bool), ZoneSetError> {
    let trusted = keys.trusted_roster().ok_or(ZoneSetError::UnknownSigner)?;
    let secret = keys
        .epoch_secret_for(&sealed.recipient)
        .ok_or(ZoneSetError::NotForThisWatch)?;
    match sealed.open_in_app(secret, &trusted, seen) {
        Err(ZoneSetError::UnknownSigner) => {
            let digest = seen_digest.ok_or(ZoneSetError::UnknownSigner)?;
            Ok((sealed.open_known_in_app(secret, seen, &digest)?, true))
        }
        opened => Ok((opened?, false)),
    }
}

/// The newest zone version this computer has checked, and the digest of
/// that set (`VERSION DIGEST` in the file; a file with only the version,
/// as written before, has no digest).
fn read_seen(path: &std::path::Path) -> (u64, Option<[u8; 32]>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut words = text.split_whitespace();
    let version = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let digest = words
        .next()
        .and_then(waymark_protocol::signing::unb64)
        .and_then(|d| <[u8; 32]>::try_from(d).ok());
    (version, digest)
}

/// Remembers `set` as the newest checked, unless a newer one was.
fn write_seen(path: &std::path::Path, set: &ZoneSet) {
    let (version, digest) = read_seen(path);
    if version > set.version || (version == set.version && digest.is_some()) {
        return;
    }
    let line = format!(
        "{} {}\n",
        set.version,
        waymark_protocol::signing::b64(&set.digest())
    );
    if let Err(e) = std::fs::write(path, line) {
        tracing::warn!(error = %e, "could not remember the newest zone version seen");
    }
}
