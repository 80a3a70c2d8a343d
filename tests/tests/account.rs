//! The account API: passkeys (list, rename, add through the browser flow
//! after a fresh passkey confirmation, delete but never the last), signed-in
//! computers (list, end one, end all others), the activity log, and that
//! another family's ids answer exactly like ids that do not exist.

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};
use waymark_system_tests::*;

async fn call(
    cloud: &TestCloud,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api(cloud, m, path, token, body.as_ref()).await.unwrap()
}

/// A fresh enrolment link for `token`'s account: the link and its request id.
async fn enrolment_link(cloud: &TestCloud, token: &str) -> (url::Url, String) {
    let (status, link) = call(
        cloud,
        Method::POST,
        "/api/v1/passkeys/enrollments",
        token,
        None,
    )
    .await;
    assert_eq!(status, 201);
    let url = url::Url::parse(link["url"].as_str().unwrap()).unwrap();
    let request_id = url
        .query_pairs()
        .find(|(k, _)| k == "request")
        .unwrap()
        .1
        .into_owned();
    (url, request_id)
}

/// Runs the enrollment page: confirm with an existing passkey, then add one.
async fn add_passkey(cloud: &TestCloud, parent: &mut Parent) -> anyhow::Result<Value> {
    let (url, request_id) = enrolment_link(cloud, parent.access()).await;
    let page = cloud.client().get(url.as_str()).send().await?;
    assert_eq!(page.status(), 200);
    let started = post_page(
        cloud,
        "/ceremony/sign-in/start",
        &json!({"request_id": request_id}),
    )
    .await?;
    assert!(
        started["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "before confirmation the page names none of the account's passkeys"
    );
    let body = parent.assert(&cloud.origin, &started)?;
    let confirmed = post_page(cloud, "/ceremony/sign-in/finish", &body).await?;
    let secret = confirmed["confirmation"]
        .as_str()
        .context("no confirmation secret")?;
    parent
        .register_confirmed(cloud, &request_id, None, Some(secret))
        .await
}

#[tokio::test]
async fn passkeys_can_be_added_renamed_and_removed_but_never_the_last() {
    let cloud = TestCloud::start().await.unwrap();
    let mut parent = Parent::sign_up(&cloud, "Robin").await.unwrap();
    let token = parent.access().to_owned();
    let (_, list) = call(&cloud, Method::GET, "/api/v1/passkeys", &token, None).await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    let first = list[0]["id"].as_str().unwrap().to_owned();

    let (s, body) = call(
        &cloud,
        Method::DELETE,
        &format!("/api/v1/passkeys/{first}"),
        &token,
        None,
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (409, Some("last_passkey")));

    // Enrollment without the confirmation step is refused.
    let (_, request_id) = enrolment_link(&cloud, &token).await;
    let before = cloud.store.count("passkeys").await.unwrap();
    let err = post_page(
        &cloud,
        "/ceremony/register/start",
        &json!({"request_id": request_id}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("Confirm with one of your passkeys first"),
        "{err}"
    );
    assert_eq!(cloud.store.count("passkeys").await.unwrap(), before);

    let done = add_passkey(&cloud, &mut parent).await.unwrap();
    assert!(done["redirect"].is_null());
    let (_, list) = call(&cloud, Method::GET, "/api/v1/passkeys", &token, None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list[0]["last_used_at"].is_i64(),
        "the confirmation counted as a use"
    );

    let (s, _) = call(
        &cloud,
        Method::PATCH,
        &format!("/api/v1/passkeys/{first}"),
        &token,
        Some(json!({"name": "  Work laptop "})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, body) = call(
        &cloud,
        Method::PATCH,
        &format!("/api/v1/passkeys/{first}"),
        &token,
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    let (s, _) = call(
        &cloud,
        Method::PATCH,
        &format!("/api/v1/passkeys/{first}"),
        &token,
        Some(json!({"name": "x", "account_id": "other"})),
    )
    .await;
    assert_eq!(s, 400, "unknown fields are refused");
    let (_, list) = call(&cloud, Method::GET, "/api/v1/passkeys", &token, None).await;
    assert_eq!(list[0]["name"], "Work laptop");

    let (s, _) = call(
        &cloud,
        Method::DELETE,
        &format!("/api/v1/passkeys/{first}"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, list) = call(&cloud, Method::GET, "/api/v1/passkeys", &token, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The removed passkey no longer signs in; the remaining one does.
    parent.credential_ids.remove(0);
    parent.sign_in(&cloud, "Again").await.unwrap();

    let (_, log) = call(&cloud, Method::GET, "/api/v1/activity", &token, None).await;
    let kinds = activity_kinds(&log);
    for k in [
        "account.created",
        "session.signed_in",
        "passkey.added",
        "passkey.renamed",
        "passkey.removed",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let renamed = activity_entry(&log, "passkey.renamed");
    assert_eq!(renamed["actor_session_name"], "Test laptop");
}

#[tokio::test]
async fn sessions_can_be_listed_and_ended() {
    let cloud = TestCloud::start().await.unwrap();
    let mut parent = Parent::sign_up(&cloud, "Jo").await.unwrap();
    let laptop = parent.access().to_owned();
    let tablet = parent.sign_in(&cloud, "Tablet").await.unwrap();
    let phone = parent.sign_in(&cloud, "Old phone").await.unwrap();

    let (_, list) = call(&cloud, Method::GET, "/api/v1/sessions", &laptop, None).await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let phone_id = list.iter().find(|s| s["name"] == "Old phone").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (s, _) = call(
        &cloud,
        Method::DELETE,
        &format!("/api/v1/sessions/{phone_id}"),
        &laptop,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        call(&cloud, Method::GET, "/api/v1/me", &phone.access, None)
            .await
            .0,
        401
    );
    let res = refresh(&cloud, &phone.refresh).await.unwrap();
    assert_eq!(res.status(), 400, "an ended computer cannot refresh either");
    let (s, _) = call(
        &cloud,
        Method::DELETE,
        &format!("/api/v1/sessions/{phone_id}"),
        &laptop,
        None,
    )
    .await;
    assert_eq!(s, 404, "already ended");

    let (s, body) = call(
        &cloud,
        Method::POST,
        "/api/v1/sessions/end-others",
        &laptop,
        None,
    )
    .await;
    assert_eq!((s, body["ended"].as_u64()), (200, Some(1)));
    assert_eq!(
        call(&cloud, Method::GET, "/api/v1/me", &tablet.access, None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(&cloud, Method::GET, "/api/v1/me", &laptop, None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn another_familys_ids_answer_like_ids_that_do_not_exist() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Family A").await.unwrap();
    let b = Parent::sign_up(&cloud, "Family B").await.unwrap();
    let (_, pk) = call(&cloud, Method::GET, "/api/v1/passkeys", a.access(), None).await;
    let a_passkey = pk[0]["id"].as_str().unwrap().to_owned();
    let (_, ss) = call(&cloud, Method::GET, "/api/v1/sessions", a.access(), None).await;
    let a_session = ss[0]["id"].as_str().unwrap().to_owned();
    let random = "0123456789abcdef0123456789abcdef";

    let before = snapshot(&cloud.store).await;
    for (method, path, body) in [
        (
            Method::PATCH,
            "/api/v1/passkeys/{}",
            Some(json!({"name": "pwned"})),
        ),
        (Method::DELETE, "/api/v1/passkeys/{}", None),
        (Method::DELETE, "/api/v1/sessions/{}", None),
    ] {
        let id = if path.contains("passkeys") {
            &a_passkey
        } else {
            &a_session
        };
        let theirs = call(
            &cloud,
            method.clone(),
            &path.replace("{}", id),
            b.access(),
            body.clone(),
        )
        .await;
        let nobodys = call(
            &cloud,
            method.clone(),
            &path.replace("{}", random),
            b.access(),
            body.clone(),
        )
        .await;
        let junk = call(
            &cloud,
            method.clone(),
            &path.replace("{}", "1"),
            b.access(),
            body.clone(),
        )
        .await;
        assert_eq!(theirs.0, 404, "{method} {path}");
        assert_eq!(theirs, nobodys, "not-yours answers exactly like not-found");
        assert_eq!(theirs, junk);
    }
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "nothing of A's changed"
    );
    // A's own requests still work.
    assert_eq!(
        call(&cloud, Method::GET, "/api/v1/me", a.access(), None)
            .await
            .0,
        200
    );
    let (s, _) = call(
        &cloud,
        Method::PATCH,
        &format!("/api/v1/passkeys/{a_passkey}"),
        a.access(),
        Some(json!({"name": "Mine"})),
    )
    .await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn the_api_requires_a_valid_bearer_token() {
    let cloud = TestCloud::start().await.unwrap();
    let parent = Parent::sign_up(&cloud, "Lee").await.unwrap();
    let truncated = &parent.access()[..parent.access().len() - 1];
    let padded = format!("{}A", parent.access());
    let mut flipped = parent.access().as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for token in [
        "",
        "nonsense",
        truncated,
        &padded,
        &flipped,
        &parent.tokens.as_ref().unwrap().refresh,
    ] {
        let (s, body) = call(&cloud, Method::GET, "/api/v1/passkeys", token, None).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (401, Some("unauthenticated")),
            "{token}"
        );
    }
    let res = cloud
        .client()
        .get(cloud.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        call(&cloud, Method::GET, "/api/v1/me", parent.access(), None)
            .await
            .0,
        200
    );
    let (s, _) = call(
        &cloud,
        Method::GET,
        "/api/v1/activity?limit=100000",
        parent.access(),
        None,
    )
    .await;
    assert_eq!(s, 400, "page size is bounded");
}

/// Review finding: after the owner confirmed on the enrolment page, anyone
/// else holding the link could register their own passkey on the account.
/// The confirmation now hands a one-time secret to the confirming browser
/// only; the link alone (with or without a guessed secret) adds nothing.
#[tokio::test]
async fn an_enrolment_link_is_worthless_without_the_confirming_browsers_secret() {
    let cloud = TestCloud::start().await.unwrap();
    let mut owner = Parent::sign_up(&cloud, "Owner").await.unwrap();
    let (url, request_id) = enrolment_link(&cloud, owner.access()).await;
    // Before confirmation the page's ceremony names no credential of the account.
    let started = post_page(
        &cloud,
        "/ceremony/sign-in/start",
        &json!({"request_id": request_id}),
    )
    .await
    .unwrap();
    assert!(
        started["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    // A passkey of another account cannot confirm it.
    let mut stranger = Parent::sign_up(&cloud, "Stranger").await.unwrap();
    let body = stranger.assert(&cloud.origin, &started).unwrap();
    let refused = post_page(&cloud, "/ceremony/sign-in/finish", &body)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("unknown_passkey"), "{refused}");

    // The owner confirms; their browser gets the secret.
    let started = post_page(
        &cloud,
        "/ceremony/sign-in/start",
        &json!({"request_id": request_id}),
    )
    .await
    .unwrap();
    let body = owner.assert(&cloud.origin, &started).unwrap();
    let confirmed = post_page(&cloud, "/ceremony/sign-in/finish", &body)
        .await
        .unwrap();
    let secret = confirmed["confirmation"].as_str().unwrap().to_owned();
    assert!(
        !url.as_str().contains(&secret),
        "the secret is never in the link"
    );

    // Someone else with the link: no secret, or a wrong one.
    let before = cloud.store.count("passkeys").await.unwrap();
    let mut intruder = Parent::new();
    for guess in [None, Some("wm_guess"), Some(&secret[..secret.len() - 1])] {
        let err = intruder
            .register_confirmed(&cloud, &request_id, None, guess)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("400"), "{err}");
    }
    assert_eq!(cloud.store.count("passkeys").await.unwrap(), before);

    // The confirming browser adds its passkey.
    let done = owner
        .register_confirmed(&cloud, &request_id, None, Some(&secret))
        .await
        .unwrap();
    assert!(done["message"].as_str().unwrap().contains("Passkey added"));
    assert_eq!(cloud.store.count("passkeys").await.unwrap(), before + 1);
}
