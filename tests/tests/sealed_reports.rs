//! Sealed reports through the real cloud (issue 13, design §3 and §10):
//! the cloud holds and relays ciphertext it cannot read (property 1), and a
//! cloud that alters, replays or drops reports is caught by the family's
//! app, which shows the rest (property 2). On SQLite and, in the second
//! pass of `scripts/test`, on PostgreSQL.

use serde_json::{Value, json};
use waymark_cloud::storage::Store;
use waymark_protocol::report::Fix;
use waymark_system_tests::*;
use waymark_watch::reporting::Drain;

/// Coordinates no test elsewhere uses, with many significant digits.
fn secret_fix(i: u32) -> Fix {
    Fix {
        t: now_ms() - 60_000 + i64::from(i) * 100,
        lat: 47.376_887_123 + f64::from(i) * 1e-6,
        lon: 8.541_694_987 - f64::from(i) * 1e-6,
        acc: 3.25,
        bat: 64,
    }
}

/// What would betray `f` in a dump: its values as text, and their bits.
fn traces(f: &Fix) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for v in [f.lat, f.lon] {
        out.push(v.to_string().into_bytes());
        out.push(format!("{v:.6}").into_bytes());
        out.push(v.to_be_bytes().to_vec());
        out.push(v.to_le_bytes().to_vec());
    }
    out
}

#[tokio::test]
async fn the_cloud_holds_no_coordinate_in_its_database_logs_or_live_stream() {
    let logs = Logs::capture();
    let cloud = TestCloud::start().await.unwrap();
    let parent = Parent::sign_up(&cloud, "Family").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &parent, &watch).await.unwrap();
    let mut stream = live(&cloud, parent.access()).await;
    let sent: Vec<Fix> = (0..60).map(secret_fix).collect();
    for f in &sent {
        watch.reporter.record(*f).unwrap();
    }
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(2));
    // The live stream, as the cloud sends it: both batches and their setup.
    let first = next_fix(&mut stream).await;
    let second = next_fix(&mut stream).await;
    assert_eq!(first["setups"].as_array().map(Vec::len), Some(1), "{first}");
    let live_text = format!("{first}{second}");
    // The family reads them all back.
    let path = format!("/api/v1/watches/{}/history?order=oldest", watch.id());
    let (s, page) = history_page(&cloud, &parent, &path).await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(
        page["fixes"],
        json!(sent),
        "the family sees exactly what was sent"
    );
    let (_, raw_page) = api(&cloud, reqwest::Method::GET, &path, parent.access(), None)
        .await
        .unwrap();

    // Every table as a dump shows it, and (SQLite) the database's own files.
    let mut dump = Vec::new();
    for table in Store::TABLES {
        dump.extend(cloud.dump_text(table).await.unwrap().into_bytes());
    }
    let mut files = Vec::new();
    if test_postgres().is_none() {
        for entry in std::fs::read_dir(cloud.dir.path().join("cloud")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.extend(std::fs::read(&path).unwrap());
            }
        }
        assert!(
            contains(&files, watch.id().as_bytes()),
            "the scan reads the database files"
        );
    }
    let logged = logs.bytes();
    assert!(
        contains(&logged, b"waymark"),
        "the scan reads the logs ({} bytes)",
        logged.len()
    );
    for f in &sent {
        for trace in traces(f) {
            for (what, bytes) in [
                ("the database dump", &dump),
                ("the database files", &files),
                ("the logs", &logged),
                ("the live stream", &live_text.as_bytes().to_vec()),
                ("the history API", &raw_page.to_string().into_bytes()),
            ] {
                assert!(
                    !contains(bytes, &trace),
                    "{what} holds a coordinate ({})",
                    String::from_utf8_lossy(&trace)
                );
            }
        }
    }
    // What the cloud still sees, as the README says: the times.
    assert!(contains(&dump, sent[0].t.to_string().as_bytes()));
}

/// One batch of one fix per drain: a chain of `n` batches.
async fn report(watch: &TestWatch, n: u32) -> Vec<Fix> {
    let mut sent = Vec::new();
    for i in 0..n {
        let f = secret_fix(i);
        watch.reporter.record(f).unwrap();
        assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(1));
        sent.push(f);
    }
    sent
}

#[tokio::test]
async fn a_cloud_that_alters_replays_or_drops_reports_is_caught_by_the_family() {
    let cloud = TestCloud::start().await.unwrap();
    let parent = Parent::sign_up(&cloud, "Family").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &parent, &watch).await.unwrap();
    let sent = report(&watch, 6).await;
    let path = format!("/api/v1/watches/{}/history?order=oldest", watch.id());

    // The honest cloud: six reports, one chain, nothing refused.
    let (_, honest) = history_page(&cloud, &parent, &path).await.unwrap();
    assert_eq!(honest["fixes"], json!(sent));
    assert_eq!(
        (honest["gaps"].as_u64(), &honest["altered"]),
        (Some(0), &json!([]))
    );

    // A malicious cloud: its own database connection rewrites what it serves.
    let db = cloud.database().await.unwrap();
    let body_of = |seq: i64| {
        let db = db.clone();
        let id = watch.id().to_owned();
        async move {
            let body: String =
                sqlx::query_scalar("SELECT body FROM batches WHERE device_id = $1 AND seq = $2")
                    .bind(id)
                    .bind(seq)
                    .fetch_one(&db)
                    .await
                    .unwrap();
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    let set_body = |seq: i64, body: Value| {
        let db = db.clone();
        let id = watch.id().to_owned();
        async move {
            sqlx::query("UPDATE batches SET body = $1 WHERE device_id = $2 AND seq = $3")
                .bind(body.to_string())
                .bind(id)
                .bind(seq)
                .execute(&db)
                .await
                .unwrap();
        }
    };
    // Batch 2: one byte of its ciphertext changed.
    let mut altered = body_of(2).await;
    let c = altered["batch"]["ciphertext"].as_str().unwrap().to_owned();
    let flipped = if c.starts_with('A') { "B" } else { "A" };
    altered["batch"]["ciphertext"] = json!(format!("{flipped}{}", &c[1..]));
    set_body(2, altered).await;
    // Batch 4: batch 3 served again in its place (a replay).
    set_body(4, body_of(3).await).await;
    // Batch 5: withheld.
    sqlx::query("DELETE FROM batches WHERE device_id = $1 AND seq = 5")
        .bind(watch.id())
        .execute(&db)
        .await
        .unwrap();

    let (_, seen) = history_page(&cloud, &parent, &path).await.unwrap();
    let shown: Vec<Fix> = serde_json::from_value(seen["fixes"].clone()).unwrap();
    assert_eq!(
        shown,
        vec![sent[0], sent[2], sent[5]],
        "only the untouched reports are drawn: {seen}"
    );
    assert_eq!(seen["altered"], json!([2]), "{seen}");
    // The replayed batch 3 is batch 3 (its number is signed): batch 4 and
    // the withheld batch 5 show as missing, one gap.
    assert_eq!(seen["gaps"].as_u64(), Some(1), "{seen}");

    // A latest report the cloud altered is not shown either.
    let latest: Vec<Value> = {
        let (_, list) = api(
            &cloud,
            reqwest::Method::GET,
            "/api/v1/watches",
            parent.access(),
            None,
        )
        .await
        .unwrap();
        serde_json::from_value(list).unwrap()
    };
    assert_eq!(latest[0]["latest"]["batch"]["batch"]["header"]["seq"], 6);
    db.close().await;
}
