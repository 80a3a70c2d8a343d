//! Sessions (signed-in computers) and their tokens: exchanging a code,
//! rotating refresh tokens with reuse detection, resolving an access token
//! to its caller, and ending sessions.

use waymark_protocol::account::SessionInfo;
use waymark_protocol::co_parents::FamilyRole;
use waymark_protocol::ids::{AccountId, FamilyId, SessionId};

use super::{DbResult, LockScope, Store, Tx, record};
use crate::ids::new_id;
use crate::ids::token_hash;
use sqlx::Row;

/// Who a valid access token speaks for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Caller {
    #[sqlx(try_from = "String")]
    pub account_id: AccountId,
    #[sqlx(try_from = "String")]
    pub session_id: SessionId,
    /// The family the account belongs to now, read on every request, so a
    /// member who is removed loses access at once.
    #[sqlx(try_from = "String")]
    pub family_id: FamilyId,
    #[sqlx(try_from = "String")]
    pub role: FamilyRole,
    /// The access token's hash and expiry: a long-lived stream ends with it.
    pub token_hash: String,
    pub token_expires_at: i64,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Refresh {
    /// Fresh access and refresh tokens for the same session.
    Rotated {
        session_id: String,
        account_id: String,
    },
    /// The token was already spent: the whole session is now ended.
    ReuseDetected,
    /// Unknown token, or its session has ended.
    Invalid,
}

impl Store {
    /// Spends a code and opens a session with its first tokens, atomically:
    /// only one exchange of a code can ever succeed.
    pub async fn exchange_code(
        &self,
        code: &str,
        session_name: &str,
        access_token: &str,
        refresh_token: &str,
        access_ttl_ms: i64,
    ) -> DbResult<Option<String>> {
        let now = self.now();
        let session_id = new_id();
        let mut tx = self.write_tx(LockScope::Secret(code)).await?;
        let claimed: Option<(String,)> = sqlx::query_as(
            "UPDATE auth_codes SET session_id = $1 WHERE code_hash = $2 AND session_id IS NULL AND expires_at > $3 RETURNING account_id",
        )
        .bind(&session_id)
        .bind(token_hash(code))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((account_id,)) = claimed else {
            return Ok(None);
        };
        sqlx::query("INSERT INTO sessions (id, account_id, name, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&session_id)
            .bind(&account_id)
            .bind(session_name)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_tokens(
            &mut tx,
            &session_id,
            access_token,
            refresh_token,
            access_ttl_ms,
            now,
        )
        .await?;
        record(
            &mut tx,
            self.now(),
            &account_id,
            "session.signed_in",
            Some(&session_id),
            &format!("Signed in on “{session_name}”"),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(session_id))
    }

    /// Rotates a refresh token. A spent token ends its whole session.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        new_access: &str,
        new_refresh: &str,
        access_ttl_ms: i64,
    ) -> DbResult<Refresh> {
        let now = self.now();
        let mut tx = self.write_tx(LockScope::Secret(refresh_token)).await?;
        let row: Option<(String, Option<i64>, String, Option<i64>)> = sqlx::query_as(
            "SELECT s.id, r.spent_at, s.account_id, s.ended_at FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
        )
        .bind(token_hash(refresh_token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session_id, spent_at, account_id, ended_at)) = row else {
            return Ok(Refresh::Invalid);
        };
        if ended_at.is_some() {
            return Ok(Refresh::Invalid);
        }
        if spent_at.is_some() {
            end_session_tx(&mut tx, &session_id, "refresh_token_reused", self.now()).await?;
            record(
                &mut tx,
                self.now(),
                &account_id,
                "session.ended",
                None,
                "A used sign-in token was presented again; that computer was signed out to be safe",
            )
            .await?;
            tx.commit().await?;
            return Ok(Refresh::ReuseDetected);
        }
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET spent_at = $1 WHERE token_hash = $2 AND spent_at IS NULL",
        )
        .bind(now)
        .bind(token_hash(refresh_token))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            return Ok(Refresh::Invalid);
        }
        insert_tokens(
            &mut tx,
            &session_id,
            new_access,
            new_refresh,
            access_ttl_ms,
            now,
        )
        .await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Refresh::Rotated {
            session_id,
            account_id,
        })
    }

    /// The caller behind a live access token of a live session.
    pub async fn caller(&self, access_token: &str) -> DbResult<Option<Caller>> {
        let now = self.now();
        let caller: Option<Caller> = sqlx::query_as(
            "SELECT s.account_id, s.id AS session_id, m.family_id, m.role, a.token_hash, a.expires_at AS token_expires_at
             FROM access_tokens a JOIN sessions s ON s.id = a.session_id
             JOIN family_members m ON m.account_id = s.account_id
             WHERE a.token_hash = $1 AND a.expires_at > $2 AND s.ended_at IS NULL",
        )
        .bind(token_hash(access_token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(c) = &caller {
            // Minute granularity is enough for "last used" and spares a write per request.
            sqlx::query(
                "UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND last_used_at < $3",
            )
            .bind(now)
            .bind(c.session_id.as_str())
            .bind(now - 60_000)
            .execute(&self.pool)
            .await?;
        }
        Ok(caller)
    }

    /// Is the caller's access token still good (not revoked, not expired,
    /// its session not ended) and its account still in the same family?
    /// Long-lived streams ask this as they go.
    pub async fn token_alive(&self, caller: &Caller) -> DbResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM access_tokens a JOIN sessions s ON s.id = a.session_id
             JOIN family_members m ON m.account_id = s.account_id
             WHERE a.token_hash = $1 AND a.expires_at > $2 AND s.ended_at IS NULL AND m.family_id = $3",
        )
        .bind(&caller.token_hash)
        .bind(self.now())
        .bind(caller.family_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// RFC 7009: revoking a refresh token ends its session; revoking an access
    /// token removes it. Unknown tokens are ignored.
    pub async fn revoke_token(&self, token: &str) -> DbResult<()> {
        let hash = token_hash(token);
        let mut tx = self.write_tx(LockScope::Secret(token)).await?;
        let session: Option<(String, String)> = sqlx::query_as(
            "SELECT s.id, s.account_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1 AND s.ended_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((session_id, account_id)) = session {
            end_session_tx(&mut tx, &session_id, "signed_out", self.now()).await?;
            record(
                &mut tx,
                self.now(),
                &account_id,
                "session.signed_out",
                Some(&session_id),
                "Signed out",
            )
            .await?;
        }
        sqlx::query("DELETE FROM access_tokens WHERE token_hash = $1")
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn list_sessions(
        &self,
        account_id: &AccountId,
        current: &SessionId,
    ) -> DbResult<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, last_used_at FROM sessions WHERE account_id = $1 AND ended_at IS NULL ORDER BY created_at, id",
        )
        .bind(account_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let id: String = r.get("id");
                SessionInfo {
                    current: id == current.as_str(),
                    id,
                    name: r.get("name"),
                    created_at: r.get("created_at"),
                    last_used_at: r.get("last_used_at"),
                }
            })
            .collect())
    }

    /// Ends one of the account's live sessions; false if it has no such session.
    pub async fn end_session(
        &self,
        account_id: &AccountId,
        session_id: &SessionId,
        actor: &SessionId,
    ) -> DbResult<bool> {
        let mut tx = self.write_tx(LockScope::Account(account_id)).await?;
        let name: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sessions WHERE id = $1 AND account_id = $2 AND ended_at IS NULL",
        )
        .bind(session_id.as_str())
        .bind(account_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name,)) = name else {
            return Ok(false);
        };
        end_session_tx(&mut tx, session_id, "ended_by_owner", self.now()).await?;
        record(
            &mut tx,
            self.now(),
            account_id,
            "session.ended",
            Some(actor),
            &format!("Signed out “{name}”"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn end_other_sessions(
        &self,
        account_id: &AccountId,
        keep: &SessionId,
    ) -> DbResult<u64> {
        let mut tx = self.write_tx(LockScope::Account(account_id)).await?;
        let others: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM sessions WHERE account_id = $1 AND id != $2 AND ended_at IS NULL",
        )
        .bind(account_id.as_str())
        .bind(keep.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for (id,) in &others {
            end_session_tx(&mut tx, id, "ended_by_owner", self.now()).await?;
        }
        if !others.is_empty() {
            record(
                &mut tx,
                self.now(),
                account_id,
                "session.ended_others",
                Some(keep),
                &format!("Signed out {} other computer(s)", others.len()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(others.len() as u64)
    }

    /// Drops expired ceremony state, requests and codes.
    pub async fn sweep_expired(&self) -> DbResult<()> {
        let now = self.now();
        for table in ["ceremonies", "auth_requests", "access_tokens"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE expires_at < $1"))
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        sqlx::query("DELETE FROM pairing_offers WHERE expires_at < $1")
            .bind(now - 86_400_000)
            .execute(&self.pool)
            .await?;
        self.enforce_retention(now).await?;
        // Exchanged codes are kept a day so a replay can still be recognised.
        sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
            .bind(now - 86_400_000)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn insert_tokens(
    tx: &mut Tx,
    session_id: &str,
    access: &str,
    refresh: &str,
    access_ttl_ms: i64,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash(access))
    .bind(session_id)
    .bind(now + access_ttl_ms)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash(refresh))
    .bind(session_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn end_session_tx(
    tx: &mut Tx,
    session_id: &str,
    reason: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(session_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM access_tokens WHERE session_id = $1")
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
