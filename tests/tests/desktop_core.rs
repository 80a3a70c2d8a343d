//! The desktop app's core against the real cloud over TLS: sign-in through
//! the cloud's pages (the browser step played by the test-only software
//! passkey), tokens in a real Secret Service keychain (run these tests under
//! `scripts/with-keychain`, which starts gnome-keyring in a private D-Bus
//! session), refresh, reuse revocation, sign-out, and the watch flows.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use waymark_app_core::alerts::{Alert, AlertPrefs, FamilyState};
use waymark_app_core::family::FamilyKeysView;
use waymark_app_core::family_keys::{FamilyKeys, KeyFile};
use waymark_app_core::family_watch::{FamilyWatch, Surface, system_clock};
use waymark_app_core::settings::TrustAnchor;
use waymark_app_core::{AppError, Browser, Core, Keychain, LiveEvent, Settings, Start};
use waymark_protocol::family_roster::RecoveryKey;
use waymark_protocol::signin::random_token;
use waymark_system_tests::*;

#[path = "desktop_core/safe_zones.rs"]
mod safe_zones;

/// Plays the system browser: loads the page the app opened, runs the passkey
/// ceremony with the parent's software authenticator, and follows the page's
/// redirect back to the app's loopback listener.
struct PasskeyBrowser {
    cloud: Arc<RemoteCloud>,
    parent: Arc<Mutex<Parent>>,
    /// Before the honest return, first call the loopback with a forged `state`.
    forge_first: bool,
    /// The loopback's answers (status, page text), in order.
    answers: mpsc::UnboundedSender<(u16, String)>,
}

impl Browser for PasskeyBrowser {
    fn open(&self, url: &str) -> Result<(), AppError> {
        let (cloud, parent, answers, forge) = (
            self.cloud.clone(),
            self.parent.clone(),
            self.answers.clone(),
            self.forge_first,
        );
        let url = url.to_owned();
        tokio::spawn(async move {
            if let Err(e) = visit(&cloud, &parent, &url, forge, &answers).await {
                let _ = answers.send((0, format!("browser failed: {e:#}")));
            }
        });
        Ok(())
    }
}

async fn visit(
    cloud: &RemoteCloud,
    parent: &Mutex<Parent>,
    url: &str,
    forge_first: bool,
    answers: &mpsc::UnboundedSender<(u16, String)>,
) -> anyhow::Result<()> {
    let page = cloud.client().get(url).send().await?.text().await?;
    let request_id = request_id_in(&page)?;
    let mut parent = parent.lock().await;
    let finished = if parent.credential_ids.is_empty() {
        parent
            .register(cloud, &request_id, Some("Rivera family"))
            .await?
    } else {
        let started = post_page(
            cloud,
            "/ceremony/sign-in/start",
            &json!({"request_id": request_id}),
        )
        .await?;
        let body = parent.assert(cloud.origin(), &started)?;
        post_page(cloud, "/ceremony/sign-in/finish", &body).await?
    };
    let back = url::Url::parse(finished["redirect"].as_str().context("no redirect")?)?;
    let plain = loopback_client();
    if forge_first {
        let mut forged = back.clone();
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        forged
            .query_pairs_mut()
            .clear()
            .append_pair("code", &code)
            .append_pair("state", "forged-state");
        let res = plain.get(forged).send().await?;
        answers.send((res.status().as_u16(), res.text().await?))?;
    }
    let res = plain.get(back).send().await?;
    answers.send((res.status().as_u16(), res.text().await?))?;
    Ok(())
}

struct App {
    core: Arc<Core>,
    browser: PasskeyBrowser,
    answers: mpsc::UnboundedReceiver<(u16, String)>,
    parent: Arc<Mutex<Parent>>,
    settings: Settings,
}

impl App {
    /// The same parent signs in on a second computer ("Office PC").
    async fn on_another_computer(&self, cloud: &TestCloud) -> Tokens {
        let mut parent = self.parent.lock().await;
        parent.sign_in(cloud, "Office PC").await.unwrap()
    }
}

/// Settings for this cloud with a keychain service of its own, so tests
/// running side by side never share an entry.
fn settings_for(cloud: &TestCloud) -> Settings {
    let ca = cloud.dir.path().join("cloud/ca/ca.pem");
    let mut s = Settings::for_local_cloud(&cloud.origin, &ca).unwrap();
    s.keychain_service = format!("waymark-test-{}", random_token(6));
    s.session_name = "Kitchen laptop".into();
    s.data_dir = cloud.dir.path().join(format!("app-{}", random_token(6)));
    s.manufacturer_cas = vec![cloud.factory_dir().join("manufacturer-ca.pem")];
    s
}

fn app(cloud: &TestCloud, settings: Settings) -> App {
    let (tx, rx) = mpsc::unbounded_channel();
    let parent = Arc::new(Mutex::new(Parent::new()));
    App {
        core: Arc::new(Core::new(settings.clone()).unwrap()),
        browser: PasskeyBrowser {
            cloud: Arc::new(RemoteCloud {
                origin: cloud.origin.clone(),
                addr: cloud.addr,
                ca_pem: cloud.ca_pem.clone(),
            }),
            parent: parent.clone(),
            forge_first: false,
            answers: tx,
        },
        answers: rx,
        parent,
        settings,
    }
}

/// The next live event, or a failure after 30 s (never a hung test).
async fn next_event(rx: &mut mpsc::UnboundedReceiver<LiveEvent>) -> LiveEvent {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("no live event within 30 s")
        .expect("the live follower stopped")
}

fn keychain(s: &Settings) -> Keychain {
    Keychain::new(&s.keychain_service, &s.cloud.origin().ascii_serialization())
}

async fn signed_up(cloud: &TestCloud) -> App {
    let mut a = app(cloud, settings_for(cloud));
    let me = a
        .core
        .sign_in(&a.browser, Start::CreateAccount)
        .await
        .unwrap();
    assert_eq!(me.display_name, "Rivera family");
    let (status, page) = a.answers.recv().await.unwrap();
    assert_eq!(status, 200, "{page}");
    a
}

#[tokio::test]
async fn sign_in_through_the_browser_keeps_the_refresh_token_in_the_keychain_only() {
    let cloud = TestCloud::start().await.unwrap();
    let mut a = signed_up(&cloud).await;

    let kept = keychain(&a.settings)
        .load()
        .await
        .unwrap()
        .expect("refresh token in the keychain");
    assert!(kept.len() >= 32);
    let sessions = a.core.sessions().await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].name, "Kitchen laptop");
    assert!(sessions[0].current);

    // A fresh start of the app: nothing in memory, so the keychain's refresh
    // token brings the sign-in back (and rotates).
    let restarted = Core::new(a.settings.clone()).unwrap();
    let me = restarted.restore().await.unwrap().expect("still signed in");
    assert_eq!(me.display_name, "Rivera family");
    let rotated = keychain(&a.settings).load().await.unwrap().unwrap();
    assert_ne!(rotated, kept, "refreshing stores the new refresh token");

    // Signing in again (no user name: the passkey says who) starts a second session.
    let me = a.core.sign_in(&a.browser, Start::SignIn).await.unwrap();
    assert_eq!(me.display_name, "Rivera family");
    assert_eq!(a.answers.recv().await.unwrap().0, 200);
    assert_eq!(a.core.sessions().await.unwrap().len(), 2);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_return_with_another_state_is_refused_and_the_real_one_accepted() {
    let cloud = TestCloud::start().await.unwrap();
    let mut a = app(&cloud, settings_for(&cloud));
    a.browser.forge_first = true;
    let me = a
        .core
        .sign_in(&a.browser, Start::CreateAccount)
        .await
        .unwrap();
    let (forged_status, forged_page) = a.answers.recv().await.unwrap();
    assert_eq!(forged_status, 400);
    assert!(
        forged_page.contains("not started by the Waymark app"),
        "{forged_page}"
    );
    assert_eq!(a.answers.recv().await.unwrap().0, 200);
    assert_eq!(me.display_name, "Rivera family");
    cloud.stop().await.unwrap();
}

/// A browser that opens nothing: the parent walked away.
struct IdleBrowser;
impl Browser for IdleBrowser {
    fn open(&self, _: &str) -> Result<(), AppError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_waiting_sign_in_can_be_cancelled_or_times_out_and_keeps_nothing() {
    let cloud = TestCloud::start().await.unwrap();
    let mut settings = settings_for(&cloud);
    settings.sign_in_timeout = Duration::from_secs(1);
    let a = app(&cloud, settings);

    let core = a.core.clone();
    let waiting = tokio::spawn(async move { core.sign_in(&IdleBrowser, Start::SignIn).await });
    // Cancel until the waiting sign-in has seen it (it may not be waiting yet).
    for _ in 0..1500 {
        if waiting.is_finished() {
            break;
        }
        a.core.cancel_sign_in();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        waiting.is_finished(),
        "cancel did not stop the waiting sign-in"
    );
    assert!(matches!(
        waiting.await.unwrap(),
        Err(AppError::SignInCancelled)
    ));

    let timed_out = a.core.sign_in(&IdleBrowser, Start::SignIn).await;
    assert!(
        matches!(timed_out, Err(AppError::SignInTimedOut)),
        "{timed_out:?}"
    );
    assert_eq!(keychain(&a.settings).load().await.unwrap(), None);
    assert!(a.core.restore().await.unwrap().is_none());
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_replayed_refresh_token_ends_the_session_and_the_app_returns_to_sign_in() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let stolen = keychain(&a.settings).load().await.unwrap().unwrap();

    // The honest app refreshes (a restart), rotating the token it holds.
    let app2 = Core::new(a.settings.clone()).unwrap();
    assert!(app2.restore().await.unwrap().is_some());
    assert!(app2.watches().await.unwrap().is_empty());

    // The thief replays the old refresh token: refused, and the cloud ends the session.
    let res = refresh(&cloud, &stolen).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // The app's next refresh finds the session over: signed out, keychain emptied.
    let again = Core::new(a.settings.clone()).unwrap();
    assert!(again.restore().await.unwrap().is_none());
    assert!(matches!(again.watches().await, Err(AppError::SignedOut)));
    assert_eq!(keychain(&a.settings).load().await.unwrap(), None);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_ended_from_another_computer_signs_this_app_out() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    // The same parent on a second computer.
    let other = a.on_another_computer(&cloud).await;
    let here = a.core.me().await.unwrap().session_id;
    let (status, _) = api(
        &cloud,
        reqwest::Method::DELETE,
        &format!("/api/v1/sessions/{here}"),
        &other.access,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    // The access token in memory is refused, the refresh fails, the app is signed out.
    assert!(matches!(a.core.watches().await, Err(AppError::SignedOut)));
    assert_eq!(keychain(&a.settings).load().await.unwrap(), None);
    // The other computer is untouched.
    let (status, _) = api(
        &cloud,
        reqwest::Method::GET,
        "/api/v1/me",
        &other.access,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn sign_out_revokes_at_the_cloud_and_deletes_the_keychain_entry() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let refresh_token = keychain(&a.settings).load().await.unwrap().unwrap();
    a.core.sign_out().await.unwrap();
    assert_eq!(keychain(&a.settings).load().await.unwrap(), None);
    assert!(matches!(a.core.watches().await, Err(AppError::SignedOut)));
    let res = refresh(&cloud, &refresh_token).await.unwrap();
    assert_eq!(
        res.status(),
        400,
        "the cloud no longer honours the old refresh token"
    );
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn ending_this_computers_session_from_the_account_screen_signs_out() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let other = a.on_another_computer(&cloud).await;
    let sessions = a.core.sessions().await.unwrap();
    let office = sessions.iter().find(|s| s.name == "Office PC").unwrap();
    a.core.end_session(&office.id).await.unwrap();
    let (status, _) = api(
        &cloud,
        reqwest::Method::GET,
        "/api/v1/me",
        &other.access,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 401, "the ended computer is signed out");
    assert_eq!(a.core.sessions().await.unwrap().len(), 1, "this one is not");

    let mine = a.core.me().await.unwrap().session_id;
    a.core.end_session(&mine).await.unwrap();
    assert_eq!(keychain(&a.settings).load().await.unwrap(), None);
    assert!(a.core.restore().await.unwrap().is_none());
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn pairing_history_live_rename_and_revoke_through_the_core() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let watch = TestWatch::new(&cloud).unwrap();

    // Typed by a person: lower case, spaces instead of dashes.
    let paired = pair_via_app(&a.core, &watch, |c| c.to_lowercase().replace('-', " "))
        .await
        .unwrap();
    assert_eq!(paired.id, watch.id());
    // The watch holds the family's current key epoch, from this computer.
    let bundle = waymark_watch::family::load(&watch.path()).expect("the family bundle");
    let account = a.core.me().await.unwrap().account_id;
    let keys = keys_of(&a, account.as_str()).await;
    assert_eq!(Some(bundle.epoch_public), keys.epoch_public(bundle.epoch));
    let again = pair_via_app(&a.core, &watch, str::to_owned)
        .await
        .unwrap_err();
    assert_eq!(again.code(), "already_yours");
    assert_eq!(a.core.pair("7KQM").await.unwrap_err().code(), "bad_code");

    // Live: a fix uploaded by the watch arrives on the stream.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let core = a.core.clone();
    let follower = tokio::spawn(async move { core.follow_live(move |e| drop(tx.send(e))).await });
    assert!(matches!(next_event(&mut rx).await, LiveEvent::Connected));
    let t0 = now_ms() - 60_000;
    for i in 0..3 {
        watch
            .reporter
            .record(fix_at(t0 + i as i64 * 10_000, i))
            .unwrap();
    }
    watch.reporter.drain().await.unwrap();
    let LiveEvent::Fix(live) = next_event(&mut rx).await else {
        panic!("expected a fix")
    };
    assert_eq!(live.watch_id, watch.id());

    let trail = a.core.history(watch.id(), t0 - 1, now_ms()).await.unwrap();
    assert_eq!(trail.fixes.len(), 3);
    assert!(
        trail.fixes.windows(2).all(|w| w[0].t < w[1].t),
        "oldest first"
    );
    assert!(!trail.truncated);

    a.core
        .rename_watch(watch.id(), "Maya's watch")
        .await
        .unwrap();
    let list = a.core.watches().await.unwrap();
    assert_eq!(list[0].name, "Maya's watch");
    assert_eq!(list[0].battery, Some(90));

    // Another family's watch answers exactly like no watch at all.
    let stranger = Parent::sign_up(&cloud, "Other family").await.unwrap();
    let theirs = TestWatch::new(&cloud).unwrap();
    pair(&cloud, &stranger, &theirs).await.unwrap();
    let not_yours = a.core.history(theirs.id(), 0, now_ms()).await.unwrap_err();
    let no_such = a
        .core
        .history("00000000000000000000000000000000", 0, now_ms())
        .await
        .unwrap_err();
    assert_eq!(not_yours.code(), "not_found");
    assert_eq!(not_yours.to_string(), no_such.to_string());
    assert_eq!(
        a.core
            .revoke_watch(theirs.id(), false)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );

    a.core.revoke_watch(watch.id(), false).await.unwrap();
    assert!(a.core.watches().await.unwrap().is_empty());

    // The activity log names each change and the computer that made it.
    let log = a.core.activity().await.unwrap();
    for kind in [
        "watch.paired",
        "watch.renamed",
        "watch.revoked",
        "session.signed_in",
    ] {
        let entry = log
            .iter()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("{kind} missing: {log:?}"));
        assert_eq!(
            entry.actor_session_name.as_deref(),
            Some("Kitchen laptop"),
            "{kind}"
        );
    }
    assert!(
        log.iter().all(|e| !e.detail.contains("52.52")),
        "no location in the log"
    );
    follower.abort();
    cloud.stop().await.unwrap();
}

/// Puts `signed` (a signed offer, as JSON) in place of the offer at `locator`,
/// as a malicious cloud operator could.
async fn replace_offer(cloud: &TestCloud, locator: &str, signed: String) {
    let db = cloud.database().await.unwrap();
    sqlx::query("UPDATE pairing_offers SET signed_offer = $1 WHERE locator = $2")
        .bind(signed)
        .bind(locator)
        .execute(&db)
        .await
        .unwrap();
}

/// A malicious cloud's edit of the batch `seq` of `watch` as it serves it:
/// one character of its ciphertext changed.
async fn alter_batch(cloud: &TestCloud, watch: &TestWatch, seq: i64) {
    let db = cloud.database().await.unwrap();
    let body: String =
        sqlx::query_scalar("SELECT body FROM batches WHERE device_id = $1 AND seq = $2")
            .bind(watch.id())
            .bind(seq)
            .fetch_one(&db)
            .await
            .unwrap();
    let mut body: Value = serde_json::from_str(&body).unwrap();
    let c = body["batch"]["ciphertext"].as_str().unwrap().to_owned();
    let flipped = if c.starts_with('A') { "B" } else { "A" };
    body["batch"]["ciphertext"] = json!(format!("{flipped}{}", &c[1..]));
    sqlx::query("UPDATE batches SET body = $1 WHERE device_id = $2 AND seq = $3")
        .bind(body.to_string())
        .bind(watch.id())
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_app_draws_only_what_the_watch_sealed_and_says_what_the_cloud_changed() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let watch = TestWatch::new(&cloud).unwrap();
    pair_via_app(&a.core, &watch, str::to_owned).await.unwrap();
    let t0 = now_ms() - 60_000;
    let sent: Vec<_> = (0..4)
        .map(|i| fix_at(t0 + i64::from(i) * 1_000, i))
        .collect();
    for f in &sent {
        watch.reporter.record(*f).unwrap();
        watch.reporter.drain().await.unwrap();
    }
    // The honest cloud: everything, nothing said.
    let trail = a.core.history(watch.id(), t0 - 1, now_ms()).await.unwrap();
    assert_eq!((trail.fixes, trail.notices.len()), (sent.clone(), 0));
    let list = a.core.watches().await.unwrap();
    assert_eq!(
        (list[0].latest, list[0].report_problem.as_deref()),
        (Some(sent[3]), None)
    );

    // The cloud changes report 2 and withholds report 3.
    alter_batch(&cloud, &watch, 2).await;
    let db = cloud.database().await.unwrap();
    sqlx::query("DELETE FROM batches WHERE device_id = $1 AND seq = 3")
        .bind(watch.id())
        .execute(&db)
        .await
        .unwrap();
    let trail = a.core.history(watch.id(), t0 - 1, now_ms()).await.unwrap();
    assert_eq!(
        trail.fixes,
        vec![sent[0], sent[3]],
        "only what the watch sealed is drawn"
    );
    let notices = trail.notices.join(" ");
    assert!(notices.contains("Report 3 is missing"), "{notices}");
    assert!(
        notices.contains("changed after the watch sent them"),
        "{notices}"
    );

    // The latest report changed: the list shows no place for it, and says why.
    alter_batch(&cloud, &watch, 4).await;
    let list = a.core.watches().await.unwrap();
    assert_eq!(list[0].latest, None);
    assert_eq!(
        list[0].report_problem.as_deref(),
        Some(waymark_app_core::reports::ALTERED)
    );
}

/// How many offers have been answered (the app sent something to a watch).
async fn answered_offers(cloud: &TestCloud) -> i64 {
    let db = cloud.database().await.unwrap();
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM pairing_offers WHERE answered_at IS NOT NULL")
            .fetch_one(&db)
            .await
            .unwrap();
    n
}

#[tokio::test]
async fn the_app_pairs_only_a_genuine_offer_and_only_with_the_family_s_keys() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let watch = TestWatch::new(&cloud).unwrap();
    a.core.family_keys().await.unwrap();

    // A computer still waiting for approval holds no key to give a watch.
    let office = second_computer(&cloud, &a).await;
    assert_eq!(
        office.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval
    );
    let shown = watch.show_code().await.unwrap();
    let code = shown.code.display();
    assert_eq!(
        office.core.pair(&code).await.unwrap_err().code(),
        "not_trusted"
    );

    // The cloud shows a watch from a maker this app does not trust under
    // the code (the cloud itself would refuse its offer; a cloud that lies
    // does not): the app refuses before it answers anything.
    let rogue_factory = cloud.dir.path().join("rogue-factory");
    waymark_cloud::factory::init(&rogue_factory, false).unwrap();
    let rogue = TestWatch::made_by(&cloud, &rogue_factory).unwrap();
    let (_, first) = waymark_watch::pairing::new_code(rogue.id());
    let offer =
        waymark_watch::pairing::offer_for(rogue.id(), &shown.code, &first, now_ms(), 600_000);
    let signature = rogue
        .reporter
        .watch
        .keys
        .sign(&offer.signing_bytes())
        .unwrap();
    let forged = json!({
        "offer": offer,
        "certificate": waymark_protocol::signing::b64(&rogue.reporter.watch.certificate_der),
        "signature": waymark_protocol::signing::b64(&signature),
    });
    let locator = shown.code.locator().as_str().to_owned();
    replace_offer(&cloud, &locator, forged.to_string()).await;
    assert_eq!(
        a.core.pair(&code).await.unwrap_err().code(),
        "untrusted_watch"
    );

    // A genuine watch's offer, moved under this code: signed for another
    // locator, so refused too.
    let other = TestWatch::new(&cloud).unwrap();
    let other_code = other.show_code().await.unwrap().code;
    let db = cloud.database().await.unwrap();
    let (genuine,): (String,) =
        sqlx::query_as("SELECT signed_offer FROM pairing_offers WHERE locator = $1")
            .bind(other_code.locator().as_str())
            .fetch_one(&db)
            .await
            .unwrap();
    replace_offer(&cloud, &locator, genuine).await;
    assert_eq!(
        a.core.pair(&code).await.unwrap_err().code(),
        "untrusted_watch"
    );
    assert_eq!(answered_offers(&cloud).await, 0, "nothing was answered");
    assert_eq!(cloud.store.count("bindings").await.unwrap(), 0);

    // A wrong code typed in the app: both sides say so, nothing is bound.
    let shown = watch.show_code().await.unwrap();
    let typed = shown.code.display();
    let wrong = format!(
        "{}{}",
        &typed[..typed.len() - 1],
        if typed.ends_with('0') { '1' } else { '0' }
    );
    let (app_side, watch_side) = tokio::join!(a.core.pair(&wrong), watch.take_answer(shown));
    assert_eq!(app_side.unwrap_err().code(), "pairing_code_wrong");
    assert_eq!(
        watch_side.unwrap(),
        waymark_watch::pairing::Waited::WrongCode
    );
    assert_eq!(cloud.store.count("bindings").await.unwrap(), 0);

    // The honest path: the watch's own code, typed on the trusted computer.
    let paired = pair_via_app(&a.core, &watch, str::to_owned).await.unwrap();
    assert_eq!(paired.id, watch.id());
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_picture_of_the_watchs_qr_code_gives_its_code() {
    let cloud = TestCloud::start().await.unwrap();
    let watch = TestWatch::new(&cloud).unwrap();
    let code = watch.show_code().await.unwrap().code.display();
    let parsed = waymark_protocol::pairing::PairingCode::parse(&code).unwrap();
    let png = watch.dir.path().join("qr.png");
    waymark_watch::pairing::qr_png(&parsed, &png).unwrap();
    let read = waymark_app_core::pairing_picture::code_from_picture(&std::fs::read(&png).unwrap())
        .unwrap();
    assert_eq!(read, code);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn the_app_trusts_only_the_configured_certificate() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    assert!(a.core.me().await.is_ok());

    // The public WebPKI roots do not lead to the local CA: nothing is sent.
    let mut public = a.settings.clone();
    public.anchor = TrustAnchor::WebPki;
    let err = Core::new(public).unwrap().restore().await.unwrap_err();
    assert_eq!(err.code(), "untrusted");

    // A pin that does not match the server's key is refused; the right one works.
    let mut wrong_pin = a.settings.clone();
    wrong_pin.pin_sha256 = Some([0u8; 32]);
    assert_eq!(
        Core::new(wrong_pin)
            .unwrap()
            .restore()
            .await
            .unwrap_err()
            .code(),
        "untrusted"
    );
    let mut right_pin = a.settings.clone();
    right_pin.pin_sha256 = Some(server_key_hash(&cloud));
    assert!(
        Core::new(right_pin)
            .unwrap()
            .restore()
            .await
            .unwrap()
            .is_some()
    );
    cloud.stop().await.unwrap();
}

fn server_key_hash(cloud: &TestCloud) -> [u8; 32] {
    use sha2::Digest;
    let pem = std::fs::read(cloud.dir.path().join("cloud/tls/server.pem")).unwrap();
    let der = CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    sha2::Sha256::digest(cert.public_key().raw).into()
}

#[tokio::test]
async fn when_the_cloud_is_down_the_app_says_offline_and_the_live_stream_comes_back() {
    let mut cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let core = a.core.clone();
    let follower = tokio::spawn(async move { core.follow_live(move |e| drop(tx.send(e))).await });
    assert!(matches!(next_event(&mut rx).await, LiveEvent::Connected));

    cloud.halt().await.unwrap();
    let err = a.core.watches().await.unwrap_err();
    assert_eq!(err.code(), "offline");
    assert!(err.to_string().contains("Can't reach the Waymark cloud"));
    let LiveEvent::Offline { message } = next_event(&mut rx).await else {
        panic!("expected offline")
    };
    assert!(!message.is_empty());
    // Still signed in: being offline is not being signed out.
    assert!(keychain(&a.settings).load().await.unwrap().is_some());

    cloud.resume().await.unwrap();
    loop {
        match next_event(&mut rx).await {
            LiveEvent::Connected => break,
            LiveEvent::Offline { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(a.core.watches().await.unwrap().is_empty());
    follower.abort();
    cloud.stop().await.unwrap();
}

/// What the app would show on the desktop, recorded.
#[derive(Default)]
struct Shown {
    alerts: std::sync::Mutex<Vec<Alert>>,
    states: std::sync::Mutex<Vec<FamilyState>>,
}

struct Recorder(Arc<Shown>);

impl Surface for Recorder {
    fn alert(&self, alert: &Alert) {
        self.0.alerts.lock().unwrap().push(alert.clone());
    }
    fn family_state(&self, state: &FamilyState, _paused_until: Option<i64>) {
        self.0.states.lock().unwrap().push(state.clone());
    }
}

#[tokio::test]
async fn family_alerts_come_from_the_real_cloud_and_a_session_ended_elsewhere_ends_the_follower() {
    let cloud = TestCloud::start().await.unwrap();
    let mut settings = settings_for(&cloud);
    settings.alert_poll = Duration::from_millis(300);
    let mut a = app(&cloud, settings);
    a.core
        .sign_in(&a.browser, Start::CreateAccount)
        .await
        .unwrap();
    assert_eq!(a.answers.recv().await.unwrap().0, 200);
    let watch = TestWatch::new(&cloud).unwrap();
    let paired = pair_via_app(&a.core, &watch, str::to_owned).await.unwrap();
    // Its last report: 20 minutes ago, with 9 % battery left.
    let t0 = now_ms() - 20 * 60_000;
    let low = waymark_protocol::report::Fix {
        bat: 9,
        ..fix_at(t0, 0)
    };
    watch.reporter.record(low).unwrap();
    watch.reporter.drain().await.unwrap();

    let shown = Arc::new(Shown::default());
    let family = Arc::new(FamilyWatch::new(
        AlertPrefs::default(),
        Box::new(Recorder(shown.clone())),
        system_clock(),
    ));
    family.poll(&a.core).await.unwrap();
    let alerts = shown.alerts.lock().unwrap().clone();
    assert!(
        alerts.contains(&Alert::Quiet {
            watch: paired.name.clone(),
            minutes: 15
        }),
        "{alerts:?}"
    );
    assert!(
        alerts.contains(&Alert::BatteryLow {
            watch: paired.name.clone(),
            percent: 9
        }),
        "{alerts:?}"
    );
    assert_eq!(
        alerts.len(),
        2,
        "this computer's own sign-in and pairing are not news: {alerts:?}"
    );
    assert!(matches!(family.state(), FamilyState::Alert { .. }));

    // Another computer signs in: told once, by its name.
    let other = a.on_another_computer(&cloud).await;
    family.poll(&a.core).await.unwrap();
    family.poll(&a.core).await.unwrap();
    let alerts = shown.alerts.lock().unwrap().clone();
    assert_eq!(
        alerts[2..],
        [Alert::NewComputer {
            computer: "Office PC".into()
        }],
        "{alerts:?}"
    );

    // That computer ends this one's session: following the family ends, and
    // the window is told it is signed out.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (core, follower_family) = (a.core.clone(), family.clone());
    let follower = tokio::spawn(async move {
        follower_family
            .follow(&core, move |e| drop(tx.send(e)))
            .await
    });
    let here = a.core.me().await.unwrap().session_id;
    let path = format!("/api/v1/sessions/{here}");
    let (status, _) = api(&cloud, reqwest::Method::DELETE, &path, &other.access, None)
        .await
        .unwrap();
    assert_eq!(status, 204);
    tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("the follower ends after the session ends")
        .unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(
        events.iter().any(|e| matches!(e, LiveEvent::SignedOut)),
        "{events:?}"
    );
    assert_eq!(family.state(), FamilyState::SignedOut);
    cloud.stop().await.unwrap();
}

/// A second computer of the same parent: its own keychain entries and data
/// folder, signing in with the same passkey.
async fn second_computer(cloud: &TestCloud, first: &App) -> App {
    let mut settings = settings_for(cloud);
    settings.session_name = "Office PC".into();
    let mut second = app(cloud, settings);
    second.parent = first.parent.clone();
    second.browser.parent = first.parent.clone();
    second
        .core
        .sign_in(&second.browser, Start::SignIn)
        .await
        .unwrap();
    assert_eq!(second.answers.recv().await.unwrap().0, 200);
    second
}

fn key_file(a: &App, account: &str) -> KeyFile {
    KeyFile::new(
        &a.settings.data_dir,
        &a.settings.keychain_service,
        &a.settings.cloud.origin().ascii_serialization(),
        account,
    )
}

/// The family keys `who`'s key file holds.
async fn keys_of(who: &App, account: &str) -> FamilyKeys {
    key_file(who, account).load().await.unwrap().unwrap()
}

/// One fix a watch sealed to the family's key of `epoch`.
struct SealedFix {
    setup: waymark_protocol::sealed_report::SetupRecord,
    batch: waymark_protocol::sealed_report::SealedBatch,
    fix: waymark_protocol::report::Fix,
}

fn sealed_fix(keys: &FamilyKeys, epoch: u32, lat: f64) -> SealedFix {
    use waymark_protocol::location_sealing::WatchSealer;
    let (sealer, setup) =
        WatchSealer::start("watch-1", epoch, &keys.epoch_public(epoch).unwrap()).unwrap();
    let fix = waymark_protocol::report::Fix {
        t: 1_700_000_000_000,
        lat,
        lon: 11.576_124,
        acc: 6.0,
        bat: 64,
    };
    let batch = sealer.seal(
        1,
        0,
        waymark_protocol::sealed_report::ChainHash::GENESIS,
        &[fix],
    );
    SealedFix { setup, batch, fix }
}

/// True if `keys` open the sealed fix to exactly what the watch sealed.
fn opens(keys: &FamilyKeys, sealed: &SealedFix) -> bool {
    let mut opener = keys.opener();
    opener.add_setup(&sealed.setup).is_ok()
        && opener.open(&sealed.batch).ok() == Some(vec![sealed.fix])
}

#[tokio::test]
async fn the_first_computer_founds_the_family_and_a_later_one_waits_for_approval() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;

    // The first computer of the account founds the family: its keys, roster
    // version 1 and epoch 0 sealed to the recovery key, which it shows.
    let FamilyKeysView::Trusted {
        computers,
        recovery_key: Some(shown),
    } = a.core.family_keys().await.unwrap()
    else {
        panic!("the first computer founds the family and shows its recovery key");
    };
    assert_eq!(computers, vec!["Kitchen laptop".to_owned()]);
    assert!(RecoveryKey::parse(&shown).is_some(), "{shown}");
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 1);
    assert_eq!(cloud.store.count("epoch_key_blobs").await.unwrap(), 1);
    // The key file on disk is sealed: the recovery key is not in it as text.
    let on_disk = std::fs::read(key_file(&a, account.as_str()).path()).unwrap();
    let compact = shown.replace('-', "");
    assert!(
        !on_disk
            .windows(compact.len())
            .any(|w| w == compact.as_bytes())
    );
    assert!(!on_disk.windows(shown.len()).any(|w| w == shown.as_bytes()));

    // Shown again after a restart, until the parent says it is saved.
    let restarted = Core::new(a.settings.clone()).unwrap();
    restarted.restore().await.unwrap().expect("still signed in");
    let again = restarted.family_keys().await.unwrap();
    assert!(matches!(&again, FamilyKeysView::Trusted { recovery_key: Some(k), .. } if *k == shown));
    let dir = tempfile::tempdir().unwrap();
    let saved = restarted.save_recovery_key(dir.path()).await.unwrap();
    assert!(std::fs::read_to_string(&saved).unwrap().contains(&shown));
    restarted.recovery_key_saved().await.unwrap();
    assert_eq!(
        restarted.family_keys().await.unwrap(),
        FamilyKeysView::Trusted {
            computers: vec!["Kitchen laptop".into()],
            recovery_key: None
        }
    );
    assert!(restarted.save_recovery_key(dir.path()).await.is_err());
    // Nothing new was published for the same family.
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 1);

    // A second computer of the same account gets no key from signing in.
    let office = second_computer(&cloud, &a).await;
    assert_eq!(
        office.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval
    );
    assert_eq!(
        office.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval,
        "and it stays waiting: it never founds a second family"
    );
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 1);
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn a_founding_that_lost_the_race_waits_and_a_cloud_chain_that_departs_is_refused() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;
    let office = second_computer(&cloud, &a).await;

    // The office computer founded a family of its own but crashed before the
    // cloud took it; meanwhile the kitchen computer founded the account's.
    let mut lost = FamilyKeys::new_computer();
    lost.found_family("Office PC", account.as_str());
    key_file(&office, account.as_str())
        .save(&lost)
        .await
        .unwrap();
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { .. }
    ));
    // Its unpublished family is dropped; it waits like any new computer.
    assert_eq!(
        office.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval
    );

    // A cloud that swaps the family's first roster for another one (here
    // the office computer's lost one) is refused by the computer that holds
    // the keys, which keeps them.
    let (honest,): (String,) = sqlx::query_as("SELECT roster FROM family_rosters")
        .fetch_one(cloud.store.pool())
        .await
        .unwrap();
    let swapped = serde_json::to_string(&lost.rosters()[0]).unwrap();
    sqlx::query("UPDATE family_rosters SET roster = $1")
        .bind(&swapped)
        .execute(cloud.store.pool())
        .await
        .unwrap();
    let err = a.core.family_keys().await.unwrap_err();
    assert_eq!(err.code(), "family_roster_refused", "{err}");
    sqlx::query("UPDATE family_rosters SET roster = $1")
        .bind(&honest)
        .execute(cloud.store.pool())
        .await
        .unwrap();
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { .. }
    ));
    cloud.stop().await.unwrap();
}

/// The trusted computer approves request `id` while the new one types
/// `typed`; both outcomes, trusted side first.
async fn approve(
    trusted: &App,
    newcomer: &App,
    id: &str,
    typed: Option<&str>,
) -> (Result<(), AppError>, Result<FamilyKeysView, AppError>) {
    let shown = trusted.core.start_approval(id).await.unwrap();
    assert_eq!(shown.len(), 12, "{shown}");
    let core = trusted.core.clone();
    let id = id.to_owned();
    let finishing = tokio::spawn(async move { core.finish_approval(&id).await });
    let entered = newcomer
        .core
        .enter_approval_code(typed.unwrap_or(&shown))
        .await;
    (finishing.await.unwrap(), entered)
}

async fn the_request(trusted: &App) -> String {
    let requests = trusted.core.join_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].name, "Office PC");
    assert_eq!(requests[0].member_name, None, "the parent's own computer");
    requests[0].id.clone()
}

#[tokio::test]
async fn a_second_computer_gets_the_keys_only_with_the_code_the_first_one_shows() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;
    a.core.family_keys().await.unwrap();
    let office = second_computer(&cloud, &a).await;
    assert_eq!(
        office.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval
    );
    // A computer without the keys cannot approve anyone.
    assert_eq!(
        office
            .core
            .start_approval(&the_request(&a).await)
            .await
            .unwrap_err()
            .code(),
        "not_trusted"
    );

    // A wrong code: refused on both screens, nothing shared, the request spent.
    let (trusted, newcomer) =
        approve(&a, &office, &the_request(&a).await, Some("0000-0000-00")).await;
    assert_eq!(trusted.unwrap_err().code(), "approval_code_wrong");
    assert_eq!(newcomer.unwrap_err().code(), "approval_code_wrong");
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 1);
    assert!(a.core.join_requests().await.unwrap().is_empty());

    // The cloud puts its own key in the new computer's request: the
    // exchange binds the real keys, so the right code fails too.
    assert_eq!(
        office.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval,
        "the waiting computer asks again"
    );
    let impostor = waymark_protocol::family_roster::FamilyKeyPair::generate();
    sqlx::query("UPDATE join_requests SET signing = $1, sealing = $2")
        .bind(waymark_protocol::signing::b64(&impostor.signing_public().0))
        .bind(waymark_protocol::signing::b64(&impostor.sealing_public().0))
        .execute(cloud.store.pool())
        .await
        .unwrap();
    let (trusted, newcomer) = approve(&a, &office, &the_request(&a).await, None).await;
    assert_eq!(trusted.unwrap_err().code(), "approval_code_wrong");
    assert_eq!(newcomer.unwrap_err().code(), "approval_code_wrong");
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 1);

    // Another change of the family reaches the cloud first (as another
    // computer's approval would): the cloud refuses the kitchen laptop's
    // version, nothing is shared, and its key file keeps the chain the cloud
    // holds, so it takes the other change instead of refusing the cloud.
    office.core.family_keys().await.unwrap();
    let mut elsewhere = keys_of(&a, account.as_str()).await;
    let phone = FamilyKeys::new_computer();
    elsewhere
        .approve(
            "Phone",
            account.as_str(),
            &phone.entry("Phone", account.as_str()),
        )
        .unwrap();
    let competing = elsewhere.update_for(2).unwrap();
    let me = a.core.me().await.unwrap();
    cloud
        .store
        .add_roster(
            &waymark_protocol::ids::FamilyId::parse(account.as_str()).unwrap(),
            &competing,
            &waymark_protocol::ids::SessionId::parse(&me.session_id).unwrap(),
        )
        .await
        .unwrap();
    let (trusted, newcomer) = approve(&a, &office, &the_request(&a).await, None).await;
    assert_eq!(trusted.unwrap_err().code(), "roster_conflict");
    assert!(newcomer.is_err());
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { computers, .. }
            if computers == vec!["Kitchen laptop".to_owned(), "Phone".to_owned()]
    ));
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 2);

    // The honest approval: the code shown on the kitchen laptop, typed on the office PC.
    office.core.family_keys().await.unwrap();
    let (trusted, newcomer) = approve(&a, &office, &the_request(&a).await, None).await;
    trusted.unwrap();
    let all = vec![
        "Kitchen laptop".to_owned(),
        "Phone".to_owned(),
        "Office PC".to_owned(),
    ];
    assert_eq!(
        newcomer.unwrap(),
        FamilyKeysView::Trusted {
            computers: all.clone(),
            recovery_key: None
        }
    );
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 3);
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { computers, .. } if computers == all
    ));
    // Both computers open what a watch seals to the family's key.
    let kitchen_keys = keys_of(&a, account.as_str()).await;
    let office_keys = keys_of(&office, account.as_str()).await;
    let sealed = sealed_fix(&kitchen_keys, kitchen_keys.current_epoch().unwrap(), 48.137);
    assert!(opens(&kitchen_keys, &sealed) && opens(&office_keys, &sealed));
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn the_recovery_key_restores_the_family_on_a_new_computer_and_nothing_else_does() {
    use waymark_protocol::family_roster::EpochKeyBlob;
    use waymark_protocol::location_sealing::LocationSecretKey;
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;
    let FamilyKeysView::Trusted {
        recovery_key: Some(shown),
        ..
    } = a.core.family_keys().await.unwrap()
    else {
        panic!("founded with a recovery key");
    };
    let recovery = RecoveryKey::parse(&shown).unwrap();
    // Every computer that held the keys is lost; a new one signs in.
    let office = second_computer(&cloud, &a).await;
    assert_eq!(
        office.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval
    );
    let code = |r: Result<FamilyKeysView, AppError>| r.unwrap_err().code().to_owned();

    // Not a recovery key, and another family's (or a guessed) one: refused, nothing published.
    assert_eq!(
        code(office.core.restore_with_recovery_key("not a key").await),
        "bad_recovery_key"
    );
    let guess = RecoveryKey::generate().display();
    assert_eq!(
        code(office.core.restore_with_recovery_key(&guess).await),
        "recovery_key_wrong"
    );
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 1);

    // The cloud swaps in an epoch key of its own, sealed to the recovery
    // key's public half (anyone can seal to it): the anchor the recovery key
    // signed at founding does not vouch for it, so it is refused.
    let (honest,): (String,) = sqlx::query_as("SELECT blob FROM epoch_key_blobs")
        .fetch_one(cloud.store.pool())
        .await
        .unwrap();
    let (cloud_key, _) = LocationSecretKey::generate();
    let forged = EpochKeyBlob::seal(0, &cloud_key, &recovery.public().sealing);
    sqlx::query("UPDATE epoch_key_blobs SET blob = $1")
        .bind(serde_json::to_string(&forged).unwrap())
        .execute(cloud.store.pool())
        .await
        .unwrap();
    assert_eq!(
        code(office.core.restore_with_recovery_key(&shown).await),
        "family_roster_refused"
    );
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 1);
    sqlx::query("UPDATE epoch_key_blobs SET blob = $1")
        .bind(&honest)
        .execute(cloud.store.pool())
        .await
        .unwrap();

    // The family's own recovery key, typed loosely: the keys are back.
    let typed = shown.to_lowercase().replace('-', " ");
    let both = vec!["Kitchen laptop".to_owned(), "Office PC".to_owned()];
    assert_eq!(
        office.core.restore_with_recovery_key(&typed).await.unwrap(),
        FamilyKeysView::Trusted {
            computers: both.clone(),
            recovery_key: None
        }
    );
    assert_eq!(cloud.store.count("family_rosters").await.unwrap(), 2);
    // The kitchen laptop (found again) takes the version the recovery key signed.
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { computers, .. } if computers == both
    ));
    let kitchen_keys = keys_of(&a, account.as_str()).await;
    let office_keys = keys_of(&office, account.as_str()).await;
    let sealed = sealed_fix(&kitchen_keys, 0, 48.137);
    assert!(
        opens(&office_keys, &sealed),
        "the restored computer reads the watch"
    );
    cloud.stop().await.unwrap();
}

/// A computer of the same parent named `name`, signed in and approved by `trusted`.
async fn approved_computer(cloud: &TestCloud, trusted: &App, name: &str) -> App {
    let mut settings = settings_for(cloud);
    settings.session_name = name.into();
    let mut other = app(cloud, settings);
    other.parent = trusted.parent.clone();
    other.browser.parent = trusted.parent.clone();
    other
        .core
        .sign_in(&other.browser, Start::SignIn)
        .await
        .unwrap();
    assert_eq!(other.answers.recv().await.unwrap().0, 200);
    assert_eq!(
        other.core.family_keys().await.unwrap(),
        FamilyKeysView::WaitingForApproval
    );
    let requests = trusted.core.join_requests().await.unwrap();
    let id = requests.iter().find(|r| r.name == name).unwrap().id.clone();
    let (done, entered) = approve(trusted, &other, &id, None).await;
    done.unwrap();
    assert!(matches!(entered.unwrap(), FamilyKeysView::Trusted { .. }));
    other
}

#[tokio::test]
async fn a_paired_watch_follows_the_family_s_new_key_and_refuses_a_forged_switch() {
    use waymark_watch::family::Followed;
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;
    let watch = TestWatch::new(&cloud).unwrap();
    pair_via_app(&a.core, &watch, str::to_owned).await.unwrap();
    assert_eq!(
        watch.keep_family_in_step().await.unwrap(),
        Followed::Unchanged
    );
    // A second computer joins: the watch takes the roster naming it.
    let office = approved_computer(&cloud, &a, "Office PC").await;
    assert_eq!(
        watch.keep_family_in_step().await.unwrap(),
        Followed::Advanced {
            roster_version: 2,
            epoch: 0
        }
    );
    // Its session ends; the kitchen laptop replaces the family's key.
    let office_session = office.core.me().await.unwrap().session_id;
    a.core.end_session(&office_session).await.unwrap();
    a.core.family_keys().await.unwrap();
    let kitchen = keys_of(&a, account.as_str()).await;
    assert_eq!(kitchen.current_epoch(), Some(1));
    // Until the watch takes the switch it seals to epoch 0, and the app says so.
    let t0 = now_ms() - 60_000;
    let before = fix_at(t0, 1);
    watch.reporter.record(before).unwrap();
    watch.reporter.drain().await.unwrap();
    let listed = a.core.watches().await.unwrap();
    assert_eq!((listed[0].key_epoch, listed[0].behind_key), (Some(0), true));

    // A cloud that puts its own key into the switch: the watch refuses it
    // and keeps sealing to epoch 0, which the family can read.
    let db = cloud.database().await.unwrap();
    let (real,): (String,) = sqlx::query_as("SELECT switch FROM epoch_switches WHERE epoch = 1")
        .fetch_one(&db)
        .await
        .unwrap();
    let mut forged: Value = serde_json::from_str(&real).unwrap();
    forged["switch"]["public"] = json!(waymark_protocol::signing::b64(&[7; 32]));
    let put = |switch: String| {
        let db = &db;
        async move {
            sqlx::query("UPDATE epoch_switches SET switch = $1 WHERE epoch = 1")
                .bind(switch)
                .execute(db)
                .await
                .unwrap();
        }
    };
    put(forged.to_string()).await;
    let followed = watch.keep_family_in_step().await.unwrap();
    assert!(
        matches!(
            followed,
            Followed::Refused {
                why: waymark_protocol::roster::RosterError::BadSignature,
                epoch: 0,
                ..
            }
        ),
        "{followed:?}"
    );
    let held = waymark_watch::family::load(&watch.path()).unwrap();
    assert_eq!(Some(held.epoch_public), kitchen.epoch_public(0));

    // The family's real switch: the watch moves to epoch 1, the key only
    // the remaining computers hold, under the roster without the office PC.
    put(real).await;
    assert_eq!(
        watch.keep_family_in_step().await.unwrap(),
        Followed::Advanced {
            roster_version: 3,
            epoch: 1
        }
    );
    let held = waymark_watch::family::load(&watch.path()).unwrap();
    assert_eq!(Some(held.epoch_public), kitchen.epoch_public(1));
    assert_eq!(held.roster, kitchen.rosters().last().unwrap().clone());
    assert_eq!(
        watch.keep_family_in_step().await.unwrap(),
        Followed::Unchanged
    );

    // Its next report is sealed to epoch 1 (property 5, end to end): the
    // family reads both; the removed office computer keeps what it could
    // read and cannot open what followed its removal.
    let after = fix_at(t0 + 1_000, 2);
    watch.reporter.record(after).unwrap();
    watch.reporter.drain().await.unwrap();
    let listed = a.core.watches().await.unwrap();
    assert_eq!(
        (listed[0].key_epoch, listed[0].behind_key),
        (Some(1), false)
    );
    let trail = a.core.history(watch.id(), t0 - 1, now_ms()).await.unwrap();
    assert_eq!((trail.fixes, trail.notices.len()), (vec![before, after], 0));
    // What the cloud holds for the watch, as it would hand it over.
    let rows = |table: &str| {
        let sql = format!("SELECT body FROM {table} WHERE device_id = $1");
        let (db, id) = (db.clone(), watch.id().to_owned());
        async move {
            let bodies: Vec<String> = sqlx::query_scalar(&sql)
                .bind(id)
                .fetch_all(&db)
                .await
                .unwrap();
            bodies
        }
    };
    let setups: Vec<waymark_protocol::sealed_report::SignedSetupRecord> = rows("fix_setups")
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let batches: Vec<waymark_protocol::sealed_report::SignedSealedBatch> = rows("batches")
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let removed = keys_of(&office, account.as_str()).await;
    assert!(!removed.has_epoch(1));
    let cert = &watch.reporter.watch.certificate_der;
    let seen = waymark_app_core::sealed_history::open_history(
        &waymark_app_core::sealed_history::PairedWatch {
            device_id: watch.id(),
            certificate: cert,
        },
        &setups,
        &batches,
        &removed,
    );
    assert_eq!(
        seen.fixes,
        vec![before],
        "the removed computer reads only the old report"
    );
    assert_eq!(seen.unreadable.len(), 1, "{seen:?}");
    cloud.stop().await.unwrap();
}

#[tokio::test]
async fn ending_a_computer_s_session_replaces_the_family_key_and_locks_it_out_of_what_follows() {
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;
    let FamilyKeysView::Trusted {
        recovery_key: Some(recovery_key),
        ..
    } = a.core.family_keys().await.unwrap()
    else {
        panic!("founded with a recovery key");
    };
    let office = approved_computer(&cloud, &a, "Office PC").await;
    let desk = approved_computer(&cloud, &a, "Desk").await;
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { computers, .. } if computers.len() == 3
    ));
    let before = sealed_fix(&keys_of(&a, account.as_str()).await, 0, 48.1);

    // The kitchen laptop ends the office PC's session (a lost computer).
    let office_session = office.core.me().await.unwrap().session_id;
    a.core.end_session(&office_session).await.unwrap();
    // At its next look, the kitchen laptop replaces the family's key: the
    // next roster without the office PC, epoch 1 for the two that stay.
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { computers, .. }
            if computers == vec!["Kitchen laptop".to_owned(), "Desk".to_owned()]
    ));
    assert_eq!(cloud.store.count("epoch_switches").await.unwrap(), 1);
    // The desk takes epoch 1 through its own sealed copy and the signed switch.
    desk.core.family_keys().await.unwrap();
    let (kitchen_keys, desk_keys, office_keys) = (
        keys_of(&a, account.as_str()).await,
        keys_of(&desk, account.as_str()).await,
        keys_of(&office, account.as_str()).await,
    );
    assert_eq!(kitchen_keys.current_epoch(), Some(1));
    assert_eq!(desk_keys.current_epoch(), Some(1));
    assert_eq!(
        office_keys.current_epoch(),
        Some(0),
        "the office PC never got epoch 1"
    );

    // What a watch reports after the switch: the family reads it, the
    // removed computer cannot. What came before stays readable.
    let after = sealed_fix(&kitchen_keys, 1, 48.2);
    assert!(opens(&kitchen_keys, &after));
    assert!(opens(&desk_keys, &after));
    assert!(!opens(&office_keys, &after));
    assert!(opens(&kitchen_keys, &before) && opens(&desk_keys, &before));

    // Nothing more happens at the next look: the office PC is gone already.
    a.core.family_keys().await.unwrap();
    assert_eq!(cloud.store.count("epoch_switches").await.unwrap(), 1);

    // A computer restored with the recovery key after the rotation gets
    // both epochs, each checked against what vouches for it.
    let mut settings = settings_for(&cloud);
    settings.session_name = "New laptop".into();
    let mut restored = app(&cloud, settings);
    restored.parent = a.parent.clone();
    restored.browser.parent = a.parent.clone();
    restored
        .core
        .sign_in(&restored.browser, Start::SignIn)
        .await
        .unwrap();
    assert_eq!(restored.answers.recv().await.unwrap().0, 200);
    restored.core.family_keys().await.unwrap();
    assert!(matches!(
        restored
            .core
            .restore_with_recovery_key(&recovery_key)
            .await
            .unwrap(),
        FamilyKeysView::Trusted { .. }
    ));
    let restored_keys = keys_of(&restored, account.as_str()).await;
    assert!(opens(&restored_keys, &after) && opens(&restored_keys, &before));
    cloud.stop().await.unwrap();
}

/// The key file label of `who` in its current family.
async fn family_label(who: &App) -> String {
    let me = who.core.me().await.unwrap();
    waymark_app_core::family::key_file_label(
        &waymark_protocol::ids::AccountId::parse(&me.account_id).unwrap(),
        &waymark_protocol::ids::FamilyId::parse(&me.family_id).unwrap(),
    )
}

#[tokio::test]
async fn a_co_parent_joins_by_invitation_reads_once_approved_and_is_locked_out_when_removed() {
    use waymark_protocol::co_parents::FamilyRole;
    let cloud = TestCloud::start().await.unwrap();
    let owner = signed_up(&cloud).await;
    assert!(matches!(
        owner.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { .. }
    ));
    let watch = TestWatch::new(&cloud).unwrap();
    pair_via_app(&owner.core, &watch, str::to_owned)
        .await
        .unwrap();
    watch.reporter.record(fix_at(now_ms() - 5_000, 0)).unwrap();
    watch.reporter.drain().await.unwrap();

    // Another parent, with their own passkey account, on their own computer.
    let mut settings = settings_for(&cloud);
    settings.session_name = "Sam's laptop".into();
    let mut sam = app(&cloud, settings);
    sam.core
        .sign_in(&sam.browser, Start::CreateAccount)
        .await
        .unwrap();
    assert_eq!(sam.answers.recv().await.unwrap().0, 200);
    sam.core.family_keys().await.unwrap();
    let own_label = family_label(&sam).await;

    // Invited as a guardian: shown what it is for, then joined; this
    // computer has no key of the new family and waits for approval.
    let invitation = owner.core.invite(FamilyRole::Guardian).await.unwrap();
    let preview = sam
        .core
        .preview_invitation(&invitation.code.to_lowercase())
        .await
        .unwrap();
    assert_eq!(
        (preview.family_name.as_str(), preview.role),
        ("Rivera family", FamilyRole::Guardian)
    );
    assert_eq!(
        sam.core
            .accept_invitation("0000A-BCDEF-GHJKM-NPQRS-TVWXY-Z")
            .await
            .unwrap_err()
            .code(),
        "bad_invitation"
    );
    assert_eq!(
        sam.core.accept_invitation(&invitation.link).await.unwrap(),
        FamilyKeysView::WaitingForApproval
    );
    let me = sam.core.me().await.unwrap();
    assert_eq!(me.role, FamilyRole::Guardian);
    let listed = sam.core.watches().await.unwrap();
    assert_eq!(listed[0].id, watch.id());
    assert!(listed[0].latest.is_none(), "no place before approval");

    // Approved from the owner's computer with the code it shows.
    let requests = owner.core.join_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].name, "Sam's laptop");
    assert_eq!(
        requests[0].member_name.as_deref(),
        Some(me.display_name.as_str())
    );
    let (done, entered) = approve(&owner, &sam, &requests[0].id, None).await;
    done.unwrap();
    assert!(matches!(
        entered.unwrap(),
        FamilyKeysView::Trusted { computers, .. } if computers.len() == 2
    ));
    let listed = sam.core.watches().await.unwrap();
    assert!(listed[0].latest.is_some(), "the guardian reads the place");
    let members = sam.core.family_members().await.unwrap();
    assert_eq!(members.members.len(), 2);
    // What a guardian may not do, the app says so.
    let refused = sam
        .core
        .rename_watch(watch.id(), "Renamed")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "role_forbids");

    // Removed: the owner's computer replaces the key at once, without Sam's.
    let guardian_label = family_label(&sam).await;
    let before = sealed_fix(&keys_of(&owner, &family_label(&owner).await).await, 0, 48.1);
    let after_removal = owner.core.remove_member(&me.account_id).await.unwrap();
    assert!(
        matches!(
            &after_removal,
            FamilyKeysView::Trusted { computers, .. } if *computers == vec!["Kitchen laptop".to_owned()]
        ),
        "{after_removal:?}"
    );
    assert_eq!(cloud.store.count("epoch_switches").await.unwrap(), 1);
    let owner_keys = keys_of(&owner, &family_label(&owner).await).await;
    let sams_keys = keys_of(&sam, &guardian_label).await;
    assert_eq!(owner_keys.current_epoch(), Some(1));
    let after = sealed_fix(&owner_keys, 1, 48.2);
    assert!(opens(&owner_keys, &after) && opens(&owner_keys, &before));
    assert!(opens(&sams_keys, &before), "Sam keeps what they could read");
    assert!(!opens(&sams_keys, &after), "and cannot read what follows");

    // Sam's app is back in their own family, with its own keys again.
    assert_eq!(family_label(&sam).await, own_label);
    assert!(matches!(
        sam.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { computers, .. } if computers == vec!["Sam's laptop".to_owned()]
    ));
    assert!(sam.core.watches().await.unwrap().is_empty());
    cloud.stop().await.unwrap();
}

/// A malicious cloud (the test's own connection to its database) cannot add
/// a reader: a roster version it signed adding its own computer, an epoch
/// switch to a key of its own, and that key sealed to the family's computer
/// are refused by the computer that holds the keys, which keeps them.
#[tokio::test]
async fn a_cloud_that_adds_its_own_computer_or_key_is_refused() {
    use waymark_protocol::family_roster::{EpochKeyBlob, FamilyKeyPair};
    use waymark_protocol::location_sealing::LocationSecretKey;
    use waymark_protocol::roster::{EpochSwitch, SignedRoster};
    let cloud = TestCloud::start().await.unwrap();
    let a = signed_up(&cloud).await;
    let account = a.core.me().await.unwrap().account_id;
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { .. }
    ));
    let (first,): (String,) = sqlx::query_as("SELECT roster FROM family_rosters WHERE version = 1")
        .fetch_one(cloud.store.pool())
        .await
        .unwrap();
    let first: SignedRoster = serde_json::from_str(&first).unwrap();
    let held = keys_of(&a, account.as_str()).await;

    let attacker = FamilyKeyPair::generate();
    let intruder = FamilyKeys::new_computer();
    let mut computers = first.roster.computers.clone();
    computers.push(intruder.entry("Cloud's computer", account.as_str()));
    let forged = first.roster.next(computers).sign(&attacker);
    let (key, public) = LocationSecretKey::generate();
    let switch = EpochSwitch {
        epoch: 1,
        public,
        roster_version: 2,
    }
    .sign(&attacker);
    let blob = EpochKeyBlob::seal(1, &key, &held.computer().sealing_public());
    let now = now_ms();
    let db = cloud.store.pool();
    sqlx::query("INSERT INTO family_rosters (account_id, version, roster, created_at) VALUES ($1, 2, $2, $3)")
        .bind(account.as_str())
        .bind(serde_json::to_string(&forged).unwrap())
        .bind(now)
        .execute(db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO epoch_switches (account_id, epoch, switch, created_at) VALUES ($1, 1, $2, $3)",
    )
    .bind(account.as_str())
    .bind(serde_json::to_string(&switch).unwrap())
    .bind(now)
    .execute(db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO epoch_key_blobs (account_id, recipient, epoch, blob, created_at) VALUES ($1, $2, 1, $3, $4)")
        .bind(account.as_str())
        .bind(waymark_protocol::signing::b64(&held.computer().sealing_public().0))
        .bind(serde_json::to_string(&blob).unwrap())
        .bind(now)
        .execute(db)
        .await
        .unwrap();

    let err = a.core.family_keys().await.unwrap_err();
    assert_eq!(err.code(), "family_roster_refused", "{err}");
    let kept = keys_of(&a, account.as_str()).await;
    assert_eq!(kept.trusted_roster().unwrap().roster().version, 1);
    assert_eq!(
        kept.current_epoch(),
        Some(0),
        "the cloud's key was not taken"
    );
    assert!(
        !kept
            .trusted_roster()
            .unwrap()
            .roster()
            .contains(&intruder.computer().signing_public())
    );

    // Without the injected rows, the honest family goes on.
    for table in ["epoch_key_blobs", "epoch_switches"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE epoch = 1"))
            .execute(db)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM family_rosters WHERE version = 2")
        .execute(db)
        .await
        .unwrap();
    assert!(matches!(
        a.core.family_keys().await.unwrap(),
        FamilyKeysView::Trusted { computers, .. } if computers == vec!["Kitchen laptop".to_owned()]
    ));
    cloud.stop().await.unwrap();
}
