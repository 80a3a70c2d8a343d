//! Keeps an eye on the family while the app runs, with the window open or
//! closed to the tray: polls the watch list and the activity log, takes live
//! fixes from the stream, and hands each alert and the family's state to a
//! [`Surface`] (desktop notifications and the tray in the app, a recorder in
//! tests).

use std::sync::Mutex;
use std::time::Duration;

use crate::alerts::{Alert, AlertPrefs, Alerts, FamilyState};
use crate::error::AppError;
use crate::{Core, LiveEvent};

/// Where alerts and the family's state go.
pub trait Surface: Send + Sync {
    fn alert(&self, alert: &Alert);
    fn family_state(&self, state: &FamilyState, paused_until: Option<i64>);
}

/// The time, in Unix ms (passed in so tests can move it).
pub type Clock = Box<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Box::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

pub struct FamilyWatch {
    alerts: Mutex<Alerts>,
    surface: Box<dyn Surface>,
    clock: Clock,
}

impl FamilyWatch {
    pub fn new(prefs: AlertPrefs, surface: Box<dyn Surface>, clock: Clock) -> Self {
        let watch = Self {
            alerts: Mutex::new(Alerts::new(prefs)),
            surface,
            clock,
        };
        watch.show_state();
        watch
    }

    fn with<T>(&self, f: impl FnOnce(&mut Alerts, i64) -> T) -> T {
        let now = (self.clock)();
        let mut alerts = self.alerts.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut alerts, now)
    }

    fn show(&self, alerts: Vec<Alert>) {
        for alert in &alerts {
            self.surface.alert(alert);
        }
        self.show_state();
    }

    fn show_state(&self) {
        let (state, paused) = self.with(|a, now| (a.state(now), a.paused_until(now)));
        self.surface.family_state(&state, paused);
    }

    pub fn state(&self) -> FamilyState {
        self.with(|a, now| a.state(now))
    }

    pub fn set_prefs(&self, prefs: AlertPrefs) {
        self.with(|a, _| a.set_prefs(prefs));
        self.show_state();
    }

    pub fn signed_in(&self, my_session: &str) {
        self.with(|a, _| a.signed_in(my_session));
        self.show_state();
    }

    pub fn signed_out(&self) {
        self.with(|a, _| a.signed_out());
        self.show_state();
    }

    pub fn pause_for_an_hour(&self) {
        self.with(|a, now| a.pause_for_an_hour(now));
        self.show_state();
    }

    pub fn resume(&self) {
        self.with(|a, _| a.resume());
        self.show_state();
    }

    pub fn paused(&self) -> bool {
        self.with(|a, now| a.paused_until(now).is_some())
    }

    /// An event of the live stream (the same one the window draws).
    pub fn live(&self, event: &LiveEvent) {
        match event {
            LiveEvent::Fix(live) => {
                let alerts = self.with(|a, now| a.fix(&live.watch_id, &live.fix, now));
                self.show(alerts);
            }
            LiveEvent::SignedOut => self.signed_out(),
            _ => {}
        }
    }

    /// One look at the cloud: the watch list and the activity log.
    pub async fn poll(&self, core: &Core) -> Result<(), AppError> {
        if !self.with(|a, _| a.is_signed_in()) {
            // Whose computer this is, so its own actions are not news.
            let me = core.me().await?;
            self.signed_in(&me.session_id);
        }
        let watches = core.watches().await?;
        let activity = core.activity().await?;
        let mut alerts = self.with(|a, now| a.watches(&watches, now));
        alerts.extend(self.with(|a, now| a.activity(&activity, now)));
        self.show(alerts);
        Ok(())
    }

    /// Follows the signed-in family until the sign-in ends: the live stream
    /// (each event also goes to `emit`, for the window) and the periodic
    /// check, both feeding the alerts.
    pub async fn follow(&self, core: &Core, emit: impl FnMut(LiveEvent) + Send) {
        self.signed_out();
        // Both the stream and the check may be the first to find the sign-in
        // over; either way the window is told.
        let emit = Mutex::new(emit);
        let send = |event: LiveEvent| (emit.lock().unwrap_or_else(|p| p.into_inner()))(event);
        let live = core.follow_live(|event| {
            self.live(&event);
            send(event);
        });
        let every = core.settings().alert_poll;
        // Whichever ends first (both end only at sign-out) ends the other.
        tokio::select! {
            () = live => {}
            () = self.run(core, every) => send(LiveEvent::SignedOut),
        }
    }

    /// Polls every `every` until the sign-in ends; a cloud that cannot be
    /// reached is tried again at the next turn (the live stream says offline).
    pub async fn run(&self, core: &Core, every: Duration) {
        loop {
            match self.poll(core).await {
                Err(AppError::SignedOut) => {
                    self.signed_out();
                    return;
                }
                Err(e) => tracing::info!(error = %e, "family check failed; trying again"),
                Ok(()) => {}
            }
            tokio::time::sleep(every).await;
        }
    }
}
