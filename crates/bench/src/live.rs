//! `live`: how long a fix takes from a watch's upload to the parent's live
//! stream while a swarm uploads. Every swarm watch belongs to the family,
//! so every fix of the swarm is also a live event: the latency of each is
//! measured from the moment its batch was sent to the moment its event was
//! read from the stream (same process, same monotonic clock).
//!
//! With `--zone-events` every batch also carries a safe-zone event (issue
//! 16), and the reader does what the family's app does with it before the
//! desktop is asked to show a notification: checks nothing more than the
//! app would skip, opens the batch with the family's keys, finds the event
//! and writes the alert's text. The time to hand that text to the desktop's
//! notification server (one D-Bus call) is not in the figure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use waymark_app_core::alerts::{Alert, local_clock_time};
use waymark_protocol::location_sealing::FamilyOpener;
use waymark_protocol::report::{Fix, Record};
use waymark_protocol::safe_zones::{ZoneEvent, ZoneEventKind, ZoneId};
use waymark_protocol::sealed_report::SignedSealedBatch;
use waymark_system_tests::{Endpoint, Parent};

use crate::{
    CloudProcess, cores, post_setups, presealed, provision_and_pair_with_family, quantile_ms,
    waymark_watch_now,
};

type Sent = Arc<Mutex<HashMap<(String, i64), Instant>>>;

pub async fn run(
    n: usize,
    rounds: u64,
    connections: usize,
    cloud_bin: Option<PathBuf>,
    zone_events: bool,
) -> anyhow::Result<()> {
    let proc = CloudProcess::start(cloud_bin)?;
    let cloud = &proc.cloud;
    eprintln!("signing up a parent and pairing {n} watches…");
    let parent = Parent::sign_up(cloud, "Bench family").await?;
    let (chunks, family) =
        provision_and_pair_with_family(cloud, &proc.factory, &parent, n, connections).await?;

    let base = waymark_watch_now() - 3_600_000;
    let (setups, signed) = presealed(&chunks, rounds, |c, k, round| {
        // A time unique per watch and round: the key that finds the send time.
        let t = base + (round as i64) * 100_000 + (c * 1000 + k) as i64 % 100_000;
        let fix = Record::Fix(Fix {
            t,
            lat: 52.5,
            lon: 13.4,
            acc: 5.0,
            bat: 80,
        });
        let event = Record::Zone(ZoneEvent {
            zone_id: ZoneId([7; 16]),
            kind: ZoneEventKind::Arrived,
            t,
        });
        if zone_events {
            vec![fix, event]
        } else {
            vec![fix]
        }
    })?;
    // The family app's opener, with every watch's setup accepted.
    let mut opener = family.opener();
    if zone_events {
        for s in &setups {
            opener
                .add_setup(&s.setup)
                .map_err(|e| anyhow::anyhow!("a setup: {e:?}"))?;
        }
    }
    post_setups(cloud, setups).await?;
    let total: usize = signed.iter().map(Vec::len).sum();

    // The parent's stream, read in its own task.
    let sent: Sent = Arc::default();
    let mut stream = cloud
        .client()
        .get(cloud.url("/api/v1/live"))
        .bearer_auth(parent.access())
        .send()
        .await?;
    anyhow::ensure!(stream.status() == 200, "live: {}", stream.status());
    let reader = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let (mut lat, mut lagged, mut buf) = (Vec::new(), 0u64, String::new());
            let deadline = Duration::from_secs(30);
            while lat.len() < total {
                let Ok(Ok(Some(chunk))) = tokio::time::timeout(deadline, stream.chunk()).await
                else {
                    break;
                };
                let arrived = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
                    if frame.contains("event: lagged") {
                        lagged += data
                            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                            .and_then(|v| v["missed"].as_u64())
                            .unwrap_or(0);
                    } else if frame.contains("event: batch") {
                        // Sealed: the header (watch, times) finds the send time.
                        let Some(v) =
                            data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                        else {
                            continue;
                        };
                        let header = &v["batch"]["header"];
                        let key = (
                            header["device_id"].as_str().unwrap_or_default().to_owned(),
                            header["times"][0].as_i64().unwrap_or_default(),
                        );
                        let arrived = if zone_events {
                            // The app's work: open, find the event, word the alert.
                            let Some(alert) = zone_alert(&opener, &v) else {
                                continue;
                            };
                            std::hint::black_box(alert);
                            Instant::now()
                        } else {
                            arrived
                        };
                        if let Some(at) = sent.lock().expect("lock").get(&key) {
                            lat.push(arrived.duration_since(*at).as_micros() as u64);
                        }
                    }
                }
                if lat.len() as u64 + lagged >= total as u64 {
                    break;
                }
            }
            (lat, lagged)
        })
    };

    eprintln!("sending {total} batches over {connections} connections…");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for batches in signed {
        let (client, url, sent) = (
            cloud.client(),
            cloud.url("/device/v2/batches"),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut acked = 0u64;
            for b in &batches {
                let key = (b.batch.header.device_id.clone(), b.batch.header.times[0]);
                sent.lock().expect("lock").insert(key, Instant::now());
                let res = client.post(&url).json(b).send().await?;
                acked += u64::from(res.status().is_success());
                let _ = res.bytes().await?;
            }
            Ok::<_, anyhow::Error>(acked)
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await??;
    }
    let send_s = started.elapsed().as_secs_f64();
    let (mut lat, lagged) = reader.await?;
    lat.sort_unstable();

    println!(
        "\nwaymark-bench live ({} cores, SQLite, TLS 1.3, one subscriber, {n} watches uploading)",
        cores()
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| batches acknowledged | {acked} of {total} in {send_s:.2} s ({:.0}/s) |",
        acked as f64 / send_s
    );
    println!(
        "| fixes received live | {} (lagged, i.e. skipped by the stream: {lagged}) |",
        lat.len()
    );
    println!(
        "| upload → live event p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        quantile_ms(&lat, 0.5),
        quantile_ms(&lat, 0.99),
        quantile_ms(&lat, 1.0)
    );
    if zone_events {
        let p99 = quantile_ms(&lat, 0.99);
        println!(
            "| upload → zone alert worded (opened with the family's keys) p99 | {p99:.1} ms, {:.3} of the 1 s goal |",
            p99 / 1000.0
        );
    } else {
        println!("| target | p99 < 250 ms |");
    }
    Ok(())
}

/// What the app does with a live batch that carries a zone event, up to
/// the notification's text: `None` if it does not open or holds none.
fn zone_alert(opener: &FamilyOpener, signed: &serde_json::Value) -> Option<(String, String)> {
    let signed: SignedSealedBatch = serde_json::from_value(signed.clone()).ok()?;
    let records = opener.open_records(&signed.batch).ok()?;
    records.iter().find_map(|r| match r {
        Record::Zone(e) => {
            let alert = Alert::Zone {
                watch: "Bench watch".into(),
                zone: "School".into(),
                event: e.kind,
                at: local_clock_time(e.t),
            };
            Some((alert.title(), alert.body()))
        }
        Record::Fix(_) => None,
    })
}
