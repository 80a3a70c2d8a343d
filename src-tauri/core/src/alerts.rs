//! Family alerts: decides when the parent is told something (a watch gone
//! quiet, a low battery, a new computer signed in, a watch paired or revoked
//! from another computer) and what the tray says about the family. Pure state:
//! the caller passes in what the cloud said and the time, so tests move the
//! clock. An alert's text names watches and computers, never a location.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use waymark_protocol::account::ActivityEntry;
use waymark_protocol::report::Fix;
use waymark_protocol::safe_zones::{ZoneEvent, ZoneEventKind, ZoneId};
use waymark_protocol::watches::{WatchInfo, WatchState};

/// Below this battery percent a watch raises an alert.
pub const LOW_BATTERY: u8 = 15;
/// A battery must climb back to this before it can alert again, so a battery
/// wavering around 15 % does not alert on every fix.
const BATTERY_RECOVERED: u8 = 20;
pub const DEFAULT_QUIET_MINUTES: u32 = 15;

/// Which alerts the parent wants (the Settings screen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default, deny_unknown_fields)]
pub struct AlertPrefs {
    /// A watch that has not reported for this long is "quiet".
    pub quiet_minutes: u32,
    pub quiet: bool,
    pub battery: bool,
    pub new_computer: bool,
    pub watch_changes: bool,
    /// Safe zones (issue 16): a watch arrived at a zone, left one, or had
    /// not arrived by a zone's scheduled time.
    pub zone_arrived: bool,
    pub zone_left: bool,
    pub zone_not_arrived: bool,
}

impl Default for AlertPrefs {
    fn default() -> Self {
        Self {
            quiet_minutes: DEFAULT_QUIET_MINUTES,
            quiet: true,
            battery: true,
            new_computer: true,
            watch_changes: true,
            zone_arrived: true,
            zone_left: true,
            zone_not_arrived: true,
        }
    }
}

/// Quiet thresholds the Settings screen accepts: 1 minute to 1 day.
pub const QUIET_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 1..=1440;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    Quiet {
        watch: String,
        minutes: u32,
    },
    BatteryLow {
        watch: String,
        percent: u8,
    },
    NewComputer {
        computer: String,
    },
    WatchPaired {
        detail: String,
        by: String,
    },
    WatchRevoked {
        detail: String,
        by: String,
    },
    /// A watch's safe-zone event; `at` is the watch's time, as this
    /// computer's local clock reads it ("08:12").
    Zone {
        watch: String,
        zone: String,
        event: ZoneEventKind,
        at: String,
    },
}

impl Alert {
    pub fn title(&self) -> String {
        match self {
            Alert::Quiet { watch, .. } => format!("{watch} is quiet"),
            Alert::BatteryLow { watch, .. } => format!("{watch}'s battery is low"),
            Alert::NewComputer { .. } => "A new computer signed in".into(),
            Alert::WatchPaired { .. } => "A watch was paired".into(),
            Alert::WatchRevoked { .. } => "A watch was revoked".into(),
            Alert::Zone {
                watch, zone, event, ..
            } => match event {
                ZoneEventKind::Arrived => format!("{watch} arrived at {zone}"),
                ZoneEventKind::Left => format!("{watch} left {zone}"),
                ZoneEventKind::NotArrivedBy => format!("{watch} has not arrived at {zone}"),
            },
        }
    }

    pub fn body(&self) -> String {
        match self {
            Alert::Quiet { minutes, .. } => format!(
                "No report for more than {minutes} minutes. It may be off, out of battery or out of signal."
            ),
            Alert::BatteryLow { percent, .. } => {
                format!("{percent} % left. Remind your child to charge it.")
            }
            Alert::NewComputer { computer } => format!(
                "“{computer}” signed in to your family's account. If that was not you, end its session in Waymark's Account screen."
            ),
            Alert::WatchPaired { detail, by } | Alert::WatchRevoked { detail, by } => {
                format!("{detail} on {by}.")
            }
            Alert::Zone {
                watch,
                zone,
                event,
                at,
            } => match event {
                ZoneEventKind::Arrived => format!("{watch} arrived at {zone}, {at}."),
                ZoneEventKind::Left => format!("{watch} left {zone}, {at}."),
                ZoneEventKind::NotArrivedBy => format!(
                    "{watch} was not at {zone} by its scheduled time ({at}). Check the map, or call your child."
                ),
            },
        }
    }
}

/// `t` (Unix ms) as this computer's local time of day, "08:12".
pub fn local_clock_time(t: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(t) {
        chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => {
            at.format("%H:%M").to_string()
        }
        chrono::LocalResult::None => String::from("at an unknown time"),
    }
}

/// What the tray shows about the family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FamilyState {
    SignedOut,
    NoWatches,
    AllReporting,
    /// These watches are quiet (by the parent's threshold).
    Quiet {
        watches: Vec<String>,
    },
    /// The last alert, while it is recent.
    Alert {
        title: String,
    },
}

impl FamilyState {
    pub fn summary(&self) -> String {
        match self {
            FamilyState::SignedOut => "Signed out".into(),
            FamilyState::NoWatches => "No watches paired".into(),
            FamilyState::AllReporting => "All watches reporting".into(),
            FamilyState::Quiet { watches } => format!("Quiet: {}", watches.join(", ")),
            FamilyState::Alert { title } => format!("Alert: {title}"),
        }
    }
}

/// How long the last alert stays the tray's state.
const ALERT_SHOWN_MS: i64 = 10 * 60 * 1000;
const HOUR_MS: i64 = 60 * 60 * 1000;

#[derive(Debug)]
struct Watch {
    name: String,
    last_seen: Option<i64>,
    quiet_alerted: bool,
    low_alerted: bool,
}

/// The alert state of one signed-in family.
#[derive(Debug)]
pub struct Alerts {
    prefs: AlertPrefs,
    my_session: String,
    signed_in: bool,
    watches: HashMap<String, Watch>,
    /// Activity up to this time has been seen; `None` until the first look
    /// (what happened before the app started is not news).
    activity_seen: Option<(i64, HashSet<(String, String)>)>,
    paused_until: Option<i64>,
    last_alert: Option<(i64, String)>,
    /// The family's zone names, by id, as last read.
    zone_names: HashMap<ZoneId, String>,
    /// Zone events already told (live, or caught up from history after the
    /// stream was away): each is told once.
    zone_told: HashSet<(String, ZoneEvent)>,
    /// Zone events of a watch the list does not name yet (the first check
    /// is still running, or it was just paired): told once it does.
    zone_waiting: Vec<(String, ZoneEvent)>,
}

impl Alerts {
    pub fn new(prefs: AlertPrefs) -> Self {
        Self {
            prefs,
            my_session: String::new(),
            signed_in: false,
            watches: HashMap::new(),
            activity_seen: None,
            paused_until: None,
            last_alert: None,
            zone_names: HashMap::new(),
            zone_told: HashSet::new(),
            zone_waiting: Vec::new(),
        }
    }

    pub fn prefs(&self) -> &AlertPrefs {
        &self.prefs
    }

    pub fn set_prefs(&mut self, prefs: AlertPrefs) {
        self.prefs = prefs;
    }

    /// A sign-in started: alerts are about this session's family from now on.
    pub fn signed_in(&mut self, my_session: &str) {
        self.signed_out();
        self.my_session = my_session.to_owned();
        self.signed_in = true;
    }

    pub fn is_signed_in(&self) -> bool {
        self.signed_in
    }

    /// Forgets the family; the parent's pause stays (it is about this
    /// computer, not the sign-in).
    pub fn signed_out(&mut self) {
        let paused_until = self.paused_until;
        *self = Self::new(self.prefs.clone());
        self.paused_until = paused_until;
    }

    /// "Pause alerts for 1 hour": alerts in that hour are not shown (the tray
    /// says they are paused).
    pub fn pause_for_an_hour(&mut self, now: i64) {
        self.paused_until = Some(now + HOUR_MS);
    }

    pub fn resume(&mut self) {
        self.paused_until = None;
    }

    pub fn paused_until(&self, now: i64) -> Option<i64> {
        self.paused_until.filter(|until| *until > now)
    }

    /// The cloud's watch list (polled): new names, last-seen times, and any
    /// watch now past the quiet threshold.
    pub fn watches(&mut self, list: &[WatchInfo], now: i64) -> Vec<Alert> {
        let live: HashSet<&str> = list
            .iter()
            .filter(|w| w.state != WatchState::Revoked)
            .map(|w| w.id.as_str())
            .collect();
        self.watches.retain(|id, _| live.contains(id.as_str()));
        let mut alerts = Vec::new();
        for w in list.iter().filter(|w| live.contains(w.id.as_str())) {
            let entry = self.watches.entry(w.id.clone()).or_insert(Watch {
                name: w.name.clone(),
                last_seen: None,
                quiet_alerted: false,
                low_alerted: false,
            });
            entry.name = w.name.clone();
            if w.last_seen > entry.last_seen {
                entry.last_seen = w.last_seen;
                entry.quiet_alerted = false;
            }
            if let Some(fix) = &w.latest {
                alerts.extend(Self::battery(&self.prefs, entry, fix));
            }
        }
        alerts.extend(self.quiet(now));
        let mut alerts = self.deliver(alerts, now);
        for (watch_id, event) in std::mem::take(&mut self.zone_waiting) {
            alerts.extend(self.zone(&watch_id, &event, now));
        }
        alerts
    }

    pub fn set_zone_names(&mut self, names: HashMap<ZoneId, String>) {
        self.zone_names = names;
    }

    /// A zone's name ("a safe zone" for one deleted or not read yet).
    pub fn zone_name(&self, id: &ZoneId) -> String {
        self.zone_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| "a safe zone".into())
    }

    /// A safe-zone event from the stream, if the parent wants that kind.
    pub fn zone(&mut self, watch_id: &str, event: &ZoneEvent, now: i64) -> Vec<Alert> {
        let wanted = match event.kind {
            ZoneEventKind::Arrived => self.prefs.zone_arrived,
            ZoneEventKind::Left => self.prefs.zone_left,
            ZoneEventKind::NotArrivedBy => self.prefs.zone_not_arrived,
        };
        let Some(watch) = self.watches.get(watch_id) else {
            if self.zone_waiting.len() < 1_000 {
                self.zone_waiting.push((watch_id.to_owned(), *event));
            }
            return Vec::new();
        };
        if self.zone_told.len() > 10_000 {
            // Bounded: the oldest news is long past being caught up again.
            self.zone_told.clear();
        }
        if !self.zone_told.insert((watch_id.to_owned(), *event)) || !wanted {
            return Vec::new();
        }
        let alert = Alert::Zone {
            watch: watch.name.clone(),
            zone: self.zone_name(&event.zone_id),
            event: event.kind,
            at: local_clock_time(event.t),
        };
        self.deliver(vec![alert], now)
    }

    /// A live fix from the stream.
    pub fn fix(&mut self, watch_id: &str, fix: &Fix, now: i64) -> Vec<Alert> {
        let Some(entry) = self.watches.get_mut(watch_id) else {
            // Not in the list yet (just paired): the next poll names it.
            return Vec::new();
        };
        if Some(fix.t) > entry.last_seen {
            entry.last_seen = Some(fix.t);
            entry.quiet_alerted = false;
        }
        let alerts = Self::battery(&self.prefs, entry, fix).into_iter().collect();
        self.deliver(alerts, now)
    }

    fn battery(prefs: &AlertPrefs, entry: &mut Watch, fix: &Fix) -> Option<Alert> {
        if fix.bat >= BATTERY_RECOVERED {
            entry.low_alerted = false;
        }
        if fix.bat < LOW_BATTERY && !entry.low_alerted {
            entry.low_alerted = true;
            return prefs.battery.then(|| Alert::BatteryLow {
                watch: entry.name.clone(),
                percent: fix.bat,
            });
        }
        None
    }

    /// The account's activity log (newest first, polled): a new computer, or
    /// a watch paired or revoked by another computer.
    pub fn activity(&mut self, entries: &[ActivityEntry], now: i64) -> Vec<Alert> {
        let newest = entries.iter().map(|e| e.at).max().unwrap_or(0);
        let key = |e: &ActivityEntry| (e.kind.clone(), e.detail.clone());
        let Some((seen_at, seen_keys)) = &self.activity_seen else {
            let keys = entries.iter().filter(|e| e.at == newest).map(key);
            self.activity_seen = Some((newest, keys.collect()));
            return Vec::new();
        };
        let fresh: Vec<&ActivityEntry> = entries
            .iter()
            .filter(|e| e.at > *seen_at || (e.at == *seen_at && !seen_keys.contains(&key(e))))
            .collect();
        let mut alerts = Vec::new();
        for e in fresh.iter().rev() {
            let by_me = e.actor_session_id.as_deref() == Some(self.my_session.as_str());
            if by_me {
                continue;
            }
            let by = e
                .actor_session_name
                .clone()
                .unwrap_or_else(|| "another computer".into());
            let alert = match e.kind.as_str() {
                "session.signed_in" if self.prefs.new_computer => {
                    Some(Alert::NewComputer { computer: by })
                }
                "watch.paired" if self.prefs.watch_changes => Some(Alert::WatchPaired {
                    detail: e.detail.clone(),
                    by,
                }),
                "watch.revoked" if self.prefs.watch_changes => Some(Alert::WatchRevoked {
                    detail: e.detail.clone(),
                    by,
                }),
                _ => None,
            };
            alerts.extend(alert);
        }
        if newest > *seen_at {
            let keys = entries.iter().filter(|e| e.at == newest).map(key);
            self.activity_seen = Some((newest, keys.collect()));
        } else if let Some((_, keys)) = &mut self.activity_seen {
            keys.extend(fresh.iter().map(|e| key(e)));
        }
        self.deliver(alerts, now)
    }

    /// Time passing: watches that went past the quiet threshold.
    pub fn tick(&mut self, now: i64) -> Vec<Alert> {
        let alerts = self.quiet(now);
        self.deliver(alerts, now)
    }

    fn quiet(&mut self, now: i64) -> Vec<Alert> {
        let limit = i64::from(self.prefs.quiet_minutes) * 60_000;
        let mut alerts = Vec::new();
        for w in self.watches.values_mut() {
            let quiet = w.last_seen.is_some_and(|seen| now - seen > limit);
            if quiet && !w.quiet_alerted {
                w.quiet_alerted = true;
                if self.prefs.quiet {
                    alerts.push(Alert::Quiet {
                        watch: w.name.clone(),
                        minutes: self.prefs.quiet_minutes,
                    });
                }
            }
        }
        alerts.sort_by_key(Alert::title);
        alerts
    }

    fn deliver(&mut self, alerts: Vec<Alert>, now: i64) -> Vec<Alert> {
        if let Some(last) = alerts.last() {
            self.last_alert = Some((now, last.title()));
        }
        if self.paused_until(now).is_some() {
            return Vec::new();
        }
        alerts
    }

    /// What the tray shows now.
    pub fn state(&self, now: i64) -> FamilyState {
        if !self.signed_in {
            return FamilyState::SignedOut;
        }
        if let Some((at, title)) = &self.last_alert
            && now - at < ALERT_SHOWN_MS
        {
            return FamilyState::Alert {
                title: title.clone(),
            };
        }
        if self.watches.is_empty() {
            return FamilyState::NoWatches;
        }
        let limit = i64::from(self.prefs.quiet_minutes) * 60_000;
        let mut quiet: Vec<String> = self
            .watches
            .values()
            .filter(|w| w.last_seen.is_none_or(|seen| now - seen > limit))
            .map(|w| w.name.clone())
            .collect();
        if quiet.is_empty() {
            return FamilyState::AllReporting;
        }
        quiet.sort();
        FamilyState::Quiet { watches: quiet }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_800_000_000_000;

    fn watch(id: &str, name: &str, last_seen: i64, bat: u8) -> WatchInfo {
        WatchInfo {
            id: id.into(),
            name: name.into(),
            model: "Waymark Kids 1".into(),
            paired_at: T0 - 100 * MIN,
            battery: Some(bat),
            last_seen: Some(last_seen),
            latest: Some(fix(last_seen, bat)),
            state: WatchState::Reporting,
            hardware_key: false,
            report_problem: None,
            key_epoch: Some(0),
            behind_key: false,
        }
    }

    fn fix(t: i64, bat: u8) -> Fix {
        Fix {
            t,
            lat: 51.5,
            lon: -0.12,
            acc: 5.0,
            bat,
        }
    }

    fn entry(at: i64, kind: &str, session: &str, name: &str, detail: &str) -> ActivityEntry {
        ActivityEntry {
            at,
            kind: kind.into(),
            actor_session_id: Some(session.into()),
            actor_session_name: Some(name.into()),
            actor_member_name: None,
            detail: detail.into(),
        }
    }

    fn signed_in() -> Alerts {
        let mut a = Alerts::new(AlertPrefs::default());
        a.signed_in("me");
        a
    }

    #[test]
    fn a_quiet_watch_alerts_once_and_again_only_after_it_reported() {
        let mut a = signed_in();
        let list = [watch("w1", "Lily's watch", T0, 80)];
        assert!(a.watches(&list, T0).is_empty());
        assert_eq!(a.state(T0), FamilyState::AllReporting);
        assert!(
            a.tick(T0 + 15 * MIN).is_empty(),
            "exactly 15 minutes is not yet quiet"
        );
        let quiet = a.tick(T0 + 16 * MIN);
        assert_eq!(
            quiet,
            [Alert::Quiet {
                watch: "Lily's watch".into(),
                minutes: 15
            }]
        );
        assert_eq!(quiet[0].title(), "Lily's watch is quiet");
        assert!(a.tick(T0 + 30 * MIN).is_empty(), "once per silence");
        assert!(
            a.fix("w1", &fix(T0 + 31 * MIN, 79), T0 + 31 * MIN)
                .is_empty()
        );
        assert!(a.tick(T0 + 40 * MIN).is_empty());
        assert_eq!(
            a.tick(T0 + 47 * MIN).len(),
            1,
            "quiet again after reporting"
        );
    }

    #[test]
    fn the_threshold_and_switches_are_the_parents() {
        let mut a = signed_in();
        a.set_prefs(AlertPrefs {
            quiet_minutes: 5,
            ..AlertPrefs::default()
        });
        a.watches(&[watch("w1", "Lily's watch", T0, 80)], T0);
        assert_eq!(a.tick(T0 + 6 * MIN).len(), 1);
        let mut off = signed_in();
        off.set_prefs(AlertPrefs {
            quiet: false,
            battery: false,
            ..AlertPrefs::default()
        });
        off.watches(&[watch("w1", "Lily's watch", T0, 80)], T0);
        assert!(off.tick(T0 + 60 * MIN).is_empty());
        assert!(
            off.fix("w1", &fix(T0 + 61 * MIN, 5), T0 + 61 * MIN)
                .is_empty()
        );
        // The tray still says it is quiet even with the alert switched off.
        assert!(matches!(
            off.state(T0 + 200 * MIN),
            FamilyState::Quiet { .. }
        ));
    }

    #[test]
    fn low_battery_alerts_once_until_the_watch_is_charged() {
        let mut a = signed_in();
        a.watches(&[watch("w1", "Sam's watch", T0, 40)], T0);
        assert!(
            a.fix("w1", &fix(T0 + 1000, 15), T0).is_empty(),
            "15 % is not low"
        );
        let low = a.fix("w1", &fix(T0 + 2000, 14), T0);
        assert_eq!(
            low,
            [Alert::BatteryLow {
                watch: "Sam's watch".into(),
                percent: 14
            }]
        );
        assert_eq!(low[0].body(), "14 % left. Remind your child to charge it.");
        assert!(a.fix("w1", &fix(T0 + 3000, 13), T0).is_empty());
        assert!(a.fix("w1", &fix(T0 + 4000, 16), T0).is_empty());
        assert!(
            a.fix("w1", &fix(T0 + 5000, 14), T0).is_empty(),
            "no flapping"
        );
        a.fix("w1", &fix(T0 + 6000, 90), T0);
        assert_eq!(a.fix("w1", &fix(T0 + 7000, 10), T0).len(), 1);
    }

    #[test]
    fn activity_alerts_name_other_computers_only_and_only_what_is_new() {
        let mut a = signed_in();
        let old = entry(
            T0,
            "session.signed_in",
            "s-old",
            "Office PC",
            "Signed in on “Office PC”",
        );
        assert!(
            a.activity(std::slice::from_ref(&old), T0).is_empty(),
            "history before start is not news"
        );
        let mine = entry(
            T0 + 1,
            "watch.paired",
            "me",
            "Kitchen laptop",
            "Paired “Lily”",
        );
        let theirs = entry(
            T0 + 2,
            "session.signed_in",
            "s-new",
            "Den laptop",
            "Signed in on “Den laptop”",
        );
        let revoked = entry(
            T0 + 2,
            "watch.revoked",
            "s-new",
            "Den laptop",
            "Revoked “Sam” (history kept)",
        );
        let list = [revoked.clone(), theirs.clone(), mine.clone(), old.clone()];
        let alerts = a.activity(&list, T0 + 3);
        assert_eq!(
            alerts,
            [
                Alert::NewComputer {
                    computer: "Den laptop".into()
                },
                Alert::WatchRevoked {
                    detail: "Revoked “Sam” (history kept)".into(),
                    by: "Den laptop".into()
                }
            ]
        );
        assert_eq!(
            alerts[1].body(),
            "Revoked “Sam” (history kept) on Den laptop."
        );
        assert!(a.activity(&list, T0 + 4).is_empty(), "each entry once");
        let same_ms = entry(
            T0 + 2,
            "watch.paired",
            "s-new",
            "Den laptop",
            "Paired “Max”",
        );
        let list = [same_ms, revoked, theirs, mine, old];
        assert_eq!(
            a.activity(&list, T0 + 5).len(),
            1,
            "a late entry in the same millisecond"
        );
    }

    #[test]
    fn pausing_silences_alerts_for_an_hour_and_the_tray_says_what_happened() {
        let mut a = signed_in();
        a.watches(&[watch("w1", "Lily's watch", T0, 80)], T0);
        a.pause_for_an_hour(T0);
        assert_eq!(a.paused_until(T0 + MIN), Some(T0 + 60 * MIN));
        assert!(a.tick(T0 + 20 * MIN).is_empty());
        assert_eq!(
            a.state(T0 + 20 * MIN),
            FamilyState::Alert {
                title: "Lily's watch is quiet".into()
            }
        );
        assert_eq!(a.paused_until(T0 + 61 * MIN), None);
        a.pause_for_an_hour(T0 + 30 * MIN);
        a.resume();
        assert_eq!(a.paused_until(T0 + 31 * MIN), None);
        assert!(matches!(a.state(T0 + 40 * MIN), FamilyState::Quiet { .. }));
        a.pause_for_an_hour(T0 + 41 * MIN);
        a.signed_out();
        assert_eq!(a.state(T0), FamilyState::SignedOut);
        assert!(
            a.paused_until(T0 + 42 * MIN).is_some(),
            "a sign-out keeps the pause"
        );
        a.signed_in("me");
        assert!(
            a.paused_until(T0 + 42 * MIN).is_some(),
            "and so does a sign-in"
        );
    }

    #[test]
    fn alert_text_never_carries_a_location() {
        let mut a = signed_in();
        a.watches(&[watch("w1", "Lily's watch", T0, 5)], T0);
        let mut all = a.tick(T0 + 20 * MIN);
        all.extend(a.fix("w1", &fix(T0 + 21 * MIN, 90), T0));
        all.extend(a.fix("w1", &fix(T0 + 22 * MIN, 3), T0));
        for alert in &all {
            let text = format!("{} {}", alert.title(), alert.body());
            assert!(!text.contains("51.5") && !text.contains("0.12"), "{text}");
        }
        assert!(!all.is_empty());
    }

    #[test]
    fn a_zone_event_is_told_once_as_the_parent_chose_and_waits_for_its_watch() {
        let school = ZoneId([5; 16]);
        let event = |kind, t| ZoneEvent {
            zone_id: school,
            kind,
            t,
        };
        let mut a = Alerts::new(AlertPrefs {
            zone_left: false,
            ..AlertPrefs::default()
        });
        a.signed_in("me");
        a.set_zone_names(HashMap::from([(school, "School".to_owned())]));
        // Live before the first check has named the watch: it waits, then is told.
        assert!(
            a.zone("w1", &event(ZoneEventKind::Arrived, T0), T0)
                .is_empty()
        );
        let told = a.watches(&[watch("w1", "Mia's watch", T0, 80)], T0);
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0].title(), "Mia's watch arrived at School");
        assert!(
            told[0]
                .body()
                .starts_with("Mia's watch arrived at School, ")
        );
        // Caught up again from the history: not told twice.
        assert!(
            a.zone("w1", &event(ZoneEventKind::Arrived, T0), T0)
                .is_empty()
        );
        // This parent does not want "left".
        assert!(
            a.zone("w1", &event(ZoneEventKind::Left, T0 + MIN), T0)
                .is_empty()
        );
        let late = a.zone("w1", &event(ZoneEventKind::NotArrivedBy, T0 + 2 * MIN), T0);
        assert_eq!(late[0].title(), "Mia's watch has not arrived at School");
        // A zone deleted since still names the event, without its name.
        let gone = ZoneEvent {
            zone_id: ZoneId([6; 16]),
            ..event(ZoneEventKind::Arrived, T0 + 3 * MIN)
        };
        assert_eq!(
            a.zone("w1", &gone, T0)[0].title(),
            "Mia's watch arrived at a safe zone"
        );
    }
}
