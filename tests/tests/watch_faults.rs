//! Faults at the watch that the outside review found losing fixes: a queue
//! file that went back in time, a clock minutes off, a fix the cloud can
//! never take inside a batch of good ones, an upload that hangs while fixes
//! are due. In each, every fix the watch could deliver is delivered, once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use waymark_system_tests::*;
use waymark_watch::queue::QUEUE_FILE;
use waymark_watch::reporting::Drain;

/// Every stored fix time of the watch, oldest first.
/// The family's app must find them one unbroken chain, nothing altered.
async fn stored_times(cloud: &TestCloud, parent: &Parent, watch: &TestWatch) -> Vec<i64> {
    let body = history_stream(cloud, parent, watch)
        .await
        .text()
        .await
        .unwrap();
    let view = open_stream(cloud, parent, watch.id(), &body).await.unwrap();
    assert!(
        view.gaps.is_empty() && view.altered.is_empty() && view.unreadable.is_empty(),
        "{view:?}"
    );
    view.fixes.iter().map(|f| f.t).collect()
}

async fn paired_watch(cloud: &TestCloud, clock_error_ms: i64) -> (Parent, TestWatch) {
    let parent = Parent::sign_up(cloud, "Family A").await.unwrap();
    let watch = TestWatch::with_clock_error(cloud, clock_error_ms).unwrap();
    pair(cloud, &parent, &watch).await.unwrap();
    (parent, watch)
}

/// The watch's own status poll, answered.
async fn status_of(watch: &TestWatch) -> waymark_protocol::status_poll::DeviceStatus {
    watch
        .reporter
        .link
        .status(&watch.reporter.watch)
        .await
        .expect("the status poll is answered")
}

/// A status poll for `device_id`, signed by `signer`'s key.
fn signed_poll(signer: &TestWatch, device_id: &str) -> Value {
    let status = waymark_protocol::status_poll::StatusRequest {
        device_id: device_id.to_owned(),
        at: now_ms(),
        zones: None,
    };
    let signature = waymark_protocol::signing::b64(
        &signer
            .reporter
            .watch
            .keys
            .sign(&status.signing_bytes())
            .unwrap(),
    );
    json!({"status": status, "signature": signature})
}

#[tokio::test]
async fn a_queue_file_restored_from_an_older_copy_loses_nothing() {
    let cloud = TestCloud::start().await.unwrap();
    let (parent, mut watch) = paired_watch(&cloud, 0).await;
    let queue = watch.path().join(QUEUE_FILE);
    let base = now_ms() - 60_000;
    // An old copy of the queue holding a batch that was then delivered.
    watch.reporter.record(fix_at(base, 0)).unwrap();
    watch.reporter.queue().next_batch(watch.id(), 50).unwrap();
    let old_copy = std::fs::read(&queue).unwrap();
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(1));
    for i in 1..=120 {
        watch
            .reporter
            .record(fix_at(base + i * 100, i as u32))
            .unwrap();
        if i % 40 == 0 {
            watch.reporter.drain().await.unwrap();
        }
    }
    assert_eq!(cloud.store.stored_fixes().await.unwrap(), 121);

    // The queue goes back to the old copy (a restored backup; a power cut).
    std::fs::write(&queue, &old_copy).unwrap();
    watch.restart().unwrap();
    for i in 200..346 {
        watch
            .reporter
            .record(fix_at(base + i * 100, i as u32))
            .unwrap();
    }
    // Its first batch is one already stored, but the old copy held it
    // unsealed: sealed anew (a new setup, so never a reused nonce), the
    // cloud cannot compare it with what it stored and it is stored again
    // under a new number. The next numbers are the cloud's already:
    // renumbered, all delivered. Nothing is lost; the family's app shows
    // the fix sent twice once (below).
    assert!(matches!(
        watch.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));
    assert!(watch.reporter.queue().is_empty());
    assert_eq!(cloud.store.stored_fixes().await.unwrap(), 121 + 1 + 146);

    // The queue deleted while the key and pairing survive: the same.
    std::fs::remove_file(&queue).unwrap();
    watch.restart().unwrap();
    for i in 400..450 {
        watch
            .reporter
            .record(fix_at(base + i * 100, i as u32))
            .unwrap();
    }
    assert!(matches!(
        watch.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));
    let times = stored_times(&cloud, &parent, &watch).await;
    assert_eq!(times.len(), 121 + 146 + 50, "every fix stored once");
    let mut unique = times.clone();
    unique.dedup();
    assert_eq!(unique.len(), times.len(), "no fix stored twice");
}

#[tokio::test]
async fn a_watch_minutes_fast_corrects_its_clock_and_delivers_everything() {
    let cloud = TestCloud::start().await.unwrap();
    let (_parent, watch) = paired_watch(&cloud, 3 * 60_000).await;
    // Pairing's answers already told it the time: fixes stamped now are right.
    let stamped_now = watch.reporter.link.clock.now_ms();
    assert!(
        (stamped_now - now_ms()).abs() < 5_000,
        "corrected by the pairing answers"
    );

    // A watch that queued fixes before it ever reached the cloud.
    let (parent2, mut late) = paired_watch(&cloud, 0).await;
    late.restart_with_clock_error(3 * 60_000).unwrap();
    let fast = late.reporter.link.clock.now_ms();
    for i in 0..268 {
        late.reporter
            .record(fix_at(fast - 268_000 + i * 1000, i as u32))
            .unwrap();
    }
    assert!(matches!(
        late.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));
    let times = stored_times(&cloud, &parent2, &late).await;
    assert_eq!(times.len(), 268, "every fix delivered");
    assert!(
        times.iter().all(|t| *t <= now_ms() + 5_000),
        "times were corrected, not stored in the future"
    );
    assert_eq!(late.reporter.queue().dropped(), 0);
}

#[tokio::test]
async fn a_watch_minutes_slow_is_never_stuck_after_a_lost_acknowledgement() {
    let cloud = TestCloud::start().await.unwrap();
    let (_parent, slow) = paired_watch(&cloud, -10 * 60_000).await;
    // Its status poll works although its hardware clock is 10 minutes slow.
    let status = slow
        .reporter
        .link
        .status(&slow.reporter.watch)
        .await
        .unwrap();
    assert!(status.paired);
    // A batch stored, its acknowledgement lost, then a new batch under the
    // same number (its queue went back): renumbered after asking the status.
    slow.reporter.record(fix_at(now_ms() - 5_000, 1)).unwrap();
    slow.reporter
        .queue()
        .next_batch(slow.id(), 50)
        .unwrap()
        .unwrap();
    let sealed = slow.sealed_inflight().await;
    assert_eq!(upload(&cloud, &sealed).await.0, 200);
    assert_eq!(slow.reporter.drain().await.unwrap(), Drain::Done(1));
    let other = slow.sign(1, vec![fix_at(now_ms() - 4_000, 2)]);
    let (s, body) = upload(&cloud, &other).await;
    assert_eq!((s, body["error"].as_str()), (409, Some("sequence_reused")));
    assert_eq!(cloud.store.stored_fixes().await.unwrap(), 1);
}

#[tokio::test]
async fn a_status_poll_cannot_be_replayed() {
    let cloud = TestCloud::start().await.unwrap();
    let (_parent, watch) = paired_watch(&cloud, 0).await;
    let captured = signed_poll(&watch, watch.id());
    let post = |body: Value| {
        let client = cloud.client();
        let url = cloud.url("/device/v1/status");
        async move {
            let res = client.post(url).json(&body).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (s, first) = post(captured.clone()).await;
    assert_eq!((s, first["owner"].as_str()), (200, Some("Family A")));
    let (s, replay) = post(captured).await;
    assert_eq!(
        (s, replay["error"].as_str()),
        (409, Some("replayed_status"))
    );
    assert!(replay["owner"].is_null(), "the replay learns nothing");
    // The watch's own next poll is newer, and answered.
    assert!(status_of(&watch).await.paired);
}

#[tokio::test]
async fn unknown_watch_ids_and_wrong_signatures_answer_alike() {
    let cloud = TestCloud::start().await.unwrap();
    let (_parent, watch) = paired_watch(&cloud, 0).await;
    let stranger = TestWatch::new(&cloud).unwrap();
    // Signed by a key that is not the named watch's.
    let poll = |device_id: &str| signed_poll(&stranger, device_id);
    let mut answers = Vec::new();
    for id in [watch.id(), "0123456789abcdef0123456789abcdef"] {
        for path in ["/device/v1/status", "/device/v1/batches"] {
            let body = if path.ends_with("status") {
                poll(id)
            } else {
                let mut b =
                    serde_json::to_value(stranger.sign(1, vec![fix_at(now_ms(), 0)])).unwrap();
                b["batch"]["device_id"] = json!(id);
                b
            };
            let res = cloud
                .client()
                .post(cloud.url(path))
                .json(&body)
                .send()
                .await
                .unwrap();
            answers.push((path, res.status().as_u16(), res.text().await.unwrap()));
        }
    }
    assert_eq!(answers[0].1, 401);
    assert_eq!(
        (answers[0].1, &answers[0].2),
        (answers[2].1, &answers[2].2),
        "status"
    );
    assert_eq!(
        (answers[1].1, &answers[1].2),
        (answers[3].1, &answers[3].2),
        "batches"
    );
    // The watch itself is answered.
    assert!(status_of(&watch).await.paired);
}

#[tokio::test]
async fn one_fix_the_cloud_can_never_take_costs_only_itself() {
    let cloud = TestCloud::start().await.unwrap();
    let (parent, watch) = paired_watch(&cloud, 0).await;
    let now = now_ms();
    for i in 0..49 {
        watch
            .reporter
            .record(fix_at(now - 50_000 + i * 1000, i as u32))
            .unwrap();
    }
    // Older than the cloud keeps (a watch offline for more than a month).
    watch
        .reporter
        .record(fix_at(now - 31 * 24 * 3_600_000, 99))
        .unwrap();
    assert!(matches!(
        watch.reporter.drain().await.unwrap(),
        Drain::Done(_)
    ));
    assert_eq!(stored_times(&cloud, &parent, &watch).await.len(), 49);
    assert_eq!(
        watch.reporter.queue().dropped(),
        1,
        "the one refused fix is counted"
    );
    assert!(watch.reporter.queue().is_empty());
}

/// A TCP relay to the cloud that holds every connection for `hang` before
/// it starts relaying: a cloud that hangs, as the review saw.
async fn hanging_relay(cloud: &TestCloud, hang: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = cloud.addr;
    let opens = tokio::time::Instant::now() + hang;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep_until(opens).await;
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn fixes_keep_coming_while_an_upload_hangs() {
    let cloud = TestCloud::start().await.unwrap();
    let (parent, watch) = paired_watch(&cloud, 0).await;
    // The watch program, pointed at a relay that hangs for 4 s.
    let relay = hanging_relay(&cloud, Duration::from_secs(4)).await;
    let settings = watch
        .path()
        .join(waymark_watch::provisioning::SETTINGS_FILE);
    let text = std::fs::read_to_string(&settings).unwrap();
    let port = cloud.addr.port().to_string();
    std::fs::write(&settings, text.replace(&port, &relay.port().to_string())).unwrap();
    let out = tokio::process::Command::new(watch_binary())
        .args([
            "run",
            "--route",
            "builtin:park-loop",
            "--interval",
            "0.2",
            "--fixes",
            "40",
            "--dir",
        ])
        .arg(watch.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times = stored_times(&cloud, &parent, &watch).await;
    assert_eq!(times.len(), 40);
    let widest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        widest < 2_000,
        "a gap of {widest} ms in a 200 ms track: fixes stopped while the upload hung"
    );
}

#[tokio::test]
async fn rate_limits_hold_under_concurrent_attempts() {
    let cloud = TestCloud::start().await.unwrap();
    let mut guesser = Parent::sign_up(&cloud, "Guesser").await.unwrap();
    // Unknown locators: each a wrong code.
    let tries = (0..40).map(|_| {
        api(
            &cloud,
            Method::GET,
            "/api/v1/pairing-offers/2222",
            guesser.access(),
            None,
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    let wrong = answers
        .iter()
        .filter(|a| a.as_ref().unwrap().1["error"] == "invalid_code")
        .count();
    let limited = answers
        .iter()
        .filter(|a| a.as_ref().unwrap().1["error"] == "too_many_attempts")
        .count();
    assert_eq!(
        (wrong as i64, limited),
        (
            waymark_cloud::parent_api::pairing::MAX_WRONG_PER_ACCOUNT,
            40 - 10
        )
    );

    let max = waymark_cloud::services::ceremonies::MAX_BAD_TOKEN_REQUESTS_PER_SOURCE;
    let tries = (0..max + 30).map(|_| refresh(&cloud, "wm_rt_guess"));
    let answers = futures_util::future::join_all(tries).await;
    let refused = answers
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == 400)
        .count();
    let limited = answers
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == 429)
        .count();
    assert_eq!((refused as i64, limited), (max, 30));

    // When the window has passed, honest requests go through.
    // An hour: the pairing limit's window (the token limit's is ten minutes).
    cloud.advance(std::time::Duration::from_secs(61 * 60));
    // Its access token expired meanwhile too: the app renews it first.
    guesser.renew(&cloud).await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &guesser, &watch).await.unwrap();
    let res = refresh(&cloud, &guesser.tokens.clone().unwrap().refresh)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
