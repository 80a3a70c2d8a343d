//! Time as a type, and the clock it comes from. A [`Timestamp`] is
//! milliseconds since the Unix epoch (what every wire type carries). The
//! cloud reads time only from an injected [`Clock`], so tests move time
//! forward instead of rewriting rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Times on the wire are milliseconds since the Unix epoch (UTC).
pub type UnixMillis = i64;

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn ms(self) -> i64 {
        self.0
    }
}

/// The system clock plus an offset that only tests change. Clones share the
/// offset, so moving one moves every part of the cloud that holds it.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> Timestamp {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(system + self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward, as if `by` had passed.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(3600));
        assert!(other.now().ms() - before.ms() >= 3_600_000);
    }
}
