//! The family's roster versions and epoch key blobs (issue 13): read back
//! in order, and appended only as the family's next version, checked against
//! the stored chain inside the account's write lock so two computers cannot
//! both add version n+1.

use waymark_protocol::ids::{AccountId, SessionId};
use waymark_protocol::roster::{
    EpochKeyBlob, FamilyRosters, RecoveryAnchor, RosterError, RosterUpdate, SignedRoster,
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
    pub async fn family_rosters(&self, account: &AccountId) -> DbResult<FamilyRosters> {
        let rows = sqlx::query_as(ROSTERS)
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await?;
        let anchor: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT recovery_anchor FROM family_rosters WHERE account_id = $1 AND version = 1",
        )
        .bind(account.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let recovery_anchor = anchor
            .and_then(|(json,)| json)
            .map(|json| serde_json::from_str::<RecoveryAnchor>(&json))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(e.into()))?;
        Ok(FamilyRosters {
            rosters: decode(rows)?,
            recovery_anchor,
        })
    }

    /// The epoch key blobs of the account's family sealed to `recipient`.
    pub async fn key_blobs(
        &self,
        account: &AccountId,
        recipient: &LocationPublicKey,
    ) -> DbResult<Vec<EpochKeyBlob>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT blob FROM epoch_key_blobs WHERE account_id = $1 AND recipient = $2 ORDER BY epoch",
        )
        .bind(account.as_str())
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
        account: &AccountId,
        update: &RosterUpdate,
        actor: &SessionId,
    ) -> DbResult<AddRoster> {
        let mut tx = self.write_tx(LockScope::Account(account.as_str())).await?;
        let chain = chain_in(&mut tx, account).await?;
        if let Err(refused) = update.check(&chain) {
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
            .bind(account.as_str())
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
                .bind(account.as_str())
                .bind(b64(&blob.recipient.0))
                .bind(i64::from(blob.epoch))
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
                format!(
                    "The family's computers changed: {} now hold the keys",
                    roster.computers.len()
                ),
            )
        };
        record(&mut tx, now, account, kind, Some(actor.as_str()), &detail).await?;
        tx.commit().await?;
        Ok(AddRoster::Added)
    }
}

async fn chain_in(tx: &mut Tx, account: &AccountId) -> DbResult<Vec<SignedRoster>> {
    let rows = sqlx::query_as(ROSTERS)
        .bind(account.as_str())
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
