//! All SQL lives under this module: one `Store` over the database, opened
//! here, with one submodule per flow (accounts, sign-in state, sessions,
//! devices, family keys, sealed reports, ingest, limits, retention) holding that flow's queries.
//! Multi-step changes run in one transaction, so a refused request writes
//! nothing. Time comes from the store's [`Clock`].

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use waymark_protocol::time::Clock;

use crate::config::Database;
use crate::ids::new_id;

pub mod accounts;
pub mod approvals;
pub mod co_parents;
pub mod devices;
pub mod family;
mod health;
pub mod ingest;
mod ingest_postgres;
mod ingest_sqlite;
pub mod limits;
pub mod pairing;
pub mod reports;
pub mod retention;
mod sealed_rows;
pub mod sessions;
pub mod signin;
mod sqlite_reads;
mod transactions;
pub mod zones;

pub use health::Health;
pub(crate) use transactions::Tx;

pub use crate::config::Engine;
pub use transactions::DbResult;

/// What a write transaction serialises on (PostgreSQL advisory lock).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LockScope<'a> {
    /// One account's passkeys, sessions, settings and watches.
    Account(&'a str),
    /// One family's members and invitations.
    Family(&'a str),
    /// One device's registration and offers.
    Device(&'a str),
    /// One secret (a code or token, by its hash or value) being spent.
    Secret(&'a str),
    /// One session being ended (its account not yet known).
    Session(&'a str),
    /// Nothing read before written can race (e.g. a new account).
    Nothing,
}

impl LockScope<'_> {
    fn key(self) -> Option<String> {
        match self {
            Self::Account(id) => Some(format!("account:{id}")),
            Self::Family(id) => Some(format!("family:{id}")),
            Self::Device(id) => Some(format!("device:{id}")),
            Self::Secret(s) => Some(format!("secret:{}", crate::ids::token_hash(s))),
            Self::Session(id) => Some(format!("session:{id}")),
            Self::Nothing => None,
        }
    }
}

/// What the ingest writer writes to. SQLite: the file, on a connection of
/// its own (see `ingest_sqlite`). PostgreSQL: a connection of this pool.
enum WriterTarget {
    Sqlite(std::path::PathBuf),
    Postgres(AnyPool),
}

#[derive(Clone)]
pub struct Store {
    /// Parent API and sign-in pages.
    pool: AnyPool,
    /// Watches only (the ingest writer, device lookups, status polls), so an
    /// upload never queues behind parent reads for a connection.
    device_pool: AnyPool,
    engine: Engine,
    /// To the one ingest writer (see `ingest`).
    ingest: ingest::IngestQueue,
    /// SQLite only: history chunks read on connections of our own.
    sqlite_reads: Option<sqlite_reads::SqliteReads>,
    clock: Clock,
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
        "fix_setups",
        "batches",
        "rate_limits",
        "device_counters",
        "family_rosters",
        "epoch_key_blobs",
        "join_requests",
        "family_computers",
        "epoch_switches",
        "family_members",
        "invitations",
        "family_zone_sets",
        "watch_zone_sets",
        "watch_zone_words",
    ];

    /// Opens the configured database and brings its schema up to date.
    pub async fn open(database: &Database, clock: Clock) -> DbResult<Self> {
        match database {
            Database::Sqlite(path) => Self::open_sqlite(path, clock).await,
            Database::Postgres(url) => Self::open_postgres(url, clock).await,
        }
    }

    /// Opens (creating if needed) the SQLite file and runs the migrations.
    pub async fn open_sqlite(path: &Path, clock: Clock) -> DbResult<Self> {
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
        let writer = WriterTarget::Sqlite(path.to_owned());
        let mut store = Self::with_pools(pool, device_pool, Engine::Sqlite, writer, clock);
        store.sqlite_reads = Some(sqlite_reads::SqliteReads::new(path.to_owned()));
        Ok(store)
    }

    /// Connects to PostgreSQL and runs its migrations (the same steps as
    /// SQLite's, in PostgreSQL's types).
    pub async fn open_postgres(url: &str, clock: Clock) -> DbResult<Self> {
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
        // The ingest writers keep one connection each; lookups and status polls use the rest.
        let device_pool = pg_pool(6 + ingest_postgres::WRITERS as u32).await?;
        let writer = WriterTarget::Postgres(device_pool.clone());
        Ok(Self::with_pools(
            pool,
            device_pool,
            Engine::Postgres,
            writer,
            clock,
        ))
    }

    fn with_pools(
        pool: AnyPool,
        device_pool: AnyPool,
        engine: Engine,
        writer: WriterTarget,
        clock: Clock,
    ) -> Self {
        let (ingest, jobs) = ingest::IngestQueue::channel();
        match writer {
            WriterTarget::Sqlite(path) => ingest_sqlite::spawn(path, clock.clone(), jobs),
            WriterTarget::Postgres(pool) => {
                ingest_postgres::spawn(pool, clock.clone(), jobs);
            }
        }
        Self {
            pool,
            device_pool,
            engine,
            ingest,
            sqlite_reads: None,
            clock,
        }
    }

    /// Now, in ms since the epoch, from the store's clock.
    pub fn now(&self) -> i64 {
        self.clock.now().ms()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stores a verified batch if its sequence is new, durably, before the
    /// caller acknowledges it, through the one ingest writer. Returns the
    /// account it belongs to on success.
    pub async fn ingest(&self, batch: ingest::StoredBatch) -> DbResult<ingest::IngestOutcome> {
        self.ingest.submit(batch).await
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
    /// instead of waiting its turn); SQLite has one writer anyway. PostgreSQL:
    /// a transaction-scoped advisory lock on what the flow reads, checks and
    /// then writes (`scope`: one account, one token...), so those steps are
    /// serialised across every instance for that thing only, and two
    /// families never wait for each other.
    async fn write_tx(&self, scope: LockScope<'_>) -> DbResult<Tx> {
        match self.engine {
            Engine::Sqlite => Tx::begin(&self.pool, "BEGIN IMMEDIATE").await,
            Engine::Postgres => {
                let mut tx = Tx::begin(&self.pool, "BEGIN").await?;
                if let Some(key) = scope.key() {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7261))")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(tx)
            }
        }
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

/// Adds an entry to the account's activity log, in the caller's transaction.
/// Appends to the activity log. `owner` is the account for an account's own
/// events and the family (its founding account) for the family's events,
/// which every member is shown.
async fn record(
    tx: &mut Tx,
    at: i64,
    owner: &str,
    kind: &str,
    actor: Option<&str>,
    detail: &str,
) -> DbResult<()> {
    let family = is_family_event(kind).then_some(owner);
    sqlx::query("INSERT INTO activity (id, account_id, at, kind, actor_session_id, detail, family_id) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(new_id())
        .bind(owner)
        .bind(at)
        .bind(kind)
        .bind(actor)
        .bind(detail)
        .bind(family)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Events every member of the family sees (the rest are one account's own).
fn is_family_event(kind: &str) -> bool {
    ["watch.", "family.", "settings.", "member.", "invitation."]
        .iter()
        .any(|p| kind.starts_with(p))
}

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
        let store = Store::open_sqlite(&path, Clock::system()).await.unwrap();
        assert_eq!(store.count("accounts").await.unwrap(), 0);
        assert!(path.exists(), "the database is where it was asked to be");
        store.close().await;
    }
}
