//! Co-parents (issue 13, design §14) against a real cloud: a guardian sees
//! the family's watches and is refused every owner's action (changing
//! nothing); invitations are single use, expire, can be cancelled, and a
//! forged one is refused, while the honest one joins; a removed member
//! loses access at once, live stream included. What outsiders, former
//! members and invitees get is in `attacks.rs`.

use reqwest::Method;
use serde_json::{Value, json};
use waymark_system_tests::*;

async fn get(cloud: &TestCloud, who: &Parent, path: &str) -> (u16, Value) {
    api(cloud, Method::GET, path, who.access(), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_guardian_sees_the_family_s_watches_and_is_refused_every_owner_action() {
    let cloud = TestCloud::start().await.unwrap();
    let owner = Parent::sign_up(&cloud, "Alex").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &owner, &watch).await.unwrap();
    watch.reporter.record(fix_at(now_ms(), 0)).unwrap();
    watch.reporter.drain().await.unwrap();

    // The invitee is shown who invites them, to what, before accepting.
    let guardian = Parent::sign_up(&cloud, "Sam").await.unwrap();
    let invitation = invite(&cloud, &owner, "guardian").await.unwrap();
    assert!(
        invitation["link"]
            .as_str()
            .unwrap()
            .starts_with("waymark://invite/")
    );
    let (status, preview) = api(
        &cloud,
        Method::POST,
        "/api/v1/invitations/preview",
        guardian.access(),
        Some(&json!({"code": invitation["code"]})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["family_name"], "Alex");
    assert_eq!(preview["invited_by"], "Alex");
    assert_eq!(preview["role"], "guardian");
    // The link works as well as the code.
    let (status, joined) =
        accept_invitation(&cloud, &guardian, invitation["link"].as_str().unwrap())
            .await
            .unwrap();
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["your_role"], "guardian");
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        joined["invitations"],
        json!([]),
        "a guardian is not shown the family's invitations"
    );
    let (_, me) = get(&cloud, &guardian, "/api/v1/me").await;
    assert_eq!(me["role"], "guardian");

    // What a guardian may do: see.
    let (status, list) = get(&cloud, &guardian, "/api/v1/watches").await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], watch.id());
    let id = watch.id();
    for path in [
        format!("/api/v1/watches/{id}/latest"),
        format!("/api/v1/watches/{id}/history?from=0&to={}", now_ms() + 1),
        "/api/v1/family".to_owned(),
        "/api/v1/settings".to_owned(),
    ] {
        let (status, body) = get(&cloud, &guardian, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

    // What a guardian may not: every owner's action, 403 role_forbids, nothing changed.
    let open = invite(&cloud, &owner, "guardian").await.unwrap();
    let owner_id = account_id_of(&cloud, &owner).await.unwrap();
    let guardian_id = account_id_of(&cloud, &guardian).await.unwrap();
    let before = snapshot(&cloud.store).await;
    let members_before = get(&cloud, &owner, "/api/v1/family/members").await;
    let settings_before = get(&cloud, &owner, "/api/v1/settings").await;
    let watches_before = get(&cloud, &owner, "/api/v1/watches").await;
    let owner_actions: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            format!("/api/v1/watches/{id}"),
            Some(json!({"name": "renamed"})),
        ),
        (
            Method::POST,
            format!("/api/v1/watches/{id}/revoke"),
            Some(json!({"history": "delete"})),
        ),
        (
            Method::PATCH,
            "/api/v1/settings".into(),
            Some(json!({"retention_days": 1})),
        ),
        (
            Method::POST,
            "/api/v1/family/invitations".into(),
            Some(json!({"role": "owner"})),
        ),
        (
            Method::DELETE,
            format!(
                "/api/v1/family/invitations/{}",
                open["id"].as_str().unwrap()
            ),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/family/members/{owner_id}"),
            Some(json!({"role": "guardian"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/family/members/{guardian_id}"),
            Some(json!({"role": "owner"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/family/members/{owner_id}"),
            None,
        ),
        (Method::GET, "/api/v1/pairing-offers/ABCD".into(), None),
    ];
    for (method, path, body) in &owner_actions {
        let (status, out) = api(
            &cloud,
            method.clone(),
            path,
            guardian.access(),
            body.as_ref(),
        )
        .await
        .unwrap();
        assert_eq!(status, 403, "{method} {path} as a guardian: {out}");
        assert_eq!(out["error"], "role_forbids", "{method} {path}");
    }
    assert_eq!(snapshot(&cloud.store).await, before, "nothing was written");
    assert_eq!(
        get(&cloud, &owner, "/api/v1/family/members").await,
        members_before
    );
    assert_eq!(
        get(&cloud, &owner, "/api/v1/settings").await,
        settings_before
    );
    assert_eq!(get(&cloud, &owner, "/api/v1/watches").await, watches_before);

    // Another member's own things (passkeys, computers) are theirs alone.
    let (_, keys) = get(&cloud, &owner, "/api/v1/passkeys").await;
    let (_, computers) = get(&cloud, &owner, "/api/v1/sessions").await;
    for (method, path) in [
        (
            Method::DELETE,
            format!("/api/v1/passkeys/{}", keys[0]["id"].as_str().unwrap()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/sessions/{}", computers[0]["id"].as_str().unwrap()),
        ),
    ] {
        let (status, _) = api(&cloud, method.clone(), &path, guardian.access(), None)
            .await
            .unwrap();
        assert_eq!(status, 404, "{method} {path}");
    }

    // The owner makes them an owner: now they may rename; the founder stays.
    let (status, _) = api(
        &cloud,
        Method::PATCH,
        &format!("/api/v1/family/members/{guardian_id}"),
        owner.access(),
        Some(&json!({"role": "owner"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    let (status, _) = api(
        &cloud,
        Method::PATCH,
        &format!("/api/v1/watches/{id}"),
        guardian.access(),
        Some(&json!({"name": "Mia's watch"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    for method in [Method::PATCH, Method::DELETE] {
        let (status, out) = api(
            &cloud,
            method.clone(),
            &format!("/api/v1/family/members/{owner_id}"),
            guardian.access(),
            Some(&json!({"role": "guardian"})),
        )
        .await
        .unwrap();
        assert_eq!(
            (status, out["error"].as_str()),
            (409, Some("founder_stays")),
            "{method}"
        );
    }

    // Every member sees the family's log, naming who did what; an
    // account's own events stay its own.
    let (_, log) = get(&cloud, &guardian, "/api/v1/activity").await;
    let kinds = activity_kinds(&log);
    for kind in [
        "invitation.made",
        "member.joined",
        "member.role_changed",
        "watch.paired",
        "watch.renamed",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let role_change = activity_entry(&log, "member.role_changed");
    assert_eq!(role_change["actor_member_name"], "Alex");
    assert_eq!(role_change["detail"], "Sam is now owner");
    let owners_sign_ins = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "session.signed_in" || e["kind"] == "account.created")
        .count();
    assert_eq!(
        owners_sign_ins, 2,
        "only Sam's own sign-in and account: {log}"
    );
}

#[tokio::test]
async fn invitations_are_single_use_expire_and_can_be_cancelled() {
    let cloud = TestCloud::start().await.unwrap();
    let owner = Parent::sign_up(&cloud, "Alex").await.unwrap();
    let first = Parent::sign_up(&cloud, "Sam").await.unwrap();
    let second = Parent::sign_up(&cloud, "Robin").await.unwrap();

    // Forged and malformed codes: refused alike, nothing joins.
    let before = snapshot(&cloud.store).await;
    let forged = "0000A-BCDEF-GHJKM-NPQRS-TVWXY-Z";
    for code in [forged, "not a code", ""] {
        let (status, out) = accept_invitation(&cloud, &first, code).await.unwrap();
        assert_eq!(
            (status, out["error"].as_str()),
            (404, Some("invitation_invalid")),
            "{code}"
        );
    }
    assert_eq!(snapshot(&cloud.store).await, before);

    // The honest one joins; used again, by anyone, it is refused.
    let invitation = invite(&cloud, &owner, "guardian").await.unwrap();
    let code = invitation["code"].as_str().unwrap();
    let (status, _) = accept_invitation(&cloud, &first, &code.to_lowercase())
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, out) = accept_invitation(&cloud, &second, code).await.unwrap();
    assert_eq!(
        (status, out["error"].as_str()),
        (404, Some("invitation_invalid"))
    );
    let (_, me) = get(&cloud, &second, "/api/v1/me").await;
    assert_eq!(
        me["family_id"], me["account_id"],
        "Robin is still in their own family"
    );

    // An invitation Robin made for their own family ends when Robin joins
    // another: nobody joins a family with nobody in it.
    let robins = invite(&cloud, &second, "guardian").await.unwrap();

    // Cancelled: refused, and a guardian cannot cancel.
    let cancelled = invite(&cloud, &owner, "guardian").await.unwrap();
    let path = format!(
        "/api/v1/family/invitations/{}",
        cancelled["id"].as_str().unwrap()
    );
    let (status, _) = api(&cloud, Method::DELETE, &path, first.access(), None)
        .await
        .unwrap();
    assert_eq!(status, 403);
    let (status, _) = api(&cloud, Method::DELETE, &path, owner.access(), None)
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (status, _) = accept_invitation(&cloud, &second, cancelled["code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(status, 404);

    // An account with a watch of its own cannot join (a watch has one
    // family), and the invitation stays usable for the right person.
    let with_watch = Parent::sign_up(&cloud, "Has a watch").await.unwrap();
    let own_watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &with_watch, &own_watch).await.unwrap();
    let kept = invite(&cloud, &owner, "owner").await.unwrap();
    let (status, out) = accept_invitation(&cloud, &with_watch, kept["code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (status, out["error"].as_str()),
        (409, Some("family_not_empty")),
        "{out}"
    );
    let (status, _) = accept_invitation(&cloud, &second, kept["code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(status, 200);
    let third = Parent::sign_up(&cloud, "Third").await.unwrap();
    let (status, _) = accept_invitation(&cloud, &third, robins["code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        status, 404,
        "Robin's own family's invitation ended when Robin left it"
    );

    // Expired after 7 days: refused, and logged as expired.
    let late = invite(&cloud, &owner, "guardian").await.unwrap();
    let latecomer = Parent::sign_up(&cloud, "Late").await.unwrap();
    cloud.advance(std::time::Duration::from_secs(7 * 24 * 3600 + 60));
    let mut latecomer = latecomer;
    latecomer.renew(&cloud).await.unwrap();
    let mut owner = owner;
    owner.renew(&cloud).await.unwrap();
    let (status, _) = accept_invitation(&cloud, &latecomer, late["code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(status, 404);
    let (_, members) = get(&cloud, &owner, "/api/v1/family/members").await;
    assert_eq!(members["invitations"], json!([]), "no invitation is open");
    let (_, log) = get(&cloud, &owner, "/api/v1/activity").await;
    for kind in [
        "invitation.expired",
        "invitation.cancelled",
        "member.joined",
    ] {
        assert!(
            log.as_array().unwrap().iter().any(|e| e["kind"] == kind),
            "{kind}: {log}"
        );
    }

    // At most 10 open at once.
    for _ in 0..10 {
        invite(&cloud, &owner, "guardian").await.unwrap();
    }
    let (status, out) = api(
        &cloud,
        Method::POST,
        "/api/v1/family/invitations",
        owner.access(),
        Some(&json!({"role": "guardian"})),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, out["error"].as_str()),
        (429, Some("rate_limited")),
        "{out}"
    );
}

#[tokio::test]
async fn a_removed_member_loses_access_at_once_and_a_member_can_leave() {
    let cloud = TestCloud::start().await.unwrap();
    let owner = Parent::sign_up(&cloud, "Alex").await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &owner, &watch).await.unwrap();
    let removed = co_parent(&cloud, &owner, "Sam", "guardian").await.unwrap();
    let leaving = co_parent(&cloud, &owner, "Robin", "owner").await.unwrap();
    let id = watch.id();
    let latest = format!("/api/v1/watches/{id}/latest");
    assert_eq!(get(&cloud, &removed, &latest).await.0, 200);

    let mut stream = live(&cloud, removed.access()).await;
    assert_eq!(stream.status(), 200);
    let removed_id = account_id_of(&cloud, &removed).await.unwrap();
    let (status, _) = api(
        &cloud,
        Method::DELETE,
        &format!("/api/v1/family/members/{removed_id}"),
        owner.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204);

    // Their live stream is told to sign in again and ends.
    let mut seen = String::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended: {seen}");
    assert!(seen.contains("event: reauthenticate"), "{seen}");

    // The watch answers them like a watch that does not exist.
    let nobody = "/api/v1/watches/0123456789abcdef0123456789abcdef/latest";
    assert_eq!(
        get(&cloud, &removed, &latest).await,
        get(&cloud, &removed, nobody).await
    );
    assert_eq!(get(&cloud, &removed, &latest).await.0, 404);
    assert_eq!(get(&cloud, &removed, "/api/v1/watches").await.1, json!([]));
    let (_, me) = get(&cloud, &removed, "/api/v1/me").await;
    assert_eq!(
        me["family_id"], me["account_id"],
        "back in their own family"
    );
    assert_eq!(me["role"], "owner");

    // A member may leave by themselves.
    let leaving_id = account_id_of(&cloud, &leaving).await.unwrap();
    let (status, _) = api(
        &cloud,
        Method::DELETE,
        &format!("/api/v1/family/members/{leaving_id}"),
        leaving.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    assert_eq!(get(&cloud, &leaving, &latest).await.0, 404);
    let (_, members) = get(&cloud, &owner, "/api/v1/family/members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    let (_, log) = get(&cloud, &owner, "/api/v1/activity").await;
    let details: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "member.removed")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        ["Robin left the family", "Sam was removed from the family"]
    );
}

#[tokio::test]
async fn guessing_invitation_codes_hits_the_limit_and_the_honest_invitee_still_joins() {
    use waymark_cloud::parent_api::co_parents::MAX_FAILED_PER_ACCOUNT;
    let cloud = TestCloud::start().await.unwrap();
    let owner = Parent::sign_up(&cloud, "Alex").await.unwrap();
    let guesser = Parent::sign_up(&cloud, "Guesser").await.unwrap();
    let invitation = invite(&cloud, &owner, "guardian").await.unwrap();
    let code = invitation["code"].as_str().unwrap();
    for i in 0..MAX_FAILED_PER_ACCOUNT {
        let guess = format!("0000A-BCDEF-GHJKM-NPQRS-TVWXY-{}", i % 8);
        let (status, _) = accept_invitation(&cloud, &guesser, &guess).await.unwrap();
        assert_eq!(status, 404, "guess {i}");
    }
    // Over the limit, even the right code is refused to this account.
    let (status, out) = accept_invitation(&cloud, &guesser, code).await.unwrap();
    assert_eq!(
        (status, out["error"].as_str()),
        (429, Some("too_many_attempts")),
        "{out}"
    );
    let (_, me) = get(&cloud, &guesser, "/api/v1/me").await;
    assert_eq!(
        me["family_id"], me["account_id"],
        "the guesser joined nothing"
    );
    // The invitee it was meant for joins.
    let invitee = Parent::sign_up(&cloud, "Sam").await.unwrap();
    let (status, joined) = accept_invitation(&cloud, &invitee, code).await.unwrap();
    assert_eq!(status, 200, "{joined}");
}
