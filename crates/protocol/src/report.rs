//! Location reports: a fix and the rules every fix must meet (the watch
//! checks them before it seals a batch, the app again after opening one; the
//! cloud sees only the times). What a watch uploads is a sealed batch
//! (`sealed_report.rs`); the status poll is `status_poll.rs`.

use serde::{Deserialize, Serialize};

/// At most this many fixes in one batch.
pub const MAX_FIXES_PER_BATCH: usize = 500;
/// A fix may be this far in the future (clock skew).
pub const MAX_FUTURE_SKEW_MS: i64 = 2 * 60 * 1000;
/// A fix older than this is refused (the on-disk queue keeps fewer days).
pub const MAX_FIX_AGE_MS: i64 = 30 * 24 * 3600 * 1000;

/// One position fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Fix {
    /// When, in ms since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub t: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = -90, maximum = 90))]
    pub lat: f64,
    #[cfg_attr(feature = "openapi", schema(minimum = -180, maximum = 180))]
    pub lon: f64,
    /// Accuracy radius, metres.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100000))]
    pub acc: f64,
    /// Battery, percent.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub bat: u8,
}

/// What a watch queues, seals and reports: a fix, or a safe-zone event it
/// noticed (issue 16). In a sealed batch both are records of the same size,
/// so the cloud cannot tell one from the other.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    Fix(Fix),
    Zone(crate::safe_zones::ZoneEvent),
}

impl Record {
    pub fn t(&self) -> i64 {
        match self {
            Self::Fix(f) => f.t,
            Self::Zone(e) => e.t,
        }
    }

    pub fn t_mut(&mut self) -> &mut i64 {
        match self {
            Self::Fix(f) => &mut f.t,
            Self::Zone(e) => &mut e.t,
        }
    }
}

/// Why a fix is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixError {
    Latitude,
    Longitude,
    Accuracy,
    Battery,
    InFuture,
    TooOld,
}

impl FixError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Latitude => "latitude must be between -90 and 90",
            Self::Longitude => "longitude must be between -180 and 180",
            Self::Accuracy => "accuracy must be between 0 and 100000 metres",
            Self::Battery => "battery must be between 0 and 100",
            Self::InFuture => "a fix is timed in the future",
            Self::TooOld => "a fix is older than 30 days",
        }
    }
}

impl Fix {
    pub fn validate(&self, now_ms: i64) -> Result<(), FixError> {
        self.validate_values()?;
        validate_time(self.t, now_ms)
    }

    /// The ranges of the position, accuracy and battery (not the time).
    pub fn validate_values(&self) -> Result<(), FixError> {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(FixError::Latitude);
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err(FixError::Longitude);
        }
        if !(self.acc.is_finite() && (0.0..=100_000.0).contains(&self.acc)) {
            return Err(FixError::Accuracy);
        }
        if self.bat > 100 {
            return Err(FixError::Battery);
        }
        Ok(())
    }
}

/// The rules every record's time must meet.
fn validate_time(t: i64, now_ms: i64) -> Result<(), FixError> {
    if t > now_ms + MAX_FUTURE_SKEW_MS {
        return Err(FixError::InFuture);
    }
    if t < now_ms - MAX_FIX_AGE_MS {
        return Err(FixError::TooOld);
    }
    Ok(())
}

impl Record {
    /// A fix's rules; a zone event's time only (its zone is checked by
    /// whoever knows the zones).
    pub fn validate(&self, now_ms: i64) -> Result<(), FixError> {
        match self {
            Self::Fix(f) => f.validate(now_ms),
            Self::Zone(e) => validate_time(e.t, now_ms),
        }
    }

    pub fn validate_values(&self) -> Result<(), FixError> {
        match self {
            Self::Fix(f) => f.validate_values(),
            Self::Zone(_) => Ok(()),
        }
    }
}

/// The cloud stored the batch durably: the watch may now forget it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAck {
    pub acked_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(now: i64) -> Fix {
        Fix {
            t: now,
            lat: 52.52,
            lon: 13.405,
            acc: 8.0,
            bat: 80,
        }
    }

    #[test]
    fn fixes_are_validated() {
        let now = 1_700_000_000_000;
        assert_eq!(fix(now).validate(now), Ok(()));
        let cases = [
            (
                Fix {
                    lat: 90.1,
                    ..fix(now)
                },
                FixError::Latitude,
            ),
            (
                Fix {
                    lat: f64::NAN,
                    ..fix(now)
                },
                FixError::Latitude,
            ),
            (
                Fix {
                    lon: -180.5,
                    ..fix(now)
                },
                FixError::Longitude,
            ),
            (
                Fix {
                    acc: -1.0,
                    ..fix(now)
                },
                FixError::Accuracy,
            ),
            (
                Fix {
                    acc: f64::INFINITY,
                    ..fix(now)
                },
                FixError::Accuracy,
            ),
            (
                Fix {
                    bat: 101,
                    ..fix(now)
                },
                FixError::Battery,
            ),
            (
                Fix {
                    t: now + MAX_FUTURE_SKEW_MS + 1,
                    ..fix(now)
                },
                FixError::InFuture,
            ),
            (
                Fix {
                    t: now - MAX_FIX_AGE_MS - 1,
                    ..fix(now)
                },
                FixError::TooOld,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(f.validate(now), Err(want), "{f:?}");
        }
    }

    #[test]
    fn json_round_trips_floats_exactly() {
        let f = Fix {
            t: 5,
            lat: 48.858_370_123_456_78,
            lon: 2.294_481_987_654_32,
            acc: 3.3,
            bat: 1,
        };
        let back: Fix = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        // Signatures cover the float bits: parsing must round-trip every value exactly.
        for i in 0..2000 {
            let f = Fix {
                lat: 52.52 + i as f64 * 1e-4,
                lon: -0.1 - i as f64 * 3.3e-5,
                ..f
            };
            let back: Fix = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
            assert_eq!(back.lat.to_bits(), f.lat.to_bits());
            assert_eq!(back.lon.to_bits(), f.lon.to_bits());
        }
    }
}
