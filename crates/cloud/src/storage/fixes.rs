//! Reading a watch's fixes: the latest one and history in keyset pages.
//! Every read takes a [`BoundWatch`], so it has passed the binding check.

use sqlx::Row;
use waymark_protocol::report::Fix;

use super::devices::BoundWatch;
use super::rows::fix_from;
use super::{DbResult, Store};

impl Store {
    pub async fn latest_fix(&self, watch: &BoundWatch) -> DbResult<Option<Fix>> {
        let row = sqlx::query("SELECT t, lat, lon, acc, bat FROM fixes WHERE device_id = $1 ORDER BY t DESC, id DESC LIMIT 1")
            .bind(watch.id().as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(fix_from))
    }

    /// One page of history in `[from, to]`, keyset-paginated on `(t, id)`.
    /// Returns the fixes and the `(t, id)` of the last one when more may follow.
    pub async fn history(
        &self,
        watch: &BoundWatch,
        from: i64,
        to: i64,
        newest_first: bool,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> DbResult<(Vec<Fix>, Option<(i64, i64)>)> {
        // The cursor narrows the time range itself (not only a row-value
        // comparison), so every page starts its index scan at the cursor
        // instead of at the range's start: a long range is read in linear time.
        let (cmp, order) = if newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let (lo, hi, ct, cid) = match (after, newest_first) {
            (None, true) => (from, to, i64::MAX, i64::MAX),
            (None, false) => (from, to, i64::MIN, i64::MIN),
            (Some((t, id)), true) => (from, to.min(t), t, id),
            (Some((t, id)), false) => (from.max(t), to, t, id),
        };
        let rows = sqlx::query(&format!(
            "SELECT id, t, lat, lon, acc, bat FROM fixes
             WHERE device_id = $1 AND t >= $2 AND t <= $3 AND (t {cmp} $4 OR (t = $5 AND id {cmp} $6))
             ORDER BY t {order}, id {order} LIMIT $7"
        ))
        .bind(watch.id().as_str())
        .bind(lo)
        .bind(hi)
        .bind(ct)
        .bind(ct)
        .bind(cid)
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = if more {
            rows.last()
                .map(|r| (r.get::<i64, _>("t"), r.get::<i64, _>("id")))
        } else {
            None
        };
        Ok((rows.iter().map(fix_from).collect(), next))
    }
}
