//! Safe zones (issue 16) end to end: zones drawn in the app core, sealed to
//! the family and to the watch, relayed by the real cloud, checked and put
//! in force by the real watch library, events reported in the watch's
//! sealed batches and told by the family's alerts. On SQLite and, in the
//! second pass of `scripts/test`, on PostgreSQL.

use waymark_cloud::storage::Store;
use waymark_protocol::report::Fix;
use waymark_protocol::safe_zones::{Days, Point, Schedule, Shape, Zone, ZoneEventKind, ZoneId};
use waymark_watch::reporting::Drain;

use super::*;

/// Places and names no other test uses, so a dump that holds them is ours.
const HOME: Point = Point {
    lat: 47.391_234_5,
    lon: 8.512_345_6,
};
const HOME_NAME: &str = "Birchwood Lane home";
const SCHOOL_NAME: &str = "Lindenhof school";
const METRES_PER_DEGREE: f64 = 111_195.0;

fn north_of(p: Point, metres: f64) -> Point {
    Point {
        lat: p.lat + metres / METRES_PER_DEGREE,
        lon: p.lon,
    }
}

fn circle(name: &str, centre: Point, radius_m: f64, watch: &str, schedule: Schedule) -> Zone {
    Zone {
        id: ZoneId::generate(),
        name: name.into(),
        shape: Shape::Circle { centre, radius_m },
        watches: vec![watch.into()],
        schedule,
    }
}

/// A signed-up parent with one paired watch that has told its zone key.
async fn family_with_a_watch(cloud: &TestCloud) -> (App, TestWatch) {
    let mut settings = settings_for(cloud);
    settings.alert_poll = Duration::from_millis(300);
    let mut a = app(cloud, settings);
    a.core
        .sign_in(&a.browser, Start::CreateAccount)
        .await
        .unwrap();
    assert_eq!(a.answers.recv().await.unwrap().0, 200);
    let watch = TestWatch::new(cloud).unwrap();
    pair_via_app(&a.core, &watch, str::to_owned).await.unwrap();
    // Its first poll after pairing carries its zone key, signed.
    watch.reporter.keep_in_step().await.unwrap();
    (a, watch)
}

/// The watch takes the newest zones at one poll and says so at the next.
async fn watch_takes_zones(watch: &TestWatch) {
    watch.reporter.keep_in_step().await.unwrap();
    watch.reporter.keep_in_step().await.unwrap();
}

#[tokio::test]
async fn a_watch_walking_across_two_zones_reports_each_event_once_through_a_cloud_restart() {
    let logs = Logs::capture();
    let mut cloud = TestCloud::start().await.unwrap();
    let (a, watch) = family_with_a_watch(&cloud).await;
    let before = a.core.zones().await.unwrap();
    assert_eq!((before.version, before.zones.len()), (0, 0));
    assert!(before.can_edit);
    assert!(before.watches[0].ready, "{before:?}");
    assert_eq!(before.watches[0].in_force, 0);

    let school_centre = north_of(HOME, 1_000.0);
    let home = circle(HOME_NAME, HOME, 100.0, watch.id(), Schedule::Always);
    let school = circle(
        SCHOOL_NAME,
        school_centre,
        150.0,
        watch.id(),
        Schedule::Always,
    );
    let saved = a
        .core
        .save_zones(vec![home.clone(), school.clone()], None)
        .await
        .unwrap();
    assert_eq!(saved.version, 1);
    assert_eq!(saved.zones, vec![home.clone(), school.clone()]);
    assert_eq!(
        saved.watches[0].in_force, 0,
        "not in force until the watch says so"
    );
    watch_takes_zones(&watch).await;
    assert_eq!(watch.reporter.zones_version(), 1);
    let confirmed = a.core.zones().await.unwrap();
    assert_eq!(confirmed.watches[0].in_force, 1, "{confirmed:?}");
    // Every member sees that the zones changed, by whom; never what.
    let activity = a.core.activity().await.unwrap();
    let saved_entry = activity
        .iter()
        .find(|e| e.kind == "family.zones_saved")
        .expect("the save in the activity log");
    assert_eq!(saved_entry.detail, "Version 1");
    assert_eq!(
        saved_entry.actor_session_name.as_deref(),
        Some("Kitchen laptop")
    );
    assert!(confirmed.watches[0].refused.is_none());

    // The family's alerts follow the family, as the running app does.
    let shown = Arc::new(Shown::default());
    let family = Arc::new(FamilyWatch::new(
        AlertPrefs::default(),
        Box::new(Recorder(shown.clone())),
        system_clock(),
    ));
    let (core, follower_family) = (a.core.clone(), family.clone());
    let follower = tokio::spawn(async move { follower_family.follow(&core, |_| {}).await });
    for _ in 0..300 {
        if family.state() != FamilyState::SignedOut {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // From 300 m south of home to the school's centre, a fix every 20 m
    // (10 s apart), wobbling ±10 m, 8 m accuracy: half sent, the cloud
    // restarted, the rest queued while it is down and sent when it is back.
    let t0 = now_ms() - 15 * 60_000;
    let walk: Vec<Fix> = (0..=65)
        .map(|i| {
            let wobble = if i % 2 == 0 { 10.0 } else { -10.0 };
            let p = north_of(HOME, -300.0 + f64::from(i) * 20.0 + wobble);
            Fix {
                t: t0 + i64::from(i) * 10_000,
                lat: p.lat,
                lon: p.lon,
                acc: 8.0,
                bat: 80,
            }
        })
        .collect();
    for f in &walk[..30] {
        watch.reporter.record(*f).unwrap();
    }
    assert!(matches!(
        watch.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));
    cloud.halt().await.unwrap();
    for f in &walk[30..] {
        watch.reporter.record(*f).unwrap();
    }
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Offline);
    cloud.resume().await.unwrap();
    assert!(matches!(
        watch.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));

    // The watch reported each crossing once, in order, named by the app.
    let trail = a.core.history(watch.id(), t0 - 1, now_ms()).await.unwrap();
    let got: Vec<(&str, ZoneEventKind)> = trail
        .events
        .iter()
        .map(|e| (e.zone.as_str(), e.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            (HOME_NAME, ZoneEventKind::Arrived),
            (HOME_NAME, ZoneEventKind::Left),
            (SCHOOL_NAME, ZoneEventKind::Arrived),
        ],
        "{trail:?}"
    );
    assert_eq!(trail.fixes.len(), walk.len(), "and every fix");

    // Each told once: live, or caught up after the stream came back.
    let zone_alerts = || {
        shown
            .alerts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| matches!(a, Alert::Zone { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    for _ in 0..600 {
        if zone_alerts().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A few more checks: nothing is told twice.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mut told: Vec<String> = zone_alerts().iter().map(Alert::title).collect();
    told.sort();
    let name = &confirmed.watches[0].name;
    let mut want = vec![
        format!("{name} arrived at {HOME_NAME}"),
        format!("{name} left {HOME_NAME}"),
        format!("{name} arrived at {SCHOOL_NAME}"),
    ];
    want.sort();
    assert_eq!(told, want);
    follower.abort();

    // Neither the database nor the logs hold a zone's name or place.
    let mut dump = Vec::new();
    for table in Store::TABLES {
        dump.extend(cloud.dump_text(table).await.unwrap().into_bytes());
    }
    assert!(
        contains(&dump, b"\"watch_id\":\"family\""),
        "the dump holds the sealed zones"
    );
    let logged = logs.bytes();
    assert!(
        contains(&logged, b"safe zones saved"),
        "the scan reads the logs"
    );
    let mut traces: Vec<Vec<u8>> = vec![HOME_NAME.into(), SCHOOL_NAME.into()];
    let mut numbers: Vec<Vec<u8>> = Vec::new();
    for v in [HOME.lat, HOME.lon, school_centre.lat] {
        traces.push(v.to_string().into_bytes());
        traces.push(v.to_be_bytes().to_vec());
        traces.push(v.to_le_bytes().to_vec());
        // Rounded to a metre: short enough to turn up by chance inside a
        // logged duration, so only as a number of its own.
        numbers.push(format!("{v:.5}").into_bytes());
    }
    for (what, bytes) in [("the database", &dump), ("the logs", &logged)] {
        for trace in &traces {
            assert!(
                !contains(bytes, trace),
                "{what} holds {}",
                String::from_utf8_lossy(trace)
            );
        }
        for number in &numbers {
            assert!(
                !contains_number(bytes, number),
                "{what} holds {}",
                String::from_utf8_lossy(number)
            );
        }
    }
    cloud.stop().await.unwrap();
}

/// A time zone in which it is now between 06:00 and 06:59 (the `Etc/GMT`
/// zones are whole hours; POSIX turns their signs around).
fn time_zone_at_six() -> String {
    let utc_hour = (now_ms() / 3_600_000).rem_euclid(24);
    let mut ahead = 6 - utc_hour;
    if ahead < -12 {
        ahead += 24;
    }
    match ahead {
        0 => "Etc/UTC".into(),
        a if a > 0 => format!("Etc/GMT-{a}"),
        a => format!("Etc/GMT+{}", -a),
    }
}

#[tokio::test]
async fn a_scheduled_zone_reports_not_arrived_by_once_when_the_clock_moves_past_its_time() {
    let cloud = TestCloud::start().await.unwrap();
    let (a, watch) = family_with_a_watch(&cloud).await;
    let school = circle(
        SCHOOL_NAME,
        north_of(HOME, 1_000.0),
        150.0,
        watch.id(),
        Schedule::Weekly {
            days: Days(0x7f),
            from_min: 7 * 60,
            until_min: 16 * 60,
            arrive_by_min: Some(8 * 60 + 30),
        },
    );
    // The family's time zone, sealed with the zones, puts the watch at 06:xx now.
    let saved = a
        .core
        .save_zones(vec![school.clone()], Some(time_zone_at_six()))
        .await
        .unwrap();
    assert_eq!(saved.time_zone, time_zone_at_six());
    watch_takes_zones(&watch).await;
    // At home, at 06:xx: nothing is due.
    watch.reporter.record(fix_at(now_ms(), 0)).unwrap();
    assert_eq!(watch.reporter.tick_zones().unwrap(), 0);

    // Two hours and forty minutes pass (the cloud's clock; the watch sets
    // its own by the cloud's answers): 08:40 to 09:39, and the child is not there.
    cloud.advance(Duration::from_secs((2 * 60 + 40) * 60));
    watch.reporter.keep_in_step().await.unwrap();
    assert_eq!(watch.reporter.tick_zones().unwrap(), 1);
    assert_eq!(watch.reporter.tick_zones().unwrap(), 0, "once that day");
    assert!(matches!(
        watch.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));
    let later = now_ms() + 3 * 3_600_000;
    let trail = a
        .core
        .history(watch.id(), now_ms() - 60_000, later)
        .await
        .unwrap();
    let got: Vec<(&str, ZoneEventKind)> = trail
        .events
        .iter()
        .map(|e| (e.zone.as_str(), e.kind))
        .collect();
    assert_eq!(got, vec![(SCHOOL_NAME, ZoneEventKind::NotArrivedBy)]);
    cloud.stop().await.unwrap();
}

/// Replaces what the cloud stores for a watch's zones (a malicious cloud).
async fn cloud_hands_watch(cloud: &TestCloud, watch: &TestWatch, version: i64, sealed: &str) {
    let pool = cloud.database().await.unwrap();
    sqlx::query("UPDATE watch_zone_sets SET version = $1, sealed = $2 WHERE device_id = $3")
        .bind(version)
        .bind(sealed)
        .bind(watch.id())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn stored(cloud: &TestCloud, table: &str, key: &str, id: &str) -> String {
    let pool = cloud.database().await.unwrap();
    let (sealed,): (String,) =
        sqlx::query_as(&format!("SELECT sealed FROM {table} WHERE {key} = $1"))
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    sealed
}

#[tokio::test]
async fn zones_the_cloud_altered_or_replayed_are_refused_by_the_watch_and_the_app() {
    let cloud = TestCloud::start().await.unwrap();
    let (a, watch) = family_with_a_watch(&cloud).await;
    let home = circle(HOME_NAME, HOME, 100.0, watch.id(), Schedule::Always);
    a.core.save_zones(vec![home.clone()], None).await.unwrap();
    let v1_watch = stored(&cloud, "watch_zone_sets", "device_id", watch.id()).await;
    let account = a.core.me().await.unwrap().family_id;
    let v1_family = stored(&cloud, "family_zone_sets", "family_id", &account).await;
    let school = circle(
        SCHOOL_NAME,
        north_of(HOME, 900.0),
        120.0,
        watch.id(),
        Schedule::Always,
    );
    a.core
        .save_zones(vec![home.clone(), school.clone()], None)
        .await
        .unwrap();
    watch_takes_zones(&watch).await;
    assert_eq!(watch.reporter.zones_version(), 2);

    // The cloud changes the sealed set (and numbers it as newer): the
    // watch refuses it, keeps version 2, and the app says so.
    let mut altered: serde_json::Value = serde_json::from_str(&v1_watch).unwrap();
    let text = altered["ciphertext"].as_str().unwrap().to_owned();
    let flipped = if text.starts_with('A') { "B" } else { "A" };
    altered["ciphertext"] = Value::from(format!("{flipped}{}", &text[1..]));
    altered["version"] = Value::from(3);
    cloud_hands_watch(&cloud, &watch, 3, &altered.to_string()).await;
    watch_takes_zones(&watch).await;
    assert_eq!(watch.reporter.zones_version(), 2);
    let view = a.core.zones().await.unwrap();
    let refused = view.watches[0].refused.clone().expect("the refusal shown");
    assert!(refused.contains("changed after"), "{refused}");
    assert_eq!(view.watches[0].in_force, 2);

    // The cloud hands back version 1 as if it were new: replayed.
    cloud_hands_watch(&cloud, &watch, 3, &v1_watch).await;
    watch_takes_zones(&watch).await;
    assert_eq!(watch.reporter.zones_version(), 2);
    let refused = a.core.zones().await.unwrap().watches[0].refused.clone();
    assert!(
        refused
            .as_deref()
            .is_some_and(|r| r.contains("older version")),
        "{refused:?}"
    );

    // The app is not fooled either: an older family copy is refused and
    // said, never shown as the current zones.
    let pool = cloud.database().await.unwrap();
    sqlx::query("UPDATE family_zone_sets SET sealed = $1 WHERE family_id = $2")
        .bind(&v1_family)
        .bind(&account)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let view = a.core.zones().await.unwrap();
    assert!(view.zones.is_empty(), "{view:?}");
    assert!(
        view.problem
            .as_deref()
            .is_some_and(|p| p.contains("older version")),
        "{view:?}"
    );

    // Bad input is refused and changes nothing.
    let token = a.core.tokens().access(a.core.cloud()).await.unwrap();
    for body in [
        json!({}),
        json!({"family": {"watch_id": "family", "version": 0}, "watches": []}),
    ] {
        let (status, answer) = api(
            &cloud,
            reqwest::Method::PUT,
            "/api/v1/zones",
            &token,
            Some(&body),
        )
        .await
        .unwrap();
        assert_eq!(status, 400, "{answer}");
    }

    // The honest way on: saving again from the app (a newer version than
    // any seen) reaches the watch.
    let pool = cloud.database().await.unwrap();
    sqlx::query("DELETE FROM family_zone_sets WHERE family_id = $1")
        .bind(&account)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let saved = a.core.save_zones(vec![school.clone()], None).await.unwrap();
    assert_eq!(saved.version, 3);
    assert_eq!(saved.zones, vec![school]);
    cloud_hands_watch(
        &cloud,
        &watch,
        3,
        &stored(&cloud, "watch_zone_sets", "device_id", watch.id()).await,
    )
    .await;
    watch_takes_zones(&watch).await;
    assert_eq!(watch.reporter.zones_version(), 3);
    let view = a.core.zones().await.unwrap();
    assert_eq!(view.watches[0].in_force, 3);
    assert!(view.watches[0].refused.is_none());
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn another_familys_watch_cannot_be_handed_zones_and_reads_answer_only_the_family() {
    let cloud = TestCloud::start().await.unwrap();
    let (a, watch) = family_with_a_watch(&cloud).await;
    let (b, other) = family_with_a_watch(&cloud).await;
    // B seals a set "for" A's watch: refused exactly like a watch that does not exist.
    let b_view = b.core.zones().await.unwrap();
    assert_eq!(b_view.watches.len(), 1, "B sees only its own watch");
    assert_eq!(b_view.watches[0].watch_id, other.id());
    let zone = circle(HOME_NAME, HOME, 100.0, watch.id(), Schedule::Always);
    let err = b.core.save_zones(vec![zone], None).await.unwrap_err();
    assert_eq!(err.code(), "zone_invalid", "{err}");
    // Honest: B's own zone for its own watch.
    let own = circle(HOME_NAME, HOME, 100.0, other.id(), Schedule::Always);
    b.core.save_zones(vec![own], None).await.unwrap();
    watch_takes_zones(&other).await;
    assert_eq!(other.reporter.zones_version(), 1);
    // Past the app: B sends the cloud a copy naming A's watch (its own
    // sealed copy, renamed, as a newer version). Answered like a watch that
    // does not exist, and nothing is stored; the same body for B's own
    // watch is taken.
    let b_family = b.core.me().await.unwrap().family_id;
    let mut family_copy: Value =
        serde_json::from_str(&stored(&cloud, "family_zone_sets", "family_id", &b_family).await)
            .unwrap();
    let mut watch_copy: Value =
        serde_json::from_str(&stored(&cloud, "watch_zone_sets", "device_id", other.id()).await)
            .unwrap();
    family_copy["version"] = Value::from(2);
    watch_copy["version"] = Value::from(2);
    watch_copy["watch_id"] = Value::from(watch.id());
    let token = b.core.tokens().access(b.core.cloud()).await.unwrap();
    // B's own sealed copies, sent with B's token: the attack names A's watch,
    // the honest request B's own.
    let put = |body: Value| {
        let (cloud, token) = (&cloud, &token);
        async move {
            api(
                cloud,
                reqwest::Method::PUT,
                "/api/v1/zones",
                token,
                Some(&body),
            )
            .await
            .unwrap()
        }
    };
    let (status, answer) = put(json!({"family": family_copy, "watches": [watch_copy]})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("not_found")),
        "{answer}"
    );
    let pool = cloud.database().await.unwrap();
    let (rows,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM watch_zone_sets WHERE device_id = $1")
            .bind(watch.id())
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(rows, 0, "nothing stored for A's watch");
    watch_copy["watch_id"] = Value::from(other.id());
    let (status, answer) = put(json!({"family": family_copy, "watches": [watch_copy]})).await;
    assert_eq!(status, 204, "{answer}");
    assert_eq!(watch.reporter.zones_version(), 0);
    assert!(a.core.zones().await.unwrap().zones.is_empty());
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn what_happened_while_no_app_ran_is_listed_at_the_next_start() {
    let cloud = TestCloud::start().await.unwrap();
    let (a, watch) = family_with_a_watch(&cloud).await;
    let home = circle(HOME_NAME, HOME, 100.0, watch.id(), Schedule::Always);
    a.core.save_zones(vec![home], None).await.unwrap();
    watch_takes_zones(&watch).await;
    // The app last checked the family 10 minutes ago, then was closed.
    let marker = a.settings.data_dir.join("last-family-check");
    std::fs::create_dir_all(&a.settings.data_dir).unwrap();
    let closed_at = now_ms() - 10 * 60_000;
    std::fs::write(&marker, format!("{closed_at}\n")).unwrap();
    // Meanwhile the child came home.
    for (i, metres) in [-300.0, -200.0, -100.0, 0.0].into_iter().enumerate() {
        let p = north_of(HOME, metres);
        watch
            .reporter
            .record(Fix {
                t: closed_at + 60_000 + i as i64 * 30_000,
                lat: p.lat,
                lon: p.lon,
                acc: 8.0,
                bat: 80,
            })
            .unwrap();
    }
    assert!(matches!(
        watch.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));

    let shown = Arc::new(Shown::default());
    let family = FamilyWatch::new(
        AlertPrefs::default(),
        Box::new(Recorder(shown.clone())),
        system_clock(),
    )
    .with_away_marker(marker.clone());
    family.poll(&a.core).await.unwrap();
    let away = family.away();
    assert_eq!(away.len(), 1, "{away:?}");
    assert_eq!(
        (away[0].zone.as_str(), away[0].kind),
        (HOME_NAME, ZoneEventKind::Arrived)
    );
    assert!(
        !shown
            .alerts
            .lock()
            .unwrap()
            .iter()
            .any(|a| matches!(a, Alert::Zone { .. })),
        "listed, not notified"
    );
    let noted: i64 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        noted > closed_at,
        "the check's time is kept for the next start"
    );
    family.dismiss_away();
    assert!(family.away().is_empty());

    // A first start ever (no earlier check): nothing was missed.
    std::fs::remove_file(&marker).unwrap();
    let first = FamilyWatch::new(
        AlertPrefs::default(),
        Box::new(Recorder(Arc::new(Shown::default()))),
        system_clock(),
    )
    .with_away_marker(marker);
    first.poll(&a.core).await.unwrap();
    assert!(first.away().is_empty());
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn zones_signed_by_a_removed_computer_are_signed_again_and_nothing_new_it_signs_is_taken() {
    let cloud = TestCloud::start().await.unwrap();
    let (a, watch) = family_with_a_watch(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;
    let office = super::approved_computer(&cloud, &a, "Office PC").await;
    watch.reporter.keep_in_step().await.unwrap();
    // The office computer draws the zones; the kitchen laptop (a) checks them.
    let home = circle(HOME_NAME, HOME, 150.0, watch.id(), Schedule::Always);
    let saved = office
        .core
        .save_zones(vec![home.clone()], Some("Europe/Zurich".into()))
        .await
        .unwrap();
    assert_eq!(saved.version, 1);
    watch_takes_zones(&watch).await;
    assert_eq!(watch.reporter.zones_version(), 1);
    assert_eq!(a.core.zones().await.unwrap().zones, vec![home.clone()]);
    let office_keys = keys_of(&office, account.as_str()).await;

    // The office computer is removed: the family's key rotates, and the
    // zones it signed are signed by no computer of the roster now.
    let office_session = office.core.me().await.unwrap().session_id;
    a.core.end_session(&office_session).await.unwrap();
    a.core.family_keys().await.unwrap();
    watch.reporter.keep_in_step().await.unwrap();

    // Attack: the removed computer signs other zones under the version the
    // family knows, sealed to the family's old key, and the cloud serves them.
    let kitchen = keys_of(&a, account.as_str()).await;
    let elsewhere = circle(
        "Somewhere else",
        north_of(HOME, 5_000.0),
        150.0,
        watch.id(),
        Schedule::Always,
    );
    let forged = waymark_protocol::zone_sealing::SealedZoneSet::seal_for_family(
        &waymark_protocol::zone_sealing::ZoneSet {
            version: 1,
            time_zone: waymark_protocol::family_time::FamilyTimeZone::utc(),
            zones: vec![elsewhere],
        },
        &kitchen.epoch_public(0).unwrap(),
        office_keys.computer(),
    );
    let family = a.core.me().await.unwrap().family_id;
    let honest = stored(&cloud, "family_zone_sets", "family_id", &family).await;
    set_family_copy(&cloud, &serde_json::to_string(&forged).unwrap()).await;
    let view = a.core.zones().await.unwrap();
    assert!(view.zones.is_empty(), "{view:?}");
    assert_eq!(
        view.problem.as_deref(),
        Some(waymark_protocol::zone_sealing::ZoneSetError::UnknownSigner.message())
    );
    assert!(
        !a.core.hand_zones_to_new_watches().await.unwrap(),
        "nothing signed again"
    );
    assert_eq!(watch.reporter.zones_version(), 1);

    // Honest: the set the kitchen laptop checked while the office computer
    // was trusted is shown, and the family check signs it again, with its
    // time zone; the watch takes it from the computer it still trusts.
    set_family_copy(&cloud, &honest).await;
    let view = a.core.zones().await.unwrap();
    assert_eq!(
        (view.zones.clone(), view.problem.clone()),
        (vec![home.clone()], None)
    );
    assert_eq!(view.time_zone, "Europe/Zurich");
    assert!(a.core.hand_zones_to_new_watches().await.unwrap());
    let view = a.core.zones().await.unwrap();
    assert_eq!((view.version, view.zones.clone()), (2, vec![home]));
    assert_eq!(view.time_zone, "Europe/Zurich");
    assert!(!a.core.hand_zones_to_new_watches().await.unwrap(), "once");
    watch_takes_zones(&watch).await;
    assert_eq!(watch.reporter.zones_version(), 2);
    cloud.stop().await.unwrap();
}

/// Replaces the family's copy of the zones the cloud serves (a malicious cloud).
async fn set_family_copy(cloud: &TestCloud, sealed: &str) {
    let pool = cloud.database().await.unwrap();
    sqlx::query("UPDATE family_zone_sets SET sealed = $1")
        .bind(sealed)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}
