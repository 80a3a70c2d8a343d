//! The family's time zone, in which zone schedules are read ("school days,
//! 07:00 to 16:00, alert if not there by 08:30"). It travels sealed inside
//! the zone set, so the watch and every family app read a schedule the same
//! way, with daylight saving, from the IANA database each carries built in
//! (a watch has no `/usr/share/zoneinfo` to trust).

use serde::{Deserialize, Serialize};

use crate::safe_zones::LocalTime;

/// An IANA time zone name that this build's time zone database knows.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FamilyTimeZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl FamilyTimeZone {
    /// `None` when the database does not know `name`.
    pub fn parse(name: &str) -> Option<Self> {
        let tz = jiff::tz::db().get(name).ok()?;
        Some(Self {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn utc() -> Self {
        Self {
            name: "Etc/UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local time at `t_ms` (Unix ms), with the offset in force at that
    /// instant (so 08:30 is 08:30 in summer and in winter).
    pub fn local(&self, t_ms: i64) -> LocalTime {
        let offset_min = jiff::Timestamp::from_millisecond(t_ms)
            .map(|t| self.tz.to_offset(t).seconds() / 60)
            .unwrap_or(0);
        LocalTime::at(t_ms, offset_min)
    }

    /// Every name the database knows, sorted, for a parent to choose from.
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .collect();
        names.sort();
        names
    }
}

impl TryFrom<String> for FamilyTimeZone {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::parse(&name).ok_or_else(|| format!("unknown time zone {name:?}"))
    }
}

impl From<FamilyTimeZone> for String {
    fn from(tz: FamilyTimeZone) -> Self {
        tz.name
    }
}

impl PartialEq for FamilyTimeZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl std::fmt::Debug for FamilyTimeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-07-01 and 2026-01-15, 06:30 UTC, in Unix ms.
    const SUMMER_0630_UTC: i64 = 1_782_887_400_000;
    const WINTER_0630_UTC: i64 = 1_768_458_600_000;

    #[test]
    fn a_schedule_is_read_with_daylight_saving() {
        let berlin = FamilyTimeZone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.local(SUMMER_0630_UTC).minute, 8 * 60 + 30);
        assert_eq!(berlin.local(WINTER_0630_UTC).minute, 7 * 60 + 30);
        let new_york = FamilyTimeZone::parse("America/New_York").unwrap();
        assert_eq!(new_york.local(SUMMER_0630_UTC).minute, 2 * 60 + 30);
        // The day moves back too: 02:30 local on 1 July is still 1 July,
        // 01:30 local on 15 January is 15 January (a Thursday: day % 7 == 3).
        assert_eq!(new_york.local(WINTER_0630_UTC).minute, 60 + 30);
        assert_eq!(new_york.local(WINTER_0630_UTC).day.rem_euclid(7), 3);
        assert_eq!(
            FamilyTimeZone::utc().local(WINTER_0630_UTC).minute,
            6 * 60 + 30
        );
    }

    #[test]
    fn only_names_the_database_knows_are_taken() {
        assert!(FamilyTimeZone::parse("Mars/Olympus_Mons").is_none());
        assert!(FamilyTimeZone::parse("").is_none());
        let err = serde_json::from_str::<FamilyTimeZone>("\"Mars/Olympus_Mons\"").unwrap_err();
        assert!(err.to_string().contains("unknown time zone"));
        let tz: FamilyTimeZone = serde_json::from_str("\"Europe/Berlin\"").unwrap();
        assert_eq!(serde_json::to_string(&tz).unwrap(), "\"Europe/Berlin\"");
        let names = FamilyTimeZone::names();
        assert!(names.iter().any(|n| n == "Europe/Berlin"));
        assert!(names.len() > 300, "the whole database is built in");
    }
}
