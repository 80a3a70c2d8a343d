//! The family's roster versions and epoch key blobs (issue 13): read back
//! in order, and appended only as the family's next version, checked against
//! the stored chain inside the account's write lock so two computers cannot
//! both add version n+1.

use waymark_protocol::ids::{FamilyId, SessionId};
use waymark_protocol::roster::{
    EpochKeyBlob, FamilyRosters, RecoveryAnchor, RosterError, RosterUpdate, SignedEpochSwitch,
    SignedRoster, SigningPublicKey,
};
use waymark_protocol::sealed_report::LocationPublicKey;
use waymark_protocol::signing::b64;

use super::{DbResult, LockScope, Store, Tx, record};

/// What storing a roster update led to.
#[derive(Debug, PartialEq, Eq)]
pub enum AddRoster {
    Added,
    /// Refused by the protocol's check against the stored chain; nothing
    /// was written.
    Refused(RosterError),
}

impl Store {
    /// Every roster version of the account's family, oldest first, and
    /// the recovery key's anchor of the first.
    pub async fn family_rosters(&self, family: &FamilyId) -> DbResult<FamilyRosters> {
        let rows = sqlx::query_as(ROSTERS)
            .bind(family.as_str())
            .fetch_all(&self.pool)
            .await?;
        let anchor: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT recovery_anchor FROM family_rosters WHERE account_id = $1 AND version = 1",
        )
        .bind(family.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let recovery_anchor = anchor
            .and_then(|(json,)| json)
            .map(|json| serde_json::from_str::<RecoveryAnchor>(&json))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(e.into()))?;
        let rosters = decode(rows)?;
        let switches: Vec<(String,)> = sqlx::query_as(
            "SELECT switch FROM epoch_switches WHERE account_id = $1 ORDER BY epoch",
        )
        .bind(family.as_str())
        .fetch_all(&self.pool)
        .await?;
        let switches = switches
            .into_iter()
            .map(|(json,)| serde_json::from_str::<SignedEpochSwitch>(&json))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sqlx::Error::Decode(e.into()))?;
        // A computer every one of whose sessions has ended.
        let gone: Vec<(String,)> = sqlx::query_as(
            "SELECT fc.signing FROM family_computers fc JOIN sessions s ON s.id = fc.session_id WHERE fc.account_id = $1 GROUP BY fc.signing HAVING MAX(CASE WHEN s.ended_at IS NULL THEN 1 ELSE 0 END) = 0",
        )
        .bind(family.as_str())
        .fetch_all(&self.pool)
        .await?;
        // And every computer of an account that is no longer a member
        // (removed, or left): its sessions may still be alive elsewhere.
        let members = self.member_ids(family).await?;
        let ended = match rosters.last() {
            Some(current) => {
                let mut ended: Vec<SigningPublicKey> = gone
                    .iter()
                    .filter_map(|(key,)| SigningPublicKey::parse(key))
                    .filter(|key| current.roster.contains(key))
                    .collect();
                for c in &current.roster.computers {
                    let still = members.iter().any(|m| m.as_str() == c.member);
                    if !still && !ended.contains(&c.signing) {
                        ended.push(c.signing);
                    }
                }
                ended
            }
            None => Vec::new(),
        };
        Ok(FamilyRosters {
            rosters,
            recovery_anchor,
            switches,
            ended,
        })
    }

    /// The family a bound, unrevoked watch reports to, as its status poll
    /// carries it (so the watch follows roster versions and key epochs);
    /// `None` before the family has a roster.
    pub async fn family_of_watch(&self, device_id: &str) -> DbResult<Option<FamilyRosters>> {
        let bound: Option<(String,)> = sqlx::query_as(
            "SELECT account_id FROM bindings WHERE device_id = $1 AND revoked_at IS NULL",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((family,)) = bound else {
            return Ok(None);
        };
        let family = FamilyId::try_from(family).map_err(|e| sqlx::Error::Decode(e.into()))?;
        let family = self.family_rosters(&family).await?;
        Ok((!family.rosters.is_empty()).then_some(family))
    }

    /// Notes that `session` is the family computer with signing key `signing`.
    pub async fn record_computer(
        &self,
        family: &FamilyId,
        session: &SessionId,
        signing: &SigningPublicKey,
    ) -> DbResult<()> {
        sqlx::query("INSERT INTO family_computers (session_id, account_id, signing) VALUES ($1, $2, $3) ON CONFLICT (session_id) DO UPDATE SET signing = excluded.signing, account_id = excluded.account_id")
            .bind(session.as_str())
            .bind(family.as_str())
            .bind(b64(&signing.0))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The epoch key blobs of the account's family sealed to `recipient`.
    pub async fn key_blobs(
        &self,
        family: &FamilyId,
        recipient: &LocationPublicKey,
    ) -> DbResult<Vec<EpochKeyBlob>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT blob FROM epoch_key_blobs WHERE account_id = $1 AND recipient = $2 ORDER BY epoch",
        )
        .bind(family.as_str())
        .bind(b64(&recipient.0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(json,)| serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into())))
            .collect()
    }

    /// Appends `update` if it is the family's next version (checked with
    /// [`RosterUpdate::check`] against the chain as stored now), with its key
    /// blobs, in one transaction.
    pub async fn add_roster(
        &self,
        family: &FamilyId,
        update: &RosterUpdate,
        actor: &SessionId,
    ) -> DbResult<AddRoster> {
        let mut tx = self.write_tx(LockScope::Account(family.as_str())).await?;
        let chain = chain_in(&mut tx, family).await?;
        let (epoch,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(epoch) FROM epoch_switches WHERE account_id = $1")
                .bind(family.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let current_epoch = u32::try_from(epoch.unwrap_or(0)).unwrap_or(u32::MAX);
        if let Err(refused) = update.check(&chain, current_epoch) {
            return Ok(AddRoster::Refused(refused));
        }
        let now = self.now();
        let roster = &update.roster.roster;
        let json =
            serde_json::to_string(&update.roster).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let anchor = update
            .recovery_anchor
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query("INSERT INTO family_rosters (account_id, version, roster, recovery_anchor, session_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(family.as_str())
            .bind(roster.version as i64)
            .bind(json)
            .bind(anchor)
            .bind(actor.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for blob in &update.key_blobs {
            let json = serde_json::to_string(blob).map_err(|e| sqlx::Error::Encode(e.into()))?;
            // A blob for the same recipient and epoch again (a computer
            // republishing after a lost answer) keeps the first.
            sqlx::query("INSERT INTO epoch_key_blobs (account_id, recipient, epoch, blob, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(family.as_str())
                .bind(b64(&blob.recipient.0))
                .bind(i64::from(blob.epoch))
                .bind(json)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(switch) = &update.epoch_switch {
            let json = serde_json::to_string(switch).map_err(|e| sqlx::Error::Encode(e.into()))?;
            sqlx::query("INSERT INTO epoch_switches (account_id, epoch, switch, created_at) VALUES ($1, $2, $3, $4)")
                .bind(family.as_str())
                .bind(i64::from(switch.switch.epoch))
                .bind(json)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let (kind, detail) = if roster.version == 1 {
            (
                "family.founded",
                "The family's keys were made on this computer; the cloud cannot read them"
                    .to_owned(),
            )
        } else {
            (
                "family.computers_changed",
                match &update.epoch_switch {
                    Some(_) => format!(
                        "The family's key was replaced after a computer left: {} now hold it",
                        roster.computers.len()
                    ),
                    None => format!(
                        "The family's computers changed: {} now hold the keys",
                        roster.computers.len()
                    ),
                },
            )
        };
        record(&mut tx, now, family, kind, Some(actor.as_str()), &detail).await?;
        tx.commit().await?;
        Ok(AddRoster::Added)
    }
}

async fn chain_in(tx: &mut Tx, family: &FamilyId) -> DbResult<Vec<SignedRoster>> {
    let rows = sqlx::query_as(ROSTERS)
        .bind(family.as_str())
        .fetch_all(&mut **tx)
        .await?;
    decode(rows)
}

const ROSTERS: &str = "SELECT roster FROM family_rosters WHERE account_id = $1 ORDER BY version";

/// Rows as stored (exactly as their computers signed them).
fn decode(rows: Vec<(String,)>) -> DbResult<Vec<SignedRoster>> {
    rows.into_iter()
        .map(|(json,)| serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into())))
        .collect()
}
