//! Harness for whole-system tests: a real `waymark-cloud` over real TLS on
//! 127.0.0.1 with a real SQLite file, a client that trusts only the cloud's
//! generated CA, and parents whose passkeys are a software authenticator.

pub mod swtpm;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use waymark_cloud::app::{self, Running};
use waymark_cloud::config::{Config, Database};
use waymark_cloud::local_ca;
use waymark_cloud::storage::Store;
use waymark_protocol::code_exchange::{Parties, Typer};
use waymark_protocol::location_sealing::WatchSealer;
use waymark_protocol::pairing::{OfferView, PairingCode, WatchFamilyBundle, bundle_context};
use waymark_protocol::report::Fix;
use waymark_protocol::sealed_report::{ChainHash, SetupId, SignedSealedBatch, SignedSetupRecord};
use waymark_protocol::signin::{CodeVerifier, DESKTOP_CLIENT_ID, TokenResponse, random_token};
use waymark_protocol::signing::{b64, unb64};
use waymark_protocol::time::Clock;
use waymark_protocol::watches::WatchRecord;
use waymark_watch::keystore::KeyStoreChoice;
use waymark_watch::pairing::{ShownCode, Waited};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

pub use reqwest;

/// Everything a test binary's processes log, for scans that must find no
/// coordinate, zone or token in the logs (install it as the binary's only
/// `tracing` writer).
#[derive(Clone, Default)]
pub struct Logs(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    /// Installs a debug-level `tracing` subscriber writing here: the test
    /// binary's only one.
    pub fn capture() -> Self {
        let logs = Self::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(move || writer.clone())
            .try_init()
            .expect("this test binary's only log subscriber");
        logs
    }

    /// Everything logged so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

/// Whether `needle` occurs in `haystack` (dump and log scans).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `number` (a decimal such as `8.51235`) is written in `haystack`
/// as a number of its own: not inside a longer one (`18.512351`) and not a
/// duration (`8.51235ms`), which logs are full of and which would make a
/// scan for a rounded coordinate fail by chance.
pub fn contains_number(haystack: &[u8], number: &[u8]) -> bool {
    let digit = |b: u8| b.is_ascii_digit() || b == b'.';
    // A digit, a point or a unit (`ms`, `µs`, `s`) after it: not this number.
    let after = |b: u8| digit(b) || b.is_ascii_alphabetic() || b >= 0x80;
    haystack.windows(number.len()).enumerate().any(|(i, w)| {
        w == number
            && (i == 0 || !digit(haystack[i - 1]))
            && haystack.get(i + number.len()).is_none_or(|&b| !after(b))
    })
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A cloud running in this process on a random loopback port.
pub struct TestCloud {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub origin: String,
    pub addr: SocketAddr,
    pub ca_pem: Vec<u8>,
    pub store: Store,
    /// The clock the cloud reads: tests move it forward instead of rewriting rows.
    pub clock: Clock,
    running: Option<Running>,
}

impl TestCloud {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// A cloud on a SQLite file at `db` (whatever `WAYMARK_TEST_POSTGRES`
    /// says), for tests of the file itself: a full disk, what a deletion leaves.
    pub async fn start_sqlite_at(db: std::path::PathBuf) -> anyhow::Result<Self> {
        Self::start_with(Some(db)).await
    }

    async fn start_with(sqlite: Option<std::path::PathBuf>) -> anyhow::Result<Self> {
        // The cloud's logs, when asked for (RUST_LOG=warn cargo test …).
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("cloud");
        local_ca::init(&data, false, Some("127.0.0.1:0"))?;
        let factory = dir.path().join("factory");
        waymark_cloud::factory::init(&factory, false)?;
        let mut config = Config::load(&data, |_| None)?;
        config.manufacturer_cas = vec![factory.join("manufacturer-ca.pem")];
        if let Some(db) = sqlite {
            config.database = Database::Sqlite(db);
        } else if let Some(server) = test_postgres() {
            config.database = Database::Postgres(fresh_postgres_database(&server).await?);
        }
        let clock = Clock::system();
        let running = app::start_with_clock(&config, clock.clone()).await?;
        let ca_pem = std::fs::read(&config.ca_cert)?;
        Ok(Self {
            origin: running.origin.origin().ascii_serialization(),
            addr: running.addr,
            store: running.store.clone(),
            clock,
            ca_pem,
            config,
            dir,
            running: Some(running),
        })
    }

    /// Another cloud instance on the same database and the same public
    /// origin, as two instances behind one load balancer are (PostgreSQL).
    pub async fn second_instance(&self) -> anyhow::Result<Instance> {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse()?;
        config.origin = Some(url::Url::parse(&self.origin)?);
        let running = app::start_with_clock(&config, self.clock.clone()).await?;
        Ok(Instance {
            origin: self.origin.clone(),
            addr: running.addr,
            ca_pem: self.ca_pem.clone(),
            running: Some(running),
        })
    }

    pub fn factory_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("factory")
    }

    /// Stops the server for real (listener closed, database pool closed).
    pub async fn halt(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            r.stop().await?;
        }
        Ok(())
    }

    /// Starts it again on the same port, data directory and database.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let mut config = self.config.clone();
        config.listen = self.addr;
        let running = app::start_with_clock(&config, self.clock.clone()).await?;
        self.store = running.store.clone();
        self.running = Some(running);
        Ok(())
    }

    /// A connection of the test's own to the cloud's database: to read it
    /// as a thief of it would, or change it as a malicious operator would.
    pub async fn database(&self) -> anyhow::Result<sqlx::AnyPool> {
        sqlx::any::install_default_drivers();
        let url = match &self.config.database {
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
            Database::Postgres(url) => url.clone(),
        };
        Ok(sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await?)
    }

    /// Every text column of `table`, as one string (what a dump shows).
    pub async fn dump_text(&self, table: &str) -> anyhow::Result<String> {
        use sqlx::{Column, Row};
        assert!(Store::TABLES.contains(&table), "unknown table");
        let pool = self.database().await?;
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&pool)
            .await?;
        let mut out = String::new();
        for row in &rows {
            for (i, column) in row.columns().iter().enumerate() {
                if let Ok(Some(v)) = row.try_get::<Option<String>, _>(i) {
                    out.push_str(&format!("{}={v}\n", column.name()));
                }
            }
        }
        pool.close().await;
        Ok(out)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            r.stop().await?;
        }
        Ok(())
    }
}

/// `WAYMARK_TEST_POSTGRES`: a PostgreSQL server URL (e.g. from
/// `scripts/with-postgres`). When set, every test cloud gets a fresh
/// database of its own on it instead of a SQLite file.
pub fn test_postgres() -> Option<String> {
    std::env::var("WAYMARK_TEST_POSTGRES")
        .ok()
        .filter(|v| !v.is_empty())
}

/// Creates an empty database on the server and returns its URL.
pub async fn fresh_postgres_database(server: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("waymark_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .context("cannot reach the test PostgreSQL server")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let mut url = url::Url::parse(server)?;
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

/// Where a cloud is and how to reach it: the in-process [`TestCloud`] or a
/// [`RemoteCloud`] process (benchmarks).
pub trait Endpoint {
    fn origin(&self) -> &str;
    /// A client that trusts only this cloud's CA and speaks TLS 1.2+.
    fn client(&self) -> reqwest::Client;
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }
}

impl Endpoint for TestCloud {
    fn origin(&self) -> &str {
        &self.origin
    }
    fn client(&self) -> reqwest::Client {
        client_trusting(&self.ca_pem, self.addr)
    }
}

/// A second instance (see [`TestCloud::second_instance`]): requests go to
/// its own port, but carry the shared public origin, as behind a load balancer.
pub struct Instance {
    pub origin: String,
    pub addr: SocketAddr,
    ca_pem: Vec<u8>,
    running: Option<Running>,
}

impl Instance {
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            r.stop().await?;
        }
        Ok(())
    }
}

impl Endpoint for Instance {
    fn origin(&self) -> &str {
        &self.origin
    }
    fn client(&self) -> reqwest::Client {
        client_trusting(&self.ca_pem, self.addr)
    }
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}

/// A cloud running elsewhere on this machine (e.g. a `waymark-cloud serve` process).
#[derive(Clone)]
pub struct RemoteCloud {
    pub origin: String,
    pub addr: SocketAddr,
    pub ca_pem: Vec<u8>,
}

impl Endpoint for RemoteCloud {
    fn origin(&self) -> &str {
        &self.origin
    }
    fn client(&self) -> reqwest::Client {
        client_trusting(&self.ca_pem, self.addr)
    }
}

pub fn client_trusting(ca_pem: &[u8], addr: SocketAddr) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// What a finished native-app sign-in gives the app.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl From<TokenResponse> for Tokens {
    fn from(t: TokenResponse) -> Self {
        Self {
            access: t.access_token,
            refresh: t.refresh_token,
        }
    }
}

/// A parent with a passkey. TEST-ONLY: the passkey is webauthn-authenticator-rs's
/// `SoftPasskey`, wrapped to behave like a discoverable (resident)
/// credential: it is told not to insist on residency, and on sign-in it is
/// pointed at its own credential and reports the user handle, as a real
/// platform authenticator does. Real discoverable sign-in is tested in Chromium.
pub struct Parent {
    pub authenticator: SoftPasskey,
    pub user_handle: Option<Vec<u8>>,
    pub credential_ids: Vec<Vec<u8>>,
    pub tokens: Option<Tokens>,
    /// This parent's family keys, as their app would hold them: what
    /// `pair` gives the watches, and what opens their reports.
    pub family: TestFamily,
}

/// A started `/authorize` request as the app would make it.
pub struct SignInRequest {
    pub request_id: String,
    pub verifier: CodeVerifier,
    pub state: String,
    pub redirect_uri: String,
}

impl Parent {
    pub fn new() -> Self {
        Self {
            authenticator: SoftPasskey::new(true),
            user_handle: None,
            credential_ids: Vec::new(),
            tokens: None,
            family: TestFamily::default(),
        }
    }

    pub fn access(&self) -> &str {
        &self.tokens.as_ref().expect("signed in").access
    }

    /// New tokens through the refresh token, as the app does once its
    /// access token has expired (e.g. after the test moved the clock).
    pub async fn renew(&mut self, cloud: &impl Endpoint) -> anyhow::Result<()> {
        let presented = self.tokens.as_ref().context("signed in")?.refresh.clone();
        let res = refresh(cloud, &presented).await?;
        anyhow::ensure!(res.status() == 200, "refresh refused: {}", res.status());
        self.tokens = Some(res.json::<TokenResponse>().await?.into());
        Ok(())
    }

    /// Create an account through the real pages and exchange the code.
    pub async fn sign_up(cloud: &impl Endpoint, name: &str) -> anyhow::Result<Self> {
        let mut parent = Self::new();
        let req = authorize(cloud).await?;
        let finished = parent.register(cloud, &req.request_id, Some(name)).await?;
        let tokens = exchange(cloud, &req, &finished, "Test laptop").await?;
        parent.tokens = Some(tokens);
        Ok(parent)
    }

    /// Runs a registration ceremony on a request (new account or enrollment).
    pub async fn register(
        &mut self,
        cloud: &impl Endpoint,
        request_id: &str,
        name: Option<&str>,
    ) -> anyhow::Result<Value> {
        self.register_confirmed(cloud, request_id, name, None).await
    }

    /// [`Parent::register`] presenting the secret an enrolment confirmation gave.
    pub async fn register_confirmed(
        &mut self,
        cloud: &impl Endpoint,
        request_id: &str,
        name: Option<&str>,
        confirmation: Option<&str>,
    ) -> anyhow::Result<Value> {
        // Sent only when there is one, as the page does (older clouds refuse unknown fields).
        let with_confirmation = |mut body: Value| {
            if let Some(c) = confirmation {
                body["confirmation"] = json!(c);
            }
            body
        };
        let started = post_page(
            cloud,
            "/ceremony/register/start",
            &with_confirmation(json!({"request_id": request_id, "display_name": name})),
        )
        .await?;
        let ceremony_id = started["ceremony_id"]
            .as_str()
            .context("ceremony_id")?
            .to_owned();
        let mut options: CreationChallengeResponse =
            serde_json::from_value(started["options"].clone())?;
        // The server asks for a resident key; SoftPasskey cannot store one (see type docs).
        if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = false;
        }
        self.user_handle = Some(options.public_key.user.id.to_vec());
        let credential = self
            .authenticator
            .do_registration(url::Url::parse(cloud.origin())?, options)
            .map_err(|e| anyhow!("authenticator: {e:?}"))?;
        self.credential_ids.push(credential.raw_id.to_vec());
        post_page(
            cloud,
            "/ceremony/register/finish",
            &with_confirmation(json!({"ceremony_id": ceremony_id, "credential": credential})),
        )
        .await
    }

    /// Builds the assertion for a started sign-in ceremony.
    pub fn assert(&mut self, origin: &str, started: &Value) -> anyhow::Result<Value> {
        let mut options: RequestChallengeResponse =
            serde_json::from_value(started["options"].clone())?;
        if options.public_key.allow_credentials.is_empty() {
            options.public_key.allow_credentials = self
                .credential_ids
                .iter()
                .map(|id| webauthn_rs_proto::AllowCredentials {
                    type_: "public-key".into(),
                    id: id.clone(),
                    transports: None,
                })
                .collect();
        }
        let mut credential = self
            .authenticator
            .do_authentication(url::Url::parse(origin)?, options)
            .map_err(|e| anyhow!("authenticator: {e:?}"))?;
        credential.response.user_handle = self.user_handle.clone();
        Ok(json!({"ceremony_id": started["ceremony_id"], "credential": credential}))
    }

    /// Signs in again (new session) without a user name.
    pub async fn sign_in(
        &mut self,
        cloud: &impl Endpoint,
        session_name: &str,
    ) -> anyhow::Result<Tokens> {
        let req = authorize(cloud).await?;
        let started = post_page(
            cloud,
            "/ceremony/sign-in/start",
            &json!({"request_id": req.request_id}),
        )
        .await?;
        let body = self.assert(cloud.origin(), &started)?;
        let finished = post_page(cloud, "/ceremony/sign-in/finish", &body).await?;
        exchange(cloud, &req, &finished, session_name).await
    }
}

impl Default for Parent {
    fn default() -> Self {
        Self::new()
    }
}

/// Opens the live stream with `token` and waits for its `ready` event.
pub async fn live(cloud: &impl Endpoint, token: &str) -> reqwest::Response {
    let mut res = cloud
        .client()
        .get(cloud.url("/api/v1/live"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = res.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));
    res
}

/// The next `batch` event, within 10 s, as `{"watch_id", "fix": {"t"},
/// "batch", "setups"}`: the watch, its newest fix time (the header's,
/// readable by anyone), the sealed batch, and the setup records the stream
/// sent before it (open it with [`TestFamily::open_live`]).
pub async fn next_fix(res: &mut reqwest::Response) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut buf = String::new();
    let mut setups = Vec::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("a live event in time")
            .unwrap()
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let data = || -> Value {
                serde_json::from_str(
                    frame
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .unwrap(),
                )
                .unwrap()
            };
            if frame.contains("event: setup") {
                setups.push(data());
            }
            if frame.contains("event: batch") {
                let batch = data();
                let header = &batch["batch"]["header"];
                let times = header["times"].as_array().unwrap();
                return json!({
                    "watch_id": header["device_id"],
                    "fix": {"t": times.iter().filter_map(Value::as_i64).max()},
                    "batch": batch,
                    "setups": setups,
                });
            }
        }
    }
}

/// `GET /authorize` as the app would send it; returns the page's request id.
pub async fn authorize(cloud: &impl Endpoint) -> anyhow::Result<SignInRequest> {
    let verifier = CodeVerifier::generate();
    let state = random_token(16);
    let redirect_uri = "http://127.0.0.1:49152/callback".to_owned();
    let res = cloud
        .client()
        .get(cloud.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", DESKTOP_CLIENT_ID),
            ("redirect_uri", &redirect_uri),
            ("state", &state),
            ("code_challenge", &verifier.s256_challenge()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("authorize: {} {}", res.status(), res.text().await?);
    }
    let request_id = request_id_in(&res.text().await?)?;
    Ok(SignInRequest {
        request_id,
        verifier,
        state,
        redirect_uri,
    })
}

/// The sign-in request a served passkey page belongs to.
pub fn request_id_in(page: &str) -> anyhow::Result<String> {
    Ok(page
        .split("data-request=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .context("no sign-in request in the page")?
        .to_owned())
}

/// A POST from the sign-in page itself (same Origin).
pub async fn post_page(cloud: &impl Endpoint, path: &str, body: &Value) -> anyhow::Result<Value> {
    let res = cloud
        .client()
        .post(cloud.url(path))
        .header("Origin", cloud.origin())
        .json(body)
        .send()
        .await?;
    let status = res.status();
    let value: Value = res.json().await?;
    if !status.is_success() {
        bail!("{path}: {status} {value}");
    }
    Ok(value)
}

/// Reads the code from the page's redirect, checks `state`, and exchanges it.
pub async fn exchange(
    cloud: &impl Endpoint,
    req: &SignInRequest,
    finished: &Value,
    session_name: &str,
) -> anyhow::Result<Tokens> {
    let code = code_from_redirect(req, finished)?;
    let res = token_request(
        cloud,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &req.redirect_uri),
            ("client_id", DESKTOP_CLIENT_ID),
            ("code_verifier", req.verifier.as_str()),
            ("session_name", session_name),
        ],
    )
    .await?;
    if !res.status().is_success() {
        bail!("token: {} {}", res.status(), res.text().await?);
    }
    Ok(res.json::<TokenResponse>().await?.into())
}

/// `POST /token` with `grant_type=refresh_token`.
pub async fn refresh(
    cloud: &impl Endpoint,
    refresh_token: &str,
) -> anyhow::Result<reqwest::Response> {
    token_request(
        cloud,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

pub fn code_from_redirect(req: &SignInRequest, finished: &Value) -> anyhow::Result<String> {
    let redirect = url::Url::parse(finished["redirect"].as_str().context("no redirect")?)?;
    if !redirect.as_str().starts_with(&req.redirect_uri) {
        bail!("redirected elsewhere: {redirect}");
    }
    let get = |k: &str| {
        redirect
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    if get("state").as_deref() != Some(req.state.as_str()) {
        bail!("state mismatch");
    }
    get("code").context("no code")
}

pub async fn token_request(
    cloud: &impl Endpoint,
    form: &[(&str, &str)],
) -> anyhow::Result<reqwest::Response> {
    Ok(cloud
        .client()
        .post(cloud.url("/token"))
        .form(form)
        .send()
        .await?)
}

/// `(status, body)` of an API call with a bearer token.
pub async fn api(
    cloud: &impl Endpoint,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = cloud
        .client()
        .request(method, cloud.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

/// Row counts of every table but the rate-limit counters, to show that a
/// refused request wrote nothing.
pub async fn snapshot(store: &Store) -> Vec<i64> {
    let mut counts = Vec::new();
    // Rate-limit counters are left out: counting refused attempts is the defence itself.
    for t in Store::TABLES.iter().filter(|t| **t != "rate_limits") {
        counts.push(store.count(t).await.expect("count"));
    }
    counts
}

impl TestCloud {
    /// Moves the cloud's clock forward, as if `by` had passed.
    pub fn advance(&self, by: std::time::Duration) {
        self.clock.advance(by);
    }
}

/// Provisions a watch in `w` for `cloud` (trusting its CA) with its key in `keystore`.
pub fn provision(
    cloud: &TestCloud,
    w: &std::path::Path,
    keystore: &KeyStoreChoice,
) -> anyhow::Result<waymark_watch::provisioning::Provisioned> {
    let ca = w.with_extension("ca.pem");
    std::fs::write(&ca, &cloud.ca_pem)?;
    waymark_watch::provisioning::provision(w, cloud.origin(), &ca, keystore)
}

/// A real watch (the `waymark-watch` library) in its own directory:
/// provisioned, its CSR signed by `factory`, its certificate installed.
pub struct TestWatch {
    pub dir: tempfile::TempDir,
    pub reporter: waymark_watch::reporting::Reporter,
}

impl TestWatch {
    pub fn new(cloud: &TestCloud) -> anyhow::Result<Self> {
        Self::made_by(cloud, &cloud.factory_dir())
    }

    pub fn made_by(cloud: &TestCloud, factory: &std::path::Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let w = dir.path().join("watch");
        let made = provision(cloud, &w, &KeyStoreChoice::File)?;
        let cert = waymark_cloud::factory::sign(
            factory,
            &std::fs::read_to_string(made.csr)?,
            &format!("WM-{}", random_token(4)),
            "Waymark Kids 1",
        )?;
        Self::certified(dir, &cert)
    }

    /// A watch whose key is in `tpm`, certified by the cloud's factory with
    /// `--require-tpm` (after `factory::trust_tpm_vendor` for `tpm`'s maker);
    /// `station` is the factory station's own TPM.
    pub fn with_tpm(
        cloud: &TestCloud,
        tpm: &swtpm::SoftTpm,
        station: &swtpm::SoftTpm,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let w = dir.path().join("watch");
        let made = provision(cloud, &w, &KeyStoreChoice::Tpm { tcti: tpm.tcti() })?;
        let factory = cloud.factory_dir();
        let challenge = waymark_cloud::factory::challenge(
            &factory,
            &std::fs::read(made.attestation_request.context("a TPM watch's request")?)?,
            &station.tcti(),
            now_ms(),
        )?;
        let challenge_path = dir.path().join("challenge.json");
        std::fs::write(&challenge_path, serde_json::to_vec(&challenge)?)?;
        let answer = waymark_watch::provisioning::attest(&w, &challenge_path)?;
        let cert = waymark_cloud::factory::sign_tpm_attested(
            &factory,
            &std::fs::read_to_string(made.csr)?,
            &format!("WM-{}", random_token(4)),
            "Waymark Kids 1 TPM",
            &answer,
            now_ms(),
        )?;
        Self::certified(dir, &cert)
    }

    fn certified(dir: tempfile::TempDir, cert: &str) -> anyhow::Result<Self> {
        let cert_path = dir.path().join("cert.pem");
        std::fs::write(&cert_path, cert)?;
        let w = dir.path().join("watch");
        waymark_watch::provisioning::install_cert(&w, &cert_path)?;
        let watch = waymark_watch::provisioning::Watch::open(&w)?;
        let reporter = waymark_watch::reporting::Reporter::new(watch, 1000)?;
        Ok(Self { dir, reporter })
    }

    /// A watch whose hardware clock is `error_ms` off true time.
    pub fn with_clock_error(cloud: &TestCloud, error_ms: i64) -> anyhow::Result<Self> {
        let mut w = Self::new(cloud)?;
        w.restart_with_clock_error(error_ms)?;
        Ok(w)
    }

    /// The watch restarted: everything read again from its directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.restart_with_clock_error(0)
    }

    /// Restarted with a hardware clock `error_ms` off true time.
    pub fn restart_with_clock_error(&mut self, error_ms: i64) -> anyhow::Result<()> {
        let watch = waymark_watch::provisioning::Watch::open(&self.path())?;
        let link = waymark_watch::cloud_link::CloudLink::with_clock(
            &watch,
            waymark_watch::clock::Clock::with_error(error_ms),
        )?;
        self.reporter = waymark_watch::reporting::Reporter::with_link(watch, link, 1000)?;
        Ok(())
    }

    /// `seq` and `fixes` as a batch sealed to this watch's family (a
    /// throwaway key if it has none) and signed with its key, under one
    /// setup per watch and epoch ([`upload`] posts it first). Not chained:
    /// each names the genesis hash (see [`Self::sign_after`]).
    pub fn sign(&self, seq: u64, fixes: Vec<Fix>) -> SignedSealedBatch {
        self.sign_after(seq, ChainHash::GENESIS, fixes)
    }

    /// As [`Self::sign`], naming `prev` as the previous batch's hash.
    pub fn sign_after(&self, seq: u64, prev: ChainHash, fixes: Vec<Fix>) -> SignedSealedBatch {
        let (epoch, public) = match waymark_watch::family::load(&self.path()) {
            Some(f) => (f.epoch, f.epoch_public),
            None => {
                let b = TestFamily::default().bundle();
                (b.epoch, b.epoch_public)
            }
        };
        let key = (self.id().to_owned(), epoch);
        let sealer = SEALERS
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| s.clone());
        let sealer = sealer.unwrap_or_else(|| {
            let (sealer, setup) = self.new_setup(epoch, &public);
            SETUPS.lock().unwrap().push((setup.setup.setup_id, setup));
            let sealer = Arc::new(sealer);
            SEALERS.lock().unwrap().push((key, sealer.clone()));
            sealer
        });
        self.seal_with(&sealer, seq, prev, &fixes)
    }

    /// The watch's in-flight batch as it seals it for upload (its setup
    /// posted first), for tests that deliver it themselves.
    pub async fn sealed_inflight(&self) -> SignedSealedBatch {
        self.reporter
            .sealed_inflight()
            .await
            .expect("the queue is saved")
            .ok()
            .flatten()
            .expect("the watch seals its in-flight batch")
    }

    /// A batch sealed under a setup the cloud was never given.
    pub fn sign_unannounced(&self, seq: u64, fixes: Vec<Fix>) -> SignedSealedBatch {
        let b = TestFamily::default().bundle();
        let (sealer, _) = self.new_setup(b.epoch, &b.epoch_public);
        self.seal_with(&sealer, seq, ChainHash::GENESIS, &fixes)
    }

    fn new_setup(
        &self,
        epoch: u32,
        public: &waymark_protocol::sealed_report::LocationPublicKey,
    ) -> (WatchSealer, SignedSetupRecord) {
        let (sealer, setup) = WatchSealer::start(self.id(), epoch, public).expect("a family key");
        let signature = b64(&self
            .reporter
            .watch
            .keys
            .sign(&setup.signing_bytes())
            .expect("the watch signs"));
        (sealer, SignedSetupRecord { setup, signature })
    }

    fn seal_with(
        &self,
        sealer: &WatchSealer,
        seq: u64,
        prev: ChainHash,
        fixes: &[Fix],
    ) -> SignedSealedBatch {
        // A new nonce for every sealing, as a watch's repairs make.
        let version = VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let batch = sealer.seal(seq, version, prev, fixes);
        let signature = b64(&self
            .reporter
            .watch
            .keys
            .sign(&batch.signing_bytes())
            .expect("the watch signs"));
        SignedSealedBatch { batch, signature }
    }

    pub fn id(&self) -> &str {
        &self.reporter.watch.device_id
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("watch")
    }

    /// Uploads a signed offer: the code as the watch shows it
    /// (`shown.code.display()`) and the exchange it started.
    pub async fn show_code(&self) -> anyhow::Result<ShownCode> {
        Ok(
            waymark_watch::pairing::make_code(&self.reporter.watch, &self.reporter.link, 600_000)
                .await?,
        )
    }

    /// One status poll, following the family's roster and key epoch as the
    /// `run` command does every minute.
    pub async fn keep_family_in_step(&self) -> anyhow::Result<waymark_watch::family::Followed> {
        Ok(waymark_watch::family::keep_in_step(
            &self.reporter.watch,
            &self.reporter.link,
            &self.path(),
        )
        .await?)
    }

    /// The watch's side of pairing, as the `pair` command runs it (polling
    /// faster): waits for the answer to `shown`, weighs it, gives its word.
    pub async fn take_answer(&self, shown: ShownCode) -> anyhow::Result<Waited> {
        Ok(waymark_watch::pairing::wait_for_answer(
            &self.reporter.watch,
            &self.reporter.link,
            &self.path(),
            shown,
            std::time::Duration::from_millis(50),
        )
        .await?)
    }
}

/// Setup records [`TestWatch::sign`] made, by id, so [`upload`] can post
/// the one a batch names first (as a watch does before its first batch).
static SETUPS: std::sync::Mutex<Vec<(SetupId, SignedSetupRecord)>> =
    std::sync::Mutex::new(Vec::new());

/// Each test watch's sealer per key epoch, so its batches share one setup.
#[allow(clippy::type_complexity)]
static SEALERS: std::sync::Mutex<Vec<((String, u32), Arc<WatchSealer>)>> =
    std::sync::Mutex::new(Vec::new());

static VERSIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `POST /device/v1/setups` with the setup record `signed` names (if a
/// test watch made it), then `POST /device/v2/batches`: the batch's `(status, body)`.
pub async fn upload(cloud: &impl Endpoint, signed: &SignedSealedBatch) -> (u16, Value) {
    let setup = SETUPS
        .lock()
        .unwrap()
        .iter()
        .find(|(id, _)| *id == signed.batch.header.setup_id)
        .map(|(_, s)| s.clone());
    if let Some(setup) = setup {
        cloud
            .client()
            .post(cloud.url("/device/v1/setups"))
            .json(&setup)
            .send()
            .await
            .expect("the cloud answers");
    }
    let res = cloud
        .client()
        .post(cloud.url("/device/v2/batches"))
        .json(signed)
        .send()
        .await
        .expect("the cloud answers");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// A raw TLS connection to the cloud (for requests reqwest will not make),
/// from `source` (another loopback address, to act as another place).
pub async fn raw_tls(
    cloud: &TestCloud,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&cloud.ca_pem) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = connect_from(cloud.addr, source).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

/// A TCP connection to `addr` from `source` (any 127.x address works on loopback).
pub async fn connect_from(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    Ok(socket.connect(addr).await?)
}

/// A family computer for tests that pair through the API without the app:
/// its own keys and founding roster (kept here, never published: the cloud
/// cannot tell), and the family's half of the pairing exchange.
pub struct TestFamily {
    keys: waymark_app_core::family_keys::FamilyKeys,
}

impl Default for TestFamily {
    fn default() -> Self {
        let mut keys = waymark_app_core::family_keys::FamilyKeys::new_computer();
        keys.found_family("Test computer", "test-family");
        Self { keys }
    }
}

impl TestFamily {
    /// What this family's app opens reports with (every epoch key it holds).
    pub fn opener(&self) -> waymark_protocol::location_sealing::FamilyOpener {
        self.keys.opener()
    }
}

/// A page of history as a family's app sees it: `{"fixes": [...] (opened,
/// oldest first), "next_cursor", "batches", "gaps", "altered", "unreadable"}`.
pub async fn history_page(
    cloud: &impl Endpoint,
    parent: &Parent,
    path: &str,
) -> anyhow::Result<(u16, Value)> {
    let token = parent.access();
    let (status, body) = api(cloud, reqwest::Method::GET, path, token, None).await?;
    if status != 200 {
        return Ok((status, body));
    }
    let id = path
        .strip_prefix("/api/v1/watches/")
        .and_then(|p| p.split('/').next())
        .context("a history path")?;
    let page: waymark_protocol::watches::SealedHistoryPage = serde_json::from_value(body.clone())?;
    let view = parent
        .family
        .open(cloud, token, id, &page.setups, &page.batches)
        .await?;
    Ok((
        status,
        json!({
            "fixes": view.fixes,
            "next_cursor": body["next_cursor"],
            "batches": page.batches.len(),
            "gaps": view.gaps.len(),
            "altered": view.altered,
            "unreadable": view.unreadable,
        }),
    ))
}

/// A history stream's body (NDJSON of `{"setup": …}` and `{"batch": …}`
/// lines) authenticated and opened as `parent`'s app would.
pub async fn open_stream(
    cloud: &impl Endpoint,
    parent: &Parent,
    watch_id: &str,
    body: &str,
) -> anyhow::Result<waymark_app_core::sealed_history::HistoryView> {
    let (mut setups, mut batches) = (Vec::new(), Vec::new());
    for line in body.lines() {
        match serde_json::from_str::<waymark_protocol::watches::HistoryLine>(line)? {
            waymark_protocol::watches::HistoryLine::Setup(s) => setups.push(s),
            waymark_protocol::watches::HistoryLine::Batch(b) => batches.push(b),
        }
    }
    parent
        .family
        .open(cloud, parent.access(), watch_id, &setups, &batches)
        .await
}

/// The family's side of one exchange, between its answer and the watch's word.
pub struct Answered {
    pub typer: Typer,
    pub locator: String,
}

impl TestFamily {
    /// Authenticates and opens one watch's sealed batches as the family's
    /// app does, with the certificate the cloud lists for it (checked
    /// here against the test manufacturer like the app's check).
    pub async fn open(
        &self,
        cloud: &impl Endpoint,
        token: &str,
        watch_id: &str,
        setups: &[SignedSetupRecord],
        batches: &[SignedSealedBatch],
    ) -> anyhow::Result<waymark_app_core::sealed_history::HistoryView> {
        let (status, list) =
            api(cloud, reqwest::Method::GET, "/api/v1/watches", token, None).await?;
        if status != 200 {
            bail!("listing watches: {status} {list}");
        }
        let records: Vec<WatchRecord> = serde_json::from_value(list)?;
        let record = records
            .iter()
            .find(|r| r.id == watch_id)
            .context("the watch is listed")?;
        let der = unb64(&record.certificate).context("a certificate")?;
        let watch = waymark_app_core::sealed_history::PairedWatch {
            device_id: watch_id,
            certificate: &der,
        };
        Ok(waymark_app_core::sealed_history::open_history(
            &watch, setups, batches, &self.keys,
        ))
    }

    /// The fixes of a live event as [`next_fix`] returned it, opened.
    pub fn open_live(&self, event: &Value, certificate: &[u8]) -> Vec<Fix> {
        let setups: Vec<SignedSetupRecord> =
            serde_json::from_value(event["setups"].clone()).unwrap_or_default();
        let batch: SignedSealedBatch =
            serde_json::from_value(event["batch"].clone()).expect("a sealed batch");
        let watch = waymark_app_core::sealed_history::PairedWatch {
            device_id: &batch.batch.header.device_id.clone(),
            certificate,
        };
        waymark_app_core::sealed_history::open_history(&watch, &setups, &[batch], &self.keys).fixes
    }

    /// What this family gives a watch at pairing.
    pub fn bundle(&self) -> WatchFamilyBundle {
        let epoch = self.keys.current_epoch().expect("a founded family");
        WatchFamilyBundle {
            epoch,
            epoch_public: self.keys.epoch_public(epoch).expect("its key"),
            roster: self.keys.rosters().last().cloned().expect("its roster"),
        }
    }

    /// Reads the offer `code` names and answers it with `code`: the
    /// answer's `(status, body)` (or the read's, if that failed), and the
    /// exchange to finish when it was relayed (202).
    pub async fn answer(
        &self,
        cloud: &impl Endpoint,
        token: &str,
        code: &str,
    ) -> anyhow::Result<(u16, Value, Option<Answered>)> {
        let code = PairingCode::parse(code).context("not a pairing code")?;
        let locator = code.locator().as_str().to_owned();
        let path = format!("/api/v1/pairing-offers/{locator}");
        let (status, body) = api(cloud, reqwest::Method::GET, &path, token, None).await?;
        if status != 200 {
            return Ok((status, body, None));
        }
        let view: OfferView = serde_json::from_value(body)?;
        let offer = view.signed.offer;
        let first = unb64(&offer.message).context("the offer's message")?;
        let (mut typer, answer) =
            Typer::answer(Parties::pair_watch(&offer.device_id), &code, &first)
                .map_err(|e| anyhow!("{e:?}"))?;
        let sealed = typer.seal_with_answer(
            &serde_json::to_vec(&self.bundle())?,
            &bundle_context(&offer.device_id, &locator),
        );
        let body = json!({
            "message": b64(&answer.message),
            "confirmation": b64(&answer.confirmation),
            "bundle": b64(&sealed),
        });
        let (status, body) = api(
            cloud,
            reqwest::Method::POST,
            &format!("{path}/answer"),
            token,
            Some(&body),
        )
        .await?;
        let answered = (status == 202).then_some(Answered { typer, locator });
        Ok((status, body, answered))
    }

    /// Reads the offer until the watch gave its word: the watch (as the
    /// account's list shows it) once paired and its confirmation checks.
    pub async fn await_paired(
        &self,
        cloud: &impl Endpoint,
        token: &str,
        answered: Answered,
    ) -> anyhow::Result<Value> {
        let path = format!("/api/v1/pairing-offers/{}", answered.locator);
        for _ in 0..400 {
            let (status, body) = api(cloud, reqwest::Method::GET, &path, token, None).await?;
            if status != 200 {
                bail!("reading the offer: {status} {body}");
            }
            match body["state"].as_str() {
                Some("paired") => {
                    let theirs: [u8; 32] = body["watch_confirmation"]
                        .as_str()
                        .and_then(unb64)
                        .and_then(|c| c.try_into().ok())
                        .context("the watch's confirmation")?;
                    answered
                        .typer
                        .confirm(&theirs)
                        .map_err(|e| anyhow!("the watch's confirmation: {e:?}"))?;
                    return Ok(body["watch"].clone());
                }
                Some("wrong_code") => bail!("the watch found the code wrong"),
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        bail!("the watch gave no word in 20 s")
    }
}

/// Pairs `watch` to `parent`'s account with a fresh code, both halves
/// running as they do in the app and on the watch; returns the watch info.
pub async fn pair(
    cloud: &impl Endpoint,
    parent: &Parent,
    watch: &TestWatch,
) -> anyhow::Result<Value> {
    let shown = watch.show_code().await?;
    let code = shown.code.display();
    let family = &parent.family;
    let (status, body, answered) = family.answer(cloud, parent.access(), &code).await?;
    let Some(answered) = answered else {
        bail!("pairing: {status} {body}");
    };
    let (paired, waited) = tokio::join!(
        family.await_paired(cloud, parent.access(), answered),
        watch.take_answer(shown)
    );
    match waited? {
        Waited::Paired { .. } => paired,
        other => bail!("the watch: {other:?}"),
    }
}

/// Pairs `watch` through the app core (`typed` turns the code as shown
/// into what the parent types) while the watch takes the answer as the
/// `pair` command does. The app's result; the watch's side must have ended
/// paired when the app says so.
pub async fn pair_via_app(
    core: &waymark_app_core::Core,
    watch: &TestWatch,
    typed: impl FnOnce(&str) -> String,
) -> Result<waymark_protocol::watches::WatchInfo, waymark_app_core::error::AppError> {
    let shown = watch.show_code().await.expect("the watch shows a code");
    let code = typed(&shown.code.display());
    let watch_side = watch.take_answer(shown);
    let app_side = core.pair(&code);
    tokio::pin!(watch_side, app_side);
    let mut waited = None;
    let paired = loop {
        tokio::select! {
            p = &mut app_side => break p,
            w = &mut watch_side, if waited.is_none() => waited = Some(w.expect("the watch's side")),
        }
    };
    if paired.is_ok() {
        let waited = match waited {
            Some(w) => w,
            None => tokio::time::timeout(std::time::Duration::from_secs(20), watch_side)
                .await
                .expect("the watch gives its word")
                .expect("the watch's side"),
        };
        assert!(matches!(waited, Waited::Paired { .. }), "{waited:?}");
    }
    paired
}

/// A fix at `t` near Berlin.
pub fn fix_at(t: i64, i: u32) -> waymark_protocol::report::Fix {
    waymark_protocol::report::Fix {
        t,
        lat: 52.52 + i as f64 * 1e-4,
        lon: 13.40,
        acc: 8.0,
        bat: 90,
    }
}

pub fn now_ms() -> i64 {
    waymark_watch::now_ms()
}

/// The `waymark-watch` program next to the test binary.
pub fn watch_binary() -> std::path::PathBuf {
    binary("waymark-watch")
}

/// A program of this workspace, built beside the test binary.
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target/<profile>/deps")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` (scripts/test does)",
        bin.display()
    );
    bin
}

/// `GET /api/v1/watches/{id}/history/stream` (the whole history) as `parent`.
pub async fn history_stream(
    cloud: &impl Endpoint,
    parent: &Parent,
    watch: &TestWatch,
) -> reqwest::Response {
    let res = cloud
        .client()
        .get(cloud.url(&format!("/api/v1/watches/{}/history/stream", watch.id())))
        .bearer_auth(parent.access())
        .send()
        .await
        .expect("the cloud answers");
    assert_eq!(res.status(), 200);
    res
}

/// A client for the app's plain-HTTP loopback listener. reqwest still
/// wants a TLS configuration (it is built without a default crypto
/// provider): this one trusts nothing, so it can reach no HTTPS server.
pub fn loopback_client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .expect("a loopback client")
}

/// An owner's new invitation with `role` (`{"id","code","link",…}`).
pub async fn invite(cloud: &impl Endpoint, owner: &Parent, role: &str) -> anyhow::Result<Value> {
    let (status, body) = api(
        cloud,
        reqwest::Method::POST,
        "/api/v1/family/invitations",
        owner.access(),
        Some(&serde_json::json!({ "role": role })),
    )
    .await?;
    anyhow::ensure!(status == 201, "invitation refused: {status} {body}");
    Ok(body)
}

/// `invitee` accepts `code`: the status and the body.
pub async fn accept_invitation(
    cloud: &impl Endpoint,
    invitee: &Parent,
    code: &str,
) -> anyhow::Result<(u16, Value)> {
    api(
        cloud,
        reqwest::Method::POST,
        "/api/v1/invitations/accept",
        invitee.access(),
        Some(&serde_json::json!({ "code": code })),
    )
    .await
}

/// A new parent (their own account and passkey) who joined `owner`'s
/// family as `role`.
pub async fn co_parent(
    cloud: &impl Endpoint,
    owner: &Parent,
    name: &str,
    role: &str,
) -> anyhow::Result<Parent> {
    let invitee = Parent::sign_up(cloud, name).await?;
    let invitation = invite(cloud, owner, role).await?;
    let code = invitation["code"].as_str().context("a code")?;
    let (status, body) = accept_invitation(cloud, &invitee, code).await?;
    anyhow::ensure!(status == 200, "joining refused: {status} {body}");
    Ok(invitee)
}

/// The caller's account id (`/api/v1/me`).
pub async fn account_id_of(cloud: &impl Endpoint, parent: &Parent) -> anyhow::Result<String> {
    let (_, me) = api(
        cloud,
        reqwest::Method::GET,
        "/api/v1/me",
        parent.access(),
        None,
    )
    .await?;
    Ok(me["account_id"].as_str().context("account id")?.to_owned())
}

/// The kinds of an activity log's entries (`GET /api/v1/activity`), newest first.
pub fn activity_kinds(log: &Value) -> Vec<&str> {
    log.as_array()
        .map(|entries| entries.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default()
}

/// The newest entry of `kind` in an activity log.
pub fn activity_entry<'a>(log: &'a Value, kind: &str) -> &'a Value {
    log.as_array()
        .and_then(|entries| entries.iter().find(|e| e["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in {log}"))
}

#[cfg(test)]
mod number_scan_tests {
    use super::contains_number;

    #[test]
    fn a_rounded_coordinate_is_found_only_as_a_number_of_its_own() {
        assert!(contains_number(b"lon=8.51235 lat=47.39123", b"8.51235"));
        assert!(contains_number(b"[8.51235,47.1]", b"8.51235"));
        assert!(contains_number(b"8.51235", b"8.51235"));
        assert!(!contains_number(b"elapsed=8.512351ms", b"8.51235"));
        assert!(!contains_number(b"elapsed=8.51235ms", b"8.51235"));
        assert!(!contains_number(b"took 18.51235s", b"8.51235"));
        assert!(!contains_number("8.51235µs".as_bytes(), b"8.51235"));
    }
}
