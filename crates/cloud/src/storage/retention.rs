//! Keeping history only as long as each family chose, and making what was
//! deleted unrecoverable from the database's files.

use super::{DbResult, Engine, LockScope, Store};

impl Store {
    /// Deletes batches whose newest fix is older than their account's
    /// retention period, a bounded number per call so one pass never holds
    /// the write lock for long.
    pub async fn enforce_retention(&self, now: i64) -> DbResult<u64> {
        // Row locks only: no advisory lock, so retention never holds up a family's writes.
        let mut tx = self.write_tx(LockScope::Nothing).await?;
        let gone = sqlx::query(
            "DELETE FROM batches WHERE (device_id, seq) IN (
               SELECT f.device_id, f.seq FROM batches f JOIN bindings b ON b.device_id = f.device_id
               JOIN accounts a ON a.id = b.account_id
               WHERE f.t_last < $1 - a.retention_days * 86400000 LIMIT 5000)",
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
                    if let Err(e) = sqlx::query("VACUUM batches").execute(&pool).await {
                        tracing::warn!(error = %e, "could not vacuum after deleting history");
                    }
                });
            }
        }
    }
}
