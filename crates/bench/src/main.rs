//! `waymark-bench`: benchmarks, not tests. Each prints a table of what it
//! measured on this machine.
//!
//! `ingest`: a swarm of simulated watches (real P-256 keys and factory
//! certificates, paired to one account through the real API) sends signed
//! batches over real TLS with keep-alive to a `waymark-cloud serve` process
//! with a SQLite file (or on PostgreSQL, one or more instances); it reports acknowledged fixes per second, latency,
//! the cloud's CPU and peak memory, and this machine's P-256 verification
//! rate for comparison.
//!
//! `tpm-signing`: signatures per second with the key in a TPM (swtpm)
//! against the same signature in software, in one run.
//!
//! `history-open`: a family app authenticating (hash chain, one signature per
//! run) and decrypting a sealed year of history, against issue 13's goal and
//! a P-256 check per batch measured in the same run.
//!
//! `zones`: a watch checking each fix against 20 safe zones (issue 16's goal).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rcgen::{KeyPair, PublicKeyData, SigningKey};

use waymark_protocol::device::device_id_from_spki;
use waymark_protocol::location_sealing::WatchSealer;
use waymark_protocol::pairing::{SignedOffer, SignedPairingConfirmation};
use waymark_protocol::report::{Fix, Record};
use waymark_protocol::sealed_report::{ChainHash, SignedSealedBatch};
use waymark_protocol::signing::b64;
use waymark_protocol::status_poll::{DeviceStatus, SignedStatus, StatusRequest};
use waymark_system_tests::{Endpoint, Parent, RemoteCloud, TestFamily};

mod history_open;
mod live;
mod reads;
mod tpm_signing;
mod zones;

#[derive(Parser)]
#[command(
    name = "waymark-bench",
    about = "Waymark benchmarks: they measure and print, they do not pass or fail"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Signed-batch ingest from a swarm of watches into a cloud process.
    Ingest {
        #[arg(long, default_value_t = 10_000)]
        watches: usize,
        #[arg(long, default_value_t = 1)]
        fixes_per_batch: usize,
        /// Batches each watch sends in the timed phase (bounds the run).
        #[arg(long, default_value_t = 3)]
        batches_per_watch: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// The cloud binary (default: next to this one).
        #[arg(long)]
        cloud_bin: Option<PathBuf>,
        /// Store in this PostgreSQL database instead of a SQLite file
        /// (e.g. the URL `scripts/with-postgres` puts in WAYMARK_TEST_POSTGRES).
        #[arg(long)]
        postgres: Option<String>,
        /// Cloud instances on the one database (PostgreSQL only), the
        /// connections spread over them as a load balancer would.
        #[arg(long, default_value_t = 1)]
        instances: usize,
    },
    /// Reads at scale: a family's latest fixes and a year of one watch's
    /// history streamed, with many other watches and fixes stored.
    Reads {
        /// Watches stored in all (the family's 4 plus others).
        #[arg(long, default_value_t = 100_000)]
        watches: u64,
        /// Fixes stored in all; one of the family's watches has a year of
        /// them (`--year-fixes`), the rest are spread over the others.
        #[arg(long, default_value_t = 10_000_000)]
        fixes: u64,
        #[arg(long, default_value_t = 1_000_000)]
        year_fixes: u64,
        /// Timed requests for the latest fixes.
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
        #[arg(long)]
        cloud_bin: Option<PathBuf>,
    },
    /// Signing inside a TPM (a swtpm started for the run) beside software signing.
    TpmSigning {
        #[arg(long, default_value_t = 500)]
        signatures: usize,
    },
    /// A family app authenticating and decrypting a sealed history (issue 13):
    /// no cloud, the batches are sealed here as a watch seals them.
    HistoryOpen {
        #[arg(long, default_value_t = 1_000_000)]
        fixes: usize,
        /// Fixes per batch: 1 is a watch reporting each fix as it takes it.
        #[arg(long, default_value_t = 1)]
        fixes_per_batch: usize,
        /// Threads (each authenticates and opens one contiguous run).
        #[arg(long, default_value_t = cores())]
        threads: usize,
    },
    /// A watch checking each fix against its safe zones (issue 16).
    Zones {
        #[arg(long, default_value_t = 20)]
        zones: usize,
        #[arg(long, default_value_t = 100_000)]
        fixes: usize,
    },
    /// Live latency: from a watch's upload to the fix arriving on the
    /// parent's live stream, while a swarm of watches uploads.
    Live {
        #[arg(long, default_value_t = 2_000)]
        watches: usize,
        #[arg(long, default_value_t = 5)]
        batches_per_watch: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long)]
        cloud_bin: Option<PathBuf>,
        /// Every batch also carries a safe-zone event, which the reader
        /// opens with the family's keys and turns into the alert the app
        /// would show (issue 16: event to notification p99 < 1 s).
        #[arg(long)]
        zone_events: bool,
    },
}

pub(crate) struct Watch {
    pub key: KeyPair,
    pub id: String,
    cert_der: Vec<u8>,
    /// The family key the watch took at pairing: what it seals to.
    family: Option<waymark_protocol::pairing::WatchFamilyBundle>,
}

impl Watch {
    /// Starts sealing to the family's key, as a watch does at start: the
    /// sealer and the signed setup record the cloud must hold first.
    pub(crate) fn start_sealing(
        &self,
    ) -> anyhow::Result<(
        WatchSealer,
        waymark_protocol::sealed_report::SignedSetupRecord,
    )> {
        let family = self.family.as_ref().context("the watch is not paired")?;
        let (sealer, setup) = WatchSealer::start(&self.id, family.epoch, &family.epoch_public)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let signature = b64(&self.key.sign(&setup.signing_bytes())?);
        Ok((
            sealer,
            waymark_protocol::sealed_report::SignedSetupRecord { setup, signature },
        ))
    }

    /// `fixes` as batch `seq`, sealed and signed.
    pub(crate) fn seal(
        &self,
        sealer: &WatchSealer,
        seq: u64,
        prev: ChainHash,
        records: &[Record],
    ) -> SignedSealedBatch {
        let batch = sealer.seal_records(seq, 0, prev, records);
        let signature = b64(&self.key.sign(&batch.signing_bytes()).expect("sign"));
        SignedSealedBatch { batch, signature }
    }
}

/// Every watch's setup record, and per connection its batches for `rounds`
/// rounds, sealed, chained and signed ahead of the timed part; `fixes(c, k,
/// round)` are the fixes of watch `k` of chunk `c` in that round.
#[allow(clippy::type_complexity)]
pub(crate) fn presealed(
    chunks: &[Vec<Watch>],
    rounds: u64,
    fixes: impl Fn(usize, usize, u64) -> Vec<Record>,
) -> anyhow::Result<(
    Vec<waymark_protocol::sealed_report::SignedSetupRecord>,
    Vec<Vec<SignedSealedBatch>>,
)> {
    let mut setups = Vec::new();
    let mut signed = Vec::new();
    for (c, chunk) in chunks.iter().enumerate() {
        let mut sealers = Vec::new();
        for w in chunk {
            let (sealer, setup) = w.start_sealing()?;
            setups.push(setup);
            sealers.push((sealer, ChainHash::GENESIS));
        }
        let mut out = Vec::new();
        for round in 0..rounds {
            for (k, (w, (sealer, prev))) in chunk.iter().zip(sealers.iter_mut()).enumerate() {
                let b = w.seal(sealer, round + 1, *prev, &fixes(c, k, round));
                *prev = b.batch.chain_hash();
                out.push(b);
            }
        }
        signed.push(out);
    }
    Ok((setups, signed))
}

/// Posts every watch's setup record (before the timed part: a watch does
/// this once per start).
pub(crate) async fn post_setups(
    cloud: &RemoteCloud,
    setups: Vec<waymark_protocol::sealed_report::SignedSetupRecord>,
) -> anyhow::Result<()> {
    let client = cloud.client();
    for setup in setups {
        let res = client
            .post(cloud.url("/device/v1/setups"))
            .json(&setup)
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("setup refused: {}", res.text().await?);
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    match command {
        Bench::Ingest {
            watches,
            fixes_per_batch,
            batches_per_watch,
            connections,
            cloud_bin,
            postgres,
            instances,
        } => {
            if instances > 1 && postgres.is_none() {
                bail!("--instances above 1 needs --postgres: SQLite has one instance");
            }
            ingest(
                watches,
                fixes_per_batch.clamp(1, 500),
                batches_per_watch.max(1),
                connections.max(1),
                cloud_bin,
                postgres,
                instances.clamp(1, 8),
            )
            .await
        }
        Bench::HistoryOpen {
            fixes,
            fixes_per_batch,
            threads,
        } => history_open::run(
            fixes.clamp(1, 10_000_000),
            fixes_per_batch.clamp(1, 500),
            threads.clamp(1, 64),
        ),
        Bench::Zones {
            zones: count,
            fixes,
        } => zones::run(count.clamp(1, 1_000), fixes.clamp(1, 10_000_000)),
        Bench::TpmSigning { signatures } => tpm_signing::run(signatures.clamp(1, 100_000)),
        Bench::Reads {
            watches,
            fixes,
            year_fixes,
            requests,
            cloud_bin,
        } => reads::run(watches, fixes, year_fixes, requests.max(1), cloud_bin).await,
        Bench::Live {
            watches,
            batches_per_watch,
            connections,
            cloud_bin,
            zone_events,
        } => {
            live::run(
                watches,
                batches_per_watch.max(1),
                connections.max(1),
                cloud_bin,
                zone_events,
            )
            .await
        }
    }
}

/// A `waymark-cloud serve` process on a fresh data directory (SQLite, TLS),
/// trusting a fresh factory's manufacturer CA. Killed when dropped.
pub(crate) struct CloudProcess {
    /// More instances on the same data directory and database (PostgreSQL).
    pub others: Vec<CloudProcess>,
    pub child: std::process::Child,
    pub pid: u32,
    pub cloud: RemoteCloud,
    pub factory: PathBuf,
    pub data: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for CloudProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CloudProcess {
    pub fn start(cloud_bin: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::start_on(cloud_bin, None, 1)
    }

    /// `instances` processes on one fresh data directory, on `postgres` (a
    /// database URL) or else a SQLite file. The first one's address is `cloud`.
    pub fn start_on(
        cloud_bin: Option<PathBuf>,
        postgres: Option<&str>,
        instances: usize,
    ) -> anyhow::Result<Self> {
        let cloud_bin = match cloud_bin {
            Some(p) => p,
            None => std::env::current_exe()?.with_file_name("waymark-cloud"),
        };
        if !cloud_bin.exists() {
            bail!(
                "{} not found: build it first (cargo build --release -p waymark-cloud)",
                cloud_bin.display()
            );
        }
        let tmp = tempfile::tempdir()?;
        let (data, factory) = (tmp.path().join("cloud"), tmp.path().join("factory"));
        waymark_cloud::local_ca::init(&data, false, Some("127.0.0.1:0"))?;
        waymark_cloud::factory::init(&factory, false)?;
        let spawn = || {
            let mut command = Command::new(&cloud_bin);
            command
                .args(["serve", "--dir"])
                .arg(&data)
                .env(
                    "WAYMARK_MANUFACTURER_CAS",
                    factory.join("manufacturer-ca.pem"),
                )
                .env("RUST_LOG", "warn")
                .env_remove("WAYMARK_DATABASE")
                .stdout(Stdio::piped());
            if let Some(url) = postgres {
                command.env("WAYMARK_DATABASE", url);
            }
            command.spawn().context("starting the cloud")
        };
        let mut others = Vec::new();
        for _ in 1..instances {
            let mut child = spawn()?;
            let (pid, cloud) = serving(&mut child, &data)?;
            others.push(CloudProcess {
                others: Vec::new(),
                child,
                pid,
                cloud,
                factory: factory.clone(),
                data: data.clone(),
                _tmp: tempfile::tempdir()?,
            });
        }
        let mut child = spawn()?;
        let (pid, cloud) = serving(&mut child, &data)?;
        Ok(Self {
            others,
            child,
            pid,
            cloud,
            factory,
            data,
            _tmp: tmp,
        })
    }

    /// Every instance's address, the first one first.
    pub fn endpoints(&self) -> Vec<RemoteCloud> {
        std::iter::once(&self.cloud)
            .chain(self.others.iter().map(|o| &o.cloud))
            .cloned()
            .collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.pid)
            .chain(self.others.iter().map(|o| o.pid))
            .collect()
    }
}

/// Waits for a started cloud's "serving" line: its pid and address.
fn serving(
    child: &mut std::process::Child,
    data: &std::path::Path,
) -> anyhow::Result<(u32, RemoteCloud)> {
    {
        let pid = child.id();
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("cloud stdout")?).read_line(&mut line)?;
        let (origin, addr) = line
            .trim()
            .strip_prefix("waymark-cloud serving ")
            .and_then(|r| r.split_once(" on "))
            .context("unexpected cloud output")?;
        let cloud = RemoteCloud {
            origin: origin.trim_end_matches('/').to_owned(),
            addr: addr.parse()?,
            ca_pem: std::fs::read(data.join("ca/ca.pem"))?,
        };
        Ok((pid, cloud))
    }
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1)
}

/// The `p` quantile (0–1) of sorted microseconds, in milliseconds.
pub(crate) fn quantile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    sorted_us[((sorted_us.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

async fn ingest(
    n: usize,
    per_batch: usize,
    rounds: u64,
    connections: usize,
    cloud_bin: Option<PathBuf>,
    postgres: Option<String>,
    instances: usize,
) -> anyhow::Result<()> {
    let proc = CloudProcess::start_on(cloud_bin, postgres.as_deref(), instances)?;
    let engine = match (&postgres, instances) {
        (None, _) => "SQLite".to_owned(),
        (Some(_), 1) => "PostgreSQL, 1 instance".to_owned(),
        (Some(_), n) => format!("PostgreSQL, {n} instances"),
    };
    run_swarm(
        &proc.endpoints(),
        &proc.factory,
        n,
        per_batch,
        rounds,
        connections,
        &proc.pids(),
        cores(),
        &engine,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run_swarm(
    instances: &[RemoteCloud],
    factory: &std::path::Path,
    n: usize,
    per_batch: usize,
    rounds: u64,
    connections: usize,
    pids: &[u32],
    cores: usize,
    engine: &str,
) -> anyhow::Result<()> {
    let cloud = &instances[0];
    eprintln!("signing up a parent and provisioning {n} watches…");
    let parent = Parent::sign_up(cloud, "Bench family").await?;
    let chunks = provision_and_pair(cloud, factory, &parent, n, connections).await?;

    eprintln!("pre-sealing and signing {} batches…", n as u64 * rounds);
    let base = waymark_watch_now() - 3_600_000;
    let (setups, signed) = presealed(&chunks, rounds, |_, _, round| {
        (0..per_batch)
            .map(|k| {
                Record::Fix(Fix {
                    t: base + (round as i64 * per_batch as i64 + k as i64) * 10,
                    lat: 52.5,
                    lon: 13.4,
                    acc: 5.0,
                    bat: 80,
                })
            })
            .collect()
    })?;
    post_setups(cloud, setups).await?;

    let bodies = signed
        .iter()
        .map(|chunk| {
            chunk
                .iter()
                .map(|b| Ok((serde_json::to_vec(b)?, b.batch.header.times.len() as u64)))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!("sending…");
    let cpu_ticks_all = || -> anyhow::Result<u64> { pids.iter().map(|pid| cpu_ticks(*pid)).sum() };
    let cpu_before = cpu_ticks_all()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, batches) in bodies.into_iter().enumerate() {
        // Connections spread over the instances, as behind a load balancer.
        let target = &instances[i % instances.len()];
        let (client, url) = (target.client(), target.url("/device/v2/batches"));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(batches.len());
            let mut acked = 0u64;
            // Bodies serialised before the clock starts: the swarm's JSON
            // encoding is the watches' work, not the cloud's.
            for (body, fixes) in batches {
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await?;
                let ok = res.status().is_success();
                let _ = res.bytes().await?;
                lat.push(t.elapsed().as_micros() as u64);
                if ok {
                    acked += fixes;
                }
            }
            Ok::<_, anyhow::Error>((lat, acked))
        }));
    }
    let (mut lat, mut acked) = (Vec::new(), 0u64);
    for t in tasks {
        let (l, a) = t.await??;
        lat.extend(l);
        acked += a;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_s = (cpu_ticks_all()? - cpu_before) as f64 / clock_ticks_per_second();
    let mut peak_rss_mb = 0f64;
    for pid in pids {
        peak_rss_mb = peak_rss_mb.max(peak_rss_kb(*pid)? as f64 / 1024.0);
    }
    lat.sort_unstable();
    let pct = |p: f64| quantile_ms(&lat, p);
    let verify = p256_verifies_per_core(Duration::from_secs(2));
    let rate = acked as f64 / elapsed;
    let sent = lat.len();

    println!("\nwaymark-bench ingest ({cores} cores, {engine}, TLS 1.3, keep-alive)");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| watches | {n} |");
    println!("| fixes per batch | {per_batch} |");
    println!("| connections | {connections} |");
    println!("| batches sent | {sent} |");
    println!("| fixes acknowledged | {acked} |");
    println!("| elapsed | {elapsed:.2} s |");
    println!("| acknowledged fixes/s | {rate:.0} |");
    println!(
        "| batch latency p50 / p99 | {:.2} ms / {:.2} ms |",
        pct(0.50),
        pct(0.99)
    );
    println!(
        "| cloud CPU | {:.2} cores busy on average ({cpu_s:.1} CPU-s) |",
        cpu_s / elapsed
    );
    println!("| cloud peak RSS (largest instance) | {peak_rss_mb:.0} MB |");
    println!("| P-256 verifications/s (one core, ring) | {verify:.0} |");
    println!(
        "| P-256 verifications/s (all {cores} cores) | {:.0} |",
        verify * cores as f64
    );
    println!(
        "| batches/s ÷ verification limit (one verification per batch) | {:.3} |",
        sent as f64 / elapsed / (verify * cores as f64)
    );
    println!("| target | ≥ 33,000 fixes/s |");
    if acked as usize != sent * per_batch {
        println!(
            "\nwarning: {} batches were not acknowledged",
            sent - acked as usize / per_batch
        );
    }
    Ok(())
}

/// `n` watches with real P-256 keys and factory certificates, paired to
/// `parent` through the real API over `connections` connections; returned
/// in as many chunks.
pub(crate) async fn provision_and_pair(
    cloud: &RemoteCloud,
    factory: &std::path::Path,
    parent: &Parent,
    n: usize,
    connections: usize,
) -> anyhow::Result<Vec<Vec<Watch>>> {
    Ok(
        provision_and_pair_with_family(cloud, factory, parent, n, connections)
            .await?
            .0,
    )
}

/// [`provision_and_pair`], and the one family computer that paired them all
/// (what opens their reports).
pub(crate) async fn provision_and_pair_with_family(
    cloud: &RemoteCloud,
    factory: &std::path::Path,
    parent: &Parent,
    n: usize,
    connections: usize,
) -> anyhow::Result<(Vec<Vec<Watch>>, std::sync::Arc<TestFamily>)> {
    let t = Instant::now();
    let mut watches = Vec::with_capacity(n);
    for i in 0..n {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())?
            .serialize_request(&key)?
            .pem()?;
        let pem = waymark_cloud::factory::sign(factory, &csr, &format!("BENCH-{i}"), "Bench")?;
        let der = pem_to_der(&pem)?;
        watches.push(Watch {
            id: device_id_from_spki(&key.subject_public_key_info()),
            key,
            cert_der: der,
            family: None,
        });
    }
    eprintln!(
        "provisioned in {:.1} s; pairing…",
        t.elapsed().as_secs_f64()
    );
    let chunks: Vec<Vec<Watch>> = split(watches, connections);
    let token = parent.access().to_owned();
    // The cloud counts each pairing against the account's wrong-code limit
    // before it looks at the code (and gives it back when it was right), so
    // more pairings in flight at once than that limit would be refused.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(
        (waymark_cloud::parent_api::pairing::MAX_WRONG_PER_ACCOUNT as usize)
            .saturating_sub(2)
            .max(1),
    ));
    let family = std::sync::Arc::new(TestFamily::default());
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (client, origin, token) = (cloud.client(), cloud.origin.clone(), token.clone());
        let in_flight = in_flight.clone();
        let family = family.clone();
        let remote = RemoteCloud {
            origin: origin.clone(),
            addr: cloud.addr,
            ca_pem: cloud.ca_pem.clone(),
        };
        tasks.push(tokio::spawn(async move {
            let mut chunk = chunk;
            for w in &mut chunk {
                // A new code while another watch shows one with the same
                // locator (as the watch does: 10,000 live offers share
                // 32^4 locators, so a few collide).
                let mut tries = 0;
                let shown = loop {
                    let (shown, first) = waymark_watch::pairing::new_code(&w.id);
                    let offer = waymark_watch::pairing::offer_for(
                        &w.id,
                        &shown.code,
                        &first,
                        waymark_watch_now(),
                        600_000,
                    );
                    let signature = b64(&w.key.sign(&offer.signing_bytes())?);
                    let signed = SignedOffer {
                        offer,
                        certificate: b64(&w.cert_der),
                        signature,
                    };
                    let res = client
                        .post(format!("{origin}/device/v1/pairing-offers"))
                        .json(&signed)
                        .send()
                        .await?;
                    if res.status().is_success() {
                        break shown;
                    }
                    let text = res.text().await?;
                    tries += 1;
                    if !text.contains("locator_taken") || tries >= 5 {
                        bail!("offer refused: {text}");
                    }
                };
                let permit = in_flight.acquire().await?;
                let (s, body, answered) = family
                    .answer(&remote, &token, &shown.code.display())
                    .await?;
                let Some(answered) = answered else {
                    bail!("pairing refused: {s} {body}");
                };
                // The watch's side: the answer arrives with its status.
                let status = StatusRequest {
                    device_id: w.id.clone(),
                    at: waymark_watch_now(),
                    zones: None,
                };
                let signature = b64(&w.key.sign(&status.signing_bytes())?);
                let res = client
                    .post(format!("{origin}/device/v1/status"))
                    .json(&SignedStatus { status, signature })
                    .send()
                    .await?;
                let status: DeviceStatus = res.json().await?;
                let answer = status.pairing_answer.context("no answer for the watch")?;
                let weighed = waymark_watch::pairing::weigh_answer(&w.id, shown, &answer);
                w.family = weighed.family;
                let word = weighed.word;
                let signature = b64(&w.key.sign(&word.signing_bytes())?);
                let res = client
                    .post(format!("{origin}/device/v1/pairing-confirmations"))
                    .json(&SignedPairingConfirmation {
                        confirmation: word,
                        signature,
                    })
                    .send()
                    .await?;
                if !res.status().is_success() {
                    bail!("confirmation refused: {}", res.text().await?);
                }
                // Reading the offer is counted (and given back) like typing
                // the code: held under the same limit of reads in flight.
                family.await_paired(&remote, &token, answered).await?;
                drop(permit);
            }
            Ok::<_, anyhow::Error>(chunk)
        }));
    }
    let mut chunks = Vec::new();
    for t in tasks {
        chunks.push(t.await??);
    }
    Ok((chunks, family))
}

pub(crate) fn waymark_watch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn split<T>(items: Vec<T>, parts: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..parts).map(|_| Vec::new()).collect();
    for (i, it) in items.into_iter().enumerate() {
        out[i % parts].push(it);
    }
    out.retain(|c| !c.is_empty());
    out
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

/// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat format")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn peak_rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

/// ECDSA P-256/SHA-256 verifications per second on one core, with ring.
fn p256_verifies_per_core(for_how_long: Duration) -> f64 {
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
        UnparsedPublicKey,
    };
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key");
    let msg = b"waymark/batch/v1\0benchmark message of about a batch's size....";
    let sig = key.sign(&rng, msg).expect("sign");
    let public =
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref().to_vec());
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < for_how_long {
        for _ in 0..100 {
            public.verify(msg, sig.as_ref()).expect("verifies");
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}
