//! The native-app sign-in end to end over real TLS: account creation with a
//! passkey, discoverable sign-in, code exchange with PKCE, refresh rotation
//! and reuse detection, sign-out, and every malformed request refused with
//! nothing written.

use reqwest::Method;
use serde_json::{Value, json};
use waymark_protocol::signin::{CodeVerifier, DESKTOP_CLIENT_ID};
use waymark_system_tests::*;

async fn me_status(cloud: &TestCloud, token: &str) -> u16 {
    api(cloud, Method::GET, "/api/v1/me", token, None)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn sign_up_then_sign_in_without_a_user_name() {
    let cloud = TestCloud::start().await.unwrap();
    let mut parent = Parent::sign_up(&cloud, "Alex Parent").await.unwrap();
    let (status, me) = api(&cloud, Method::GET, "/api/v1/me", parent.access(), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(me["display_name"], "Alex Parent");
    assert_eq!(me["account_id"].as_str().unwrap().len(), 32);

    let second = parent.sign_in(&cloud, "Kitchen PC").await.unwrap();
    let (_, me2) = api(&cloud, Method::GET, "/api/v1/me", &second.access, None)
        .await
        .unwrap();
    assert_eq!(
        me2["account_id"], me["account_id"],
        "same account, found from the passkey alone"
    );
    assert_ne!(me2["session_id"], me["session_id"]);
    let (_, sessions) = api(
        &cloud,
        Method::GET,
        "/api/v1/sessions",
        &second.access,
        None,
    )
    .await
    .unwrap();
    let names: Vec<&str> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Test laptop", "Kitchen PC"]);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_passkey_nobody_registered_cannot_sign_in() {
    let cloud = TestCloud::start().await.unwrap();
    let honest = Parent::sign_up(&cloud, "Real").await.unwrap();
    let mut stranger = Parent::new();
    // The stranger's authenticator has a credential, but for a different RP run.
    let other = TestCloud::start().await.unwrap();
    let _ = stranger
        .register(
            &other,
            &authorize(&other).await.unwrap().request_id,
            Some("X"),
        )
        .await
        .unwrap();
    let req = authorize(&cloud).await.unwrap();
    let started = post_page(
        &cloud,
        "/ceremony/sign-in/start",
        &json!({"request_id": req.request_id}),
    )
    .await
    .unwrap();
    let before = snapshot(&cloud.store).await;
    let body = stranger.assert(&cloud.origin, &started).unwrap();
    let err = post_page(&cloud, "/ceremony/sign-in/finish", &body)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown_passkey"), "{err}");
    // Only the ceremony was spent (it is single-use); nothing else changed.
    let mut after = snapshot(&cloud.store).await;
    assert_eq!(after[3], before[3] - 1);
    after[3] = before[3];
    assert_eq!(after, before);
    assert_eq!(me_status(&cloud, honest.access()).await, 200);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_whole_session() {
    let cloud = TestCloud::start().await.unwrap();
    let parent = Parent::sign_up(&cloud, "Sam").await.unwrap();
    let first = parent.tokens.clone().unwrap();

    let res = refresh(&cloud, &first.refresh).await.unwrap();
    assert_eq!(res.status(), 200);
    let second: Tokens = res
        .json::<waymark_protocol::signin::TokenResponse>()
        .await
        .unwrap()
        .into();
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(me_status(&cloud, &second.access).await, 200);

    // An attacker replays the old refresh token: refused, and the session dies.
    let res = refresh(&cloud, &first.refresh).await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(me_status(&cloud, &second.access).await, 401);
    assert_eq!(me_status(&cloud, &first.access).await, 401);
    let res = refresh(&cloud, &second.refresh).await.unwrap();
    assert_eq!(
        res.status(),
        400,
        "the newest refresh token died with the session"
    );
}

#[tokio::test]
async fn sign_out_revokes_at_the_cloud() {
    let cloud = TestCloud::start().await.unwrap();
    let parent = Parent::sign_up(&cloud, "Sam").await.unwrap();
    let t = parent.tokens.clone().unwrap();
    let res = cloud
        .client()
        .post(cloud.url("/revoke"))
        .form(&[("token", t.refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(me_status(&cloud, &t.access).await, 401);
    let res = refresh(&cloud, &t.refresh).await.unwrap();
    assert_eq!(res.status(), 400);
    // Unknown tokens are accepted silently (RFC 7009) and change nothing.
    let before = snapshot(&cloud.store).await;
    let res = cloud
        .client()
        .post(cloud.url("/revoke"))
        .form(&[("token", "wm_rt_nothing")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(snapshot(&cloud.store).await, before);
}

#[tokio::test]
async fn expired_access_token_is_refused_and_refresh_recovers() {
    let cloud = TestCloud::start().await.unwrap();
    let parent = Parent::sign_up(&cloud, "Sam").await.unwrap();
    cloud.advance(std::time::Duration::from_secs(11 * 60));
    let (status, body) = api(&cloud, Method::GET, "/api/v1/me", parent.access(), None)
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthenticated"))
    );
    let t = parent.tokens.clone().unwrap();
    let res = refresh(&cloud, &t.refresh).await.unwrap();
    let fresh: Tokens = res
        .json::<waymark_protocol::signin::TokenResponse>()
        .await
        .unwrap()
        .into();
    assert_eq!(me_status(&cloud, &fresh.access).await, 200);
}

async fn authorize_status(cloud: &TestCloud, params: &[(&str, &str)]) -> (u16, Value) {
    let res = cloud
        .client()
        .get(cloud.url("/authorize"))
        .query(params)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn authorize_refuses_bad_requests_and_writes_nothing() {
    let cloud = TestCloud::start().await.unwrap();
    let challenge = CodeVerifier::generate().s256_challenge();
    let good: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", DESKTOP_CLIENT_ID),
        ("redirect_uri", "http://127.0.0.1:5000/cb"),
        ("state", "abc"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    let with = |key: &'static str, value: &'static str| {
        let mut p = good.clone();
        p.retain(|(k, _)| *k != key);
        if !value.is_empty() {
            p.push((key, value));
        }
        p
    };
    let cases = [
        (
            with("redirect_uri", "https://evil.example/cb"),
            400,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uri", "http://localhost:5000/cb"),
            400,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uri", "http://192.168.1.2:5000/cb"),
            400,
            "invalid_redirect_uri",
        ),
        // Review finding: a port with a leading `+` passed the check (integer
        // parse) and failed the URL builder after the passkey ceremony (500).
        (
            with("redirect_uri", "http://127.0.0.1:+5000/cb"),
            400,
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uri", "http://127.1:5000/cb"),
            400,
            "invalid_redirect_uri",
        ),
        (with("redirect_uri", ""), 400, "invalid_request"),
        (
            with("code_challenge_method", "plain"),
            400,
            "invalid_request",
        ),
        (with("code_challenge_method", ""), 400, "invalid_request"),
        (with("code_challenge", ""), 400, "invalid_request"),
        (with("code_challenge", "too-short"), 400, "invalid_request"),
        (with("client_id", "someone-else"), 401, "invalid_client"),
        (with("response_type", "token"), 400, "invalid_request"),
        (with("state", ""), 400, "invalid_request"),
    ];
    let before = snapshot(&cloud.store).await;
    for (params, status, code) in cases {
        let (s, body) = authorize_status(&cloud, &params).await;
        assert_eq!(
            (s, body["error"].as_str().unwrap_or("")),
            (status, code),
            "{params:?}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "refusals wrote nothing"
    );
    let (s, _) = authorize_status(&cloud, &good).await;
    assert_eq!(s, 200, "the honest request succeeds");

    // A browser gets a page that explains, never a redirect to a bad address.
    let res = cloud
        .client()
        .get(cloud.url("/authorize"))
        .header("Accept", "text/html")
        .query(&with("redirect_uri", "https://evil.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("data-error=\"invalid_redirect_uri\"")
    );
}

#[tokio::test]
async fn ceremonies_refuse_other_origins_replays_and_expiry() {
    let cloud = TestCloud::start().await.unwrap();
    let mut parent = Parent::new();
    let req = authorize(&cloud).await.unwrap();
    let body = json!({"request_id": req.request_id, "display_name": "Pat"});
    let before = snapshot(&cloud.store).await;
    for origin in [
        Some("https://evil.example"),
        Some("https://127.0.0.1:1"),
        None,
    ] {
        let mut r = cloud
            .client()
            .post(cloud.url("/ceremony/register/start"))
            .json(&body);
        if let Some(o) = origin {
            r = r.header("Origin", o);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status(), 403, "{origin:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "wrong_origin");
    }
    assert_eq!(snapshot(&cloud.store).await, before);

    // A client-data origin that is not the cloud's is refused by webauthn-rs.
    let started = post_page(&cloud, "/ceremony/register/start", &body)
        .await
        .unwrap();
    let mut options: webauthn_rs_proto::CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    options
        .public_key
        .authenticator_selection
        .as_mut()
        .unwrap()
        .require_resident_key = false;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    let forged = parent
        .authenticator
        .do_registration(url::Url::parse("https://localhost:1").unwrap(), options)
        .unwrap();
    let accounts_before = cloud.store.count("accounts").await.unwrap();
    let err = post_page(
        &cloud,
        "/ceremony/register/finish",
        &json!({"ceremony_id": started["ceremony_id"], "credential": forged}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("passkey_rejected"), "{err}");
    // That ceremony is spent; replaying it is refused too.
    let err = post_page(
        &cloud,
        "/ceremony/register/finish",
        &json!({"ceremony_id": started["ceremony_id"], "credential": forged}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("ceremony_expired"), "{err}");
    assert_eq!(
        cloud.store.count("accounts").await.unwrap(),
        accounts_before
    );

    // Expired ceremony state cannot be finished.
    let started = post_page(&cloud, "/ceremony/register/start", &body)
        .await
        .unwrap();
    let mut options: webauthn_rs_proto::CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    options
        .public_key
        .authenticator_selection
        .as_mut()
        .unwrap()
        .require_resident_key = false;
    let late = parent
        .authenticator
        .do_registration(url::Url::parse(&cloud.origin).unwrap(), options)
        .unwrap();
    cloud.advance(std::time::Duration::from_secs(6 * 60));
    let err = post_page(
        &cloud,
        "/ceremony/register/finish",
        &json!({"ceremony_id": started["ceremony_id"], "credential": late}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("ceremony_expired"), "{err}");
    assert_eq!(
        cloud.store.count("accounts").await.unwrap(),
        accounts_before
    );

    // And the honest ceremony on the same page still works.
    let finished = parent
        .register(&cloud, &req.request_id, Some("Pat"))
        .await
        .unwrap();
    assert!(
        finished["redirect"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:49152/callback?code=")
    );
    assert_eq!(
        cloud.store.count("accounts").await.unwrap(),
        accounts_before + 1
    );
}

#[tokio::test]
async fn token_exchange_demands_the_right_verifier_and_a_fresh_code() {
    let cloud = TestCloud::start().await.unwrap();
    let mut parent = Parent::new();
    let req = authorize(&cloud).await.unwrap();
    let finished = parent
        .register(&cloud, &req.request_id, Some("Kim"))
        .await
        .unwrap();
    let code = code_from_redirect(&req, &finished).unwrap();
    let other_verifier = CodeVerifier::generate();
    let honest: Vec<(&str, String)> = vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", req.redirect_uri.clone()),
        ("client_id", DESKTOP_CLIENT_ID.into()),
        ("code_verifier", req.verifier.as_str().into()),
    ];
    // The honest form with one field replaced (or dropped, with None).
    let with = |key: &str, value: Option<&str>| -> Vec<(&str, String)> {
        honest
            .iter()
            .filter_map(|(k, v)| match (*k == key, value) {
                (false, _) => Some((*k, v.clone())),
                (true, Some(new)) => Some((*k, new.to_owned())),
                (true, None) => None,
            })
            .collect()
    };
    type Case<'a> = (Vec<(&'a str, String)>, u16, &'a str);
    let bad: Vec<Case> = vec![
        (
            with("code_verifier", Some(other_verifier.as_str())),
            400,
            "invalid_grant",
        ),
        (with("code_verifier", None), 400, "invalid_grant"),
        (with("code_verifier", Some("short")), 400, "invalid_grant"),
        (
            with("redirect_uri", Some("http://127.0.0.1:1/x")),
            400,
            "invalid_grant",
        ),
        (with("code", Some("not-a-code")), 400, "invalid_grant"),
        (
            with("grant_type", Some("password")),
            400,
            "unsupported_grant_type",
        ),
        (with("client_id", Some("other")), 401, "invalid_client"),
    ];
    let before = snapshot(&cloud.store).await;
    for (form, status, code) in bad {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = token_request(&cloud, &pairs).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{pairs:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], code);
    }
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "refusals wrote nothing"
    );

    // The honest exchange works once...
    let tokens = exchange(&cloud, &req, &finished, "Laptop").await.unwrap();
    assert_eq!(me_status(&cloud, &tokens.access).await, 200);
    // ...and a second use of the code is refused and ends what the first opened.
    let err = exchange(&cloud, &req, &finished, "Laptop")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid_grant"), "{err}");
    assert_eq!(me_status(&cloud, &tokens.access).await, 401);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let cloud = TestCloud::start().await.unwrap();
    let mut parent = Parent::new();
    let req = authorize(&cloud).await.unwrap();
    let finished = parent
        .register(&cloud, &req.request_id, Some("Kim"))
        .await
        .unwrap();
    cloud.advance(std::time::Duration::from_secs(2 * 60));
    let sessions = cloud.store.count("sessions").await.unwrap();
    let err = exchange(&cloud, &req, &finished, "Laptop")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expired"), "{err}");
    assert_eq!(cloud.store.count("sessions").await.unwrap(), sessions);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let cloud = TestCloud::start().await.unwrap();
    let req = authorize(&cloud).await.unwrap();
    let send = |body: Vec<u8>, content_type: &'static str| {
        cloud
            .client()
            .post(cloud.url("/ceremony/register/start"))
            .header("Origin", &cloud.origin)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let before = snapshot(&cloud.store).await;
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (
            b"{not json".to_vec(),
            "application/json",
            400,
            "invalid_request",
        ),
        (
            json!({"request_id": req.request_id, "display_name": "A", "owner": "x"})
                .to_string()
                .into_bytes(),
            "application/json",
            400,
            "invalid_request",
        ),
        (
            json!({"request_id": req.request_id, "display_name": ""})
                .to_string()
                .into_bytes(),
            "application/json",
            400,
            "invalid_request",
        ),
        (
            json!({"request_id": req.request_id, "display_name": "x".repeat(65)})
                .to_string()
                .into_bytes(),
            "application/json",
            400,
            "invalid_request",
        ),
        (
            json!({"request_id": "0".repeat(32), "display_name": "A"})
                .to_string()
                .into_bytes(),
            "application/json",
            400,
            "ceremony_expired",
        ),
        (
            json!({"request_id": req.request_id, "display_name": "A"})
                .to_string()
                .into_bytes(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            format!(
                "{{\"request_id\":\"{}\",\"display_name\":\"{}\"}}",
                req.request_id,
                "a".repeat(100_000)
            )
            .into_bytes(),
            "application/json",
            413,
            "body_too_large",
        ),
    ];
    for (body, ct, status, code) in cases {
        let res = send(body, ct).await.unwrap();
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], code);
    }
    assert_eq!(snapshot(&cloud.store).await, before);
    let ok = send(
        json!({"request_id": req.request_id, "display_name": "A"})
            .to_string()
            .into_bytes(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200, "the honest request succeeds");
}

#[tokio::test]
async fn pages_are_hardened() {
    let cloud = TestCloud::start().await.unwrap();
    // Pages, scripts, errors and API answers alike (the API one is a 401 here).
    for path in ["/", "/static/waymark.js", "/nothing-here", "/api/v1/me"] {
        let res = cloud.client().get(cloud.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
                && csp.contains("frame-ancestors 'none'")
        );
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age=")
        );
        assert!(h.get("set-cookie").is_none(), "no cookies at all");
        assert!(h.get("access-control-allow-origin").is_none());
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    // No CORS: another origin's preflight gets no permission.
    let preflight = cloud
        .client()
        .request(Method::OPTIONS, cloud.url("/api/v1/me"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_client_error());
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let page = cloud
        .client()
        .get(cloud.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn there_is_no_plaintext_listener() {
    let cloud = TestCloud::start().await.unwrap();
    let plain = loopback_client();
    let res = plain
        .get(format!("http://127.0.0.1:{}/healthz", cloud.addr.port()))
        .send()
        .await;
    assert!(res.is_err(), "plain HTTP must not get an answer");
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

/// Review finding: every `GET /authorize` stored a row, with no limit.
#[tokio::test]
async fn sign_in_pages_are_limited_per_source() {
    let cloud = TestCloud::start().await.unwrap();
    let max = waymark_cloud::services::ceremonies::MAX_AUTHORIZE_PER_SOURCE;
    for _ in 0..max {
        authorize(&cloud).await.unwrap();
    }
    let refused = match authorize(&cloud).await {
        Ok(_) => panic!("a sign-in page over the limit was served"),
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("429") && refused.contains("rate_limited"),
        "{refused}"
    );
    assert_eq!(cloud.store.count("auth_requests").await.unwrap(), max);
    // Another place is not affected.
    let mut tls = raw_tls(&cloud, Some("127.0.0.3".parse().unwrap()))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let challenge = waymark_protocol::signin::CodeVerifier::generate().s256_challenge();
    let request = format!(
        "GET /authorize?response_type=code&client_id={DESKTOP_CLIENT_ID}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&state=s&code_challenge={challenge}&code_challenge_method=S256 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}
