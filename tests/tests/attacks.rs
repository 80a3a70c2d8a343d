//! The attacks that broke kids' watch clouds, tried against Waymark and
//! refused: changing an id in any request (MiSafes), enumerated from the
//! router itself so a new route without an attack here fails the suite;
//! plaintext and old TLS versions; a parent token used as a watch; guessable
//! ids and default credentials (Trackmageddon). Broken tokens, CORS and
//! headers are in `account.rs` and `signin.rs`.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::process::Stdio;

use reqwest::Method;
use serde_json::{Value, json};
use waymark_cloud::app::routes;
use waymark_protocol::signing::b64;
use waymark_system_tests::*;

/// Which of family A's ids a route takes, and the body to send.
/// 32 and 33 bytes, base64url: well-formed keys and exchange messages.
const B64_32: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
const B64_33: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAh";

fn attack_for(method: &Method, path: &str) -> Option<(&'static str, Option<Value>)> {
    Some(match (method.as_str(), path) {
        ("PATCH", "/api/v1/passkeys/{id}") => ("passkey", Some(json!({"name": "pwned"}))),
        ("DELETE", "/api/v1/passkeys/{id}") => ("passkey", None),
        ("DELETE", "/api/v1/sessions/{id}") => ("session", None),
        ("PATCH", "/api/v1/family/members/{id}") => ("member", Some(json!({"role": "owner"}))),
        ("DELETE", "/api/v1/family/members/{id}") => ("member", None),
        ("DELETE", "/api/v1/family/invitations/{id}") => ("invitation", None),
        ("PATCH", "/api/v1/watches/{id}") => ("watch", Some(json!({"name": "pwned"}))),
        ("GET", "/api/v1/watches/{id}/latest") => ("watch", None),
        ("GET", "/api/v1/watches/{id}/history") => ("watch", None),
        ("GET", "/api/v1/watches/{id}/history/stream") => ("watch", None),
        ("POST", "/api/v1/watches/{id}/revoke") => ("watch", Some(json!({"history": "delete"}))),
        ("GET", "/api/v1/family/join-requests/{id}") => ("join_request", None),
        ("DELETE", "/api/v1/family/join-requests/{id}") => ("join_request", None),
        ("POST", "/api/v1/family/join-requests/{id}/offer") => (
            "join_request",
            Some(json!({"computer": B64_32, "message": B64_33})),
        ),
        ("POST", "/api/v1/family/join-requests/{id}/answer") => (
            "join_request",
            Some(json!({"message": B64_33, "confirmation": B64_32})),
        ),
        ("POST", "/api/v1/family/join-requests/{id}/approval") => (
            "join_request",
            Some(json!({"confirmation": B64_32, "sealed": B64_33})),
        ),
        _ => return None,
    })
}

/// Changing an id reaches nothing for anyone outside family A: another
/// family's owner and guardian, a former member of A, and someone holding
/// an invitation to A they have not accepted.
#[tokio::test]
async fn changing_the_id_in_any_request_reaches_nothing() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let b = Parent::sign_up(&cloud, "Family B").await.unwrap();
    let b_guardian = co_parent(&cloud, &b, "B's guardian", "guardian")
        .await
        .unwrap();
    let former = co_parent(&cloud, &a, "Former co-parent", "owner")
        .await
        .unwrap();
    let (status, _) = api(
        &cloud,
        Method::DELETE,
        &format!(
            "/api/v1/family/members/{}",
            account_id_of(&cloud, &former).await.unwrap()
        ),
        a.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204, "the former member is removed");
    let invitee = Parent::sign_up(&cloud, "Invited, not yet joined")
        .await
        .unwrap();
    let invitation = invite(&cloud, &a, "guardian").await.unwrap();
    let (status, _) = api(
        &cloud,
        Method::POST,
        "/api/v1/invitations/preview",
        invitee.access(),
        Some(&json!({"code": invitation["code"]})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "the invitee holds a live invitation");
    let member = co_parent(&cloud, &a, "A's guardian", "guardian")
        .await
        .unwrap();
    let member_id = account_id_of(&cloud, &member).await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    watch.reporter.record(fix_at(now_ms(), 0)).unwrap();
    watch.reporter.drain().await.unwrap();
    let (_, pk) = api(&cloud, Method::GET, "/api/v1/passkeys", a.access(), None)
        .await
        .unwrap();
    let (_, ss) = api(&cloud, Method::GET, "/api/v1/sessions", a.access(), None)
        .await
        .unwrap();
    let (status, asked) = api(
        &cloud,
        Method::POST,
        "/api/v1/family/join-requests",
        a.access(),
        Some(&json!({"signing": B64_32, "sealing": B64_32})),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{asked}");
    let id_of = |kind: &str| -> String {
        match kind {
            "join_request" => asked["id"].as_str().unwrap().to_owned(),
            "passkey" => pk[0]["id"].as_str().unwrap().to_owned(),
            "session" => ss[0]["id"].as_str().unwrap().to_owned(),
            "member" => member_id.clone(),
            "invitation" => invitation["id"].as_str().unwrap().to_owned(),
            _ => watch.id().to_owned(),
        }
    };
    let attackers = [
        ("another family's owner", &b),
        ("another family's guardian", &b_guardian),
        ("a former member", &former),
        ("an invitee who has not joined", &invitee),
    ];
    let random = "0123456789abcdef0123456789abcdef";

    let before = snapshot(&cloud.store).await;
    // Row counts miss an update in place: these read back what an update would change.
    let family_a = || async {
        let mut seen = Vec::new();
        for path in [
            "/api/v1/family/members",
            "/api/v1/watches",
            "/api/v1/passkeys",
        ] {
            seen.push(
                api(&cloud, Method::GET, path, a.access(), None)
                    .await
                    .unwrap(),
            );
        }
        seen
    };
    let family_before = family_a().await;
    let mut attacked = Vec::new();
    for r in routes().iter().filter(|r| r.path.contains("{id}")) {
        let (kind, body) = attack_for(&r.method, &r.path).unwrap_or_else(|| {
            panic!(
                "{} {} takes an id but has no attack test: add it to attack_for",
                r.method, r.path
            )
        });
        for (who, attacker) in attackers {
            let theirs = api(
                &cloud,
                r.method.clone(),
                &r.path.replace("{id}", &id_of(kind)),
                attacker.access(),
                body.as_ref(),
            )
            .await
            .unwrap();
            let nobody = api(
                &cloud,
                r.method.clone(),
                &r.path.replace("{id}", random),
                attacker.access(),
                body.as_ref(),
            )
            .await
            .unwrap();
            assert_eq!(theirs.0, 404, "{} {} by {who}", r.method, r.path);
            assert_eq!(
                theirs, nobody,
                "{} {} by {who}: family A's id answers like no id",
                r.method, r.path
            );
        }
        attacked.push((r.method.clone(), r.path.clone(), kind, body));
    }
    assert!(attacked.len() >= 7, "the route table lost routes");
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "no attack changed anything"
    );
    assert_eq!(
        family_a().await,
        family_before,
        "no attack changed anything"
    );

    // The same requests from the owner reach the object (revoke last: it ends the watch).
    attacked.sort_by_key(|(m, p, _, _)| {
        (
            *m == Method::POST && p.ends_with("revoke"),
            *m == Method::DELETE,
        )
    });
    for (method, path, kind, body) in attacked {
        let (status, out) = api(
            &cloud,
            method.clone(),
            &path.replace("{id}", &id_of(kind)),
            a.access(),
            body.as_ref(),
        )
        .await
        .unwrap();
        assert_ne!(status, 404, "{method} {path} as the owner: {out}");
        assert!(status < 500);
    }
}

#[tokio::test]
async fn every_parent_route_needs_a_token_and_no_route_takes_one_as_a_watch() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    for r in routes() {
        let path = r.path.replace("{id}", "0123456789abcdef0123456789abcdef");
        let res = cloud
            .client()
            .request(r.method.clone(), cloud.url(&path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if r.path.starts_with("/api/v1/") {
            assert_eq!(status, 401, "{} {} without a token", r.method, r.path);
        }
        if r.path.starts_with("/device/v1/") {
            // A parent's token is not a device signature.
            let res = cloud
                .client()
                .request(r.method.clone(), cloud.url(&path))
                .bearer_auth(a.access())
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert!(
                res.status().is_client_error(),
                "{} {} with a parent token",
                r.method,
                r.path
            );
        }
    }
    assert_eq!(
        api(&cloud, Method::GET, "/api/v1/me", a.access(), None)
            .await
            .unwrap()
            .0,
        200
    );
}

#[tokio::test]
async fn nothing_is_served_that_the_route_table_does_not_list() {
    let cloud = TestCloud::start().await.unwrap();
    for path in [
        "/admin",
        "/debug",
        "/.git/config",
        "/backup.sql",
        "/waymark.db",
        "/static/",
        "/static/../waymark.toml",
        "/api/v1/",
        "/api/v1/accounts",
        "/metrics",
        "/.env",
    ] {
        let res = cloud.client().get(cloud.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
    assert_eq!(
        cloud
            .client()
            .get(cloud.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Tries a TLS handshake with `openssl s_client` at one protocol version.
async fn handshake(cloud: &TestCloud, version: &str) -> (bool, String) {
    let out = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &cloud.addr.to_string(),
            "-servername",
            "localhost",
            version,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("openssl is installed (scripts/install-deps)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        text.contains("New, TLSv1") && !text.contains("Cipher is (NONE)"),
        text,
    )
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_are_spoken() {
    let cloud = TestCloud::start().await.unwrap();
    for (flag, allowed) in [
        ("-tls1", false),
        ("-tls1_1", false),
        ("-tls1_2", true),
        ("-tls1_3", true),
    ] {
        let (ok, text) = handshake(&cloud, flag).await;
        assert_eq!(ok, allowed, "{flag}:\n{text}");
        if !allowed {
            // The client did offer the old version (SECLEVEL=0), and the cloud answered with an alert.
            assert!(
                text.contains("SSL alert number") && text.contains("Cipher is (NONE)"),
                "{flag} must be refused by the server:\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn token_and_sign_in_endpoints_are_rate_limited_per_source() {
    let cloud = TestCloud::start().await.unwrap();
    let parent = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let honest = parent.tokens.clone().unwrap().refresh;
    for _ in 0..waymark_cloud::services::ceremonies::MAX_BAD_TOKEN_REQUESTS_PER_SOURCE {
        let res = refresh(&cloud, "wm_rt_guess").await.unwrap();
        assert_eq!(res.status(), 400);
    }
    let res = refresh(&cloud, &honest).await.unwrap();
    assert_eq!(
        res.status(),
        429,
        "guessing has used up this address's budget"
    );
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "rate_limited");
    // Ten minutes later the window has passed.
    cloud.advance(std::time::Duration::from_secs(11 * 60));
    let res = refresh(&cloud, &honest).await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the honest refresh works once the window has passed"
    );

    let req = authorize(&cloud).await.unwrap();
    let mut started = 0;
    let refused = loop {
        match post_page(
            &cloud,
            "/ceremony/sign-in/start",
            &json!({"request_id": req.request_id}),
        )
        .await
        {
            Ok(_) => started += 1,
            Err(e) => break e.to_string(),
        }
        assert!(
            started <= waymark_cloud::services::ceremonies::MAX_CEREMONIES_PER_SOURCE,
            "no limit on ceremonies"
        );
    };
    assert!(
        refused.contains("429") && refused.contains("rate_limited"),
        "{refused}"
    );
    assert!(started >= waymark_cloud::services::ceremonies::MAX_CEREMONIES_PER_SOURCE - 2);
}

#[tokio::test]
async fn a_slow_client_is_cut_off_and_others_are_still_served() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cloud = TestCloud::start().await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&cloud.ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(cloud.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    // Slowloris: start a request and never finish its headers.
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    // Meanwhile an honest client is served.
    assert_eq!(
        cloud
            .client()
            .get(cloud.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The server hangs up on the slow one (header timeout 10 s); 60 s only bounds the test.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tls.read_to_end(&mut buf),
    )
    .await;
    let closed = matches!(read, Ok(Ok(_)) | Ok(Err(_)));
    assert!(closed, "the connection was still open after 60 s");
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "the slow request was not served"
    );
}

#[tokio::test]
async fn extra_fields_such_as_an_owner_are_refused_never_applied() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let b = Parent::sign_up(&cloud, "Family B").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &a, &watch).await.unwrap();
    let (_, me_b) = api(&cloud, Method::GET, "/api/v1/me", b.access(), None)
        .await
        .unwrap();
    let b_id = me_b["account_id"].as_str().unwrap();
    let path = format!("/api/v1/watches/{}", watch.id());
    let before = snapshot(&cloud.store).await;
    for body in [
        json!({"name": "x", "account_id": b_id}),
        json!({"name": "x", "owner": b_id}),
        json!({"name": "x", "state": "reporting"}),
    ] {
        let (s, out) = api(&cloud, Method::PATCH, &path, a.access(), Some(&body))
            .await
            .unwrap();
        assert_eq!(
            (s, out["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    let (s, _) = api(
        &cloud,
        Method::PATCH,
        "/api/v1/settings",
        a.access(),
        Some(&json!({"retention_days": 7, "account_id": b_id})),
    )
    .await
    .unwrap();
    assert_eq!(s, 400);
    let code = watch.show_code().await.unwrap().code;
    let (s, _) = api(
        &cloud,
        Method::POST,
        &format!("/api/v1/pairing-offers/{}/answer", code.locator()),
        b.access(),
        Some(&json!({
            "message": b64(&[1; 33]),
            "confirmation": b64(&[2; 32]),
            "bundle": b64(&[3; 64]),
            "account_id": b_id,
        })),
    )
    .await
    .unwrap();
    assert_eq!(s, 400);
    let mut after = snapshot(&cloud.store).await;
    // Only the watch's new (unspent) offer is new.
    assert_eq!(after[10], before[10] + 1);
    after[10] = before[10];
    assert_eq!(after, before, "nothing applied");
    let (_, list) = api(&cloud, Method::GET, "/api/v1/watches", b.access(), None)
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    let (s, _) = api(
        &cloud,
        Method::PATCH,
        &path,
        a.access(),
        Some(&json!({"name": "Mia"})),
    )
    .await
    .unwrap();
    assert_eq!(s, 204, "the honest rename works");
}

/// Trackmageddon: sequential or guessable ids, default credentials.
#[tokio::test]
async fn ids_are_128_random_bits_and_there_are_no_default_credentials() {
    let cloud = TestCloud::start().await.unwrap();
    let mut ids: Vec<(&str, String)> = Vec::new();
    for name in ["Family A", "Family B", "Family C"] {
        let parent = Parent::sign_up(&cloud, name).await.unwrap();
        let (_, me) = api(&cloud, Method::GET, "/api/v1/me", parent.access(), None)
            .await
            .unwrap();
        ids.push(("account", me["account_id"].as_str().unwrap().to_owned()));
        ids.push(("session", me["session_id"].as_str().unwrap().to_owned()));
        let (_, keys) = api(
            &cloud,
            Method::GET,
            "/api/v1/passkeys",
            parent.access(),
            None,
        )
        .await
        .unwrap();
        ids.push(("passkey", keys[0]["id"].as_str().unwrap().to_owned()));
        let watch = TestWatch::new(&cloud).unwrap();
        let info = pair(&cloud, &parent, &watch).await.unwrap();
        ids.push(("watch", info["id"].as_str().unwrap().to_owned()));
    }
    let mut values = Vec::new();
    for (kind, id) in &ids {
        assert_eq!(id.len(), 32, "{kind} id {id} is not 128 bits of hex");
        values.push(
            u128::from_str_radix(id, 16).unwrap_or_else(|_| panic!("{kind} id {id} is not hex")),
        );
    }
    // Random 128-bit values are never within 2^64 of each other (odds 2^-64);
    // sequential or time-based ones are.
    for (i, a) in values.iter().enumerate() {
        for b in &values[i + 1..] {
            assert!(
                a.abs_diff(*b) > 1u128 << 64,
                "ids {a:x} and {b:x} are too close: guessable"
            );
        }
    }

    // No default or blank credentials: there is no password grant and no basic auth.
    for (user, pass) in [("admin", "admin"), ("admin", ""), ("", "")] {
        let res = token_request(
            &cloud,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", pass),
            ],
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"],
            "unsupported_grant_type"
        );
        let res = cloud
            .client()
            .get(cloud.url("/api/v1/me"))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    cloud.stop().await.unwrap();
}
