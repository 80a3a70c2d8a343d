//! The `waymark-watch` command: provision, attest, install-cert, info, pair, run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use waymark_watch::clock::Clock;
use waymark_watch::cloud_link::{CloudLink, LinkError};
use waymark_watch::keystore::KeyStoreChoice;
use waymark_watch::pairing::{self, Waited};
use waymark_watch::provisioning::{self, Watch};
use waymark_watch::queue::DEFAULT_CAPACITY;
use waymark_watch::reporting::{Drain, Reporter};
use waymark_watch::revocation::wipe;
use waymark_watch::routes::{Route, Walker};

/// Exit code after the owner revoked this watch and it erased itself.
const EXIT_REVOKED: u8 = 3;

#[derive(Parser)]
#[command(
    name = "waymark-watch",
    version,
    about = "A Waymark watch simulator: device key, signed pairing codes, signed location reports"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyStoreKind {
    /// A PEM file in DIR, 0600 (the simulator's default).
    File,
    /// Inside a TPM 2.0: the key cannot be copied off the watch.
    Tpm,
}

#[derive(Subcommand)]
enum Command {
    /// Make this watch's P-256 key (it never leaves the watch) and a certificate request DIR/device.csr.
    Provision {
        #[arg(long)]
        dir: PathBuf,
        /// The cloud's address.
        #[arg(long, default_value = "https://localhost:8443")]
        cloud: String,
        /// The CA certificate the cloud's TLS certificate must chain to.
        #[arg(long)]
        cloud_ca: PathBuf,
        /// Where the key lives.
        #[arg(long, value_enum, default_value = "file")]
        keystore: KeyStoreKind,
        /// How to reach the TPM (with --keystore tpm), e.g. `swtpm:host=127.0.0.1,port=2321`.
        #[arg(long, default_value = "device:/dev/tpmrm0")]
        tcti: String,
    },
    /// Answer the factory's TPM challenge (TPM watches): writes the answer for `factory sign --require-tpm`.
    Attest {
        #[arg(long)]
        dir: PathBuf,
        /// The challenge from `waymark-cloud factory challenge`.
        #[arg(long)]
        challenge: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Show this watch's id, where its key lives, its certificate and its owner.
    Info {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Install the certificate the manufacturer signed for this watch's key.
    InstallCert {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        cert: PathBuf,
    },
    /// Show a fresh pairing code (text and QR) and wait until a parent enters it.
    Pair {
        #[arg(long)]
        dir: PathBuf,
        /// Also write the QR code to this PNG file.
        #[arg(long)]
        qr_png: Option<PathBuf>,
        /// How long the code is valid, in seconds (at most 600).
        #[arg(long, default_value_t = 600)]
        ttl: u64,
        /// Print the code and exit without waiting (nothing can pair with it
        /// then: the watch itself takes the answer).
        #[arg(long)]
        no_wait: bool,
    },
    /// Walk a route and report fixes in signed batches (queued on disk while offline).
    Run {
        #[arg(long)]
        dir: PathBuf,
        /// `builtin:park-loop`, `builtin:school-run`, `builtin:harbour-walk`, or a .gpx/.geojson file.
        #[arg(long, default_value = "builtin:park-loop")]
        route: String,
        /// Seconds between fixes.
        #[arg(long, default_value_t = 5.0)]
        interval: f64,
        /// Stop after this many fixes (default: run until stopped).
        #[arg(long)]
        fixes: Option<u64>,
        /// Queue capacity; when full the oldest fix is dropped and counted.
        #[arg(long, default_value_t = DEFAULT_CAPACITY)]
        queue: usize,
        /// Simulate a hardware clock this many ms off true time (negative:
        /// slow). The watch corrects it from the cloud's answers.
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        clock_error_ms: i64,
        /// The battery's charge at start, percent; it drains 1 % a minute
        /// of fixes, down to 5 %.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
        battery: u8,
        /// Speed along the route, metres a second (walking pace by default).
        #[arg(long, default_value_t = 1.4)]
        speed_mps: f64,
        /// Seconds between status polls (new roster versions, key epochs and
        /// safe zones reach the watch on them).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
        poll_secs: u64,
    },
    /// Print a route as a GeoJSON LineString (lon, lat), e.g. to draw the
    /// demo map (scripts/demo-map).
    Route {
        /// `builtin:NAME` or a .gpx/.geojson file, as for `run`.
        route: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The TSS library logs its own errors to stderr; ours say the cause in
    // one line, so its log is off unless asked for (TSS2_LOG=all+debug).
    if std::env::var_os("TSS2_LOG").is_none() {
        // SAFETY: no other thread exists yet to read the environment.
        unsafe { std::env::set_var("TSS2_LOG", "all+none") };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,tss_esapi=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("waymark-watch: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("waymark-watch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Provision {
            dir,
            cloud,
            cloud_ca,
            keystore,
            tcti,
        } => {
            let choice = match keystore {
                KeyStoreKind::File => KeyStoreChoice::File,
                KeyStoreKind::Tpm => KeyStoreChoice::Tpm { tcti },
            };
            let made = provisioning::provision(&dir, &cloud, &cloud_ca, &choice)?;
            println!(
                "Key made: {}. Certificate request: {}",
                choice.describe(),
                made.csr.display()
            );
            match made.attestation_request {
                None => println!(
                    "Have it signed: waymark-cloud factory sign --dir FACTORY --csr {} --serial SERIAL --model MODEL --out cert.pem",
                    made.csr.display()
                ),
                Some(request) => {
                    println!("Attestation request for the factory: {}", request.display());
                    println!(
                        "Next: waymark-cloud factory challenge --dir FACTORY --request {} --out challenge.json, then waymark-watch attest",
                        request.display()
                    );
                }
            }
        }
        Command::Attest {
            dir,
            challenge,
            out,
        } => {
            let answer = provisioning::attest(&dir, &challenge)?;
            std::fs::write(&out, serde_json::to_vec_pretty(&answer)?)?;
            println!(
                "Answer written to {}. Next: waymark-cloud factory sign --require-tpm --attestation {} --csr {}",
                out.display(),
                out.display(),
                dir.join(provisioning::CSR_FILE).display()
            );
        }
        Command::Info { dir } => {
            for (what, value) in waymark_watch::info::describe(&dir)? {
                println!("{what:<12} {value}");
            }
        }
        Command::InstallCert { dir, cert } => {
            let id = provisioning::install_cert(&dir, &cert)?;
            println!("Certificate installed. Device id {id}");
        }
        Command::Pair {
            dir,
            qr_png,
            ttl,
            no_wait,
        } => return pair(&dir, qr_png.as_deref(), ttl, no_wait).await,
        Command::Run {
            dir,
            route,
            interval,
            fixes,
            queue,
            clock_error_ms,
            battery,
            poll_secs,
            speed_mps,
        } => {
            if !(0.1..=60.0).contains(&speed_mps) {
                anyhow::bail!("--speed-mps must be between 0.1 and 60 metres a second");
            }
            let walker = (route.as_str(), interval, battery, speed_mps);
            let watch = WatchClock {
                clock_error_ms,
                poll: Duration::from_secs(poll_secs),
            };
            return report(&dir, walker, fixes, queue, watch).await;
        }
        Command::Route { route } => {
            println!("{}", Route::load(&route)?.to_geojson());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn revoked(dir: &Path) -> anyhow::Result<ExitCode> {
    wipe(dir)?;
    eprintln!(
        "waymark-watch: this watch was revoked by its owner; its key, queue and pairing were erased"
    );
    Ok(ExitCode::from(EXIT_REVOKED))
}

async fn pair(
    dir: &Path,
    qr_png: Option<&Path>,
    ttl: u64,
    no_wait: bool,
) -> anyhow::Result<ExitCode> {
    let watch = Watch::open(dir)?;
    let link = CloudLink::new(&watch)?;
    // A wrong code or an expired one: the watch shows a fresh code, as the
    // hardware would, until a parent's answer proves the code it shows.
    loop {
        let shown = match pairing::make_code(&watch, &link, ttl as i64 * 1000).await {
            Ok(s) => s,
            Err(LinkError::Revoked) => return revoked(dir),
            Err(e) => return Err(e.into()),
        };
        println!("{}", pairing::qr_text(&shown.code)?);
        println!("PAIRING CODE: {}", shown.code.display());
        println!(
            "Enter this code in the Waymark app within {} minutes.",
            ttl.div_ceil(60)
        );
        if let Some(path) = qr_png {
            pairing::qr_png(&shown.code, path)?;
            println!("QR code written to {}", path.display());
        }
        if no_wait {
            return Ok(ExitCode::SUCCESS);
        }
        match pairing::wait_for_answer(&watch, &link, dir, shown, Duration::from_secs(2)).await {
            Ok(Waited::Paired { owner }) => {
                println!("Paired with {owner}.");
                return Ok(ExitCode::SUCCESS);
            }
            Ok(Waited::WrongCode) => {
                println!("The code typed in the app did not match; showing a new code.");
            }
            Ok(Waited::Expired) => {
                println!("The code expired before a parent entered it; showing a new code.");
            }
            Err(LinkError::Revoked) => return revoked(dir),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Takes a fix every `interval` and uploads beside it: a slow or hanging
/// cloud delays uploads, never the next fix.
async fn report(
    dir: &Path,
    (route, interval, battery, speed): (&str, f64, u8, f64),
    limit: Option<u64>,
    capacity: usize,
    timing: WatchClock,
) -> anyhow::Result<ExitCode> {
    if !(0.05..=3600.0).contains(&interval) {
        anyhow::bail!("--interval must be between 0.05 and 3600 seconds");
    }
    let mut walker = Walker::new(Route::load(route)?, interval)
        .with_battery(battery)
        .with_speed(speed, interval);
    let watch = Watch::open(dir)?;
    let link = CloudLink::with_clock(&watch, Clock::with_error(timing.clock_error_ms))?;
    let reporter = Reporter::with_link(watch, link, capacity)?;
    println!(
        "Reporting as device {} every {interval} s",
        reporter.watch.device_id
    );
    let new_fix = tokio::sync::Notify::new();
    let finished = std::cell::Cell::new(false);
    let made = std::cell::Cell::new(0u64);
    let recorder = async {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if limit.is_some_and(|n| made.get() >= n) {
                finished.set(true);
                new_fix.notify_one();
                std::future::pending::<()>().await;
            }
            if let Err(e) = reporter.record(walker.next_fix(reporter.link.clock.now_ms())) {
                return Err::<ExitCode, _>(e.context("cannot queue a fix"));
            }
            made.set(made.get() + 1);
            new_fix.notify_one();
        }
    };
    let uploader = async {
        let mut backoff = 1u64;
        loop {
            match reporter.drain().await? {
                Drain::Done(_) => {
                    backoff = 1;
                    if finished.get() && reporter.queue().is_empty() {
                        println!(
                            "Sent {} fixes ({} dropped while offline).",
                            made.get(),
                            reporter.queue().dropped()
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    new_fix.notified().await;
                }
                Drain::Revoked => return revoked(dir),
                Drain::Offline | Drain::NotPaired => {
                    eprintln!(
                        "waymark-watch: cloud unavailable or not paired; {} fixes queued, retrying in {backoff} s",
                        reporter.queue().len()
                    );
                    tokio::time::sleep(Duration::from_secs(backoff)).await;
                    backoff = (backoff * 2).min(60);
                }
            }
        }
    };
    // The family's new roster versions, key epochs and safe zones reach the
    // watch on its status polls: at start, then every `--poll-secs`. Zone
    // schedules are checked at each poll too, fix or no fix.
    let follower = async {
        let mut tick = tokio::time::interval(timing.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match reporter.tick_zones() {
                Ok(0) => {}
                Ok(_) => new_fix.notify_one(),
                Err(e) => tracing::warn!(error = %e, "cannot queue a zone event"),
            }
            match reporter.keep_in_step().await {
                Ok(_) => {}
                // The uploader hears it too and erases the watch.
                Err(LinkError::Revoked) => std::future::pending::<()>().await,
                Err(e) => tracing::warn!(error = %e, "family poll failed; trying again later"),
            }
        }
    };
    tokio::select! {
        done = uploader => done,
        failed = recorder => failed,
        () = follower => unreachable!("the family poll never ends"),
    }
}

/// The watch's clocks: its hardware clock's error and how often it polls
/// its status. (Zone schedules are read in the family's time zone, which
/// comes sealed with the zones.)
struct WatchClock {
    clock_error_ms: i64,
    poll: Duration,
}
