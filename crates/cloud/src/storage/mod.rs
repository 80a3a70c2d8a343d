//! All SQL lives here: one `Store` over the database, with one method per
//! question the flows ask. Multi-step changes run in one transaction, so a
//! refused request writes nothing.

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};
use waymark_protocol::account::{ActivityEntry, PasskeyInfo, SessionInfo};

use crate::config::Database;
use crate::ids::{new_id, now_ms, token_hash};

pub type DbResult<T> = Result<T, sqlx::Error>;

/// Which SQL engine is behind the pool: the queries are the same (`$N`
/// placeholders, portable SQL); only taking the write lock and the live
/// fan-out differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The channel the PostgreSQL store announces stored fixes on (`NOTIFY`), so
/// a parent's live stream on any instance hears a watch that reported to another.
pub const LIVE_CHANNEL: &str = "waymark_live";

#[derive(Clone)]
pub struct Store {
    /// Parent API and sign-in pages.
    pool: AnyPool,
    /// Watches only (the ingest writer, device lookups, status polls), so an
    /// upload never queues behind parent reads for a connection.
    device_pool: AnyPool,
    engine: Engine,
    /// To the one ingest writer (see `watches::ingest_writer`).
    ingest_jobs: tokio::sync::mpsc::Sender<watches::IngestJob>,
}

/// A validated `/authorize` request or an enrollment link.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthRequest {
    pub id: String,
    pub purpose: String,
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
    pub kind: String,
    pub request_id: String,
    pub state: String,
    pub display_name: Option<String>,
    pub user_id: Option<String>,
}

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

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthCode {
    pub account_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: i64,
    pub session_id: Option<String>,
}

/// Who a valid access token speaks for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Caller {
    pub account_id: String,
    pub session_id: String,
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
    /// Every table, for diagnostics and for tests that show nothing was written.
    pub const TABLES: &[&str] = &[
        "accounts",
        "passkeys",
        "auth_requests",
        "ceremonies",
        "auth_codes",
        "sessions",
        "refresh_tokens",
        "access_tokens",
        "activity",
        "devices",
        "pairing_offers",
        "bindings",
        "fixes",
        "rate_limits",
    ];

    /// Opens the configured database and brings its schema up to date.
    pub async fn open(database: &Database) -> DbResult<Self> {
        match database {
            Database::Sqlite(path) => Self::open_sqlite(path).await,
            Database::Postgres(url) => Self::open_postgres(url).await,
        }
    }

    /// Opens (creating if needed) the SQLite file and runs the migrations.
    pub async fn open_sqlite(path: &Path) -> DbResult<Self> {
        sqlx::any::install_default_drivers();
        // The path goes into a URL: escape what a URL would read as syntax.
        let escaped = path
            .display()
            .to_string()
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('#', "%23")
            .replace(' ', "%20");
        let url = format!("sqlite://{escaped}?mode=rwc");
        // SQLite gives the -wal and -shm files the database file's mode, so
        // the file is made owner-only before SQLite first opens it.
        private_files(path);
        let options = url.parse::<AnyConnectOptions>()?;
        let sqlite_pool = |size: u32| {
            AnyPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL; FULL: an acknowledged write survives power loss (DESIGN rule 6).
                        // secure_delete: deleted history is overwritten, not left in free pages.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;
                             PRAGMA secure_delete = ON;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect_with(options.clone())
        };
        let pool = sqlite_pool(8).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let device_pool = sqlite_pool(3).await?;
        private_files(path);
        Ok(Self::with_pools(pool, device_pool, Engine::Sqlite))
    }

    /// Connects to PostgreSQL and runs its migrations (the same steps as
    /// SQLite's, in PostgreSQL's types, with fixes partitioned by month).
    pub async fn open_postgres(url: &str) -> DbResult<Self> {
        sqlx::any::install_default_drivers();
        let options = url.parse::<AnyConnectOptions>()?;
        let pg_pool = |size: u32| {
            AnyPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
        };
        let pool = pg_pool(16).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let device_pool = pg_pool(6).await?;
        let store = Self::with_pools(pool, device_pool, Engine::Postgres);
        store.make_partitions(now_ms()).await?;
        Ok(store)
    }

    fn with_pools(pool: AnyPool, device_pool: AnyPool, engine: Engine) -> Self {
        let (ingest_jobs, jobs) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(watches::ingest_writer(device_pool.clone(), engine, jobs));
        Self {
            pool,
            device_pool,
            engine,
            ingest_jobs,
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The pool, for tests and operator tools that need a statement the
    /// flows do not (e.g. moving a window into the past).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (and so ends the ingest writer's).
    pub async fn close(&self) {
        self.pool.close().await;
        self.device_pool.close().await;
    }

    /// A write transaction that takes the write lock up front. SQLite:
    /// `BEGIN IMMEDIATE` (a deferred one that reads first and writes later
    /// fails with SQLITE_BUSY_SNAPSHOT when another writer got in between,
    /// instead of waiting its turn). PostgreSQL: a transaction-scoped
    /// advisory lock, so the account flows' read-check-write steps are
    /// serialised across every instance exactly as on SQLite.
    async fn write_tx(&self) -> DbResult<Tx> {
        match self.engine {
            Engine::Sqlite => Tx::begin(&self.pool, "BEGIN IMMEDIATE").await,
            Engine::Postgres => {
                let mut tx = Tx::begin(&self.pool, "BEGIN").await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7261)")
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// PostgreSQL only: makes the monthly partitions of `fixes` from last
    /// month to two months ahead, if missing. Fixes are never more than 30
    /// days old or 2 minutes ahead, so they land in a month's partition, not
    /// the default one.
    pub async fn make_partitions(&self, now: i64) -> DbResult<()> {
        if self.engine != Engine::Postgres {
            return Ok(());
        }
        let (year, month) = month_of(now);
        for step in -1..=2 {
            let (y, m) = add_months(year, month, step);
            let (ny, nm) = add_months(y, m, 1);
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS fixes_y{y:04}m{m:02} PARTITION OF fixes FOR VALUES FROM ({}) TO ({})",
                month_start_ms(y, m),
                month_start_ms(ny, nm)
            );
            if let Err(e) = sqlx::query(&sql).execute(&self.pool).await {
                // Another instance made it at the same moment, or old rows sit in the default partition.
                tracing::warn!(error = %e, partition = %format!("fixes_y{y:04}m{m:02}"), "could not make a fixes partition");
            }
        }
        Ok(())
    }

    // ---- sign-in requests and ceremonies -------------------------------

    pub async fn insert_auth_request(&self, r: &AuthRequest) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO auth_requests (id, purpose, client_id, redirect_uri, state, code_challenge, account_id, session_id, verified_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&r.id)
        .bind(&r.purpose)
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
    pub async fn auth_request(&self, id: &str) -> DbResult<Option<AuthRequest>> {
        sqlx::query_as("SELECT * FROM auth_requests WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn delete_auth_request(&self, id: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM auth_requests WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The owner confirmed with a passkey; only the holder of the secret
    /// whose hash is stored here may now add one.
    pub async fn mark_request_verified(&self, id: &str, confirm_hash: &str) -> DbResult<()> {
        sqlx::query("UPDATE auth_requests SET verified_at = $1, confirm_hash = $2 WHERE id = $3")
            .bind(now_ms())
            .bind(confirm_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_ceremony(
        &self,
        kind: &str,
        request_id: &str,
        state: &str,
        display_name: Option<&str>,
        user_id: Option<&str>,
        ttl_ms: i64,
    ) -> DbResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO ceremonies (id, kind, request_id, state, display_name, user_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(kind)
        .bind(request_id)
        .bind(state)
        .bind(display_name)
        .bind(user_id)
        .bind(now_ms() + ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Removes and returns a live ceremony: whoever takes it first finishes
    /// it, and nobody can finish it twice.
    pub async fn take_ceremony(&self, id: &str, kind: &str) -> DbResult<Option<Ceremony>> {
        sqlx::query_as(
            "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 AND expires_at > $3
             RETURNING kind, request_id, state, display_name, user_id",
        )
        .bind(id)
        .bind(kind)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
    }

    // ---- accounts and passkeys ------------------------------------------

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
        let now = now_ms();
        let account_id = new_id();
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO accounts (id, webauthn_user_id, display_name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&account_id)
            .bind(webauthn_user_id)
            .bind(display_name)
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
            &account_id,
            "account.created",
            None,
            "Account created with its first passkey",
        )
        .await?;
        if !grant_code_tx(&mut tx, grant, &account_id).await? {
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

    pub async fn list_passkeys(&self, account_id: &str) -> DbResult<Vec<PasskeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, last_used_at FROM passkeys WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(account_id)
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
            .bind(now_ms())
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
        let mut tx = self.write_tx().await?;
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
            now_ms(),
        )
        .await?;
        record(
            &mut tx,
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
        account_id: &str,
        passkey_id: &str,
        name: &str,
        actor: &str,
    ) -> DbResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND account_id = $3")
            .bind(name)
            .bind(passkey_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if done {
            record(
                &mut tx,
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
        account_id: &str,
        passkey_id: &str,
        actor: &str,
    ) -> DbResult<DeletePasskey> {
        let mut tx = self.write_tx().await?;
        let name: Option<(String,)> =
            sqlx::query_as("SELECT name FROM passkeys WHERE id = $1 AND account_id = $2")
                .bind(passkey_id)
                .bind(account_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((name,)) = name else {
            return Ok(DeletePasskey::NotFound);
        };
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM passkeys WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count <= 1 {
            return Ok(DeletePasskey::LastOne);
        }
        sqlx::query("DELETE FROM passkeys WHERE id = $1 AND account_id = $2")
            .bind(passkey_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            account_id,
            "passkey.removed",
            Some(actor),
            &format!("Removed passkey “{name}”"),
        )
        .await?;
        tx.commit().await?;
        Ok(DeletePasskey::Deleted)
    }

    // ---- codes, sessions and tokens -------------------------------------

    /// Spends the request and stores its code, atomically; false (nothing
    /// written) if the request was already spent.
    pub async fn grant_code(&self, grant: &CodeGrant<'_>, account_id: &str) -> DbResult<bool> {
        let mut tx = self.write_tx().await?;
        if !grant_code_tx(&mut tx, grant, account_id).await? {
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
        let now = now_ms();
        let session_id = new_id();
        let mut tx = self.write_tx().await?;
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
        let now = now_ms();
        let mut tx = self.write_tx().await?;
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
            end_session_tx(&mut tx, &session_id, "refresh_token_reused").await?;
            record(
                &mut tx,
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
        let now = now_ms();
        let caller: Option<Caller> = sqlx::query_as(
            "SELECT s.account_id, s.id AS session_id, a.token_hash, a.expires_at AS token_expires_at
             FROM access_tokens a JOIN sessions s ON s.id = a.session_id
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
            .bind(&c.session_id)
            .bind(now - 60_000)
            .execute(&self.pool)
            .await?;
        }
        Ok(caller)
    }

    /// Deletes fixes older than their account's retention period, a bounded
    /// number per call so one pass never holds the write lock for long.
    pub async fn enforce_retention(&self, now: i64) -> DbResult<u64> {
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query(
            "DELETE FROM fixes WHERE id IN (
               SELECT f.id FROM fixes f JOIN bindings b ON b.device_id = f.device_id
               JOIN accounts a ON a.id = b.account_id
               WHERE f.t < $1 - a.retention_days * 86400000 LIMIT 50000)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if gone > 0 {
            self.scrub_deleted().await;
        }
        Ok(gone)
    }

    /// Makes deleted rows unrecoverable from the database's files. SQLite:
    /// `secure_delete` already zeroed them in the database file; a
    /// truncating checkpoint removes the old page images from the WAL.
    /// PostgreSQL: `VACUUM` makes the dead tuples' space reusable (in the
    /// background: it can take a while); see the README for backups and WAL archives.
    pub async fn scrub_deleted(&self) {
        match self.engine {
            Engine::Sqlite => {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&self.pool)
                    .await
                {
                    tracing::warn!(error = %e, "could not checkpoint after deleting history");
                }
            }
            Engine::Postgres => {
                let pool = self.pool.clone();
                tokio::spawn(async move {
                    if let Err(e) = sqlx::query("VACUUM fixes").execute(&pool).await {
                        tracing::warn!(error = %e, "could not vacuum after deleting history");
                    }
                });
            }
        }
    }

    pub async fn retention_days(&self, account_id: &str) -> DbResult<i64> {
        let (days,): (i64,) = sqlx::query_as("SELECT retention_days FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(days)
    }

    pub async fn set_retention_days(
        &self,
        account_id: &str,
        days: i64,
        actor: &str,
    ) -> DbResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE accounts SET retention_days = $1 WHERE id = $2")
            .bind(days)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            account_id,
            "settings.retention",
            Some(actor),
            &format!("Location history is now kept for {days} days"),
        )
        .await?;
        tx.commit().await
    }

    /// Is the caller's access token still good (not revoked, not expired,
    /// its session not ended)? Long-lived streams ask this as they go.
    pub async fn token_alive(&self, caller: &Caller) -> DbResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM access_tokens a JOIN sessions s ON s.id = a.session_id
             WHERE a.token_hash = $1 AND a.expires_at > $2 AND s.ended_at IS NULL",
        )
        .bind(&caller.token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// RFC 7009: revoking a refresh token ends its session; revoking an access
    /// token removes it. Unknown tokens are ignored.
    pub async fn revoke_token(&self, token: &str) -> DbResult<()> {
        let hash = token_hash(token);
        let mut tx = self.write_tx().await?;
        let session: Option<(String, String)> = sqlx::query_as(
            "SELECT s.id, s.account_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1 AND s.ended_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((session_id, account_id)) = session {
            end_session_tx(&mut tx, &session_id, "signed_out").await?;
            record(
                &mut tx,
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
        account_id: &str,
        current: &str,
    ) -> DbResult<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, last_used_at FROM sessions WHERE account_id = $1 AND ended_at IS NULL ORDER BY created_at, id",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let id: String = r.get("id");
                SessionInfo {
                    current: id == current,
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
        account_id: &str,
        session_id: &str,
        actor: &str,
    ) -> DbResult<bool> {
        let mut tx = self.write_tx().await?;
        let name: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sessions WHERE id = $1 AND account_id = $2 AND ended_at IS NULL",
        )
        .bind(session_id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name,)) = name else {
            return Ok(false);
        };
        end_session_tx(&mut tx, session_id, "ended_by_owner").await?;
        record(
            &mut tx,
            account_id,
            "session.ended",
            Some(actor),
            &format!("Signed out “{name}”"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn end_other_sessions(&self, account_id: &str, keep: &str) -> DbResult<u64> {
        let mut tx = self.write_tx().await?;
        let others: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM sessions WHERE account_id = $1 AND id != $2 AND ended_at IS NULL",
        )
        .bind(account_id)
        .bind(keep)
        .fetch_all(&mut *tx)
        .await?;
        for (id,) in &others {
            end_session_tx(&mut tx, id, "ended_by_owner").await?;
        }
        if !others.is_empty() {
            record(
                &mut tx,
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

    pub async fn activity(&self, account_id: &str, limit: i64) -> DbResult<Vec<ActivityEntry>> {
        let rows = sqlx::query(
            "SELECT a.at, a.kind, a.actor_session_id, s.name AS actor_name, a.detail FROM activity a
             LEFT JOIN sessions s ON s.id = a.actor_session_id
             WHERE a.account_id = $1 ORDER BY a.at DESC, a.id LIMIT $2",
        )
        .bind(account_id)
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
                detail: r.get("detail"),
            })
            .collect())
    }

    /// Drops expired ceremony state, requests and codes.
    pub async fn sweep_expired(&self) -> DbResult<()> {
        let now = now_ms();
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

    /// Ends the session a replayed authorization code opened (RFC 6749 §4.1.2).
    pub async fn end_session_of_replayed_code(&self, session_id: &str) -> DbResult<()> {
        let mut tx = self.write_tx().await?;
        let account: Option<(String,)> =
            sqlx::query_as("SELECT account_id FROM sessions WHERE id = $1 AND ended_at IS NULL")
                .bind(session_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((account_id,)) = account {
            end_session_tx(&mut tx, session_id, "code_replayed").await?;
            record(
                &mut tx,
                &account_id,
                "session.ended",
                None,
                "A sign-in code was used twice; that computer was signed out to be safe",
            )
            .await?;
        }
        tx.commit().await
    }

    /// For tests and diagnostics: how many rows a table has.
    pub async fn count(&self, table: &str) -> DbResult<i64> {
        assert!(Self::TABLES.contains(&table), "unknown table");
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}

pub enum DeletePasskey {
    Deleted,
    NotFound,
    LastOne,
}

/// Year and month (1–12) of a Unix time in ms, UTC.
fn month_of(ms: i64) -> (i64, i64) {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (i64::from(t.year()), i64::from(u8::from(t.month())))
}

fn add_months(year: i64, month: i64, n: i64) -> (i64, i64) {
    let i = year * 12 + (month - 1) + n;
    (i.div_euclid(12), i.rem_euclid(12) + 1)
}

fn month_start_ms(year: i64, month: i64) -> i64 {
    let date = time::Date::from_calendar_date(
        year as i32,
        time::Month::try_from(month as u8).unwrap_or(time::Month::January),
        1,
    )
    .unwrap_or(time::Date::MIN);
    date.midnight().assume_utc().unix_timestamp() * 1000
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

async fn grant_code_tx(tx: &mut Tx, grant: &CodeGrant<'_>, account_id: &str) -> DbResult<bool> {
    let spent: Option<(String,)> =
        sqlx::query_as("DELETE FROM auth_requests WHERE id = $1 RETURNING id")
            .bind(&grant.request.id)
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
    .bind(now_ms() + grant.ttl_ms)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

async fn end_session_tx(tx: &mut Tx, session_id: &str, reason: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(now_ms())
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

async fn record(
    tx: &mut Tx,
    account_id: &str,
    kind: &str,
    actor: Option<&str>,
    detail: &str,
) -> DbResult<()> {
    sqlx::query("INSERT INTO activity (id, account_id, at, kind, actor_session_id, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(new_id())
        .bind(account_id)
        .bind(now_ms())
        .bind(kind)
        .bind(actor)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

mod health;
mod transactions;
pub mod watches;

pub use health::Health;
pub(crate) use transactions::Tx;

/// How long a request waits for a database connection before it is told
/// to come back later (503), instead of queueing until its client gives up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes the database file (and its -wal/-shm companions, if present)
/// readable by the cloud's user only.
fn private_files(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path);
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_file_opens_at_exactly_its_path_whatever_its_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my data?#%20 2026").join("waymark.db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let store = Store::open_sqlite(&path).await.unwrap();
        assert_eq!(store.count("accounts").await.unwrap(), 0);
        assert!(path.exists(), "the database is where it was asked to be");
        store.close().await;
    }

    #[test]
    fn partitions_are_whole_utc_months() {
        // 2026-11-25T12:00:00Z
        let (y, m) = month_of(1_795_521_600_000);
        assert_eq!((y, m), (2026, 11));
        assert_eq!(add_months(2026, 11, 2), (2027, 1));
        assert_eq!(add_months(2026, 1, -1), (2025, 12));
        assert_eq!(month_start_ms(2026, 12), 1_796_083_200_000);
    }
}
