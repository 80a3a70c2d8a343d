//! `zones`: how long a watch takes to check one fix against its safe zones
//! (issue 16's goal: 20 zones in under 50 µs): the fix's local time in the
//! family's time zone, then every zone, with the worst shapes allowed: half
//! circles, half 100-corner polygons, all applying to the watch.

use std::time::Instant;

use waymark_protocol::family_time::FamilyTimeZone;
use waymark_protocol::safe_zones::{Point, Schedule, Shape, Zone, ZoneTracker};

use crate::quantile_ms;

const GOAL_US: f64 = 50.0;

pub fn run(zone_count: usize, fixes: usize) -> anyhow::Result<()> {
    println!(
        "zones: {zone_count} zones ({} circles, {} polygons of 100 corners), {fixes} fixes",
        zone_count.div_ceil(2),
        zone_count / 2
    );
    // Zones around the walk (most fixes far from most zones), and the worst
    // case: every zone over every fix, so every edge is measured.
    measure("zones spread along the walk", zone_count, fixes, 1.0)?;
    measure(
        "every zone over every fix (worst case)",
        zone_count,
        fixes,
        0.0,
    )?;
    // The time zone's share of that: the lookup alone, a fix a second.
    let time_zone = FamilyTimeZone::parse("Europe/Berlin").expect("in the built-in database");
    let started = Instant::now();
    let mut minutes = 0u64;
    for i in 0..fixes as i64 {
        minutes += u64::from(
            std::hint::black_box(&time_zone)
                .local(1_780_000_000_000 + i * 1_000)
                .minute,
        );
    }
    let per_ns = started.elapsed().as_nanos() as f64 / fixes as f64;
    println!(
        "  of which the local time in Europe/Berlin: {per_ns:.0} ns a fix (checksum {minutes})"
    );
    Ok(())
}

/// The point at `fraction` of the way round an ellipse about `centre`
/// (`lat_r`, `lon_r` in degrees).
fn round(centre: Point, fraction: f64, lat_r: f64, lon_r: f64) -> Point {
    let a = fraction * std::f64::consts::TAU;
    Point {
        lat: centre.lat + lat_r * a.sin(),
        lon: centre.lon + lon_r * a.cos(),
    }
}

fn measure(what: &str, zone_count: usize, fixes: usize, spread: f64) -> anyhow::Result<()> {
    let centre = Point {
        lat: 52.52,
        lon: 13.405,
    };
    let zones: Vec<Zone> = (0..zone_count)
        .map(|i| {
            // Spread around the walk so some are crossed and most are not.
            let c = round(
                centre,
                i as f64 / zone_count as f64,
                spread * 0.01,
                spread * 0.015,
            );
            let shape = if i % 2 == 0 {
                Shape::Circle {
                    centre: c,
                    radius_m: 400.0,
                }
            } else {
                Shape::Polygon {
                    points: (0..100)
                        .map(|k| {
                            // A star-ish outline: 100 corners, no crossing.
                            let r = if k % 2 == 0 { 0.004 } else { 0.003 };
                            round(c, k as f64 / 100.0, r, 1.5 * r)
                        })
                        .collect(),
                }
            };
            Zone {
                id: waymark_protocol::safe_zones::ZoneId::generate(),
                name: format!("Zone {i}"),
                shape,
                watches: vec!["bench".into()],
                schedule: Schedule::Always,
            }
        })
        .collect();
    for z in &zones {
        z.validate()
            .map_err(|e| anyhow::anyhow!("{}: {}", z.id, e.message()))?;
    }
    let mut tracker = ZoneTracker::new("bench", &zones);
    // The family's time zone, looked up at each fix as the watch does
    // (daylight saving included), from a real moment onwards.
    let time_zone = FamilyTimeZone::parse("Europe/Berlin").expect("in the built-in database");
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    // A walk round the circle the zones sit on, a fix every few metres.
    let walk: Vec<Point> = (0..fixes)
        .map(|i| {
            // With the zones stacked (spread 0), a small loop inside them all.
            let r = if spread > 0.0 { 1.0 } else { 0.1 };
            round(centre, i as f64 / fixes as f64, r * 0.0101, r * 0.0149)
        })
        .collect();
    let mut events = 0;
    let mut lat_ns = Vec::with_capacity(fixes);
    let started = Instant::now();
    for (i, at) in walk.iter().enumerate() {
        let fix_ms = start_ms + i as i64 * 1_000;
        let t = Instant::now();
        let local = time_zone.local(fix_ms);
        events += tracker.observe(fix_ms, *at, 10.0, local).len();
        lat_ns.push(t.elapsed().as_nanos() as u64);
    }
    let mean_us = started.elapsed().as_secs_f64() * 1e6 / fixes as f64;
    lat_ns.sort_unstable();
    // quantile_ms takes microseconds: nanoseconds give microseconds out.
    let p50_us = quantile_ms(&lat_ns, 0.5);
    let p99_us = quantile_ms(&lat_ns, 0.99);
    println!(
        "  {what} ({events} events): per fix mean {mean_us:.2} µs, p50 {p50_us:.2} µs, p99 {p99_us:.2} µs; p99 is {:.3} of the goal ({GOAL_US} µs)",
        p99_us / GOAL_US
    );
    Ok(())
}
