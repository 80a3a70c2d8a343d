//! Reading a stored fix out of a result row (shared by every query that returns fixes).

use sqlx::Row;
use waymark_protocol::report::Fix;

pub(super) fn fix_from(r: &sqlx::any::AnyRow) -> Fix {
    Fix {
        t: r.get("t"),
        lat: r.get("lat"),
        lon: r.get("lon"),
        acc: r.get("acc"),
        bat: r.get::<i64, _>("bat") as u8,
    }
}
