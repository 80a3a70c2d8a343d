//! `live`: how long a fix takes from a watch's upload to the parent's live
//! stream while a swarm uploads. Every swarm watch belongs to the family,
//! so every fix of the swarm is also a live event: the latency of each is
//! measured from the moment its batch was sent to the moment its event was
//! read from the stream (same process, same monotonic clock).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use waymark_protocol::report::Fix;
use waymark_system_tests::{Endpoint, Parent};

use crate::{
    CloudProcess, cores, post_setups, presealed, provision_and_pair, quantile_ms, waymark_watch_now,
};

type Sent = Arc<Mutex<HashMap<(String, i64), Instant>>>;

pub async fn run(
    n: usize,
    rounds: u64,
    connections: usize,
    cloud_bin: Option<PathBuf>,
) -> anyhow::Result<()> {
    let proc = CloudProcess::start(cloud_bin)?;
    let cloud = &proc.cloud;
    eprintln!("signing up a parent and pairing {n} watches…");
    let parent = Parent::sign_up(cloud, "Bench family").await?;
    let chunks = provision_and_pair(cloud, &proc.factory, &parent, n, connections).await?;

    let base = waymark_watch_now() - 3_600_000;
    let (setups, signed) = presealed(&chunks, rounds, |c, k, round| {
        // A time unique per watch and round: the key that finds the send time.
        let t = base + (round as i64) * 100_000 + (c * 1000 + k) as i64 % 100_000;
        vec![Fix {
            t,
            lat: 52.5,
            lon: 13.4,
            acc: 5.0,
            bat: 80,
        }]
    })?;
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
    println!("| target | p99 < 250 ms |");
    Ok(())
}
