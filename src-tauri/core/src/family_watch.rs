//! Keeps an eye on the family while the app runs, with the window open or
//! closed to the tray: polls the watch list and the activity log, takes live
//! fixes from the stream, and hands each alert and the family's state to a
//! [`Surface`] (desktop notifications and the tray in the app, a recorder in
//! tests).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::alerts::{Alert, AlertPrefs, Alerts, FamilyState};
use crate::error::AppError;
use crate::watches::ZoneEntry;
use crate::{Core, LiveEvent};

fn write_marker(path: &Path, now: i64) {
    if let Err(e) = std::fs::write(path, format!("{now}\n")) {
        tracing::warn!(error = %e, "could not note the time of the family check");
    }
}

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
    /// Where the time of the last family check is kept, so the next start
    /// knows since when to look for zone events ("While you were away").
    away_marker: Option<PathBuf>,
    /// Safe-zone events that happened while no app of this computer ran.
    away: Mutex<Vec<ZoneEntry>>,
    /// The first check after a sign-in has looked for them.
    away_read: Mutex<bool>,
    /// The live stream was (or may have been) away since the last check:
    /// the next check reads each watch's history from where the family's
    /// alerts last had it (what a watch queued while offline comes late,
    /// with its own older times), and tells each zone event once.
    gap: std::sync::atomic::AtomicBool,
    /// Per watch: zone events up to this report time have been told (live,
    /// or caught up).
    covered: Mutex<std::collections::HashMap<String, i64>>,
}

impl FamilyWatch {
    pub fn new(prefs: AlertPrefs, surface: Box<dyn Surface>, clock: Clock) -> Self {
        let watch = Self {
            alerts: Mutex::new(Alerts::new(prefs)),
            surface,
            clock,
            away_marker: None,
            away: Mutex::new(Vec::new()),
            away_read: Mutex::new(false),
            gap: std::sync::atomic::AtomicBool::new(true),
            covered: Mutex::new(std::collections::HashMap::new()),
        };
        watch.show_state();
        watch
    }

    /// Keeps the time of each check in `path`, so safe-zone events between
    /// the last check and the next start are listed ("While you were away").
    pub fn with_away_marker(mut self, path: PathBuf) -> Self {
        self.away_marker = Some(path);
        self
    }

    /// The family's zones as just saved or read: their names for alerts.
    pub fn zones_changed(&self, zones: &[waymark_protocol::safe_zones::Zone]) {
        let names = zones.iter().map(|z| (z.id, z.name.clone())).collect();
        self.with(|a, _| a.set_zone_names(names));
    }

    /// The safe-zone events that happened while no app ran, oldest first.
    pub fn away(&self) -> Vec<ZoneEntry> {
        self.away.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The parent has read the list.
    pub fn dismiss_away(&self) {
        self.away.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn saw_live(&self, watch_id: &str, t: i64) {
        let mut covered = self.covered.lock().unwrap_or_else(|p| p.into_inner());
        let newest = covered.entry(watch_id.to_owned()).or_insert(t);
        *newest = (*newest).max(t);
    }

    /// After the live stream was away (at start, when the cloud restarted,
    /// when the network dropped): the zone events reported meanwhile.
    async fn catch_up(&self, core: &Core, watches: &[waymark_protocol::watches::WatchInfo]) {
        use std::sync::atomic::Ordering;
        let froms: Vec<(String, i64)> = {
            let mut covered = self.covered.lock().unwrap_or_else(|p| p.into_inner());
            watches
                .iter()
                .map(|w| {
                    // A watch first seen now: what it reported before is
                    // "While you were away", not news.
                    let from = *covered
                        .entry(w.id.clone())
                        .or_insert(w.last_seen.map_or(0, |t| t + 1));
                    (w.id.clone(), from)
                })
                .collect()
        };
        if !self.gap.swap(false, Ordering::Relaxed) {
            return;
        }
        let now = (self.clock)();
        for (watch_id, from) in froms {
            match core.history(&watch_id, from, now).await {
                Ok(trail) => {
                    for e in trail.events {
                        let event = waymark_protocol::safe_zones::ZoneEvent {
                            zone_id: e.zone_id,
                            kind: e.kind,
                            t: e.t,
                        };
                        self.saw_live(&watch_id, e.t);
                        let alerts = self.with(|a, now| a.zone(&watch_id, &event, now));
                        self.show(alerts);
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "could not catch up on zone events; trying at the next check");
                    self.gap.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// At the first check: the zone events since the last check of an
    /// earlier run (none at the very first run: nothing was missed then).
    async fn read_away(&self, core: &Core, watches: &[waymark_protocol::watches::WatchInfo]) {
        let Some(marker) = &self.away_marker else {
            return;
        };
        let now = (self.clock)();
        {
            let mut read = self.away_read.lock().unwrap_or_else(|p| p.into_inner());
            if *read {
                drop(read);
                write_marker(marker, now);
                return;
            }
            *read = true;
        }
        let since = std::fs::read_to_string(marker)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
        if let Some(since) = since.filter(|s| *s < now) {
            let mut found = Vec::new();
            for w in watches {
                match core.history(&w.id, since, now).await {
                    Ok(trail) => found.extend(trail.events),
                    Err(e) => tracing::info!(error = %e, "could not read what happened while away"),
                }
            }
            found.sort_by_key(|e| e.t);
            *self.away.lock().unwrap_or_else(|p| p.into_inner()) = found;
        }
        write_marker(marker, now);
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
        *self.away_read.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.covered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.gap.store(true, std::sync::atomic::Ordering::Relaxed);
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
                self.saw_live(&live.watch_id, live.fix.t);
                let alerts = self.with(|a, now| a.fix(&live.watch_id, &live.fix, now));
                self.show(alerts);
            }
            // Whatever came while it was not connected is read at the next check.
            LiveEvent::Connected | LiveEvent::Lagged | LiveEvent::Offline { .. } => {
                self.gap.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            LiveEvent::Zone { watch_id, event } => {
                self.saw_live(watch_id, event.t);
                let alerts = self.with(|a, now| a.zone(watch_id, event, now));
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
        // Zones: names for the alerts, and the family's zones handed to a
        // watch paired since they were saved. Neither stops the check.
        match core.zone_names().await {
            Ok(names) => self.with(|a, _| a.set_zone_names(names)),
            Err(e) => tracing::info!(error = %e, "could not read the family's zones"),
        }
        if let Err(e) = core.hand_zones_to_new_watches().await {
            tracing::info!(error = %e, "could not hand the zones to a new watch");
        }
        self.read_away(core, &watches).await;
        self.catch_up(core, &watches).await;
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
