//! Watches as the registry knows them: devices (from verified
//! certificates), bindings to accounts, status polls and revocation
//! (pairing, which makes a binding, is `pairing.rs`).
//!
//! Rule 2 lives here as a type: every query of one watch's data takes a
//! [`BoundWatch`], and the only way to get one is [`Store::bound_watch`],
//! which asks whether the watch is bound to the caller's family.

use sqlx::Row;
use waymark_protocol::ids::{FamilyId, WatchId};
use waymark_protocol::signing::b64;
use waymark_protocol::watches::{REPORTING_WINDOW_MS, WatchRecord, WatchState};

use super::sealed_rows::sealed_latest;
use super::{DbResult, LockScope, Store, record};

/// Proof that the binding check passed: this watch is bound to this family.
/// Constructed only by [`Store::bound_watch`], [`Store::list_watches`] and
/// pairing (which makes the binding).
#[derive(Debug, Clone)]
pub struct BoundWatch {
    pub(super) device_id: WatchId,
    pub(super) family_id: FamilyId,
    pub name: String,
    pub model: String,
    pub bound_at: i64,
    /// Set when the parent revoked it and kept its history.
    pub revoked_at: Option<i64>,
}

impl BoundWatch {
    pub fn id(&self) -> &WatchId {
        &self.device_id
    }

    pub fn family_id(&self) -> &FamilyId {
        &self.family_id
    }

    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A device the cloud knows (from a verified certificate).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub id: String,
    pub certificate: Vec<u8>,
    pub last_seq: i64,
    pub revoked_at: Option<i64>,
}

const BINDING_COLUMNS: &str =
    "b.device_id, b.account_id, b.name, d.model, b.bound_at, b.revoked_at";

/// A row read from the database is checked like any other input: a
/// malformed id there is an error, never a watch.
fn bound_from(r: &sqlx::any::AnyRow) -> DbResult<BoundWatch> {
    let decode = |e: waymark_protocol::ids::InvalidId| sqlx::Error::Decode(Box::new(e));
    Ok(BoundWatch {
        device_id: WatchId::try_from(r.try_get::<String, _>("device_id")?).map_err(decode)?,
        family_id: FamilyId::try_from(r.try_get::<String, _>("account_id")?).map_err(decode)?,
        name: r.get("name"),
        model: r.get("model"),
        bound_at: r.get("bound_at"),
        revoked_at: r.get("revoked_at"),
    })
}

impl Store {
    /// The one decision of rule 2: is `device_id` bound to `family`?
    /// `None` for a watch of another family and for one that does not exist alike.
    pub async fn bound_watch(
        &self,
        family: &FamilyId,
        device_id: &WatchId,
    ) -> DbResult<Option<BoundWatch>> {
        let row = sqlx::query(&format!(
            "SELECT {BINDING_COLUMNS} FROM bindings b JOIN devices d ON d.id = b.device_id
             WHERE b.account_id = $1 AND b.device_id = $2"
        ))
        .bind(family.as_str())
        .bind(device_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(bound_from).transpose()
    }

    /// Every watch bound to `family`, as [`Self::bound_watch`] reads each,
    /// in one query: what a live stream checks its events against when a
    /// burst brings many watches it has not seen yet.
    pub async fn bound_watches(&self, family: &FamilyId) -> DbResult<Vec<BoundWatch>> {
        let rows = sqlx::query(&format!(
            "SELECT {BINDING_COLUMNS} FROM bindings b JOIN devices d ON d.id = b.device_id
             WHERE b.account_id = $1"
        ))
        .bind(family.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(bound_from).collect()
    }

    /// Every watch bound to the family, with its latest batch (sealed).
    pub async fn list_watches(&self, family: &FamilyId) -> DbResult<Vec<WatchRecord>> {
        self.watch_infos(family, None).await
    }

    /// One bound watch as the list shows it.
    pub async fn watch_info(&self, watch: &BoundWatch) -> DbResult<Option<WatchRecord>> {
        Ok(self
            .watch_infos(&watch.family_id, Some(watch.device_id.as_str()))
            .await?
            .pop())
    }

    async fn watch_infos(&self, family: &str, only: Option<&str>) -> DbResult<Vec<WatchRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {BINDING_COLUMNS}, d.certificate, f.t_last, f.body AS batch, s.body AS setup
             FROM bindings b JOIN devices d ON d.id = b.device_id
             LEFT JOIN batches f ON f.device_id = b.device_id
               AND f.seq = (SELECT MAX(seq) FROM batches WHERE device_id = b.device_id)
             LEFT JOIN fix_setups s ON s.device_id = f.device_id AND s.setup_id = f.setup_id
             WHERE b.account_id = $1 AND (CAST($2 AS TEXT) IS NULL OR b.device_id = $3) ORDER BY b.bound_at, b.device_id"
        ))
        .bind(family)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        let now = self.now();
        rows.iter()
            .map(|r| {
                let w = bound_from(r)?;
                let last_seen: Option<i64> = r.try_get("t_last")?;
                let latest = match (r.try_get("batch")?, r.try_get("setup")?) {
                    (Some(batch), Some(setup)) => Some(sealed_latest(batch, setup)?),
                    _ => None,
                };
                let state = if w.revoked_at.is_some() {
                    WatchState::Revoked
                } else if last_seen.is_some_and(|t| now - t <= REPORTING_WINDOW_MS) {
                    WatchState::Reporting
                } else {
                    WatchState::Quiet
                };
                let certificate: Vec<u8> = r.try_get("certificate")?;
                Ok(WatchRecord {
                    id: w.device_id.to_string(),
                    name: w.name,
                    model: w.model,
                    paired_at: w.bound_at,
                    last_seen,
                    state,
                    hardware_key: waymark_protocol::device::hardware_key(&certificate),
                    certificate: b64(&certificate),
                    latest,
                })
            })
            .collect()
    }

    pub async fn rename_watch(&self, watch: &BoundWatch, name: &str, actor: &str) -> DbResult<()> {
        let mut tx = self.write_tx(LockScope::Account(watch.family_id())).await?;
        sqlx::query("UPDATE bindings SET name = $1 WHERE device_id = $2 AND account_id = $3")
            .bind(name)
            .bind(watch.device_id.as_str())
            .bind(watch.family_id.as_str())
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            self.now(),
            &watch.family_id,
            "watch.renamed",
            Some(actor),
            &format!("Renamed “{}” to “{name}”", watch.name),
        )
        .await?;
        tx.commit().await
    }

    pub async fn device(&self, device_id: &str) -> DbResult<Option<Device>> {
        sqlx::query_as(
            "SELECT d.id, d.certificate, c.last_seq, d.revoked_at FROM devices d
             JOIN device_counters c ON c.device_id = d.id WHERE d.id = $1",
        )
        .bind(device_id)
        .fetch_optional(&self.device_pool)
        .await
    }

    /// Records a status poll made at `at` if it is newer than every poll
    /// accepted before: false for a replayed (or older) poll.
    pub async fn accept_status(&self, device_id: &str, at: i64) -> DbResult<bool> {
        let done =
            sqlx::query("UPDATE devices SET status_at = $1 WHERE id = $2 AND status_at < $3")
                .bind(at)
                .bind(device_id)
                .bind(at)
                .execute(&self.device_pool)
                .await?
                .rows_affected();
        Ok(done == 1)
    }

    /// The display name of the account a live device is bound to.
    pub async fn owner_of(&self, device_id: &str) -> DbResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT a.display_name FROM bindings b JOIN accounts a ON a.id = b.account_id
             WHERE b.device_id = $1 AND b.revoked_at IS NULL",
        )
        .bind(device_id)
        .fetch_optional(&self.device_pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Refuses the watch's key from now on; keeps its history (readable by
    /// the same account, marked revoked) or deletes it with the binding.
    pub async fn revoke_watch(
        &self,
        watch: &BoundWatch,
        keep_history: bool,
        actor: &str,
    ) -> DbResult<()> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Account(watch.family_id())).await?;
        sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(watch.device_id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pairing_offers WHERE device_id = $1")
            .bind(watch.device_id.as_str())
            .execute(&mut *tx)
            .await?;
        // Its zones go with it: a revoked watch checks nothing any more.
        for table in ["watch_zone_sets", "watch_zone_words"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE device_id = $1"))
                .bind(watch.device_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if keep_history {
            sqlx::query(
                "UPDATE bindings SET revoked_at = $1 WHERE device_id = $2 AND account_id = $3",
            )
            .bind(now)
            .bind(watch.device_id.as_str())
            .bind(watch.family_id.as_str())
            .execute(&mut *tx)
            .await?;
        } else {
            for table in ["batches", "fix_setups"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE device_id = $1"))
                    .bind(watch.device_id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM bindings WHERE device_id = $1 AND account_id = $2")
                .bind(watch.device_id.as_str())
                .bind(watch.family_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let what = if keep_history {
            "history kept"
        } else {
            "history deleted"
        };
        record(
            &mut tx,
            self.now(),
            &watch.family_id,
            "watch.revoked",
            Some(actor),
            &format!("Revoked “{}” ({what})", watch.name),
        )
        .await?;
        tx.commit().await?;
        if !keep_history {
            self.scrub_deleted().await;
        }
        Ok(())
    }
}
