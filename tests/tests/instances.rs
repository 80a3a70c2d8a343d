//! Two cloud instances on one PostgreSQL database, as behind a load
//! balancer: a passkey ceremony started on one finishes on the other, the
//! session works on both, and a watch reporting to one shows up live for a
//! parent subscribed on the other (PostgreSQL LISTEN/NOTIFY).
//!
//! These need a PostgreSQL server: `scripts/with-postgres cargo test -p
//! waymark-system-tests --test instances` (scripts/test runs them so). Their
//! names start with `postgres_` so the SQLite pass can leave them out by name.

use reqwest::Method;
use serde_json::json;
use waymark_system_tests::*;

fn require_postgres() {
    assert!(
        test_postgres().is_some(),
        "these tests need a PostgreSQL server: run them under scripts/with-postgres"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_ceremony_started_on_one_instance_finishes_on_the_other() {
    require_postgres();
    let a = TestCloud::start().await.unwrap();
    let b = a.second_instance().await.unwrap();
    let mut parent = Parent::sign_up(&a, "Family").await.unwrap();

    // Sign-in: the page and the ceremony's start on A, its finish and the code exchange on B.
    let req = authorize(&a).await.unwrap();
    let started = post_page(
        &a,
        "/ceremony/sign-in/start",
        &json!({"request_id": req.request_id}),
    )
    .await
    .unwrap();
    let body = parent.assert(a.origin(), &started).unwrap();
    let finished = post_page(&b, "/ceremony/sign-in/finish", &body)
        .await
        .unwrap();
    let tokens = exchange(&b, &req, &finished, "Laptop B").await.unwrap();

    // The session is the database's: both instances know it.
    let (status, me_a) = api(&a, Method::GET, "/api/v1/me", &tokens.access, None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, me_b) = api(&b, Method::GET, "/api/v1/me", &tokens.access, None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(me_a, me_b);

    // A ceremony can be finished once, wherever: replaying the finish on A fails.
    let replay = post_page(&a, "/ceremony/sign-in/finish", &body).await;
    assert!(
        replay.is_err(),
        "a finished ceremony cannot be finished again"
    );

    // Signing out on A ends the session on B at once.
    let res = a
        .client()
        .post(a.url("/revoke"))
        .form(&[("token", tokens.refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = api(&b, Method::GET, "/api/v1/me", &tokens.access, None)
        .await
        .unwrap();
    assert_eq!(status, 401);
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_fix_reported_to_one_instance_is_live_on_the_other() {
    require_postgres();
    let a = TestCloud::start().await.unwrap();
    let b = a.second_instance().await.unwrap();
    let family = Parent::sign_up(&a, "Family").await.unwrap();
    let other = Parent::sign_up(&b, "Other family").await.unwrap();
    let watch = TestWatch::new(&a).unwrap();
    pair(&a, &family, &watch).await.unwrap();

    // The family listens on B (and the other family too); the watch reports to A.
    let mut on_b = live(&b, family.access()).await;
    let mut others = live(&b, other.access()).await;
    let fix = fix_at(now_ms(), 3);
    watch.reporter.record(fix).unwrap();
    watch.reporter.drain().await.unwrap();
    let event = next_fix(&mut on_b).await;
    assert_eq!(event["watch_id"], watch.id());
    assert_eq!(event["fix"]["t"].as_i64(), Some(fix.t));

    // The other family's stream carries nothing of it.
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(2), others.chunk()).await;
    match quiet {
        Err(_) => {}
        Ok(chunk) => {
            let chunk = chunk.unwrap().unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&chunk).contains("event: fix"),
                "another family's stream got the fix"
            );
        }
    }

    // And it is stored once, readable through either instance.
    let path = format!("/api/v1/watches/{}/latest", watch.id());
    let (status, on_a) = api(&a, Method::GET, &path, family.access(), None)
        .await
        .unwrap();
    let times = &on_a["batch"]["batch"]["header"]["times"];
    assert_eq!((status, times[0].as_i64()), (200, Some(fix.t)));
    let (_, via_b) = api(&b, Method::GET, &path, family.access(), None)
        .await
        .unwrap();
    assert_eq!(on_a, via_b);
    assert_eq!(a.store.stored_fixes().await.unwrap(), 1);
    b.stop().await.unwrap();
}
