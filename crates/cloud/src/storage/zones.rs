//! Safe zones as the cloud keeps them (issue 16): sealed, signed zone sets
//! it cannot read, and each watch's signed word on the set it holds. Every
//! read for a parent goes through the family's bound watches; a watch is
//! handed only the set stored for it by the family it is bound to now.

use sqlx::Row;
use waymark_protocol::family_zones::{FamilyZones, WatchZones};
use waymark_protocol::ids::FamilyId;
use waymark_protocol::status_poll::SignedStatus;
use waymark_protocol::zone_relay::{SealedZoneSet, ZoneWord};

use super::devices::BoundWatch;
use super::{DbResult, LockScope, Store, record};

/// What saving a family's zones did.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// The family already has this version or a newer one.
    Conflict,
}

fn decode<T: serde::de::DeserializeOwned>(raw: &str) -> DbResult<T> {
    serde_json::from_str(raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("zone types serialise")
}

impl Store {
    /// The family's own copy, and for each of `watches` (the caller's
    /// family's, from the binding check) the stored version and its word.
    pub async fn family_zones(
        &self,
        family: &FamilyId,
        watches: &[BoundWatch],
    ) -> DbResult<FamilyZones> {
        let row = sqlx::query("SELECT sealed FROM family_zone_sets WHERE family_id = $1")
            .bind(family.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let family_copy = match row {
            Some(r) => Some(decode(&r.get::<String, _>("sealed"))?),
            None => None,
        };
        let mut out = Vec::with_capacity(watches.len());
        for watch in watches.iter().filter(|w| w.is_live()) {
            let id = watch.id().as_str();
            let stored: Option<(i64,)> = sqlx::query_as(
                "SELECT version FROM watch_zone_sets WHERE device_id = $1 AND family_id = $2",
            )
            .bind(id)
            .bind(family.as_str())
            .fetch_optional(&self.pool)
            .await?;
            let word: Option<(String,)> =
                sqlx::query_as("SELECT word FROM watch_zone_words WHERE device_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            out.push(WatchZones {
                watch_id: id.to_owned(),
                stored: stored.map(|s| s.0 as u64),
                word: word.map(|w| decode(&w.0)).transpose()?,
            });
        }
        Ok(FamilyZones {
            family: family_copy,
            watches: out,
        })
    }

    /// Stores a new version of the family's zones, the family's copy and
    /// each watch's (every one of `watches` bound to `family`, checked by
    /// the caller), in one transaction; [`Saved::Conflict`] if the family
    /// already has this version or a newer one.
    pub async fn save_zones(
        &self,
        family: &FamilyId,
        family_copy: &SealedZoneSet,
        watches: &[(&BoundWatch, &SealedZoneSet)],
        actor: &str,
    ) -> DbResult<Saved> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Account(family.as_str())).await?;
        let held: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM family_zone_sets WHERE family_id = $1")
                .bind(family.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if held.is_some_and(|(v,)| v as u64 >= family_copy.version) {
            return Ok(Saved::Conflict);
        }
        sqlx::query(
            "INSERT INTO family_zone_sets (family_id, version, sealed, saved_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (family_id) DO UPDATE SET version = excluded.version, sealed = excluded.sealed, saved_at = excluded.saved_at",
        )
        .bind(family.as_str())
        .bind(family_copy.version as i64)
        .bind(encode(family_copy))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (watch, sealed) in watches {
            sqlx::query(
                "INSERT INTO watch_zone_sets (device_id, family_id, version, sealed) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (device_id) DO UPDATE SET family_id = excluded.family_id, version = excluded.version, sealed = excluded.sealed",
            )
            .bind(watch.id().as_str())
            .bind(family.as_str())
            .bind(sealed.version as i64)
            .bind(encode(*sealed))
            .execute(&mut *tx)
            .await?;
        }
        // Every member sees that the zones changed and from which computer;
        // what changed is sealed.
        record(
            &mut tx,
            now,
            family.as_str(),
            "family.zones_saved",
            Some(actor),
            &format!("Version {}", family_copy.version),
        )
        .await?;
        tx.commit().await?;
        Ok(Saved::Saved)
    }

    /// The set stored for a watch by the family it is bound to now, if it
    /// is newer than `held` (the version the watch says it has).
    pub async fn zones_for_watch(
        &self,
        device_id: &str,
        held: u64,
    ) -> DbResult<Option<SealedZoneSet>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT z.sealed FROM watch_zone_sets z
             JOIN bindings b ON b.device_id = z.device_id AND b.account_id = z.family_id
             WHERE z.device_id = $1 AND b.revoked_at IS NULL AND z.version > $2",
        )
        .bind(device_id)
        .bind(held as i64)
        .fetch_optional(&self.device_pool)
        .await?;
        row.map(|r| decode(&r.0)).transpose()
    }

    /// Keeps a watch's signed status poll as its word on its zones, when
    /// the word changed (a poll a minute saying the same writes nothing).
    pub async fn record_zone_word(&self, signed: &SignedStatus, word: &ZoneWord) -> DbResult<()> {
        let device_id = signed.status.device_id.as_str();
        let held: Option<(String,)> =
            sqlx::query_as("SELECT word FROM watch_zone_words WHERE device_id = $1")
                .bind(device_id)
                .fetch_optional(&self.device_pool)
                .await?;
        let same = held
            .and_then(|(raw,)| serde_json::from_str::<SignedStatus>(&raw).ok())
            .is_some_and(|old| old.status.zones.as_ref() == Some(word));
        if same {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO watch_zone_words (device_id, word, at) VALUES ($1, $2, $3)
             ON CONFLICT (device_id) DO UPDATE SET word = excluded.word, at = excluded.at",
        )
        .bind(device_id)
        .bind(encode(signed))
        .bind(signed.status.at)
        .execute(&self.device_pool)
        .await?;
        Ok(())
    }
}
