//! Watches end to end over real TLS and SQLite with real `waymark-watch`
//! instances (the library) and two parents: pairing and its refusals, the
//! binding on every read, signed batches and their refusals, revocation,
//! the offline queue across a real cloud restart, and the live stream.

use std::process::Stdio;

use reqwest::Method;
use serde_json::{Value, json};
use waymark_protocol::report::Fix;
use waymark_protocol::sealed_report::SignedSealedBatch;
use waymark_protocol::signing::b64;
use waymark_system_tests::*;
use waymark_watch::pairing::ShownCode;
use waymark_watch::reporting::Drain;

/// Answers the offer `code` names as a family computer would (a fresh
/// family each time): `(status, body, the exchange if relayed)`.
async fn answer(cloud: &TestCloud, parent: &Parent, code: &str) -> (u16, Value, Option<Answered>) {
    TestFamily::default()
        .answer(cloud, parent.access(), code)
        .await
        .unwrap()
}

/// A well-formed code whose locator is not `shown`'s (so it names no offer).
fn other_locator(shown: &str) -> String {
    let locator = if shown.starts_with("2222") {
        "3333"
    } else {
        "2222"
    };
    format!("{locator}-3333-4444")
}

/// The watch weighs the answer relayed to it and finds it wrong: it says
/// so, the family's side hears "wrong code", and nothing is bound.
async fn the_watch_refuses(
    cloud: &TestCloud,
    parent: &Parent,
    answered: Option<Answered>,
    watch: &TestWatch,
    shown: ShownCode,
) {
    let family = TestFamily::default();
    let (paired, waited) = tokio::join!(
        family.await_paired(cloud, parent.access(), answered.expect("relayed")),
        watch.take_answer(shown)
    );
    assert_eq!(waited.unwrap(), waymark_watch::pairing::Waited::WrongCode);
    assert!(paired.unwrap_err().to_string().contains("wrong"));
    assert_eq!(cloud.store.count("bindings").await.unwrap(), 0);
}

/// `parent` answers `shown` with the right locator and a wrong secret: the
/// cloud relays it (it cannot tell), and the watch refuses it.
async fn answered_wrongly(cloud: &TestCloud, parent: &Parent, watch: &TestWatch, shown: ShownCode) {
    let code = shown.code.display();
    let (s, _, answered) = answer(cloud, parent, &wrong_secret(&code)).await;
    assert_eq!(s, 202);
    the_watch_refuses(cloud, parent, answered, watch, shown).await;
}

/// The right locator with another secret.
fn wrong_secret(shown: &str) -> String {
    let last = if shown.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &shown[..shown.len() - 1])
}

fn signed(watch: &TestWatch, seq: u64, fixes: Vec<Fix>) -> SignedSealedBatch {
    watch.sign(seq, fixes)
}

#[tokio::test]
async fn a_watch_that_floods_hits_its_ingest_budget_and_keeps_what_it_could_not_send() {
    use waymark_cloud::storage::ingest::INGEST_BUDGET_FIXES;
    let cloud = TestCloud::start().await.unwrap();
    let mut parent = Parent::sign_up(&cloud, "Family").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &parent, &watch).await.unwrap();
    // The watch's key spends its whole budget in full batches of 500.
    let per_batch = waymark_protocol::report::MAX_FIXES_PER_BATCH as i64;
    let t0 = now_ms() - 3_600_000;
    for seq in 1..=(INGEST_BUDGET_FIXES / per_batch) as u64 {
        let fixes = (0..per_batch as u32)
            .map(|i| fix_at(t0 + i64::from(i), i))
            .collect();
        assert_eq!(upload(&cloud, &signed(&watch, seq, fixes)).await.0, 200);
    }
    assert_eq!(
        cloud.store.count("batches").await.unwrap(),
        INGEST_BUDGET_FIXES / per_batch
    );
    // One more fix in the same window is refused, says so, and stores nothing.
    let before = snapshot(&cloud.store).await;
    let over = signed(&watch, 1_000, vec![fix_at(now_ms(), 1)]);
    let (status, body) = upload(&cloud, &over).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "a refused batch wrote nothing"
    );
    // The next window takes the same signed batch.
    cloud.advance(std::time::Duration::from_secs(11 * 60));
    assert_eq!(upload(&cloud, &over).await.0, 200);
    parent.renew(&cloud).await.unwrap();

    // The watch program, over its budget (spent as above), keeps its fix
    // queued as if offline, and delivers it in the next window.
    let other = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &parent, &other).await.unwrap();
    // Setup, not a clock move: its budget spent now, by the cloud's clock.
    sqlx::query(
        "UPDATE device_counters SET budget_window_start = $1, budget_window_fixes = $2 WHERE device_id = $3",
    )
    .bind(cloud.clock.now().ms())
    .bind(INGEST_BUDGET_FIXES)
    .bind(other.id())
    .execute(cloud.store.pool())
    .await
    .unwrap();
    other.reporter.record(fix_at(now_ms(), 2)).unwrap();
    assert_eq!(other.reporter.drain().await.unwrap(), Drain::Offline);
    assert_eq!(other.reporter.queue().len(), 1, "the watch kept the fix");
    cloud.advance(std::time::Duration::from_secs(11 * 60));
    assert_eq!(other.reporter.drain().await.unwrap(), Drain::Done(1));
    assert!(other.reporter.queue().is_empty());
}

#[tokio::test]
async fn pairing_binds_once_and_refuses_wrong_expired_and_reused_codes() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let mut b = Parent::sign_up(&cloud, "Family B").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();

    let status = watch.reporter.link.status(&watch.reporter.watch).await;
    assert!(status.is_err(), "a watch that never offered is unknown");

    // A locator no offer has, and no code at all: refused, nothing bound.
    let shown = watch.show_code().await.unwrap();
    let code = shown.code.display();
    let (s, body, _) = answer(&cloud, &b, &other_locator(&code)).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_code")));
    let (s, body) = api(
        &cloud,
        Method::GET,
        "/api/v1/pairing-offers/not-a-code",
        b.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_code")));
    assert_eq!(cloud.store.count("bindings").await.unwrap(), 0);

    // The right locator with a wrong secret: nothing is bound, and the offer
    // is spent: the watch shows a new code.
    answered_wrongly(&cloud, &b, &watch, shown).await;
    assert_eq!(cloud.store.count("bindings").await.unwrap(), 0);
    assert!(!watch.path().join("family.json").exists());
    let (s, body, _) = answer(&cloud, &a, &code).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_code")),
        "B's spent offer is not A's to read"
    );

    // Honest: a new code, typed in lower case without dashes.
    let shown = watch.show_code().await.unwrap();
    let code = shown.code.display();
    let typed = code.replace('-', "").to_lowercase();
    let family = TestFamily::default();
    let (s, body, answered) = family.answer(&cloud, a.access(), &typed).await.unwrap();
    assert_eq!(s, 202, "{body}");
    let (paired, waited) = tokio::join!(
        family.await_paired(&cloud, a.access(), answered.unwrap()),
        watch.take_answer(shown)
    );
    assert_eq!(
        waited.unwrap(),
        waymark_watch::pairing::Waited::Paired {
            owner: "Family A".into()
        }
    );
    let info = paired.unwrap();
    assert_eq!(info["id"], watch.id());
    assert_eq!(info["model"], "Waymark Kids 1");
    let st = watch
        .reporter
        .link
        .status(&watch.reporter.watch)
        .await
        .unwrap();
    assert_eq!((st.paired, st.owner.as_deref()), (true, Some("Family A")));
    // The watch keeps the family's key epoch and roster the exchange brought.
    let kept = waymark_watch::family::load(&watch.path()).expect("the family bundle");
    assert_eq!(kept, family.bundle());

    // The cloud held nothing derived from the code's secret: the code, the
    // old scheme's hash of it, and the secret itself appear nowhere.
    let canonical = code.replace('-', "");
    let old_hash = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(
            [b"waymark/pair-code/v1\0".as_slice(), canonical.as_bytes()].concat(),
        );
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let dump = cloud.dump_text("pairing_offers").await.unwrap();
    assert!(dump.contains(&canonical[..4]), "the locator is public");
    for secret in [&canonical[..], &canonical[4..], &old_hash[..]] {
        assert!(!dump.contains(secret), "{secret} in {dump}");
    }

    // The code is spent. Answered straight to the route (without reading
    // the offer first): to A it is used, to B, whose it is not, it is none.
    let (s, body, _) = answer(&cloud, &b, &code).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_code")));
    let well_formed = json!({
        "message": b64(&[1; 33]),
        "confirmation": b64(&[2; 32]),
        "bundle": b64(&[3; 64]),
    });
    let answer_path = format!("/api/v1/pairing-offers/{}/answer", &canonical[..4]);
    let (s, unknown) = api(
        &cloud,
        Method::POST,
        "/api/v1/pairing-offers/ZZZZ/answer",
        b.access(),
        Some(&well_formed),
    )
    .await
    .unwrap();
    assert_eq!(s, 400);
    let (s, theirs) = api(
        &cloud,
        Method::POST,
        &answer_path,
        b.access(),
        Some(&well_formed),
    )
    .await
    .unwrap();
    assert_eq!((s, &theirs), (400, &unknown), "not-yours answers like none");
    let (s, mine) = api(
        &cloud,
        Method::POST,
        &answer_path,
        a.access(),
        Some(&well_formed),
    )
    .await
    .unwrap();
    assert_eq!((s, mine["error"].as_str()), (400, Some("code_used")));
    // A fresh code from a watch bound to A cannot bind it to B.
    let again = watch.show_code().await.unwrap().code.display();
    let before = snapshot(&cloud.store).await;
    let (s, body, _) = answer(&cloud, &b, &again).await;
    assert_eq!((s, body["error"].as_str()), (409, Some("already_paired")));
    assert_eq!(snapshot(&cloud.store).await, before);
    let (s, body, _) = answer(&cloud, &a, &again).await;
    assert_eq!((s, body["error"].as_str()), (409, Some("already_yours")));
    let (_, list) = api(&cloud, Method::GET, "/api/v1/watches", b.access(), None)
        .await
        .unwrap();
    assert_eq!(list, json!([]));

    // An expired code.
    let other = TestWatch::new(&cloud).unwrap();
    let late = other.show_code().await.unwrap().code.display();
    cloud.advance(std::time::Duration::from_secs(11 * 60));
    // The parent's app renews its access token, which expired meanwhile too.
    b.renew(&cloud).await.unwrap();
    let (s, body, _) = answer(&cloud, &b, &late).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("code_expired")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("make a new one on the watch")
    );
    // ...and a new one works.
    pair(&cloud, &b, &other).await.unwrap();
}

#[tokio::test]
async fn a_cloud_that_swaps_the_offer_or_alters_the_answer_pairs_nothing() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    let family = TestFamily::default();

    // The cloud alters the family's answer on its way to the watch (here:
    // the sealed bundle, as stored): the watch refuses, nothing is bound.
    let shown = watch.show_code().await.unwrap();
    let (s, _, answered) = family
        .answer(&cloud, a.access(), &shown.code.display())
        .await
        .unwrap();
    assert_eq!(s, 202);
    let db = cloud.database().await.unwrap();
    let (stored,): (String,) =
        sqlx::query_as("SELECT answer FROM pairing_offers WHERE locator = $1")
            .bind(shown.code.locator().as_str())
            .fetch_one(&db)
            .await
            .unwrap();
    let mut altered: Value = serde_json::from_str(&stored).unwrap();
    let bundle = altered["bundle"].as_str().unwrap().to_owned();
    let flipped = if bundle.starts_with('A') { 'B' } else { 'A' };
    altered["bundle"] = json!(format!("{flipped}{}", &bundle[1..]));
    sqlx::query("UPDATE pairing_offers SET answer = $1 WHERE locator = $2")
        .bind(altered.to_string())
        .bind(shown.code.locator().as_str())
        .execute(&db)
        .await
        .unwrap();
    the_watch_refuses(&cloud, &a, answered, &watch, shown).await;

    // The cloud shows the family another watch's genuine offer under this
    // watch's code: the exchange answers the other watch's message with a
    // code it never showed, so this watch finds it wrong, and nothing pairs.
    // (The app also refuses an offer whose signed locator is not the one
    // typed: `desktop_core.rs`.)
    let shown = watch.show_code().await.unwrap();
    let substitute = TestWatch::new(&cloud).unwrap();
    let other = substitute.show_code().await.unwrap();
    let take = |locator: String| {
        let db = &db;
        async move {
            let (offer,): (String,) =
                sqlx::query_as("SELECT signed_offer FROM pairing_offers WHERE locator = $1")
                    .bind(locator)
                    .fetch_one(db)
                    .await
                    .unwrap();
            offer
        }
    };
    let theirs = take(other.code.locator().as_str().to_owned()).await;
    sqlx::query("UPDATE pairing_offers SET signed_offer = $1 WHERE locator = $2")
        .bind(theirs)
        .bind(shown.code.locator().as_str())
        .execute(&db)
        .await
        .unwrap();
    let (s, _, answered) = family
        .answer(&cloud, a.access(), &shown.code.display())
        .await
        .unwrap();
    assert_eq!(s, 202, "relayed: the cloud cannot tell, the watch can");
    the_watch_refuses(&cloud, &a, answered, &watch, shown).await;

    // The honest path, untouched, pairs.
    pair(&cloud, &a, &watch).await.unwrap();
    assert_eq!(cloud.store.count("bindings").await.unwrap(), 1);
}

#[tokio::test]
async fn guessing_codes_hits_the_limit_per_account_and_per_source() {
    let cloud = TestCloud::start().await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    let guesser = Parent::sign_up(&cloud, "Guesser").await.unwrap();
    let shown = watch.show_code().await.unwrap();
    let code = shown.code.display();
    for _ in 0..9 {
        assert_eq!(answer(&cloud, &guesser, &other_locator(&code)).await.0, 400);
    }
    // A wrong secret is the tenth wrong code, counted when the watch says so.
    answered_wrongly(&cloud, &guesser, &watch, shown).await;
    let code = watch.show_code().await.unwrap().code.display();
    let (s, body, _) = answer(&cloud, &guesser, &code).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (429, Some("too_many_attempts")),
        "even the right code is refused once limited"
    );
    assert_eq!(cloud.store.count("bindings").await.unwrap(), 0);

    // Other accounts from the same address share the per-source budget (30).
    for i in 0..2 {
        let p = Parent::sign_up(&cloud, &format!("Helper {i}"))
            .await
            .unwrap();
        for _ in 0..10 {
            assert_eq!(answer(&cloud, &p, &other_locator(&code)).await.0, 400);
        }
    }
    let mut fresh = Parent::sign_up(&cloud, "Fresh account").await.unwrap();
    assert_eq!(
        answer(&cloud, &fresh, &code).await.0,
        429,
        "the source is limited"
    );

    // When the window (an hour) has passed, the honest request succeeds:
    // with a new code (the old one expired) and a renewed access token.
    cloud.advance(std::time::Duration::from_secs(61 * 60));
    fresh.renew(&cloud).await.unwrap();
    pair(&cloud, &fresh, &watch).await.unwrap();
}

#[tokio::test]
async fn offers_need_a_trusted_certificate_and_the_devices_own_signature() {
    let cloud = TestCloud::start().await.unwrap();
    let rogue_factory = cloud.dir.path().join("rogue-factory");
    waymark_cloud::factory::init(&rogue_factory, false).unwrap();
    let rogue = TestWatch::made_by(&cloud, &rogue_factory).unwrap();
    let err = rogue.show_code().await.unwrap_err().to_string();
    assert!(err.contains("untrusted_certificate"), "{err}");
    assert_eq!(cloud.store.count("devices").await.unwrap(), 0);

    // An honest watch's offer, replayed under another device's id, is refused.
    let honest = TestWatch::new(&cloud).unwrap();
    let victim = TestWatch::new(&cloud).unwrap();
    let offer = waymark_protocol::pairing::PairingOffer {
        device_id: honest.id().to_owned(),
        locator: "7KQ2".into(),
        message: b64(&[0x41; 33]),
        created_at: now_ms(),
        expires_at: now_ms() + 60_000,
    };
    let sig = b64(&honest
        .reporter
        .watch
        .keys
        .sign(&offer.signing_bytes())
        .unwrap());
    let mut moved = offer.clone();
    moved.device_id = victim.id().to_owned();
    for (o, cert) in [
        (moved.clone(), &honest.reporter.watch.certificate_der),
        (moved, &victim.reporter.watch.certificate_der),
    ] {
        let body = json!({"offer": o, "certificate": b64(cert), "signature": sig});
        let res = cloud
            .client()
            .post(cloud.url("/device/v1/pairing-offers"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    assert_eq!(cloud.store.count("pairing_offers").await.unwrap(), 0);
    let body = json!({"offer": offer, "certificate": b64(&honest.reporter.watch.certificate_der), "signature": sig});
    let res = cloud
        .client()
        .post(cloud.url("/device/v1/pairing-offers"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "the honest offer is accepted");
}

#[tokio::test]
async fn another_familys_watch_answers_exactly_like_no_watch() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let b = Parent::sign_up(&cloud, "Family B").await.unwrap();
    let (w1, w2, w3) = (
        TestWatch::new(&cloud).unwrap(),
        TestWatch::new(&cloud).unwrap(),
        TestWatch::new(&cloud).unwrap(),
    );
    pair(&cloud, &a, &w1).await.unwrap();
    pair(&cloud, &a, &w2).await.unwrap();
    pair(&cloud, &b, &w3).await.unwrap();
    let w1 = w1;
    w1.reporter.record(fix_at(now_ms(), 0)).unwrap();
    assert_eq!(w1.reporter.drain().await.unwrap(), Drain::Done(1));

    let (_, la) = api(&cloud, Method::GET, "/api/v1/watches", a.access(), None)
        .await
        .unwrap();
    let (_, lb) = api(&cloud, Method::GET, "/api/v1/watches", b.access(), None)
        .await
        .unwrap();
    assert_eq!(la.as_array().unwrap().len(), 2);
    assert_eq!(lb.as_array().unwrap().len(), 1);
    assert_eq!(lb[0]["id"], w3.id());
    assert_eq!(la[0]["state"], "reporting");

    let target = w1.id().to_owned();
    let random = "0123456789abcdef0123456789abcdef".to_owned();
    let before = snapshot(&cloud.store).await;
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/watches/{}/latest".into(), None),
        (Method::GET, "/api/v1/watches/{}/history".into(), None),
        (
            Method::GET,
            "/api/v1/watches/{}/history?order=oldest&limit=5".into(),
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/watches/{}".into(),
            Some(json!({"name": "Mine now"})),
        ),
        (
            Method::POST,
            "/api/v1/watches/{}/revoke".into(),
            Some(json!({"history": "delete"})),
        ),
    ];
    for (m, path, body) in &attempts {
        let theirs = api(
            &cloud,
            m.clone(),
            &path.replace("{}", &target),
            b.access(),
            body.as_ref(),
        )
        .await
        .unwrap();
        let nobody = api(
            &cloud,
            m.clone(),
            &path.replace("{}", &random),
            b.access(),
            body.as_ref(),
        )
        .await
        .unwrap();
        assert_eq!(theirs.0, 404, "{m} {path}");
        assert_eq!(
            theirs, nobody,
            "{m} {path}: not-yours answers like not-found"
        );
    }
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "nothing of A's changed"
    );

    // B's live stream never carries A's fixes.
    let mut stream = live(&cloud, b.access()).await;
    w1.reporter.record(fix_at(now_ms(), 1)).unwrap();
    w1.reporter.drain().await.unwrap();
    let w3 = w3;
    w3.reporter.record(fix_at(now_ms(), 2)).unwrap();
    w3.reporter.drain().await.unwrap();
    let event = next_fix(&mut stream).await;
    assert_eq!(
        event["watch_id"],
        w3.id(),
        "the first fix B sees is B's own"
    );

    // A can do all of it.
    let (s, latest) = api(
        &cloud,
        Method::GET,
        &format!("/api/v1/watches/{target}/latest"),
        a.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    let latest: waymark_protocol::watches::SealedLatest = serde_json::from_value(latest).unwrap();
    let view = a
        .family
        .open(
            &cloud,
            a.access(),
            &target,
            &[latest.setup],
            &[latest.batch],
        )
        .await
        .unwrap();
    assert_eq!(
        view.fixes.last().map(|f| f.lat),
        Some(fix_at(0, 1).lat),
        "A's app opens it"
    );
    let (s, _) = api(
        &cloud,
        Method::PATCH,
        &format!("/api/v1/watches/{target}"),
        a.access(),
        Some(&json!({"name": "Mia's watch"})),
    )
    .await
    .unwrap();
    assert_eq!(s, 204);
}

/// Opens `GET /api/v1/live` and waits for its `ready` event.
#[tokio::test]
async fn batches_must_be_signed_fresh_in_order_and_valid() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    let intruder = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let now = now_ms();

    let good = signed(&watch, 1, vec![fix_at(now - 1000, 0)]);
    assert_eq!(upload(&cloud, &good).await.0, 200);
    let before = snapshot(&cloud.store).await;

    let mut forged = signed(&intruder, 2, vec![fix_at(now, 1)]);
    forged.batch.header.device_id = watch.id().to_owned();
    let mut tampered = signed(&watch, 2, vec![fix_at(now, 1)]);
    tampered.batch.ciphertext[0] ^= 1;
    let mut retimed = signed(&watch, 2, vec![fix_at(now, 1)]);
    retimed.batch.header.times[0] -= 1;
    let too_many = signed(
        &watch,
        2,
        (0..501)
            .map(|i| fix_at(now - 600_000 + i, i as u32))
            .collect(),
    );
    let mut short = signed(&watch, 2, vec![fix_at(now, 1)]);
    short.batch.ciphertext.pop();
    let cases: Vec<(&str, SignedSealedBatch, u16, &str)> = vec![
        ("forged signature", forged, 401, "unknown_device"),
        ("tampered ciphertext", tampered, 401, "unknown_device"),
        ("tampered time", retimed, 401, "unknown_device"),
        (
            "reused sequence number, another batch",
            signed(&watch, 1, vec![fix_at(now, 2)]),
            409,
            "sequence_reused",
        ),
        (
            "fix in the future (the watch's clock)",
            signed(&watch, 2, vec![fix_at(now + 3_600_000, 3)]),
            400,
            "clock_skew",
        ),
        (
            "fix older than 30 days",
            signed(&watch, 2, vec![fix_at(now - 31 * 86_400_000, 3)]),
            400,
            "invalid_batch",
        ),
        (
            "ciphertext shorter than its fixes",
            short,
            400,
            "invalid_batch",
        ),
        (
            "sequence number zero",
            signed(&watch, 0, vec![fix_at(now, 4)]),
            400,
            "invalid_batch",
        ),
        (
            "a setup the cloud was never given",
            watch.sign_unannounced(2, vec![fix_at(now, 4)]),
            409,
            "unknown_setup",
        ),
        (
            "empty batch",
            signed(&watch, 2, vec![]),
            400,
            "invalid_batch",
        ),
        ("oversized batch", too_many, 400, "batch_too_large"),
    ];
    for (name, batch, status, code) in cases {
        let (s, body) = upload(&cloud, &batch).await;
        assert_eq!(
            (s, body["error"].as_str().unwrap_or_default()),
            (status, code),
            "{name}"
        );
    }
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "no refused batch stored anything"
    );
    // The same batch again (a lost acknowledgement): acknowledged, not stored twice.
    let (s, body) = upload(&cloud, &good).await;
    assert_eq!((s, body["acked_seq"].as_u64()), (200, Some(1)));
    assert_eq!(snapshot(&cloud.store).await, before);
    // A parent token is not a watch credential.
    let res = cloud
        .client()
        .post(cloud.url("/device/v2/batches"))
        .bearer_auth(a.access())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(snapshot(&cloud.store).await, before);

    let next = watch.sign_after(2, good.batch.chain_hash(), vec![fix_at(now, 5)]);
    assert_eq!(
        upload(&cloud, &next).await.0,
        200,
        "the honest next batch is stored"
    );
    assert_eq!(cloud.store.count("batches").await.unwrap(), 2);

    // Values no watch reports cannot be checked by the cloud (it cannot
    // read them): a faulty watch's batch is stored, and the family's app
    // refuses it after opening, never drawing it.
    let faulty = watch.sign_after(
        3,
        next.batch.chain_hash(),
        vec![Fix {
            lat: 91.0,
            ..fix_at(now, 6)
        }],
    );
    assert_eq!(upload(&cloud, &faulty).await.0, 200);
    let path = format!("/api/v1/watches/{}/history?order=oldest", watch.id());
    let (s, page) = history_page(&cloud, &a, &path).await.unwrap();
    assert_eq!(s, 200);
    let lats: Vec<f64> = page["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["lat"].as_f64().unwrap())
        .collect();
    assert_eq!(
        lats.len(),
        2,
        "the two honest fixes, not the faulty one: {page}"
    );
    assert!(lats.iter().all(|l| (-90.0..=90.0).contains(l)));
    assert_eq!(page["altered"], json!([3]), "{page}");
}

/// Time-range reads start on the primary key (the cloud keeps no index on
/// time, so ingest writes one index less): a watch whose batch times go back
/// (restamped after a clock repair) and whose sequence numbers have holes
/// still gets every batch of every range, in either order, page by page,
/// and in the history stream. Checked against every batch's own times.
#[tokio::test]
async fn time_ranges_find_every_batch_when_times_go_back_and_numbers_skip() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let base = now_ms() - 3_600_000;
    // (sequence number, fix times): mostly forward, sometimes back.
    let mut stored: Vec<(u64, Vec<i64>)> = Vec::new();
    let mut seq = 0;
    for i in 0..40i64 {
        seq += if i % 7 == 3 { 3 } else { 1 };
        let t = if i % 5 == 4 {
            base + (i - 9).max(0) * 60_000 // restamped earlier than batches before it
        } else {
            base + i * 60_000
        };
        let times = vec![t, t + 20_000];
        let fixes = times.iter().map(|&t| fix_at(t, i as u32)).collect();
        assert_eq!(upload(&cloud, &watch.sign(seq, fixes)).await.0, 200);
        stored.push((seq, times));
    }
    let id = watch.id().to_owned();
    let ranges = [
        (base - 1, base),
        (base, base + 5 * 60_000),
        (base + 10 * 60_000, base + 10 * 60_000),
        (base + 17 * 60_000 + 5_000, base + 23 * 60_000),
        (base + 30 * 60_000, base + 90 * 60_000),
        (base + 38 * 60_000 + 20_000, base + 38 * 60_000 + 20_000),
        (base + 41 * 60_000, base + 99 * 60_000),
    ];
    for (from, to) in ranges {
        let want: Vec<i64> = stored
            .iter()
            .filter(|(_, ts)| ts[0] <= to && ts[1] >= from)
            .flat_map(|(_, ts)| ts.clone())
            .collect();
        for order in ["oldest", "newest"] {
            let mut got = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!(
                    "/api/v1/watches/{id}/history?order={order}&limit=3&from={from}&to={to}"
                );
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let (s, page) = history_page(&cloud, &a, &path).await.unwrap();
                assert_eq!(s, 200, "{page}");
                assert_eq!(page["altered"], json!([]), "{page}");
                got.extend(
                    page["fixes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f["t"].as_i64().unwrap()),
                );
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            let (mut got, mut want) = (got, want.clone());
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "range {from}..={to}, {order} first");
        }
        let body = cloud
            .client()
            .get(cloud.url(&format!(
                "/api/v1/watches/{id}/history/stream?from={from}&to={to}"
            )))
            .bearer_auth(a.access())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let batches = body.lines().filter(|l| l.starts_with("{\"batch\"")).count();
        assert_eq!(batches * 2, want.len(), "the stream of {from}..={to}");
    }
}

#[tokio::test]
async fn history_pages_through_a_range_in_either_order() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let base = now_ms() - 100_000;
    for i in 0..120 {
        watch
            .reporter
            .record(fix_at(base + i * 500, i as u32))
            .unwrap();
    }
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(3));
    let id = watch.id().to_owned();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        // One batch a page (the three batches hold 50, 50 and 20 fixes).
        let (from, to) = (base + 5_000, base + 54_999);
        let mut path =
            format!("/api/v1/watches/{id}/history?order=oldest&limit=1&from={from}&to={to}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, page) = history_page(&cloud, &a, &path).await.unwrap();
        assert_eq!(s, 200);
        assert_eq!(page["batches"], 1, "{page}");
        // A batch is whole: the app keeps the fixes in the range it asked for.
        seen.extend(
            page["fixes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["t"].as_i64().unwrap())
                .filter(|t| (from..=to).contains(t)),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let want: Vec<i64> = (10..110).map(|i| base + i * 500).collect();
    assert_eq!(seen, want, "every fix in range, once, in order");
    let (_, newest) = history_page(&cloud, &a, &format!("/api/v1/watches/{id}/history?limit=1"))
        .await
        .unwrap();
    let newest = newest["fixes"].as_array().unwrap().last().cloned();
    assert_eq!(newest.and_then(|f| f["t"].as_i64()), Some(base + 119 * 500));
    for bad in [
        "limit=0",
        "limit=100000",
        "order=sideways",
        "cursor=zzz",
        "from=5&to=1",
        "owner=x",
    ] {
        let (s, body) = api(
            &cloud,
            Method::GET,
            &format!("/api/v1/watches/{id}/history?{bad}"),
            a.access(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_long_range_streams_every_fix_once_in_order_only_to_the_owner() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let b = Parent::sign_up(&cloud, "Family B").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    // More than a history page (1,000), so streaming is not paging in disguise.
    let base = now_ms() - 3_000_000;
    // Two rounds: the test watch's queue holds 1,000.
    for round in [0..750, 750..1_500] {
        for i in round {
            watch
                .reporter
                .record(fix_at(base + i * 1000, i as u32))
                .unwrap();
        }
        watch.reporter.drain().await.unwrap();
    }
    let id = watch.id().to_owned();
    let stream = |token: String, query: String| {
        let cloud = &cloud;
        let id = id.clone();
        async move {
            let res = cloud
                .client()
                .get(cloud.url(&format!("/api/v1/watches/{id}/history/stream?{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
            (status, kind, res.text().await.unwrap())
        }
    };
    let (status, kind, body) = stream(a.access().into(), String::new()).await;
    assert_eq!((status, kind.as_str()), (200, "application/x-ndjson"));
    let view = open_stream(&cloud, &a, &id, &body).await.unwrap();
    assert!(view.gaps.is_empty() && view.altered.is_empty(), "{view:?}");
    let times: Vec<i64> = view.fixes.iter().map(|f| f.t).collect();
    let want: Vec<i64> = (0..1_500).map(|i| base + i * 1000).collect();
    assert!(
        times == want,
        "{} fixes streamed, want 1500 in order",
        times.len()
    );
    // Every value exactly as the watch sent it.
    let streamed = view.fixes;
    for (i, got) in streamed.iter().enumerate() {
        let sent = fix_at(base + i as i64 * 1000, i as u32);
        assert_eq!(
            (
                got.lat.to_bits(),
                got.lon.to_bits(),
                got.acc.to_bits(),
                got.bat
            ),
            (
                sent.lat.to_bits(),
                sent.lon.to_bits(),
                sent.acc.to_bits(),
                sent.bat
            ),
            "fix {i}"
        );
    }
    // A range.
    let (from, to) = (base + 10_000, base + 19_999);
    let (_, _, body) = stream(a.access().into(), format!("from={from}&to={to}")).await;
    let view = open_stream(&cloud, &a, &id, &body).await.unwrap();
    let in_range = view.fixes.iter().filter(|f| (from..=to).contains(&f.t));
    assert_eq!(in_range.count(), 10);
    assert!(
        body.lines().filter(|l| l.starts_with("{\"batch\"")).count() <= 2,
        "only the batches holding the range: {}",
        body.lines().count()
    );
    // Another family gets exactly what a missing watch gets; bad ranges are refused.
    let theirs = stream(b.access().into(), String::new()).await;
    let missing = api(
        &cloud,
        Method::GET,
        "/api/v1/watches/0123456789abcdef0123456789abcdef/history/stream",
        b.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(theirs.0, 404);
    assert_eq!(serde_json::from_str::<Value>(&theirs.2).unwrap(), missing.1);
    let (status, _, body) = stream(a.access().into(), "from=5&to=1".into()).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn revoking_stops_the_watch_wipes_it_and_keeps_or_deletes_history() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let mut kept = TestWatch::new(&cloud).unwrap();
    let mut gone = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &kept).await.unwrap();
    pair(&cloud, &a, &gone).await.unwrap();
    for w in [&mut kept, &mut gone] {
        w.reporter.record(fix_at(now_ms(), 0)).unwrap();
        assert_eq!(w.reporter.drain().await.unwrap(), Drain::Done(1));
    }
    let mut stream = live(&cloud, a.access()).await;
    let revoked_from = now_ms();

    let (s, body) = api(
        &cloud,
        Method::POST,
        &format!("/api/v1/watches/{}/revoke", kept.id()),
        a.access(),
        Some(&json!({"history": "keep"})),
    )
    .await
    .unwrap();
    assert_eq!((s, body["history"].as_str()), (200, Some("kept")));
    let (s, _) = api(
        &cloud,
        Method::POST,
        &format!("/api/v1/watches/{}/revoke", gone.id()),
        a.access(),
        Some(&json!({"history": "delete"})),
    )
    .await
    .unwrap();
    assert_eq!(s, 200);

    // The watch's next upload is refused; it erases itself.
    kept.reporter.record(fix_at(now_ms(), 1)).unwrap();
    assert_eq!(kept.reporter.drain().await.unwrap(), Drain::Revoked);
    waymark_watch::revocation::wipe(&kept.path()).unwrap();
    for f in ["device.key", "queue.json", "device.pem"] {
        assert!(!kept.path().join(f).exists(), "{f} erased");
    }
    let st = gone.reporter.link.status(&gone.reporter.watch).await;
    assert!(matches!(
        st,
        Err(waymark_watch::cloud_link::LinkError::Revoked)
    ));
    // It cannot come back through pairing either.
    assert!(gone.show_code().await.is_err());

    // Kept: listed as revoked, history readable. Deleted: gone entirely.
    let (_, list) = api(&cloud, Method::GET, "/api/v1/watches", a.access(), None)
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        (list[0]["id"].as_str(), list[0]["state"].as_str()),
        (Some(kept.id()), Some("revoked"))
    );
    let (s, h) = history_page(
        &cloud,
        &a,
        &format!("/api/v1/watches/{}/history", kept.id()),
    )
    .await
    .unwrap();
    assert_eq!((s, h["fixes"].as_array().unwrap().len()), (200, 1));
    let (s, _) = api(
        &cloud,
        Method::GET,
        &format!("/api/v1/watches/{}/history", gone.id()),
        a.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 404);
    assert_eq!(cloud.store.count("batches").await.unwrap(), 1);
    let (s, _) = api(
        &cloud,
        Method::POST,
        &format!("/api/v1/watches/{}/revoke", kept.id()),
        a.access(),
        Some(&json!({"history": "keep"})),
    )
    .await
    .unwrap();
    assert_eq!(s, 404, "a revoked watch cannot be revoked again");

    // The live stream delivers nothing from revoked watches; a live one still comes through.
    let fresh = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &fresh).await.unwrap();
    fresh.reporter.record(fix_at(now_ms(), 9)).unwrap();
    fresh.reporter.drain().await.unwrap();
    // On PostgreSQL a fix stored before the revocation can reach the stream
    // late (its NOTIFY is delivered asynchronously): allowed, it was the
    // family's. Nothing the revoked watches sent afterwards ever comes.
    for _ in 0..3 {
        let event = next_fix(&mut stream).await;
        if event["watch_id"] == fresh.id() {
            return;
        }
        assert!(
            event["fix"]["t"].as_i64().unwrap() < revoked_from,
            "a revoked watch's fix reached the live stream: {event}"
        );
    }
    panic!("the live watch's fix did not arrive");
}

#[tokio::test]
async fn the_watch_keeps_fixes_while_the_cloud_is_down_and_delivers_them_once() {
    let mut cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let base = now_ms() - 60_000;
    watch.reporter.record(fix_at(base, 0)).unwrap();
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(1));

    cloud.halt().await.unwrap();
    for i in 1..=120 {
        watch
            .reporter
            .record(fix_at(base + i * 100, i as u32))
            .unwrap();
        if i % 40 == 0 {
            assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Offline);
        }
    }
    assert_eq!(
        watch.reporter.queue().len(),
        120,
        "nothing left the queue unacknowledged"
    );
    // The queue is on disk: a watch restarted now would still have it.
    let reopened = waymark_watch::queue::Queue::open(&watch.path(), 1000).unwrap();
    assert_eq!(reopened.len(), 120);

    cloud.resume().await.unwrap();
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(3));
    assert!(watch.reporter.queue().is_empty());
    let (_, page) = history_page(
        &cloud,
        &a,
        &format!(
            "/api/v1/watches/{}/history?order=oldest&limit=1000",
            watch.id()
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (page["gaps"].as_u64(), &page["altered"]),
        (Some(0), &json!([])),
        "one unbroken chain: {page}"
    );
    let ts: Vec<i64> = page["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["t"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ts,
        (0..=120).map(|i| base + i * 100).collect::<Vec<_>>(),
        "all of them, in order, no duplicates"
    );
}

#[tokio::test]
async fn a_lost_acknowledgement_does_not_duplicate_fixes() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    watch.reporter.record(fix_at(now_ms(), 0)).unwrap();
    // The batch reaches the cloud, but the watch never hears the answer.
    let id = watch.id().to_owned();
    watch.reporter.queue().next_batch(&id, 50).unwrap().unwrap();
    let sealed = watch.sealed_inflight().await;
    assert_eq!(upload(&cloud, &sealed).await.0, 200);
    // It resends the same batch; the cloud recognises it and acknowledges it again.
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(1));
    assert!(watch.reporter.queue().is_empty());
    assert_eq!(cloud.store.count("batches").await.unwrap(), 1);
}

#[tokio::test]
async fn a_subscriber_gets_a_fix_after_its_upload_is_acknowledged() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let mut stream = live(&cloud, a.access()).await;
    let fix = fix_at(now_ms(), 7);
    watch.reporter.record(fix).unwrap();
    assert_eq!(watch.reporter.drain().await.unwrap(), Drain::Done(1));
    let event = next_fix(&mut stream).await;
    assert_eq!(event["watch_id"], watch.id());
    assert_eq!(event["fix"]["t"].as_i64(), Some(fix.t));
    // The stream carries the batch sealed; the family's keys open it.
    assert!(!event["batch"].to_string().contains(&fix.lat.to_string()));
    let cert = &watch.reporter.watch.certificate_der;
    assert_eq!(a.family.open_live(&event, cert), vec![fix]);
    // Without a token there is no stream.
    let res = cloud
        .client()
        .get(cloud.url("/api/v1/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watches_uploading_at_once_are_all_stored() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Big family").await.unwrap();
    let mut watches = Vec::new();
    for _ in 0..6 {
        let w = TestWatch::new(&cloud).unwrap();
        pair(&cloud, &a, &w).await.unwrap();
        watches.push(w);
    }
    let base = now_ms() - 60_000;
    let tasks: Vec<_> = watches
        .into_iter()
        .map(|w| {
            tokio::spawn(async move {
                // Move the whole watch in (its directory too), not just the reporter.
                let w = w;
                for round in 0..10 {
                    w.reporter
                        .record(fix_at(base + round * 1000, round as u32))
                        .unwrap();
                    // Concurrent writers must queue for SQLite's lock, never fail.
                    assert_eq!(w.reporter.drain().await.unwrap(), Drain::Done(1));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(cloud.store.stored_fixes().await.unwrap(), 60);
}

/// The real `waymark-watch` binary next to this test executable (built by `cargo test --workspace`).

#[tokio::test]
async fn the_watch_program_erases_itself_and_exits_when_revoked() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let dir = watch.path();
    let run = |fixes: &str| {
        tokio::process::Command::new(watch_binary())
            .args([
                "run",
                "--dir",
                dir.to_str().unwrap(),
                "--route",
                "builtin:school-run",
                "--interval",
                "0.05",
                "--fixes",
                fixes,
            ])
            .output()
    };
    let ok = run("3").await.unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(cloud.store.stored_fixes().await.unwrap(), 3);

    let (s, _) = api(
        &cloud,
        Method::POST,
        &format!("/api/v1/watches/{}/revoke", watch.id()),
        a.access(),
        Some(&json!({"history": "keep"})),
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    let out = run("3").await.unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("revoked by its owner") && stderr.contains("erased"),
        "{stderr}"
    );
    for f in ["device.key", "device.pem", "queue.json"] {
        assert!(!dir.join(f).exists(), "{f} was erased");
    }
    assert_eq!(
        cloud.store.stored_fixes().await.unwrap(),
        3,
        "nothing accepted after revocation"
    );
}

#[tokio::test]
async fn history_older_than_the_familys_retention_is_deleted() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let b = Parent::sign_up(&cloud, "Family B").await.unwrap();
    let (mut wa, mut wb) = (
        TestWatch::new(&cloud).unwrap(),
        TestWatch::new(&cloud).unwrap(),
    );
    pair(&cloud, &a, &wa).await.unwrap();
    pair(&cloud, &b, &wb).await.unwrap();
    let day = 86_400_000;
    let now = now_ms();
    // One batch each: retention deletes whole batches, by their newest fix.
    for w in [&mut wa, &mut wb] {
        for (i, age) in [3 * day, 2 * day, 3_600_000].into_iter().enumerate() {
            w.reporter.record(fix_at(now - age, i as u32)).unwrap();
            w.reporter.drain().await.unwrap();
        }
    }
    let (s, settings) = api(&cloud, Method::GET, "/api/v1/settings", a.access(), None)
        .await
        .unwrap();
    assert_eq!(
        (s, settings["retention_days"].as_i64()),
        (200, Some(30)),
        "30 days by default"
    );
    for bad in [
        json!({"retention_days": 0}),
        json!({"retention_days": 366}),
        json!({"retention_days": 5, "account_id": "x"}),
    ] {
        let (s, _) = api(
            &cloud,
            Method::PATCH,
            "/api/v1/settings",
            a.access(),
            Some(&bad),
        )
        .await
        .unwrap();
        assert_eq!(s, 400, "{bad}");
    }
    let (s, _) = api(
        &cloud,
        Method::PATCH,
        "/api/v1/settings",
        a.access(),
        Some(&json!({"retention_days": 1})),
    )
    .await
    .unwrap();
    assert_eq!(s, 200);

    // The pass the cloud runs every minute.
    cloud.store.sweep_expired().await.unwrap();
    let a_path = format!("/api/v1/watches/{}/history", wa.id());
    let (_, page) = history_page(&cloud, &a, &a_path).await.unwrap();
    assert_eq!(
        page["fixes"].as_array().unwrap().len(),
        1,
        "A keeps one day"
    );
    let b_path = format!("/api/v1/watches/{}/history", wb.id());
    let (_, page) = history_page(&cloud, &b, &b_path).await.unwrap();
    assert_eq!(
        page["fixes"].as_array().unwrap().len(),
        3,
        "B's 30 days are untouched"
    );
    let (_, log) = api(&cloud, Method::GET, "/api/v1/activity", a.access(), None)
        .await
        .unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "settings.retention")
    );
}

#[tokio::test]
async fn the_pair_command_shows_a_code_and_names_the_owner_once_paired() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    let png = watch.dir.path().join("qr.png");
    let mut child = tokio::process::Command::new(watch_binary())
        .args([
            "pair",
            "--dir",
            watch.path().to_str().unwrap(),
            "--qr-png",
            png.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let code = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the watch printed its code");
        if let Some(code) = line.strip_prefix("PAIRING CODE: ") {
            break code.to_owned();
        }
    };
    // The family answers; the watch (the running command) gives its word.
    let family = TestFamily::default();
    let (s, _, answered) = family.answer(&cloud, a.access(), &code).await.unwrap();
    assert_eq!(s, 202);
    family
        .await_paired(&cloud, a.access(), answered.unwrap())
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l == "Paired with Family A."),
        "{rest:?}"
    );
    assert!(child.wait().await.unwrap().success());
    assert!(watch.path().join("paired.json").exists());
    assert!(
        std::fs::read(&png).unwrap().starts_with(b"\x89PNG"),
        "a QR code picture"
    );
    // `info` says which of the family's keys it seals to.
    let info = std::process::Command::new(watch_binary())
        .args(["info", "--dir", watch.path().to_str().unwrap()])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("epoch 0, from roster version 1 (1 computers)"),
        "{info}"
    );
}

#[tokio::test]
async fn ending_a_session_closes_its_idle_live_stream() {
    let cloud = TestCloud::start().await.unwrap();
    let mut a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let other = a.sign_in(&cloud, "Old laptop").await.unwrap();
    let mut stream = live(&cloud, &other.access).await;
    let (_, me) = api(&cloud, Method::GET, "/api/v1/me", &other.access, None)
        .await
        .unwrap();
    let id = me["session_id"].as_str().unwrap().to_owned();
    let (s, _) = api(
        &cloud,
        Method::DELETE,
        &format!("/api/v1/sessions/{id}"),
        a.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 204);
    // The stream ends by itself (the check runs every 5 s; 60 s only bounds the test).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream of an ended session stayed open");
    // The other session's stream still opens.
    live(&cloud, a.access()).await;
}

/// Review finding: an open live stream kept delivering after its access
/// token was revoked (it checked only the session). It ends with its
/// token, saying so; a fresh token opens a new one.
#[tokio::test]
async fn a_live_stream_ends_when_its_access_token_is_revoked() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let mut stream = live(&cloud, a.access()).await;
    let res = cloud
        .client()
        .post(cloud.url("/revoke"))
        .form(&[("token", a.access())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The check runs every 5 s; 60 s only bounds the test.
    let mut seen = String::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(c)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&c));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its revoked token");
    assert!(seen.contains("event: reauthenticate"), "{seen}");
    let fresh = refresh(&cloud, &a.tokens.clone().unwrap().refresh)
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    let fresh: Value = fresh.json().await.unwrap();
    live(&cloud, fresh["access_token"].as_str().unwrap()).await;
}

/// Review finding: after "revoke, delete history" every deleted coordinate
/// was still readable in the database file and its WAL, and the WAL and
/// SHM files were world-readable. Reports are sealed now (no coordinate is
/// ever in the files: `sealed_reports.rs`), and a deleted report's
/// ciphertext must still not outlive its deletion.
#[tokio::test]
async fn deleted_history_leaves_no_trace_in_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("waymark.db");
    let cloud = TestCloud::start_sqlite_at(db.clone()).await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let now = now_ms();
    for i in 0..60 {
        watch
            .reporter
            .record(fix_at(now - 60_000 + i, i as u32))
            .unwrap();
    }
    watch.reporter.drain().await.unwrap();
    // A stretch of the stored ciphertext, as the database holds it.
    let path = format!("/api/v1/watches/{}/latest", watch.id());
    let (_, latest) = api(&cloud, Method::GET, &path, a.access(), None)
        .await
        .unwrap();
    let sealed = latest["batch"]["batch"]["ciphertext"].as_str().unwrap();
    let needle = sealed.as_bytes()[..48].to_vec();
    let files = || {
        ["", "-wal", "-shm"].map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        })
    };
    let holds_it = |files: &[std::path::PathBuf]| {
        files.iter().any(|f| {
            std::fs::read(f).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
    };
    assert!(
        holds_it(&files()),
        "the reports are stored (the search works)"
    );
    use std::os::unix::fs::PermissionsExt;
    for f in files() {
        if let Ok(meta) = std::fs::metadata(&f) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
    }
    let (s, _) = api(
        &cloud,
        Method::POST,
        &format!("/api/v1/watches/{}/revoke", watch.id()),
        a.access(),
        Some(&json!({"history": "delete"})),
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    assert!(
        !holds_it(&files()),
        "a deleted report is still in the files"
    );
    cloud.stop().await.unwrap();
}
