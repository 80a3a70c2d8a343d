//! Accounts and their passkeys, settings and activity log.

use waymark_protocol::account::{ActivityEntry, PasskeyInfo};
use waymark_protocol::ids::{AccountId, FamilyId, PasskeyId, SessionId};

use super::signin::{CodeGrant, grant_code_tx};
use super::{DbResult, LockScope, Store, Tx, record};
use crate::ids::new_id;
use sqlx::Row;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub webauthn_user_id: String,
    pub display_name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPasskey {
    pub id: String,
    pub name: String,
    pub passkey: String,
}

pub enum DeletePasskey {
    Deleted,
    NotFound,
    LastOne,
}

impl Store {
    /// Creates an account with its first passkey and grants its first
    /// sign-in code, in one transaction: `None` (and nothing written) if the
    /// request was already spent.
    pub async fn create_account(
        &self,
        webauthn_user_id: &str,
        display_name: &str,
        credential_id: &str,
        passkey_json: &str,
        grant: &CodeGrant<'_>,
    ) -> DbResult<Option<String>> {
        let now = self.now();
        let account_id = new_id();
        let mut tx = self.write_tx(LockScope::Nothing).await?;
        sqlx::query("INSERT INTO accounts (id, webauthn_user_id, display_name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&account_id)
            .bind(webauthn_user_id)
            .bind(display_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Every account founds its own family, and is its owner.
        sqlx::query("INSERT INTO family_members (account_id, family_id, role, joined_at) VALUES ($1, $1, 'owner', $2)")
            .bind(&account_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_passkey(
            &mut tx,
            &account_id,
            credential_id,
            "Passkey 1",
            passkey_json,
            now,
        )
        .await?;
        record(
            &mut tx,
            self.now(),
            &account_id,
            "account.created",
            None,
            "Account created with its first passkey",
        )
        .await?;
        if !grant_code_tx(&mut tx, grant, &account_id, self.now()).await? {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(account_id))
    }

    pub async fn account(&self, id: &str) -> DbResult<Option<Account>> {
        sqlx::query_as("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn account_by_user_id(&self, user_id: &str) -> DbResult<Option<Account>> {
        sqlx::query_as("SELECT * FROM accounts WHERE webauthn_user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn passkey_by_credential(
        &self,
        account_id: &str,
        credential_id: &str,
    ) -> DbResult<Option<StoredPasskey>> {
        sqlx::query_as(
            "SELECT id, name, passkey FROM passkeys WHERE account_id = $1 AND credential_id = $2",
        )
        .bind(account_id)
        .bind(credential_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn passkeys_of(&self, account_id: &str) -> DbResult<Vec<StoredPasskey>> {
        sqlx::query_as(
            "SELECT id, name, passkey FROM passkeys WHERE account_id = $1 ORDER BY created_at",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn list_passkeys(&self, account_id: &AccountId) -> DbResult<Vec<PasskeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, last_used_at FROM passkeys WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(account_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PasskeyInfo {
                id: r.get("id"),
                name: r.get("name"),
                created_at: r.get("created_at"),
                last_used_at: r.get("last_used_at"),
            })
            .collect())
    }

    /// Stores the updated credential (sign counter, backup state) after a sign-in.
    pub async fn passkey_used(&self, passkey_id: &str, passkey_json: &str) -> DbResult<()> {
        sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE id = $3")
            .bind(passkey_json)
            .bind(self.now())
            .bind(passkey_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn add_passkey(
        &self,
        account_id: &str,
        credential_id: &str,
        passkey_json: &str,
        actor_session_id: Option<&str>,
    ) -> DbResult<String> {
        let mut tx = self.write_tx(LockScope::Account(account_id)).await?;
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM passkeys WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        let name = format!("Passkey {}", count + 1);
        let id = insert_passkey(
            &mut tx,
            account_id,
            credential_id,
            &name,
            passkey_json,
            self.now(),
        )
        .await?;
        record(
            &mut tx,
            self.now(),
            account_id,
            "passkey.added",
            actor_session_id,
            &format!("Added passkey “{name}”"),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Renames one of the account's passkeys; false if it has no such passkey.
    pub async fn rename_passkey(
        &self,
        account_id: &AccountId,
        passkey_id: &PasskeyId,
        name: &str,
        actor: &SessionId,
    ) -> DbResult<bool> {
        let mut tx = self.write_tx(LockScope::Account(account_id)).await?;
        let done = sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND account_id = $3")
            .bind(name)
            .bind(passkey_id.as_str())
            .bind(account_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if done {
            record(
                &mut tx,
                self.now(),
                account_id,
                "passkey.renamed",
                Some(actor),
                &format!("Renamed a passkey to “{name}”"),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(done)
    }

    /// Deletes one of the account's passkeys unless it is the last one.
    pub async fn delete_passkey(
        &self,
        account_id: &AccountId,
        passkey_id: &PasskeyId,
        actor: &SessionId,
    ) -> DbResult<DeletePasskey> {
        let mut tx = self.write_tx(LockScope::Account(account_id)).await?;
        let name: Option<(String,)> =
            sqlx::query_as("SELECT name FROM passkeys WHERE id = $1 AND account_id = $2")
                .bind(passkey_id.as_str())
                .bind(account_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((name,)) = name else {
            return Ok(DeletePasskey::NotFound);
        };
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM passkeys WHERE account_id = $1")
                .bind(account_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if count <= 1 {
            return Ok(DeletePasskey::LastOne);
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1 AND account_id = $2")
            .bind(passkey_id.as_str())
            .bind(account_id.as_str())
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            self.now(),
            account_id,
            "passkey.removed",
            Some(actor),
            &format!("Removed passkey “{name}”"),
        )
        .await?;
        tx.commit().await?;
        Ok(DeletePasskey::Deleted)
    }

    /// The family's setting (kept on its founding account's row).
    pub async fn retention_days(&self, family: &FamilyId) -> DbResult<i64> {
        let (days,): (i64,) = sqlx::query_as("SELECT retention_days FROM accounts WHERE id = $1")
            .bind(family.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(days)
    }

    pub async fn set_retention_days(
        &self,
        family: &FamilyId,
        days: i64,
        actor: &SessionId,
    ) -> DbResult<()> {
        let mut tx = self.write_tx(LockScope::Account(family)).await?;
        sqlx::query("UPDATE accounts SET retention_days = $1 WHERE id = $2")
            .bind(days)
            .bind(family.as_str())
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            self.now(),
            family,
            "settings.retention",
            Some(actor),
            &format!("Location history is now kept for {days} days"),
        )
        .await?;
        tx.commit().await
    }

    /// The account's own events and its family's, newest first.
    pub async fn activity(
        &self,
        account_id: &AccountId,
        family: &FamilyId,
        limit: i64,
    ) -> DbResult<Vec<ActivityEntry>> {
        let rows = sqlx::query(
            "SELECT a.at, a.kind, a.actor_session_id, s.name AS actor_name, p.display_name AS actor_member, a.detail FROM activity a
             LEFT JOIN sessions s ON s.id = a.actor_session_id
             LEFT JOIN accounts p ON p.id = s.account_id
             WHERE (a.account_id = $1 AND a.family_id IS NULL) OR a.family_id = $2
             ORDER BY a.at DESC, a.id LIMIT $3",
        )
        .bind(account_id.as_str())
        .bind(family.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ActivityEntry {
                at: r.get("at"),
                kind: r.get("kind"),
                actor_session_id: r.get("actor_session_id"),
                actor_session_name: r.get("actor_name"),
                actor_member_name: r.get("actor_member"),
                detail: r.get("detail"),
            })
            .collect())
    }
}

async fn insert_passkey(
    tx: &mut Tx,
    account_id: &str,
    credential_id: &str,
    name: &str,
    passkey_json: &str,
    now: i64,
) -> DbResult<String> {
    let id = new_id();
    sqlx::query("INSERT INTO passkeys (id, account_id, credential_id, name, passkey, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&id)
        .bind(account_id)
        .bind(credential_id)
        .bind(name)
        .bind(passkey_json)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}
