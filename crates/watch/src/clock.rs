//! The watch's sense of time: its own clock, which may be wrong, corrected
//! by the time the cloud's answers carry (the HTTP `Date` header of every
//! answer, over the pinned TLS connection). A real watch takes its time
//! from GNSS; the simulator can be told how wrong its clock is
//! (`--clock-error-ms`) and must still deliver every fix.

use std::sync::atomic::{AtomicI64, Ordering};

/// A measured offset closer than this to the one in use is noise (`Date`
/// has whole seconds), not a new correction.
const SIGNIFICANT_MS: i64 = 2_000;

#[derive(Debug, Default)]
pub struct Clock {
    /// How far the simulated hardware clock is from true time.
    error_ms: i64,
    /// What to add to the hardware clock to get the cloud's time.
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock whose hardware reads `error_ms` away from the system's time.
    pub fn with_error(error_ms: i64) -> Self {
        Self {
            error_ms,
            offset_ms: AtomicI64::new(0),
        }
    }

    /// The hardware clock, uncorrected.
    pub fn hardware_ms(&self) -> i64 {
        crate::now_ms() + self.error_ms
    }

    /// The best known time: the hardware clock plus the learned correction.
    pub fn now_ms(&self) -> i64 {
        self.hardware_ms() + self.offset_ms()
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Learns from an answer's `Date` header, read at hardware time
    /// `received_at`. True when the correction changed.
    pub fn observe_date(&self, date: &str, received_at: i64) -> bool {
        let Ok(at) = httpdate::parse_http_date(date) else {
            return false;
        };
        let Ok(since_epoch) = at.duration_since(std::time::UNIX_EPOCH) else {
            return false;
        };
        // `Date` is truncated to the second: its middle is the best guess.
        let cloud_ms = since_epoch.as_millis() as i64 + 500;
        let measured = cloud_ms - received_at;
        if (measured - self.offset_ms()).abs() <= SIGNIFICANT_MS {
            return false;
        }
        self.offset_ms.store(measured, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_is_corrected_by_the_clouds_date() {
        let clock = Clock::with_error(180_000);
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        assert!(clock.observe_date(&date, clock.hardware_ms()));
        assert!((clock.now_ms() - crate::now_ms()).abs() < 2_000);
        // The same answer again changes nothing.
        assert!(!clock.observe_date(&date, clock.hardware_ms()));
        assert!(!clock.observe_date("not a date", 0));
    }

    #[test]
    fn a_right_clock_stays_as_it_is() {
        let clock = Clock::default();
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        assert!(!clock.observe_date(&date, clock.hardware_ms()));
        assert_eq!(clock.offset_ms(), 0);
    }
}
