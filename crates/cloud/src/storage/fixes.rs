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

    /// One chunk of a history stream, oldest first after `after`: up to
    /// `limit` fixes in `[from, to]`, and the `(t, id)` to continue after
    /// when more may follow. A chunk comes back whole, never row by row:
    /// SQLite reads it on the store's own connection off the runtime
    /// (`sqlite_reads`); PostgreSQL packs it into one text value (a line per
    /// fix, floats in their shortest exact form).
    pub async fn history_chunk(
        &self,
        watch: &BoundWatch,
        from: i64,
        to: i64,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> DbResult<(Vec<Fix>, Option<(i64, i64)>)> {
        let (lo, ct, cid) = match after {
            None => (from, i64::MIN, i64::MIN),
            Some((t, id)) => (from.max(t), t, id),
        };
        if let Some(reads) = &self.sqlite_reads {
            let rows = reads
                .history_chunk(watch.id().to_string(), (lo, to), (ct, cid), limit)
                .await?;
            let next = if rows.len() == limit as usize {
                rows.last().map(|(id, f)| (f.t, *id))
            } else {
                None
            };
            return Ok((rows.into_iter().map(|(_, f)| f).collect(), next));
        }
        // PostgreSQL writes float8 in its shortest exact form.
        let line = "id::text || ' ' || t::text || ' ' || lat::text || ' ' || lon::text || ' ' || acc::text || ' ' || bat::text";
        let join = "string_agg(line, E'\\n' ORDER BY t, id)";
        let row = sqlx::query(&format!(
            "SELECT {join} AS body, COUNT(*) AS n FROM (
               SELECT {line} AS line, t, id FROM fixes
               WHERE device_id = $1 AND t >= $2 AND t <= $3 AND (t > $4 OR (t = $5 AND id > $6))
               ORDER BY t, id LIMIT $7) AS chunk"
        ))
        .bind(watch.id().as_str())
        .bind(lo)
        .bind(to)
        .bind(ct)
        .bind(ct)
        .bind(cid)
        .bind(limit as i64)
        .fetch_one(&self.pool)
        .await?;
        let body: Option<String> = row.try_get("body")?;
        let mut fixes = Vec::with_capacity(limit as usize);
        let mut last = None;
        for line in body
            .as_deref()
            .unwrap_or("")
            .split('\n')
            .filter(|l| !l.is_empty())
        {
            let (id, fix) = parse_line(line).ok_or_else(|| {
                sqlx::Error::Decode("a history line the database wrote is not readable".into())
            })?;
            last = Some((fix.t, id));
            fixes.push(fix);
        }
        let next = if fixes.len() == limit as usize {
            last
        } else {
            None
        };
        Ok((fixes, next))
    }
}

/// `id t lat lon acc bat`, as [`Store::history_chunk`] has the database write it.
fn parse_line(line: &str) -> Option<(i64, Fix)> {
    let mut parts = line.split(' ');
    let mut next = || parts.next();
    let id = next()?.parse().ok()?;
    let fix = Fix {
        t: next()?.parse().ok()?,
        lat: next()?.parse().ok()?,
        lon: next()?.parse().ok()?,
        acc: next()?.parse().ok()?,
        bat: next()?.parse().ok()?,
    };
    Some((id, fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lines_read_back_exactly() {
        // 17 significant digits, as the database writes them.
        let (lat, lon, acc) = (52.520008_f64, 13.404954_f64, 4.5_f64);
        let line = format!("42 1795521600000 {lat:.16e} {lon:.16e} {acc:.16e} 80");
        let (id, fix) = parse_line(&line).unwrap();
        assert_eq!((id, fix.t, fix.bat), (42, 1_795_521_600_000, 80));
        assert_eq!(
            (fix.lat.to_bits(), fix.lon.to_bits(), fix.acc.to_bits()),
            (lat.to_bits(), lon.to_bits(), acc.to_bits())
        );
        assert!(parse_line("42 x 1 2 3 4").is_none());
        assert!(parse_line("42 1 2 3").is_none());
    }
}
