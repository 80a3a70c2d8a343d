//! Opening the family's sealed reports (issue 13, `docs/end-to-end-encryption.md`
//! §3): what the cloud sends is checked here before anything is shown. A
//! watch's certificate must chain to a manufacturer this app trusts and
//! name the watch; each report must carry that watch's signature (or be
//! chained to one that does, for history); then the family's keys open it.
//! Whatever fails is named for the parent and never drawn.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use waymark_protocol::device::verify_device_certificate;
use waymark_protocol::location_sealing::OpenError;
use waymark_protocol::report::Fix;
use waymark_protocol::signing::unb64;
use waymark_protocol::watches::{SealedLatest, WatchInfo, WatchRecord};

use crate::Core;
use crate::error::AppError;
use crate::family_keys::FamilyKeys;
use crate::pairing::manufacturer_cas;

/// Why a report is not shown, in the parent's words.
pub const WAITING: &str = "This computer is waiting for approval from another of your family's computers, so it cannot show places yet.";
pub const UNTRUSTED: &str = "This watch's certificate is not from a watch maker this app trusts, so its reports are not shown.";
pub const ALTERED: &str =
    "The latest report was changed after the watch sent it, so it is not shown.";
pub const UNREADABLE: &str =
    "The latest report is sealed to a family key this computer does not hold.";

/// The family's keys as last loaded, and the key file's state then.
pub(crate) type KeysCache = std::sync::Mutex<Option<(PathBuf, SystemTime, Arc<FamilyKeys>)>>;

/// What this computer needs to open reports.
pub struct Reader {
    /// `None` while this computer waits for approval.
    keys: Option<Arc<FamilyKeys>>,
    manufacturers: Vec<Vec<u8>>,
}

impl Core {
    /// The family's keys on this computer (read again only when the key
    /// file changed) and the manufacturers it trusts.
    pub async fn reader(&self) -> Result<Reader, AppError> {
        let manufacturers = manufacturer_cas(self)?;
        let (file, _) = self.family_key_file().await?;
        let path = file.path().to_owned();
        let Ok(stamp) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
            return Ok(Reader {
                keys: None,
                manufacturers,
            });
        };
        let cached = self
            .keys_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(p, s, _)| *p == path && *s == stamp)
            .map(|(_, _, keys)| keys.clone());
        let keys = match cached {
            Some(keys) => Some(keys),
            None => {
                let keys = file.load().await?.filter(|k| k.is_trusted()).map(Arc::new);
                if let Some(keys) = &keys {
                    *self.keys_cache.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((path, stamp, keys.clone()));
                }
                keys
            }
        };
        Ok(Reader {
            keys,
            manufacturers,
        })
    }

    /// The account's watches, each with its latest report opened here.
    pub async fn watches(&self) -> Result<Vec<WatchInfo>, AppError> {
        let records: Vec<WatchRecord> = self.get("/api/v1/watches").await?;
        let reader = self.reader().await?;
        Ok(records.into_iter().map(|r| reader.watch_info(r)).collect())
    }
}

impl Reader {
    pub fn keys(&self) -> Option<&FamilyKeys> {
        self.keys.as_deref()
    }

    /// The watch's certificate (DER), if it chains to a manufacturer this
    /// app trusts and its key is the watch's id: the cloud can hand over
    /// neither another maker's watch nor another watch's certificate.
    pub fn certificate(&self, watch_id: &str, certificate: &str) -> Option<Vec<u8>> {
        let der = unb64(certificate)?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let cert = verify_device_certificate(&der, &self.manufacturers, now).ok()?;
        (cert.device_id == watch_id).then_some(cert.der)
    }

    /// The watch as the window shows it: its latest report opened, or why not.
    pub fn watch_info(&self, r: WatchRecord) -> WatchInfo {
        let opened = match (&r.latest, self.certificate(&r.id, &r.certificate)) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(UNTRUSTED),
            (Some(latest), Some(cert)) => self.open_latest(&r.id, &cert, latest).map(Some),
        };
        let (latest, report_problem) = match opened {
            Ok(fix) => (fix, None),
            Err(why) => (None, Some(why.to_owned())),
        };
        // Only a report that opened says which key the watch uses (its
        // header is signed; a refused one says nothing).
        let key_epoch = latest
            .and(r.latest.as_ref())
            .map(|l| l.batch.batch.header.epoch);
        let current = self.keys.as_ref().and_then(|k| k.current_epoch());
        let behind_key = matches!((key_epoch, current), (Some(e), Some(c)) if e < c);
        WatchInfo {
            id: r.id,
            name: r.name,
            model: r.model,
            paired_at: r.paired_at,
            battery: latest.map(|f| f.bat),
            last_seen: r.last_seen,
            latest,
            state: r.state,
            hardware_key: r.hardware_key,
            report_problem,
            key_epoch,
            behind_key,
        }
    }

    /// The newest fix of a watch's latest batch, checked by its own
    /// signature (one batch: no chain to lean on) and opened.
    fn open_latest(
        &self,
        watch_id: &str,
        cert: &[u8],
        latest: &SealedLatest,
    ) -> Result<Fix, &'static str> {
        let keys = self.keys.as_ref().ok_or(WAITING)?;
        let ours = latest.batch.batch.header.device_id == watch_id
            && latest.setup.setup.device_id == watch_id;
        if !ours || latest.batch.verify(cert).is_err() || latest.setup.verify(cert).is_err() {
            return Err(ALTERED);
        }
        let mut opener = keys.opener();
        let opened = opener
            .add_setup(&latest.setup.setup)
            .and_then(|()| opener.open(&latest.batch.batch));
        match opened {
            Ok(fixes) => fixes.into_iter().max_by_key(|f| f.t).ok_or(ALTERED),
            Err(OpenError::NoEpochKey) => Err(UNREADABLE),
            Err(_) => Err(ALTERED),
        }
    }
}
