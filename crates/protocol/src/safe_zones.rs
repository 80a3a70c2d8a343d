//! Safe zones (issue 16): what a zone is, the checks every zone must pass
//! (in the app when a parent draws it, and again on the watch after it is
//! decrypted), and how a watch turns its fixes into arrived / left / not
//! arrived by the scheduled time, without flapping at the edge.
//!
//! Distances are on a sphere of the Earth's mean radius: great-circle
//! distance for circles; polygons are measured in a local plane around the
//! fix (equirectangular), exact enough for zones of at most a few kilometres.
//! Schedules are in the family's local time, which the caller supplies: the
//! watch knows its time zone, this module does not.

use serde::{Deserialize, Serialize};

/// Metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;
pub const MIN_RADIUS_M: f64 = 50.0;
pub const MAX_RADIUS_M: f64 = 5_000.0;
pub const MAX_VERTICES: usize = 100;
pub const MAX_NAME_CHARS: usize = 40;
/// A state change needs the whole accuracy circle this far past the edge.
pub const HYSTERESIS_M: f64 = 20.0;
/// A fix less accurate than this says nothing about a zone.
pub const MAX_USEFUL_ACCURACY_M: f64 = 500.0;

/// A zone's id: 16 random bytes the app chooses, written as base64url. Fixed
/// length, so a zone event is a record of the same size as a fix in a
/// sealed batch (`location_sealing.rs`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct ZoneId(pub [u8; 16]);

impl ZoneId {
    pub fn generate() -> Self {
        Self(crate::typed_code::random_128())
    }

    /// The id written as base64url, if it is exactly 16 bytes.
    pub fn parse(raw: &str) -> Option<Self> {
        crate::signing::unb64(raw)?.try_into().ok().map(Self)
    }
}

impl std::fmt::Display for ZoneId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::signing::b64(&self.0))
    }
}

impl std::fmt::Debug for ZoneId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZoneId({self})")
    }
}

impl Serialize for ZoneId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ZoneId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom("not a zone id (16 bytes, base64url)"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Shape {
    Circle { centre: Point, radius_m: f64 },
    Polygon { points: Vec<Point> },
}

/// Days of the week as bits, Monday = bit 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Days(pub u8);

impl Days {
    pub const SCHOOL_DAYS: Self = Self(0b0001_1111);

    pub fn contains(self, weekday: u8) -> bool {
        weekday < 7 && self.0 & (1 << weekday) != 0
    }
}

/// When a zone applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Schedule {
    Always,
    /// On `days`, from `from_min` to `until_min` (minutes after local
    /// midnight); with `arrive_by_min`, a watch not inside by then reports
    /// "not arrived" once that day.
    Weekly {
        days: Days,
        from_min: u16,
        until_min: u16,
        arrive_by_min: Option<u16>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Zone {
    /// The family's own id for the zone (random; chosen by the app).
    pub id: ZoneId,
    pub name: String,
    pub shape: Shape,
    /// The watches it applies to.
    pub watches: Vec<String>,
    pub schedule: Schedule,
}

/// Why a zone is refused; the app shows [`message`](Self::message), the watch
/// reports the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneError {
    Name,
    Coordinates,
    Radius,
    TooFewPoints,
    TooManyPoints,
    SelfIntersecting,
    NoWatches,
    Schedule,
}

impl ZoneError {
    pub const ALL: [Self; 8] = [
        Self::Name,
        Self::Coordinates,
        Self::Radius,
        Self::TooFewPoints,
        Self::TooManyPoints,
        Self::SelfIntersecting,
        Self::NoWatches,
        Self::Schedule,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Name => "zone_name",
            Self::Coordinates => "zone_coordinates",
            Self::Radius => "zone_radius",
            Self::TooFewPoints => "zone_too_few_points",
            Self::TooManyPoints => "zone_too_many_points",
            Self::SelfIntersecting => "zone_self_intersecting",
            Self::NoWatches => "zone_no_watches",
            Self::Schedule => "zone_schedule",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Name => "Give the zone a name of 1 to 40 characters.",
            Self::Coordinates => {
                "A point of the zone is not on the map (latitude −90 to 90, longitude −180 to 180)."
            }
            Self::Radius => "A circle's radius must be between 50 m and 5 km.",
            Self::TooFewPoints => "An area needs at least 3 corners.",
            Self::TooManyPoints => "An area can have at most 100 corners.",
            Self::SelfIntersecting => {
                "The area's edges cross each other. Move a corner so they do not."
            }
            Self::NoWatches => "Choose at least one watch for the zone.",
            Self::Schedule => {
                "The schedule cannot happen: choose at least one day, an end after the start, and an arrival time within them."
            }
        }
    }
}

fn valid_point(p: &Point) -> bool {
    p.lat.is_finite()
        && p.lon.is_finite()
        && (-90.0..=90.0).contains(&p.lat)
        && (-180.0..=180.0).contains(&p.lon)
}

impl Zone {
    pub fn validate(&self) -> Result<(), ZoneError> {
        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS || self.name.chars().any(char::is_control)
        {
            return Err(ZoneError::Name);
        }
        if self.watches.is_empty() {
            return Err(ZoneError::NoWatches);
        }
        match &self.shape {
            Shape::Circle { centre, radius_m } => {
                if !valid_point(centre) {
                    return Err(ZoneError::Coordinates);
                }
                if !(radius_m.is_finite() && (MIN_RADIUS_M..=MAX_RADIUS_M).contains(radius_m)) {
                    return Err(ZoneError::Radius);
                }
            }
            Shape::Polygon { points } => {
                if points.len() < 3 {
                    return Err(ZoneError::TooFewPoints);
                }
                if points.len() > MAX_VERTICES {
                    return Err(ZoneError::TooManyPoints);
                }
                if !points.iter().all(valid_point) {
                    return Err(ZoneError::Coordinates);
                }
                if self_intersects(points) {
                    return Err(ZoneError::SelfIntersecting);
                }
            }
        }
        if let Schedule::Weekly {
            days,
            from_min,
            until_min,
            arrive_by_min,
        } = self.schedule
        {
            let day_ok = days.0 != 0 && days.0 < 0x80;
            let window_ok = from_min < until_min && until_min <= 24 * 60;
            let arrive_ok = arrive_by_min.is_none_or(|a| (from_min..=until_min).contains(&a));
            if !(day_ok && window_ok && arrive_ok) {
                return Err(ZoneError::Schedule);
            }
        }
        Ok(())
    }

    /// Signed distance in metres from `p` to the zone's edge: negative
    /// inside, positive outside.
    pub fn signed_distance_m(&self, p: Point) -> f64 {
        match &self.shape {
            Shape::Circle { centre, radius_m } => great_circle_m(*centre, p) - radius_m,
            Shape::Polygon { points } => polygon_signed_distance_m(points, p),
        }
    }
}

fn great_circle_m(a: Point, b: Point) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// `q` in metres east and north of `origin` (local plane), given
/// `cos_lat = cos(origin.lat)`.
fn local_xy(origin: Point, cos_lat: f64, q: Point) -> (f64, f64) {
    let mut dlon = q.lon - origin.lon;
    // Zones near the antimeridian: take the short way round.
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let x = dlon.to_radians() * EARTH_RADIUS_M * cos_lat;
    let y = (q.lat - origin.lat).to_radians() * EARTH_RADIUS_M;
    (x, y)
}

fn polygon_signed_distance_m(points: &[Point], p: Point) -> f64 {
    let mut inside = false;
    let mut best = f64::INFINITY;
    let n = points.len();
    let cos_lat = p.lat.to_radians().cos();
    let mut prev = local_xy(p, cos_lat, points[n - 1]);
    for q in points {
        let cur = local_xy(p, cos_lat, *q);
        let ((x1, y1), (x2, y2)) = (prev, cur);
        // Ray casting from the fix (the origin) towards +x.
        if (y1 > 0.0) != (y2 > 0.0) && x1 + (0.0 - y1) * (x2 - x1) / (y2 - y1) > 0.0 {
            inside = !inside;
        }
        // Distance from the origin to the segment.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (-(x1 * dx + y1 * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (cx, cy) = (x1 + t * dx, y1 + t * dy);
        best = best.min(cx * cx + cy * cy);
        prev = cur;
    }
    // Squared until here: one square root per polygon, not per edge.
    let best = best.sqrt();
    if inside { -best } else { best }
}

fn self_intersects(points: &[Point]) -> bool {
    let origin = points[0];
    let cos_lat = origin.lat.to_radians().cos();
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|q| local_xy(origin, cos_lat, *q))
        .collect();
    let n = xy.len();
    let seg = |i: usize| (xy[i], xy[(i + 1) % n]);
    for i in 0..n {
        for j in i + 1..n {
            // Neighbouring edges share a corner; that is not a crossing.
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            if segments_cross(seg(i), seg(j)) {
                return true;
            }
        }
    }
    // A repeated corner makes a zero-length edge or a pinch.
    for i in 0..n {
        for j in i + 1..n {
            if xy[i] == xy[j] {
                return true;
            }
        }
    }
    false
}

type Segment = ((f64, f64), (f64, f64));

fn segments_cross((a, b): Segment, (c, d): Segment) -> bool {
    let orient = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
    };
    let on_segment = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        r.0 >= p.0.min(q.0) && r.0 <= p.0.max(q.0) && r.1 >= p.1.min(q.1) && r.1 <= p.1.max(q.1)
    };
    let (d1, d2) = (orient(c, d, a), orient(c, d, b));
    let (d3, d4) = (orient(a, b, c), orient(a, b, d));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    (d1 == 0.0 && on_segment(c, d, a))
        || (d2 == 0.0 && on_segment(c, d, b))
        || (d3 == 0.0 && on_segment(a, b, c))
        || (d4 == 0.0 && on_segment(a, b, d))
}

/// A moment in the family's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Days since an arbitrary Monday (so `day % 7` is the weekday, Monday 0).
    pub day: i64,
    pub minute: u16,
}

impl LocalTime {
    /// The local time at `t_ms` (Unix ms) in a time zone `utc_offset_min`
    /// minutes ahead of UTC.
    pub fn at(t_ms: i64, utc_offset_min: i32) -> Self {
        let local = t_ms + i64::from(utc_offset_min) * 60_000;
        // 1 January 1970 was a Thursday: day 3 after a Monday.
        Self {
            day: local.div_euclid(86_400_000) + 3,
            minute: (local.rem_euclid(86_400_000) / 60_000) as u16,
        }
    }

    fn weekday(self) -> u8 {
        self.day.rem_euclid(7) as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ZoneEventKind {
    Arrived,
    Left,
    NotArrivedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ZoneEvent {
    pub zone_id: ZoneId,
    pub kind: ZoneEventKind,
    /// The fix time (ms) that decided it, or for `NotArrivedBy` the time it
    /// was noticed.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub t: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Presence {
    Unknown,
    Inside,
    Outside,
}

/// What a tracker knows of one zone beyond the zone itself: which side the
/// watch was last on, and the last day a "not arrived" was reported. A watch
/// keeps it across restarts, so a restart neither repeats nor loses an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneMemory {
    /// The zone as it was tracked: memory of a zone that changed since is
    /// not carried over.
    zone: Zone,
    presence: Presence,
    not_arrived_day: Option<i64>,
}

#[derive(Debug, Clone)]
struct Tracked {
    zone: Zone,
    /// A circle holding the whole zone: a fix far outside it is outside the
    /// zone without measuring every edge.
    bound: (Point, f64),
    presence: Presence,
    /// The last local day a "not arrived" was reported for.
    not_arrived_day: Option<i64>,
}

/// One watch's view of its zones: fed every fix in order, it returns the
/// events to report. A fix only changes a zone's state when its whole
/// accuracy circle is at least [`HYSTERESIS_M`] past the edge, so a child
/// standing at the school gate does not arrive and leave every minute. A
/// scheduled zone reports only within its hours.
pub struct ZoneTracker {
    zones: Vec<Tracked>,
}

impl ZoneTracker {
    /// Tracks the zones that apply to `watch_id` (each must already
    /// have passed [`Zone::validate`]).
    pub fn new(watch_id: &str, zones: &[Zone]) -> Self {
        Self {
            zones: zones
                .iter()
                .filter(|z| z.watches.iter().any(|w| w == watch_id))
                .map(|z| Tracked {
                    bound: bounding_circle(&z.shape),
                    zone: z.clone(),
                    presence: Presence::Unknown,
                    not_arrived_day: None,
                })
                .collect(),
        }
    }

    /// The events one fix causes. `local` is the fix's time in the family's
    /// local time (for schedules).
    pub fn observe(
        &mut self,
        t: i64,
        at: Point,
        accuracy_m: f64,
        local: LocalTime,
    ) -> Vec<ZoneEvent> {
        let mut events = Vec::new();
        let useful = accuracy_m.is_finite() && accuracy_m <= MAX_USEFUL_ACCURACY_M;
        for tracked in &mut self.zones {
            let next = useful.then(|| {
                let (centre, radius) = tracked.bound;
                if great_circle_m(centre, at) - radius - accuracy_m >= HYSTERESIS_M {
                    return Some(Presence::Outside);
                }
                let d = tracked.zone.signed_distance_m(at);
                if d + accuracy_m <= -HYSTERESIS_M {
                    Some(Presence::Inside)
                } else if d - accuracy_m >= HYSTERESIS_M {
                    Some(Presence::Outside)
                } else {
                    None
                }
            });
            if let Some(Some(next)) = next {
                let before = std::mem::replace(&mut tracked.presence, next);
                // Presence is kept at all hours; only a change while the
                // zone applies is news. The first sight after a start is a
                // state, not a change.
                let kind = match (before, next) {
                    (Presence::Outside, Presence::Inside) => Some(ZoneEventKind::Arrived),
                    (Presence::Inside, Presence::Outside) => Some(ZoneEventKind::Left),
                    _ => None,
                };
                if let Some(kind) = kind.filter(|_| applies(&tracked.zone.schedule, local)) {
                    events.push(event(&tracked.zone, kind, t));
                }
            }
            events.extend(check_arrival(tracked, t, local));
        }
        events
    }

    /// Called with no fix (the watch's clock ticks): reports a scheduled
    /// arrival that did not happen even when the watch has no new position.
    /// What to keep across a restart ([`Self::remember`]).
    pub fn memory(&self) -> Vec<ZoneMemory> {
        self.zones
            .iter()
            .map(|t| ZoneMemory {
                zone: t.zone.clone(),
                presence: t.presence,
                not_arrived_day: t.not_arrived_day,
            })
            .collect()
    }

    /// Takes back what [`Self::memory`] kept, for each zone that is still
    /// exactly the same.
    pub fn remember(&mut self, memory: &[ZoneMemory]) {
        for tracked in &mut self.zones {
            if let Some(m) = memory.iter().find(|m| m.zone == tracked.zone) {
                tracked.presence = m.presence;
                tracked.not_arrived_day = m.not_arrived_day;
            }
        }
    }

    pub fn tick(&mut self, t: i64, local: LocalTime) -> Vec<ZoneEvent> {
        self.zones
            .iter_mut()
            .filter_map(|tracked| check_arrival(tracked, t, local))
            .collect()
    }
}

fn bounding_circle(shape: &Shape) -> (Point, f64) {
    match shape {
        Shape::Circle { centre, radius_m } => (*centre, *radius_m),
        Shape::Polygon { points } => {
            let n = points.len() as f64;
            // The corners' mean is inside any bounding circle worth having;
            // its farthest corner gives the radius (plus a metre for rounding).
            let centre = Point {
                lat: points.iter().map(|q| q.lat).sum::<f64>() / n,
                lon: points.iter().map(|q| q.lon).sum::<f64>() / n,
            };
            let radius = points
                .iter()
                .map(|q| great_circle_m(centre, *q))
                .fold(0.0, f64::max);
            (centre, radius + 1.0)
        }
    }
}

fn event(zone: &Zone, kind: ZoneEventKind, t: i64) -> ZoneEvent {
    ZoneEvent {
        zone_id: zone.id,
        kind,
        t,
    }
}

fn applies(schedule: &Schedule, local: LocalTime) -> bool {
    match *schedule {
        Schedule::Always => true,
        Schedule::Weekly {
            days,
            from_min,
            until_min,
            ..
        } => days.contains(local.weekday()) && (from_min..until_min).contains(&local.minute),
    }
}

fn check_arrival(tracked: &mut Tracked, t: i64, local: LocalTime) -> Option<ZoneEvent> {
    let Schedule::Weekly {
        days,
        until_min,
        arrive_by_min: Some(by),
        ..
    } = tracked.zone.schedule
    else {
        return None;
    };
    let due = days.contains(local.weekday()) && local.minute >= by && local.minute < until_min;
    if due && tracked.presence != Presence::Inside && tracked.not_arrived_day != Some(local.day) {
        tracked.not_arrived_day = Some(local.day);
        return Some(event(&tracked.zone, ZoneEventKind::NotArrivedBy, t));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> Point {
        Point { lat, lon }
    }

    /// About 111 m per 0.001° of latitude.
    fn north_of(c: Point, m: f64) -> Point {
        p(c.lat + m / 111_195.0, c.lon)
    }

    /// A test zone's id: its name's bytes.
    pub(crate) fn zid(name: &str) -> ZoneId {
        let mut id = [0; 16];
        let n = name.len().min(16);
        id[..n].copy_from_slice(&name.as_bytes()[..n]);
        ZoneId(id)
    }

    fn circle(id: &str, centre: Point, radius_m: f64) -> Zone {
        Zone {
            id: zid(id),
            name: id.into(),
            shape: Shape::Circle { centre, radius_m },
            watches: vec!["w".into()],
            schedule: Schedule::Always,
        }
    }

    fn square(id: &str, sw: Point, side_deg: f64) -> Zone {
        Zone {
            shape: Shape::Polygon {
                points: vec![
                    sw,
                    p(sw.lat, sw.lon + side_deg),
                    p(sw.lat + side_deg, sw.lon + side_deg),
                    p(sw.lat + side_deg, sw.lon),
                ],
            },
            ..circle(id, sw, 100.0)
        }
    }

    const NOON: LocalTime = LocalTime {
        day: 0,
        minute: 720,
    };

    #[test]
    fn bad_zones_are_refused_with_their_reason() {
        let home = p(52.52, 13.405);
        assert_eq!(circle("Home", home, 150.0).validate(), Ok(()));
        let cases = [
            (circle("Home", home, 49.0), ZoneError::Radius),
            (circle("Home", home, 5001.0), ZoneError::Radius),
            (circle("Home", home, f64::NAN), ZoneError::Radius),
            (circle("Home", p(91.0, 0.0), 100.0), ZoneError::Coordinates),
            (
                circle("Home", p(0.0, f64::INFINITY), 100.0),
                ZoneError::Coordinates,
            ),
            (circle("", home, 100.0), ZoneError::Name),
            (circle(&"x".repeat(41), home, 100.0), ZoneError::Name),
            (
                Zone {
                    watches: vec![],
                    ..circle("Home", home, 100.0)
                },
                ZoneError::NoWatches,
            ),
        ];
        for (zone, want) in cases {
            assert_eq!(zone.validate(), Err(want), "{zone:?}");
        }
        let mut bowtie = square("School", home, 0.01);
        if let Shape::Polygon { points } = &mut bowtie.shape {
            points.swap(2, 3);
        }
        assert_eq!(bowtie.validate(), Err(ZoneError::SelfIntersecting));
        let two = Zone {
            shape: Shape::Polygon {
                points: vec![home, p(52.53, 13.41)],
            },
            ..circle("School", home, 100.0)
        };
        assert_eq!(two.validate(), Err(ZoneError::TooFewPoints));
        let many: Vec<Point> = (0..101)
            .map(|i| {
                let a = i as f64 / 101.0 * std::f64::consts::TAU;
                p(52.52 + 0.01 * a.sin(), 13.405 + 0.01 * a.cos())
            })
            .collect();
        let big = Zone {
            shape: Shape::Polygon {
                points: many.clone(),
            },
            ..circle("Park", home, 100.0)
        };
        assert_eq!(big.validate(), Err(ZoneError::TooManyPoints));
        let hundred = Zone {
            shape: Shape::Polygon {
                points: many[..100].to_vec(),
            },
            ..big
        };
        assert_eq!(hundred.validate(), Ok(()));
        for schedule in [
            Schedule::Weekly {
                days: Days(0),
                from_min: 480,
                until_min: 930,
                arrive_by_min: None,
            },
            Schedule::Weekly {
                days: Days::SCHOOL_DAYS,
                from_min: 930,
                until_min: 480,
                arrive_by_min: None,
            },
            Schedule::Weekly {
                days: Days::SCHOOL_DAYS,
                from_min: 480,
                until_min: 1500,
                arrive_by_min: None,
            },
            Schedule::Weekly {
                days: Days::SCHOOL_DAYS,
                from_min: 480,
                until_min: 930,
                arrive_by_min: Some(1000),
            },
        ] {
            let z = Zone {
                schedule,
                ..circle("School", home, 100.0)
            };
            assert_eq!(z.validate(), Err(ZoneError::Schedule), "{schedule:?}");
        }
    }

    #[test]
    fn distances_are_signed_and_in_metres() {
        let c = p(48.8584, 2.2945);
        let zone = circle("Tower", c, 200.0);
        assert!((zone.signed_distance_m(c) + 200.0).abs() < 1e-6);
        let d = zone.signed_distance_m(north_of(c, 300.0));
        assert!((d - 100.0).abs() < 0.5, "{d}");
        let sq = square("Block", p(48.85, 2.29), 0.01);
        let centre = p(48.855, 2.295);
        // Half the side in latitude: 0.005° ≈ 556 m; in longitude ≈ 366 m.
        let inside = sq.signed_distance_m(centre);
        assert!((inside + 366.0).abs() < 3.0, "{inside}");
        let outside = sq.signed_distance_m(p(48.865, 2.295));
        assert!((outside - 556.0).abs() < 3.0, "{outside}");
    }

    #[test]
    fn walking_through_two_zones_reports_each_edge_once_without_flapping() {
        let home = circle("home", p(51.5, -0.12), 100.0);
        let school = circle("school", p(51.51, -0.12), 150.0);
        let mut tracker = ZoneTracker::new("w", &[home.clone(), school.clone()]);
        // From 300 m south of home due north to school's centre, a fix every
        // 10 m, each wobbling ±15 m around the true position, 10 m accuracy.
        let mut events = Vec::new();
        for i in 0..=142 {
            let wobble = if i % 2 == 0 { 15.0 } else { -15.0 };
            let at = north_of(p(51.5, -0.12), i as f64 * 10.0 - 300.0 + wobble);
            events.extend(tracker.observe(i, at, 10.0, NOON));
        }
        let got: Vec<(ZoneId, ZoneEventKind)> =
            events.iter().map(|e| (e.zone_id, e.kind)).collect();
        assert_eq!(
            got,
            vec![
                (zid("home"), ZoneEventKind::Arrived),
                (zid("home"), ZoneEventKind::Left),
                (zid("school"), ZoneEventKind::Arrived),
            ]
        );
        // Standing at the school's edge for an hour: nothing.
        let edge = north_of(p(51.51, -0.12), -150.0);
        for i in 0..60 {
            let jitter = if i % 2 == 0 { 12.0 } else { -12.0 };
            assert!(
                tracker
                    .observe(1000 + i, north_of(edge, jitter), 8.0, NOON)
                    .is_empty()
            );
        }
        // A fix too inaccurate to tell says nothing.
        assert!(
            tracker
                .observe(2000, p(51.6, -0.12), 900.0, NOON)
                .is_empty()
        );
    }

    #[test]
    fn a_scheduled_zone_reports_a_missed_arrival_once_a_day() {
        let school = Zone {
            schedule: Schedule::Weekly {
                days: Days::SCHOOL_DAYS,
                from_min: 8 * 60,
                until_min: 15 * 60 + 30,
                arrive_by_min: Some(8 * 60 + 30),
            },
            ..circle("school", p(40.0, -3.7), 150.0)
        };
        let away = p(40.05, -3.7);
        let mut tracker = ZoneTracker::new("w", std::slice::from_ref(&school));
        let at = |day, minute| LocalTime { day, minute };
        assert!(
            tracker
                .observe(1, away, 10.0, at(0, 8 * 60 + 10))
                .is_empty()
        );
        let late = tracker.tick(2, at(0, 8 * 60 + 30));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].kind, ZoneEventKind::NotArrivedBy);
        assert!(tracker.tick(3, at(0, 9 * 60)).is_empty(), "once a day");
        // Restarted (a new tracker told what the old one kept): still once.
        let mut restarted = ZoneTracker::new("w", std::slice::from_ref(&school));
        restarted.remember(&tracker.memory());
        assert!(
            restarted.tick(3, at(0, 9 * 60)).is_empty(),
            "once a day, across a restart"
        );
        // A zone changed since is tracked afresh.
        let moved = Zone {
            shape: Shape::Circle {
                centre: p(40.01, -3.7),
                radius_m: 150.0,
            },
            ..school.clone()
        };
        let mut changed = ZoneTracker::new("w", std::slice::from_ref(&moved));
        changed.remember(&tracker.memory());
        assert_eq!(changed.tick(3, at(0, 9 * 60)).len(), 1);
        // Saturday: no school, no alert.
        assert!(tracker.tick(4, at(5, 9 * 60)).is_empty());
        // Next Monday she is on her way at 08:05 and arrives at 08:12: an
        // arrival, and no missed-arrival alert later.
        assert!(tracker.observe(5, away, 10.0, at(7, 8 * 60 + 5)).is_empty());
        let arrived = tracker.observe(5, p(40.0, -3.7), 10.0, at(7, 8 * 60 + 12));
        assert_eq!(arrived[0].kind, ZoneEventKind::Arrived);
        assert!(tracker.tick(6, at(7, 8 * 60 + 45)).is_empty());
        // A watch the zone is not for tracks nothing.
        assert!(ZoneTracker::new("other", &[school]).zones.is_empty());
    }
}
