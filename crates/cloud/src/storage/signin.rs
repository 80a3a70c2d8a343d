//! Sign-in state: `/authorize` requests and enrolment links, passkey
//! ceremonies in progress, and the one-time codes a finished ceremony grants.

use waymark_protocol::ids::{CeremonyId, RequestId};

use super::{DbResult, LockScope, Store, Tx, record};
use crate::ids::token_hash;

/// A validated `/authorize` request or an enrollment link.
/// What a stored request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An RFC 8252 sign-in (or sign-up) started by the app.
    SignIn,
    /// A one-time link to add another passkey to an account.
    Enroll,
}

/// Which passkey ceremony is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Creating a passkey (a new account's first, or another one).
    Register,
    /// Discoverable sign-in.
    SignIn,
    /// Confirming with an existing passkey before enrolling another.
    Verify,
}

/// A stored value that is not one of the names this build writes.
#[derive(Debug)]
pub struct UnknownName(String);

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown stored name {:?}", self.0)
    }
}

impl std::error::Error for UnknownName {}

macro_rules! stored_names {
    ($ty:ident { $($variant:ident = $name:literal),* }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
        }

        impl TryFrom<String> for $ty {
            type Error = UnknownName;

            fn try_from(s: String) -> Result<Self, UnknownName> {
                match s.as_str() {
                    $($name => Ok($ty::$variant),)*
                    _ => Err(UnknownName(s)),
                }
            }
        }
    };
}

stored_names!(Purpose { SignIn = "sign_in", Enroll = "enroll" });
stored_names!(CeremonyKind { Register = "register", SignIn = "sign_in", Verify = "verify" });

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthRequest {
    #[sqlx(try_from = "String")]
    pub id: RequestId,
    #[sqlx(try_from = "String")]
    pub purpose: Purpose,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
    pub account_id: Option<String>,
    pub session_id: Option<String>,
    pub verified_at: Option<i64>,
    pub expires_at: i64,
    /// SHA-256 of the secret the confirming browser holds (enrolment only).
    pub confirm_hash: Option<String>,
}

/// A one-time sign-in code to store while the request it ends is spent,
/// in the same transaction as whatever the ceremony wrote.
pub struct CodeGrant<'a> {
    pub code: &'a str,
    pub request: &'a AuthRequest,
    pub ttl_ms: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ceremony {
    #[sqlx(try_from = "String")]
    pub kind: CeremonyKind,
    #[sqlx(try_from = "String")]
    pub request_id: RequestId,
    pub state: String,
    pub display_name: Option<String>,
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthCode {
    pub account_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: i64,
    pub session_id: Option<String>,
}

impl Store {
    pub async fn insert_auth_request(&self, r: &AuthRequest) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO auth_requests (id, purpose, client_id, redirect_uri, state, code_challenge, account_id, session_id, verified_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id.as_str())
        .bind(r.purpose.as_str())
        .bind(&r.client_id)
        .bind(&r.redirect_uri)
        .bind(&r.state)
        .bind(&r.code_challenge)
        .bind(&r.account_id)
        .bind(&r.session_id)
        .bind(r.verified_at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live (unexpired) request.
    pub async fn auth_request(&self, id: &RequestId) -> DbResult<Option<AuthRequest>> {
        sqlx::query_as("SELECT * FROM auth_requests WHERE id = $1 AND expires_at > $2")
            .bind(id.as_str())
            .bind(self.now())
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn delete_auth_request(&self, id: &RequestId) -> DbResult<()> {
        sqlx::query("DELETE FROM auth_requests WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The owner confirmed with a passkey; only the holder of the secret
    /// whose hash is stored here may now add one.
    pub async fn mark_request_verified(&self, id: &RequestId, confirm_hash: &str) -> DbResult<()> {
        sqlx::query("UPDATE auth_requests SET verified_at = $1, confirm_hash = $2 WHERE id = $3")
            .bind(self.now())
            .bind(confirm_hash)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_ceremony(
        &self,
        kind: CeremonyKind,
        request_id: &RequestId,
        state: &str,
        display_name: Option<&str>,
        user_id: Option<&str>,
        ttl_ms: i64,
    ) -> DbResult<CeremonyId> {
        let id = CeremonyId::random();
        sqlx::query(
            "INSERT INTO ceremonies (id, kind, request_id, state, display_name, user_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(kind.as_str())
        .bind(request_id.as_str())
        .bind(state)
        .bind(display_name)
        .bind(user_id)
        .bind(self.now() + ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Removes and returns a live ceremony: whoever takes it first finishes
    /// it, and nobody can finish it twice.
    pub async fn take_ceremony(
        &self,
        id: &CeremonyId,
        kind: CeremonyKind,
    ) -> DbResult<Option<Ceremony>> {
        sqlx::query_as(
            "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 AND expires_at > $3
             RETURNING kind, request_id, state, display_name, user_id",
        )
        .bind(id.as_str())
        .bind(kind.as_str())
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await
    }

    /// Spends the request and stores its code, atomically; false (nothing
    /// written) if the request was already spent.
    pub async fn grant_code(&self, grant: &CodeGrant<'_>, account_id: &str) -> DbResult<bool> {
        let mut tx = self.write_tx(LockScope::Account(account_id)).await?;
        if !grant_code_tx(&mut tx, grant, account_id, self.now()).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn auth_code(&self, code: &str) -> DbResult<Option<AuthCode>> {
        sqlx::query_as("SELECT account_id, client_id, redirect_uri, code_challenge, expires_at, session_id FROM auth_codes WHERE code_hash = $1")
            .bind(token_hash(code))
            .fetch_optional(&self.pool)
            .await
    }

    /// Ends the session a replayed authorization code opened (RFC 6749 §4.1.2).
    pub async fn end_session_of_replayed_code(&self, session_id: &str) -> DbResult<()> {
        let mut tx = self.write_tx(LockScope::Session(session_id)).await?;
        let account: Option<(String,)> =
            sqlx::query_as("SELECT account_id FROM sessions WHERE id = $1 AND ended_at IS NULL")
                .bind(session_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((account_id,)) = account {
            super::sessions::end_session_tx(&mut tx, session_id, "code_replayed", self.now())
                .await?;
            record(
                &mut tx,
                self.now(),
                &account_id,
                "session.ended",
                None,
                "A sign-in code was used twice; that computer was signed out to be safe",
            )
            .await?;
        }
        tx.commit().await
    }
}

pub(super) async fn grant_code_tx(
    tx: &mut Tx,
    grant: &CodeGrant<'_>,
    account_id: &str,
    now: i64,
) -> DbResult<bool> {
    let spent: Option<(String,)> =
        sqlx::query_as("DELETE FROM auth_requests WHERE id = $1 RETURNING id")
            .bind(grant.request.id.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    if spent.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, account_id, client_id, redirect_uri, code_challenge, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash(grant.code))
    .bind(account_id)
    .bind(&grant.request.client_id)
    .bind(&grant.request.redirect_uri)
    .bind(&grant.request.code_challenge)
    .bind(now + grant.ttl_ms)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
