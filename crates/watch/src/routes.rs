//! Routes a simulated watch walks: a few built-in demo routes, or a GPX
//! track or GeoJSON LineString from a file. Walking moves along the
//! polyline at a steady pace and loops.

use waymark_protocol::report::Fix;

#[derive(Debug, Clone)]
pub struct Route {
    /// (lat, lon) waypoints, at least two.
    points: Vec<(f64, f64)>,
}

pub const BUILTIN: &[&str] = &["park-loop", "school-run", "harbour-walk"];

impl Route {
    /// `builtin:NAME`, or a path to a `.gpx` or `.geojson`/`.json` file.
    pub fn load(spec: &str) -> anyhow::Result<Self> {
        if let Some(name) = spec.strip_prefix("builtin:") {
            return Self::builtin(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "no built-in route `{name}`; choose one of {}",
                    BUILTIN.join(", ")
                )
            });
        }
        let text = std::fs::read_to_string(spec)
            .map_err(|e| anyhow::anyhow!("cannot read route {spec}: {e}"))?;
        let points = if spec.ends_with(".gpx") {
            parse_gpx(&text)
        } else {
            parse_geojson(&text)?
        };
        Self::new(points)
    }

    pub fn new(points: Vec<(f64, f64)>) -> anyhow::Result<Self> {
        if points.len() < 2 {
            anyhow::bail!("a route needs at least two points");
        }
        if points
            .iter()
            .any(|(lat, lon)| !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon))
        {
            anyhow::bail!("a route point is outside latitude/longitude ranges");
        }
        Ok(Self { points })
    }

    fn builtin(name: &str) -> Option<Self> {
        let points = match name {
            // Around a park in Berlin.
            "park-loop" => (0..=24)
                .map(|i| {
                    let a = i as f64 / 24.0 * std::f64::consts::TAU;
                    (52.5145 + 0.0025 * a.sin(), 13.3501 + 0.004 * a.cos())
                })
                .collect(),
            // Home to school and back, Berlin.
            "school-run" => vec![
                (52.5200, 13.4050),
                (52.5215, 13.4100),
                (52.5240, 13.4125),
                (52.5262, 13.4170),
                (52.5240, 13.4125),
                (52.5215, 13.4100),
                (52.5200, 13.4050),
            ],
            "harbour-walk" => vec![
                (53.5440, 9.9660),
                (53.5450, 9.9750),
                (53.5430, 9.9850),
                (53.5410, 9.9900),
                (53.5440, 9.9660),
            ],
            _ => return None,
        };
        Some(Self { points })
    }

    /// The route as a GeoJSON LineString feature (coordinates lon, lat).
    pub fn to_geojson(&self) -> serde_json::Value {
        let coordinates: Vec<[f64; 2]> = self.points.iter().map(|&(lat, lon)| [lon, lat]).collect();
        serde_json::json!({
            "type": "Feature",
            "properties": {},
            "geometry": { "type": "LineString", "coordinates": coordinates },
        })
    }

    /// Where the walker is after `metres` along the route (looping).
    pub fn position(&self, metres: f64) -> (f64, f64) {
        let legs: Vec<f64> = self
            .points
            .windows(2)
            .map(|w| distance_m(w[0], w[1]))
            .collect();
        let total: f64 = legs.iter().sum();
        if total <= 0.0 {
            return self.points[0];
        }
        let mut d = metres.rem_euclid(total);
        for (i, leg) in legs.iter().enumerate() {
            if d <= *leg {
                let f = if *leg > 0.0 { d / leg } else { 0.0 };
                let (a, b) = (self.points[i], self.points[i + 1]);
                return (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
            }
            d -= leg;
        }
        *self.points.last().expect("two points")
    }
}

/// A simulated walker: 1.4 m/s, accuracy 4–16 m, battery draining slowly.
pub struct Walker {
    route: Route,
    tick: u64,
    step_m: f64,
    battery: u8,
}

impl Walker {
    pub fn new(route: Route, interval_s: f64) -> Self {
        Self {
            route,
            tick: 0,
            step_m: 1.4 * interval_s,
            battery: 100,
        }
    }

    /// Moves at `metres_per_second` instead of walking pace (a bike, a bus;
    /// tests that need a zone crossed soon).
    pub fn with_speed(mut self, metres_per_second: f64, interval_s: f64) -> Self {
        self.step_m = metres_per_second * interval_s;
        self
    }

    /// Starts with the battery at `percent` instead of full.
    pub fn with_battery(mut self, percent: u8) -> Self {
        self.battery = percent.min(100);
        self
    }

    pub fn next_fix(&mut self, now_ms: i64) -> Fix {
        let (lat, lon) = self.route.position(self.tick as f64 * self.step_m);
        let acc = 4.0 + (self.tick * 7 % 13) as f64;
        let start = u64::from(self.battery);
        let bat = start.saturating_sub(self.tick / 60).max(start.min(5)) as u8;
        self.tick += 1;
        Fix {
            t: now_ms,
            lat,
            lon,
            acc,
            bat,
        }
    }
}

fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_000.0;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dla = la2 - la1;
    let dlo = (b.1 - a.1).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

/// `<trkpt lat=".." lon="..">` (or `<rtept>`), in order.
fn parse_gpx(text: &str) -> Vec<(f64, f64)> {
    let attr = |tag: &str, name: &str| -> Option<f64> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        tag[start..].split('"').next()?.parse().ok()
    };
    text.split('<')
        .filter(|t| t.starts_with("trkpt") || t.starts_with("rtept"))
        .filter_map(|t| Some((attr(t, "lat")?, attr(t, "lon")?)))
        .collect()
}

/// The first LineString in a GeoJSON geometry, Feature or FeatureCollection.
fn parse_geojson(text: &str) -> anyhow::Result<Vec<(f64, f64)>> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    fn find(v: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
        match v["type"].as_str()? {
            "LineString" => v["coordinates"].as_array(),
            "Feature" => find(&v["geometry"]),
            "FeatureCollection" => v["features"].as_array()?.iter().find_map(find),
            _ => None,
        }
    }
    let coords = find(&v).ok_or_else(|| anyhow::anyhow!("no LineString in the GeoJSON"))?;
    Ok(coords
        .iter()
        .filter_map(|c| Some((c.get(1)?.as_f64()?, c.get(0)?.as_f64()?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gpx_and_geojson() {
        let gpx = r#"<gpx><trk><trkseg><trkpt lat="1.0" lon="2.0"></trkpt><trkpt lat="1.5" lon="2.5"/></trkseg></trk></gpx>"#;
        assert_eq!(parse_gpx(gpx), vec![(1.0, 2.0), (1.5, 2.5)]);
        let gj = r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":[[2.0,1.0],[2.5,1.5]]}}]}"#;
        assert_eq!(parse_geojson(gj).unwrap(), vec![(1.0, 2.0), (1.5, 2.5)]);
    }

    #[test]
    fn a_route_prints_as_geojson_that_reads_back() {
        let route = Route::load("builtin:school-run").unwrap();
        let text = route.to_geojson().to_string();
        assert_eq!(parse_geojson(&text).unwrap(), route.points);
    }

    #[test]
    fn the_battery_starts_where_asked_and_drains_to_five() {
        let route = || Route::load("builtin:park-loop").unwrap();
        let mut full = Walker::new(route(), 1.0);
        assert_eq!(full.next_fix(0).bat, 100);
        let mut low = Walker::new(route(), 1.0).with_battery(12);
        assert_eq!(low.next_fix(0).bat, 12);
        let last = (0..1000).map(|_| low.next_fix(0).bat).last().unwrap();
        assert_eq!(last, 5);
        let mut tiny = Walker::new(route(), 1.0).with_battery(3);
        assert_eq!(tiny.next_fix(0).bat, 3);
    }

    #[test]
    fn walking_moves_along_and_loops() {
        let r = Route::load("builtin:school-run").unwrap();
        assert_eq!(r.position(0.0), (52.5200, 13.4050));
        let mut w = Walker::new(r, 5.0);
        let a = w.next_fix(0);
        let b = w.next_fix(5000);
        assert_ne!((a.lat, a.lon), (b.lat, b.lon));
        assert!(a.validate(0).is_ok());
        assert!(Route::load("builtin:nowhere").is_err());
        for name in BUILTIN {
            Route::load(&format!("builtin:{name}")).unwrap();
        }
    }
}
