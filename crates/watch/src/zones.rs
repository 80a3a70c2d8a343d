//! The watch's safe zones (issue 16): its own zone key, the zone set in
//! force, and the tracker that turns fixes into arrived / left / not arrived
//! by the scheduled time. Zones are evaluated here, on the watch, so an alert
//! does not depend on an app being open.
//!
//! The zone key (X25519) is made once, after pairing, and kept beside the
//! device key material (0600); revocation erases it. The apps learn its
//! public half from the watch's signed status polls, never from the cloud's
//! word. A set the cloud relays is taken only if a computer of the family's
//! roster signed it, it is newer than the one in force, it opens with this
//! watch's key and every zone in it passes the rules again; otherwise the
//! watch keeps what it had and says why in its next poll.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use waymark_protocol::family_time::FamilyTimeZone;
use waymark_protocol::location_sealing::LocationSecretKey;
use waymark_protocol::report::Fix;
use waymark_protocol::roster::TrustedRoster;
use waymark_protocol::safe_zones::{Point, ZoneEvent, ZoneMemory, ZoneTracker};
use waymark_protocol::zone_relay::{SealedZoneSet, ZoneRefusal, ZoneWord};
use waymark_protocol::zone_sealing::{ZoneSet, ZoneSetError};

pub const ZONE_KEY_FILE: &str = "zone-key";
/// The zone set in force, as opened (the key to open it lies beside it, so
/// keeping it sealed would protect nothing).
pub const ZONES_FILE: &str = "zones.json";
/// Which side of each zone the watch was last on, and the days a "not
/// arrived" was reported: kept so a restart neither repeats nor loses one.
pub const ZONE_MEMORY_FILE: &str = "zone-memory.json";

/// What a relayed zone set did.
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    /// The set in force already (the cloud raced a newer poll).
    Unchanged,
    /// Now in force.
    Took {
        version: u64,
        zones: usize,
    },
    Refused {
        version: u64,
        why: ZoneSetError,
    },
}

pub struct Zones {
    dir: PathBuf,
    device_id: String,
    key: LocationSecretKey,
    set: ZoneSet,
    refused: Option<ZoneRefusal>,
    tracker: ZoneTracker,
    /// What was last written to [`ZONE_MEMORY_FILE`].
    memory: Vec<ZoneMemory>,
}

impl Zones {
    /// The zone key (made now if this watch has none) and the set in force.
    pub fn open(dir: &Path, device_id: &str) -> anyhow::Result<Self> {
        let key = load_or_make_key(dir)?;
        let set = match fs::read(dir.join(ZONES_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("{} is damaged: {e}", dir.join(ZONES_FILE).display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ZoneSet {
                version: 0,
                time_zone: FamilyTimeZone::utc(),
                zones: Vec::new(),
            },
            Err(e) => return Err(e.into()),
        };
        let mut tracker = ZoneTracker::new(device_id, &set.zones);
        // A damaged or missing memory only costs the sides: the next fix finds them again.
        let memory: Vec<ZoneMemory> = fs::read(dir.join(ZONE_MEMORY_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        tracker.remember(&memory);
        Ok(Self {
            dir: dir.to_owned(),
            device_id: device_id.to_owned(),
            key,
            set,
            refused: None,
            tracker,
            memory,
        })
    }

    /// Writes the tracker's memory when it changed, before the events it
    /// made are queued.
    fn keep_memory(&mut self) -> anyhow::Result<()> {
        let memory = self.tracker.memory();
        if memory != self.memory {
            write_private(&self.dir, ZONE_MEMORY_FILE, &serde_json::to_vec(&memory)?)?;
            self.memory = memory;
        }
        Ok(())
    }

    /// What the next status poll says (signed with it).
    pub fn word(&self) -> ZoneWord {
        ZoneWord {
            zone_key: self.key.public_key(),
            held: self.set.version,
            refused: self.refused.clone(),
        }
    }

    pub fn version(&self) -> u64 {
        self.set.version
    }

    /// Checks a set the cloud relayed against the family's roster `trusted`
    /// and puts it in force if it passes (durably, before it counts).
    pub fn take(
        &mut self,
        sealed: &SealedZoneSet,
        trusted: &TrustedRoster,
    ) -> anyhow::Result<Taken> {
        if sealed.version == self.set.version {
            return Ok(Taken::Unchanged);
        }
        match sealed.open_on_watch(&self.device_id, &self.key, trusted, self.set.version) {
            Ok(set) => {
                write_private(&self.dir, ZONES_FILE, &serde_json::to_vec(&set)?)?;
                let mut tracker = ZoneTracker::new(&self.device_id, &set.zones);
                // A zone the new set keeps unchanged keeps its side.
                tracker.remember(&self.tracker.memory());
                self.tracker = tracker;
                self.keep_memory()?;
                let taken = Taken::Took {
                    version: set.version,
                    zones: self.tracker_len(&set),
                };
                self.set = set;
                self.refused = None;
                Ok(taken)
            }
            Err(why) => {
                self.refused = Some(ZoneRefusal {
                    version: sealed.version,
                    code: why.code().to_owned(),
                });
                Ok(Taken::Refused {
                    version: sealed.version,
                    why,
                })
            }
        }
    }

    fn tracker_len(&self, set: &ZoneSet) -> usize {
        set.zones
            .iter()
            .filter(|z| z.watches.contains(&self.device_id))
            .count()
    }

    /// The events one fix makes. Schedules are read in the family's time
    /// zone, sealed in the set.
    pub fn observe(&mut self, fix: &Fix) -> anyhow::Result<Vec<ZoneEvent>> {
        let local = self.set.time_zone.local(fix.t);
        let at = Point {
            lat: fix.lat,
            lon: fix.lon,
        };
        let events = self.tracker.observe(fix.t, at, fix.acc, local);
        self.keep_memory()?;
        Ok(events)
    }

    /// "Not arrived by" events due at `now_ms`, with or without a new fix.
    pub fn tick(&mut self, now_ms: i64) -> anyhow::Result<Vec<ZoneEvent>> {
        let local = self.set.time_zone.local(now_ms);
        let events = self.tracker.tick(now_ms, local);
        self.keep_memory()?;
        Ok(events)
    }
}

fn load_or_make_key(dir: &Path) -> anyhow::Result<LocationSecretKey> {
    let path = dir.join(ZONE_KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is damaged", path.display()))?;
            Ok(LocationSecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, _) = LocationSecretKey::generate();
            write_private(dir, ZONE_KEY_FILE, &key.to_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

/// Written beside (0600) and renamed over, so a crash never leaves half a file.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(tmp, dir.join(name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use waymark_protocol::family_roster::{FamilyKeyPair, Roster, RosterEntry};
    use waymark_protocol::safe_zones::{Schedule, Shape, Zone, ZoneEventKind, ZoneId};
    use waymark_protocol::sealed_report::ChainHash;

    fn family() -> (FamilyKeyPair, TrustedRoster) {
        let desk = FamilyKeyPair::generate();
        let roster = Roster {
            version: 1,
            computers: vec![RosterEntry {
                name: "Desk".into(),
                member: "acct-1".into(),
                signing: desk.signing_public(),
                sealing: desk.sealing_public(),
            }],
            recovery: None,
            prev: ChainHash::GENESIS,
        }
        .sign(&desk);
        (desk, TrustedRoster::founding(&roster).unwrap())
    }

    fn home(watch: &str) -> Zone {
        Zone {
            id: ZoneId([9; 16]),
            name: "Home".into(),
            shape: Shape::Circle {
                centre: Point {
                    lat: 52.52,
                    lon: 13.405,
                },
                radius_m: 100.0,
            },
            watches: vec![watch.into()],
            schedule: Schedule::Always,
        }
    }

    fn fix(t: i64, metres_north: f64) -> Fix {
        Fix {
            t,
            lat: 52.52 + metres_north / 111_195.0,
            lon: 13.405,
            acc: 5.0,
            bat: 90,
        }
    }

    #[test]
    fn a_set_is_taken_kept_across_a_restart_and_an_old_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (desk, trusted) = family();
        let mut zones = Zones::open(dir.path(), "w").unwrap();
        assert_eq!(zones.word().held, 0);
        let key = zones.word().zone_key;
        let set = |version| ZoneSet {
            version,
            time_zone: FamilyTimeZone::utc(),
            zones: vec![home("w")],
        };
        let v2 = SealedZoneSet::seal(&set(2), "w", &key, &desk);
        assert_eq!(
            zones.take(&v2, &trusted).unwrap(),
            Taken::Took {
                version: 2,
                zones: 1
            }
        );
        assert_eq!(zones.take(&v2, &trusted).unwrap(), Taken::Unchanged);
        let v1 = SealedZoneSet::seal(&set(1), "w", &key, &desk);
        assert!(matches!(
            zones.take(&v1, &trusted).unwrap(),
            Taken::Refused {
                version: 1,
                why: ZoneSetError::Replayed
            }
        ));
        assert_eq!(zones.word().refused.unwrap().code, "zones_replayed");
        assert_eq!(zones.word().held, 2, "the newer set stays in force");

        // Restarted: same key, same set, and it tracks.
        let mut again = Zones::open(dir.path(), "w").unwrap();
        assert_eq!((again.word().zone_key, again.version()), (key, 2));
        assert!(again.observe(&fix(1, 400.0)).unwrap().is_empty());
        let arrived = again.observe(&fix(2, 0.0)).unwrap();
        assert_eq!(arrived.len(), 1);
        assert_eq!(arrived[0].kind, ZoneEventKind::Arrived);
        // Restarted while home: the watch remembers it, so its first fix
        // outside is a departure (without the memory it would be no news).
        let mut home_again = Zones::open(dir.path(), "w").unwrap();
        let left = home_again.observe(&fix(3, 400.0)).unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].kind, ZoneEventKind::Left);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(ZONE_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A set stored by the watch before time zones were sealed still opens
    /// (read in UTC, as it was then), so an updated watch keeps its zones.
    #[test]
    fn a_set_stored_before_time_zones_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let old = serde_json::json!({ "version": 4, "zones": [home("w")] });
        fs::write(dir.path().join(ZONES_FILE), old.to_string()).unwrap();
        let mut zones = Zones::open(dir.path(), "w").unwrap();
        assert_eq!(zones.version(), 4);
        assert_eq!(zones.set.time_zone, FamilyTimeZone::utc());
        assert!(zones.observe(&fix(1, 400.0)).unwrap().is_empty());
        assert_eq!(zones.observe(&fix(2, 0.0)).unwrap().len(), 1);
    }

    /// "Not there by 08:30" is 08:30 in the family's time zone, summer and
    /// winter: the watch reads the schedule in the zone the set carries.
    #[test]
    fn schedules_are_read_in_the_familys_time_zone_with_daylight_saving() {
        use waymark_protocol::safe_zones::Days;
        // 06:25 UTC on Wednesday 1 July 2026 (08:25 in Berlin, summer time)
        // and on Wednesday 14 January 2026 (07:25 in Berlin).
        const SUMMER: i64 = 1_782_887_100_000;
        const WINTER: i64 = 1_768_371_900_000;
        const TEN_MIN: i64 = 600_000;
        for (day, berlin_due) in [(SUMMER, true), (WINTER, false)] {
            let dir = tempfile::tempdir().unwrap();
            let (desk, trusted) = family();
            let mut zones = Zones::open(dir.path(), "w").unwrap();
            let key = zones.word().zone_key;
            let mut school = home("w");
            school.schedule = Schedule::Weekly {
                days: Days(0x7f),
                from_min: 7 * 60,
                until_min: 16 * 60,
                arrive_by_min: Some(8 * 60 + 30),
            };
            let set = ZoneSet {
                version: 1,
                time_zone: FamilyTimeZone::parse("Europe/Berlin").unwrap(),
                zones: vec![school],
            };
            let sealed = SealedZoneSet::seal(&set, "w", &key, &desk);
            zones.take(&sealed, &trusted).unwrap();
            // Away from the zone, ten minutes later: 08:35 in summer (late),
            // 07:35 in winter (not yet), though it is 06:35 UTC both times.
            assert!(zones.observe(&fix(day, 400.0)).unwrap().is_empty());
            let late = zones.tick(day + TEN_MIN).unwrap();
            assert_eq!(!late.is_empty(), berlin_due, "{late:?}");
            if berlin_due {
                assert_eq!(late[0].kind, ZoneEventKind::NotArrivedBy);
            } else {
                // An hour later it is 08:35 in Berlin in winter too.
                let late = zones.tick(day + 7 * TEN_MIN).unwrap();
                assert_eq!(late.len(), 1, "{late:?}");
                assert_eq!(late[0].kind, ZoneEventKind::NotArrivedBy);
            }
        }
    }
}
