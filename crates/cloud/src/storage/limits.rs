//! Rate limits: attempts counted per key (an account, a source address)
//! in fixed windows, atomically, in the database every instance shares.

use super::{DbResult, Store};

impl Store {
    /// Counts one attempt against `key` and says whether it is within the
    /// `max` of the current window, in one statement: concurrent attempts
    /// each see their own count, so exactly `max` pass, never more.
    pub async fn spend_attempt(&self, key: &str, window_ms: i64, max: i64) -> DbResult<bool> {
        let now = self.now();
        let (count,): (i64,) = sqlx::query_as(
            "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1)
             ON CONFLICT(key) DO UPDATE SET
               count = CASE WHEN $3 - rate_limits.window_start >= $4 THEN 1 ELSE rate_limits.count + 1 END,
               window_start = CASE WHEN $5 - rate_limits.window_start >= $6 THEN $7 ELSE rate_limits.window_start END
             RETURNING count",
        )
        .bind(key)
        .bind(now)
        .bind(now)
        .bind(window_ms)
        .bind(now)
        .bind(window_ms)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(count <= max)
    }

    /// Gives back an attempt that turned out not to count (a right code, a
    /// successful exchange).
    pub async fn refund_attempt(&self, key: &str) -> DbResult<()> {
        sqlx::query("UPDATE rate_limits SET count = count - 1 WHERE key = $1 AND count > 0")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
