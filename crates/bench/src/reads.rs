//! `reads`: what a parent waits for when the store is big. A family's four
//! watches are paired through the real API; the store is then filled
//! straight through SQL (the same file the running cloud uses) with other
//! families' watches and sealed batches (50 fixes each, one genuine sealed
//! batch's bytes repeated: the cloud never opens them) and a year of one
//! family watch's history,
//! because sending ten million signed fixes through the API would take the
//! ingest benchmark's time, not the reads'. Then, over TLS with keep-alive:
//! the family's watch list with each latest fix, one watch's latest fix,
//! and the year of history streamed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::json;
use waymark_system_tests::{Endpoint, Parent, api};

use crate::{CloudProcess, cores, peak_rss_kb, provision_and_pair, quantile_ms, waymark_watch_now};

const DAY_MS: i64 = 86_400_000;

pub async fn run(
    watches: u64,
    fixes: u64,
    year_fixes: u64,
    requests: usize,
    cloud_bin: Option<PathBuf>,
) -> anyhow::Result<()> {
    let proc = CloudProcess::start(cloud_bin)?;
    let cloud = &proc.cloud;
    eprintln!("signing up a family and pairing its 4 watches…");
    let parent = Parent::sign_up(cloud, "Bench family").await?;
    let (s, _) = api(
        cloud,
        Method::PATCH,
        "/api/v1/settings",
        parent.access(),
        Some(&json!({"retention_days": 365})),
    )
    .await?;
    anyhow::ensure!(s == 200, "could not set retention");
    let family: Vec<String> = provision_and_pair(cloud, &proc.factory, &parent, 4, 4)
        .await?
        .into_iter()
        .flatten()
        .map(|w| w.id)
        .collect();
    let others = watches.saturating_sub(family.len() as u64).max(1);
    let other_fixes = fixes.saturating_sub(year_fixes);

    eprintln!(
        "storing {others} other watches, {other_fixes} of their fixes and a year ({year_fixes} fixes) of one family watch…"
    );
    let seeded = Instant::now();
    let stored = seed(&proc, &family, others, other_fixes, year_fixes).await?;
    let seed_s = seeded.elapsed().as_secs_f64();
    let db_mb = std::fs::metadata(proc.data.join("waymark.db"))?.len() as f64 / 1e6;

    let client = cloud.client();
    let token = parent.access().to_owned();
    let time = |path: String| {
        let (client, token, url) = (client.clone(), token.clone(), cloud.url(&path));
        async move {
            let mut lat = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                let res = client.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(res.status() == 200, "{url}: {}", res.status());
                let _ = res.bytes().await?;
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat.sort_unstable();
            Ok::<_, anyhow::Error>(lat)
        }
    };
    eprintln!("timing {requests} list and latest requests…");
    let list = time("/api/v1/watches".into()).await?;
    let latest = time(format!("/api/v1/watches/{}/latest", family[0])).await?;

    eprintln!("streaming the year {STREAM_RUNS} times…");
    let rss_before = peak_rss_kb(proc.pid)?;
    let now = waymark_watch_now();
    let mut runs = Vec::new();
    for _ in 0..STREAM_RUNS {
        let started = Instant::now();
        let mut res = client
            .get(cloud.url(&format!(
                "/api/v1/watches/{}/history/stream?from={}&to={now}",
                family[0],
                now - 366 * DAY_MS
            )))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(600))
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "history stream: {}", res.status());
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut first_byte = None;
        while let Some(chunk) = res.chunk().await? {
            first_byte.get_or_insert_with(|| started.elapsed());
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            bytes += chunk.len() as u64;
        }
        // One setup line, then a line per batch of PER_BATCH fixes.
        let lines = lines.saturating_sub(1) * PER_BATCH as u64;
        runs.push((
            lines,
            bytes,
            started.elapsed().as_secs_f64(),
            first_byte.unwrap_or_default(),
        ));
    }
    let rss_after = peak_rss_kb(proc.pid)?;

    println!(
        "\nwaymark-bench reads ({} cores, SQLite, TLS 1.3, keep-alive)",
        cores()
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| stored | {} watches, {} fixes, database {db_mb:.0} MB (filled in {seed_s:.0} s) |",
        others + family.len() as u64,
        stored
    );
    println!(
        "| family's watch list with latest fixes (4 watches), p50 / p99 | {:.2} / {:.2} ms ({requests} requests) |",
        quantile_ms(&list, 0.5),
        quantile_ms(&list, 0.99)
    );
    println!(
        "| one watch's latest fix (a watch with {year_fixes} fixes), p50 / p99 | {:.2} / {:.2} ms |",
        quantile_ms(&latest, 0.5),
        quantile_ms(&latest, 0.99)
    );
    for (k, (lines, bytes, stream_s, first_byte)) in runs.iter().enumerate() {
        println!(
            "| a year of history streamed, run {} | {lines} fixes, {:.1} MB in {stream_s:.2} s = {:.0} fixes/s (first byte {:.1} ms) |",
            k + 1,
            *bytes as f64 / 1e6,
            *lines as f64 / stream_s,
            first_byte.as_secs_f64() * 1000.0
        );
    }
    let slowest = runs
        .iter()
        .map(|(lines, _, s, _)| *lines as f64 / s)
        .fold(f64::INFINITY, f64::min);
    println!(
        "| slowest of {STREAM_RUNS} runs | {slowest:.0} fixes/s ({:.2} of the 1,000,000 fixes/s target) |",
        slowest / 1e6
    );
    println!(
        "| cloud peak RSS before / after the stream | {:.0} / {:.0} MB |",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    println!("| targets | latest p99 < 5 ms; a year of history < 1 s |");
    Ok(())
}

/// How many times the year is streamed (the target must hold in every run).
const STREAM_RUNS: usize = 5;

/// Fixes per stored batch, as the watches send them.
const PER_BATCH: usize = 50;

/// One genuine sealed batch of [`PER_BATCH`] fixes and its setup record, as
/// stored JSON (sealed to a throwaway family key, signed by a throwaway device key).
fn template() -> anyhow::Result<(String, String)> {
    use rcgen::SigningKey;
    use waymark_protocol::location_sealing::{LocationSecretKey, WatchSealer};
    use waymark_protocol::report::Fix;
    use waymark_protocol::sealed_report::{ChainHash, SignedSealedBatch, SignedSetupRecord};
    use waymark_protocol::signing::b64;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let (_, public) = LocationSecretKey::generate();
    let (sealer, setup) =
        WatchSealer::start("bench", 0, &public).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let setup = SignedSetupRecord {
        signature: b64(&key.sign(&setup.signing_bytes())?),
        setup,
    };
    let now = waymark_watch_now();
    let fixes: Vec<Fix> = (0..PER_BATCH as i64)
        .map(|i| Fix {
            t: now + i,
            lat: 52.5,
            lon: 13.4,
            acc: 6.0,
            bat: 90,
        })
        .collect();
    let batch = sealer.seal(1, 0, ChainHash::GENESIS, &fixes);
    let batch = SignedSealedBatch {
        signature: b64(&key.sign(&batch.signing_bytes())?),
        batch,
    };
    Ok((
        serde_json::to_string(&batch)?,
        serde_json::to_string(&setup)?,
    ))
}

/// Fills the running cloud's SQLite file: other families' watches with
/// recent batches, a year of batches for `family[0]`, and one recent batch
/// for each other family watch. Rows are generated inside SQLite, device by
/// device, so the (device, seq) key grows in order. Returns the fixes stored.
async fn seed(
    proc: &CloudProcess,
    family: &[String],
    others: u64,
    other_fixes: u64,
    year_fixes: u64,
) -> anyhow::Result<u64> {
    use sqlx::Connection;
    let url = format!("sqlite://{}", proc.data.join("waymark.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url)
        .await
        .context("opening the cloud's database")?;
    sqlx::query(
        "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -262144",
    )
    .execute(&mut db)
    .await?;
    let now = waymark_watch_now();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO accounts (id, webauthn_user_id, display_name, created_at, retention_days)
         VALUES ('0000000000000000000000000000beef', 'bench-others', 'Other families', $1, 365)",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
         INSERT INTO devices (id, serial, model, certificate, registered_at)
         SELECT printf('ee%030x', i), 'BENCH', 'Bench', x'00', $2 FROM n",
    )
    .bind(others as i64)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO bindings (device_id, account_id, name, bound_at)
         SELECT id, '0000000000000000000000000000beef', 'Other', $1 FROM devices WHERE serial = 'BENCH'",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let (body, setup) = template()?;
    // Every watch's one setup record (the latest batch is read with it).
    sqlx::query(
        "INSERT INTO fix_setups (device_id, setup_id, epoch, body, created_at)
         SELECT id, 'bench', 0, $1, $2 FROM devices",
    )
    .bind(&setup)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let per = PER_BATCH as i64;
    // Other watches: a batch of 50 fixes every 25 minutes going back from
    // now (a fix every 30 s), device by device.
    let per_device = ((other_fixes / others) as i64 / per).max(1);
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
         INSERT INTO batches (device_id, seq, t_first, t_last, n, setup_id, body)
         SELECT printf('ee%030x', i / $2), $2 - i % $2, $3 - (i % $2) * 1500000 - 1470000,
                $3 - (i % $2) * 1500000, $4, 'bench', $5 FROM n",
    )
    .bind(per_device * others as i64)
    .bind(per_device)
    .bind(now - 60_000)
    .bind(per)
    .bind(&body)
    .execute(&mut *tx)
    .await?;
    // The family's first watch: a year, evenly spread.
    let batches = (year_fixes as i64 / per).max(1);
    let step = (364 * DAY_MS) / batches;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
         INSERT INTO batches (device_id, seq, t_first, t_last, n, setup_id, body)
         SELECT $2, i + 1, $3 + i * $4, $3 + i * $4 + $4 / 2, $5, 'bench', $6 FROM n",
    )
    .bind(batches)
    .bind(&family[0])
    .bind(now - 364 * DAY_MS)
    .bind(step)
    .bind(per)
    .bind(&body)
    .execute(&mut *tx)
    .await?;
    for id in &family[1..] {
        sqlx::query(
            "INSERT INTO batches (device_id, seq, t_first, t_last, n, setup_id, body)
             VALUES ($1, 1, $2, $3, $4, 'bench', $5)",
        )
        .bind(id)
        .bind(now - 100_000)
        .bind(now - 1000)
        .bind(per)
        .bind(&body)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE")
        .execute(&mut db)
        .await?;
    let (stored,): (i64,) = sqlx::query_as("SELECT CAST(SUM(n) AS BIGINT) FROM batches")
        .fetch_one(&mut db)
        .await?;
    db.close().await?;
    Ok(stored as u64)
}
