//! The family's keys as the cloud keeps them (issue 13, step 1): roster
//! versions stored append-only, only as the family's next signed version,
//! per account; what the cloud is sent that does not check is refused with
//! a 4xx and changes nothing. The rosters are made by the app core's own
//! `FamilyKeys`, as a family computer makes them.

use reqwest::Method;
use serde_json::{Value, json};
use waymark_app_core::family_keys::FamilyKeys;
use waymark_protocol::family_roster::{EpochKeyBlob, FamilyKeyPair};
use waymark_protocol::location_sealing::LocationSecretKey;
use waymark_protocol::roster::{FamilyRosters, RosterUpdate};
use waymark_system_tests::*;

async fn me(cloud: &TestCloud, p: &Parent) -> String {
    let (status, me) = api(cloud, Method::GET, "/api/v1/me", p.access(), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    me["account_id"].as_str().unwrap().to_owned()
}

async fn rosters(cloud: &TestCloud, p: &Parent) -> FamilyRosters {
    let (status, body) = api(cloud, Method::GET, "/api/v1/family", p.access(), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn publish(cloud: &TestCloud, p: &Parent, update: &RosterUpdate) -> (u16, Value) {
    let body = serde_json::to_value(update).unwrap();
    api(
        cloud,
        Method::POST,
        "/api/v1/family/rosters",
        p.access(),
        Some(&body),
    )
    .await
    .unwrap()
}

/// A refusal with its machine-readable code that left every table as it was.
async fn refused(cloud: &TestCloud, p: &Parent, update: &RosterUpdate, status: u16, code: &str) {
    let before = snapshot(&cloud.store).await;
    let (got, body) = publish(cloud, p, update).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert!(body["message"].as_str().is_some_and(|m| m.len() > 20));
    assert_eq!(
        snapshot(&cloud.store).await,
        before,
        "a refusal wrote nothing"
    );
}

#[tokio::test]
async fn the_cloud_keeps_each_family_s_rosters_as_signed_and_refuses_what_does_not_follow() {
    let cloud = TestCloud::start().await.unwrap();
    let a = Parent::sign_up(&cloud, "Rivera family").await.unwrap();
    let b = Parent::sign_up(&cloud, "Okafor family").await.unwrap();
    let account_a = me(&cloud, &a).await;
    assert!(
        rosters(&cloud, &a).await.rosters.is_empty(),
        "no family before founding"
    );

    // The first computer founds the family: roster 1 and epoch 0 sealed to the recovery key.
    let mut desk = FamilyKeys::new_computer();
    let founded = desk.found_family("Desk", &account_a);
    let founding = desk.update_for(1).unwrap();
    assert_eq!(founding.key_blobs.len(), 1);
    assert_eq!(
        founding.key_blobs[0].recipient,
        founded.recovery.public().sealing
    );
    // Another account's computer cannot be listed in this family.
    let mut listing_b = founded.roster.roster.clone();
    listing_b.computers[0].member = me(&cloud, &b).await;
    let mut strays = founding.clone();
    strays.roster = listing_b.sign(desk.computer());
    refused(&cloud, &a, &strays, 400, "invalid_roster").await;
    // A roster whose signature was made over something else.
    let mut altered = founding.clone();
    altered.roster.roster.computers[0].name = "Laptop".into();
    refused(&cloud, &a, &altered, 400, "invalid_roster").await;
    // A blob for a key the roster does not list.
    let outsider = FamilyKeyPair::generate();
    let (epoch_key, _) = LocationSecretKey::generate();
    let mut stray_blob = founding.clone();
    stray_blob.key_blobs = vec![EpochKeyBlob::seal(
        0,
        &epoch_key,
        &outsider.sealing_public(),
    )];
    refused(&cloud, &a, &stray_blob, 400, "invalid_roster").await;
    // Not JSON of the right shape at all.
    let before = snapshot(&cloud.store).await;
    let (status, body) = api(
        &cloud,
        Method::POST,
        "/api/v1/family/rosters",
        a.access(),
        Some(&json!({"roster": {"version": 1}})),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(snapshot(&cloud.store).await, before);

    // A founding without the recovery key's anchor, or with another family's.
    let mut unanchored = founding.clone();
    unanchored.recovery_anchor = None;
    refused(&cloud, &a, &unanchored, 400, "invalid_roster").await;
    let mut elsewhere = FamilyKeys::new_computer();
    elsewhere.found_family("Desk", &account_a);
    let mut misanchored = founding.clone();
    misanchored.recovery_anchor = elsewhere.update_for(1).unwrap().recovery_anchor;
    refused(&cloud, &a, &misanchored, 400, "invalid_roster").await;

    // The honest founding is stored exactly as signed.
    let (status, body) = publish(&cloud, &a, &founding).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        rosters(&cloud, &a).await.rosters,
        vec![founded.roster.clone()]
    );
    assert_eq!(cloud.store.count("epoch_key_blobs").await.unwrap(), 1);
    // Its recovery blob, for the family only.
    let recipient = waymark_protocol::signing::b64(&founded.recovery.public().sealing.0);
    let blobs_path = format!("/api/v1/family/key-blobs?recipient={recipient}");
    let (status, blobs) = api(&cloud, Method::GET, &blobs_path, a.access(), None)
        .await
        .unwrap();
    assert_eq!(
        (status, blobs.as_array().map(Vec::len)),
        (200, Some(1)),
        "{blobs}"
    );
    let (_, theirs) = api(&cloud, Method::GET, &blobs_path, b.access(), None)
        .await
        .unwrap();
    assert_eq!(theirs, json!([]));
    let (status, _) = api(
        &cloud,
        Method::GET,
        "/api/v1/family/key-blobs?recipient=nope",
        a.access(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 400);

    // A second founding (another computer of the account, a moment late) is
    // not the next version: 409, so that computer waits for approval instead.
    let mut late = FamilyKeys::new_computer();
    late.found_family("Laptop", &account_a);
    refused(
        &cloud,
        &a,
        &late.update_for(1).unwrap(),
        409,
        "roster_conflict",
    )
    .await;
    // A replay of version 1 is refused the same way.
    refused(&cloud, &a, &founding, 409, "roster_conflict").await;

    // Version 2, made by the family's computer, adding a second one.
    let laptop = FamilyKeys::new_computer();
    let newcomer = laptop.entry("Laptop", &account_a);
    desk.approve("Laptop", &account_a, &newcomer).unwrap();
    let v2 = desk.update_for(2).unwrap();
    // Made by a computer the family never listed: refused.
    let forged = RosterUpdate {
        roster: founded
            .roster
            .roster
            .next(vec![laptop.entry("Laptop", &account_a)])
            .sign(laptop.computer()),
        key_blobs: vec![],
        recovery_anchor: None,
        epoch_switch: None,
    };
    refused(&cloud, &a, &forged, 400, "invalid_roster").await;
    let (status, body) = publish(&cloud, &a, &v2).await;
    assert_eq!(status, 204, "{body}");
    let chain = rosters(&cloud, &a).await.rosters;
    assert_eq!(chain.len(), 2);
    assert_eq!(chain, desk.rosters());

    // Another family sees none of it, and cannot add to it.
    assert!(rosters(&cloud, &b).await.rosters.is_empty());
    refused(&cloud, &b, &v2, 400, "invalid_roster").await;

    // Both changes are in the family's activity log, and nothing of the keys.
    let (_, log) = api(&cloud, Method::GET, "/api/v1/activity", a.access(), None)
        .await
        .unwrap();
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"family.founded"), "{kinds:?}");
    assert!(kinds.contains(&"family.computers_changed"), "{kinds:?}");
    cloud.stop().await.unwrap();
}

async fn call(
    cloud: &TestCloud,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api(cloud, method, path, token, body.as_ref())
        .await
        .unwrap()
}

/// A computer with `keys` asks the family for them.
async fn ask_to_join(cloud: &TestCloud, token: &str, keys: &FamilyKeyPair) -> (u16, Value) {
    use waymark_protocol::signing::b64;
    let body =
        json!({"signing": b64(&keys.signing_public().0), "sealing": b64(&keys.sealing_public().0)});
    call(
        cloud,
        token,
        Method::POST,
        "/api/v1/family/join-requests",
        Some(body),
    )
    .await
}

/// The join requests `token`'s account lists.
async fn listed(cloud: &TestCloud, token: &str) -> (u16, Value) {
    call(
        cloud,
        token,
        Method::GET,
        "/api/v1/family/join-requests",
        None,
    )
    .await
}

/// The relay's rules, step by step, with two computers of one account: each
/// step is one computer's turn, a request takes one answer, and another
/// account sees none of it. (The exchange itself, with real codes, is in
/// `desktop_core.rs`.)
#[tokio::test]
async fn the_cloud_relays_an_approval_one_turn_at_a_time_and_takes_one_answer() {
    use waymark_protocol::signing::b64;
    let cloud = TestCloud::start().await.unwrap();
    let mut a = Parent::sign_up(&cloud, "Rivera family").await.unwrap();
    let kitchen = a.access().to_owned();
    let office = a.sign_in(&cloud, "Office PC").await.unwrap().access;
    assert_ne!(kitchen, office);
    let b = Parent::sign_up(&cloud, "Okafor family").await.unwrap();
    let newcomer = FamilyKeyPair::generate();
    let (status, request) = ask_to_join(&cloud, &office, &newcomer).await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["name"], "Office PC");
    assert_eq!(request["state"], "waiting");
    let id = request["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/family/join-requests/{id}");

    // The trusted computer sees it; another family does not, and cannot touch it.
    let (_, list) = listed(&cloud, &kitchen).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, theirs) = listed(&cloud, b.access()).await;
    assert_eq!(theirs, json!([]));
    assert_eq!(
        call(&cloud, b.access(), Method::GET, &path, None).await.0,
        404
    );

    let offer = json!({"computer": b64(&[5; 32]), "message": b64(&[1; 33])});
    let answer = json!({"message": b64(&[2; 33]), "confirmation": b64(&[3; 32])});
    let approval = json!({"confirmation": b64(&[4; 32]), "sealed": b64(&[6; 200])});
    let before = snapshot(&cloud.store).await;
    // Out of turn, by the wrong computer, or malformed: refused, nothing changes.
    for (token, step, body, status, code) in [
        (&office, "offer", &offer, 400, "invalid_request"), // approving itself
        (&office, "answer", &answer, 409, "approval_spent"), // nothing offered yet
        (&kitchen, "approval", &approval, 400, "invalid_request"), // it offered nothing
        (
            &kitchen,
            "offer",
            &json!({"computer": b64(&[5; 32]), "message": "!!"}),
            400,
            "invalid_request",
        ),
    ] {
        let (got, body) = call(
            &cloud,
            token,
            Method::POST,
            &format!("{path}/{step}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{step}: {body}"
        );
    }
    assert_eq!(snapshot(&cloud.store).await, before);

    // The honest turns.
    let (got, _) = call(
        &cloud,
        &kitchen,
        Method::POST,
        &format!("{path}/offer"),
        Some(offer.clone()),
    )
    .await;
    assert_eq!(got, 204);
    let (_, seen) = call(&cloud, &office, Method::GET, &path, None).await;
    assert_eq!(seen["offer"], offer);
    assert_eq!(
        call(
            &cloud,
            &kitchen,
            Method::POST,
            &format!("{path}/answer"),
            Some(answer.clone())
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(
            &cloud,
            &office,
            Method::POST,
            &format!("{path}/answer"),
            Some(answer.clone())
        )
        .await
        .0,
        204
    );
    // One answer per request: a second guess is refused.
    let (got, body) = call(
        &cloud,
        &office,
        Method::POST,
        &format!("{path}/answer"),
        Some(answer.clone()),
    )
    .await;
    assert_eq!((got, body["error"].as_str()), (409, Some("approval_spent")));
    assert_eq!(
        call(
            &cloud,
            &kitchen,
            Method::POST,
            &format!("{path}/offer"),
            Some(offer.clone())
        )
        .await
        .0,
        409
    );
    assert_eq!(
        call(
            &cloud,
            &kitchen,
            Method::POST,
            &format!("{path}/approval"),
            Some(approval.clone())
        )
        .await
        .0,
        204
    );
    let (_, done) = call(&cloud, &office, Method::GET, &path, None).await;
    assert_eq!(done["state"], "approved");
    assert_eq!(done["approval"], approval);
    // Approved is final; the list no longer shows it.
    assert_eq!(
        call(&cloud, &office, Method::DELETE, &path, None).await.0,
        409
    );
    let (_, list) = listed(&cloud, &kitchen).await;
    assert_eq!(list, json!([]));

    // A request lives 15 minutes.
    let (_, late) = ask_to_join(&cloud, &office, &newcomer).await;
    let late_path = format!(
        "/api/v1/family/join-requests/{}",
        late["id"].as_str().unwrap()
    );
    assert_eq!(
        call(&cloud, &office, Method::GET, &late_path, None).await.0,
        200
    );
    // The same computer asks again (a restarted app): the earlier request
    // still answers, but only the newest is listed.
    let (status, again) = ask_to_join(&cloud, &office, &newcomer).await;
    assert_eq!(status, 201);
    assert_eq!(
        call(&cloud, &office, Method::GET, &late_path, None).await.0,
        200
    );
    let (_, list) = listed(&cloud, &kitchen).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], again["id"]);
    cloud.advance(std::time::Duration::from_secs(16 * 60));
    // (The access tokens expired too: a fresh sign-in of the account asks.)
    let fresh = a.sign_in(&cloud, "Desk").await.unwrap().access;
    assert_eq!(
        call(&cloud, &fresh, Method::GET, &late_path, None).await.0,
        404
    );
    cloud.stop().await.unwrap();
}
