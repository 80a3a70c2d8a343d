//! The `waymark-cloud` command: `init` a data directory, `serve` it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use waymark_cloud::{app, config::Config, factory, local_ca};

#[derive(Parser)]
#[command(
    name = "waymark-cloud",
    version,
    about = "The Waymark cloud: passkey accounts, watch pairing, locations — over HTTPS only"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory: configuration, a local CA, a server
    /// certificate for localhost/127.0.0.1, and the database location.
    Init {
        /// The data directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// Replace an existing directory's CA, certificates and database.
        #[arg(long)]
        force: bool,
        /// Listen address to write into the configuration.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
    },
    /// Serve HTTPS from a data directory made by `init`.
    /// Environment overrides: WAYMARK_LISTEN, WAYMARK_ORIGIN, WAYMARK_DATABASE; RUST_LOG for logs.
    Serve {
        #[arg(long)]
        dir: PathBuf,
        /// The database: a SQLite file (relative to DIR) or a postgres:// URL.
        /// Overrides `database` in waymark.toml and WAYMARK_DATABASE.
        #[arg(long)]
        database: Option<String>,
    },
    /// Play the watch manufacturer: keep a manufacturer CA and sign watches' certificate requests.
    #[command(subcommand)]
    Factory(Factory),
}

#[derive(Subcommand)]
enum Factory {
    /// Create a manufacturer CA (P-256) in DIR: manufacturer-ca.pem and manufacturer-ca.key (0600).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Trust a TPM maker: add its CA certificates (PEM) to those TPM endorsement certificates must chain to.
    TrustTpmVendor {
        #[arg(long)]
        dir: PathBuf,
        /// The TPM maker's CA certificate(s), PEM.
        #[arg(long)]
        ca: PathBuf,
    },
    /// Check a TPM watch's attestation request and write the challenge its TPM must answer.
    Challenge {
        #[arg(long)]
        dir: PathBuf,
        /// The watch's attestation-request.json (from `waymark-watch provision --keystore tpm`).
        #[arg(long)]
        request: PathBuf,
        /// Where to write the challenge.
        #[arg(long)]
        out: PathBuf,
        /// The factory station's own TPM, which computes TPM2_MakeCredential.
        #[arg(long, default_value = "device:/dev/tpmrm0")]
        tcti: String,
    },
    /// Sign a watch's certificate request (from `waymark-watch provision`).
    Sign {
        #[arg(long)]
        dir: PathBuf,
        /// The watch's CSR (PEM).
        #[arg(long)]
        csr: PathBuf,
        /// The manufacturer's serial number, written into the certificate.
        #[arg(long)]
        serial: String,
        /// The watch model, written into the certificate.
        #[arg(long)]
        model: String,
        /// Where to write the certificate (PEM); default: print it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Certify only a key shown to live in a genuine TPM; the certificate then says "hardware key".
        #[arg(long, requires = "attestation")]
        require_tpm: bool,
        /// The watch's answer to this factory's challenge (from `waymark-watch attest`).
        #[arg(long, requires = "require_tpm")]
        attestation: Option<PathBuf>,
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
                .unwrap_or_else(|_| "info,sqlx=warn,tss_esapi=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Init { dir, force, listen } => local_ca::init(&dir, force, Some(&listen))
            .map(|()| {
                println!(
                    "Created {dir}. Trust {ca} in your browser, then run: waymark-cloud serve --dir {dir}",
                    dir = dir.display(),
                    ca = dir.join("ca/ca.pem").display()
                );
            })
            .map_err(anyhow::Error::from),
        Command::Serve { dir, database } => serve(dir, database),
        Command::Factory(Factory::Init { dir, force }) => factory::init(&dir, force)
            .map(|()| println!("Manufacturer CA: {}", dir.join("manufacturer-ca.pem").display()))
            .map_err(anyhow::Error::from),
        Command::Factory(Factory::TrustTpmVendor { dir, ca }) => factory::trust_tpm_vendor(&dir, &ca)
            .map(|n| println!("Trusting {n} more TPM maker certificate(s) in {}", dir.join(factory::TPM_VENDOR_CAS).display()))
            .map_err(anyhow::Error::from),
        Command::Factory(Factory::Challenge { dir, request, out, tcti }) => challenge(&dir, &request, &out, &tcti),
        Command::Factory(Factory::Sign { dir, csr, serial, model, out, require_tpm: _, attestation }) => {
            sign(&dir, &csr, &serial, &model, out.as_deref(), attestation.as_deref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waymark-cloud: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(dir: PathBuf, database: Option<String>) -> anyhow::Result<()> {
    let mut config = Config::load(&dir, |k| std::env::var(k).ok())?;
    if let Some(db) = database {
        config.database = waymark_cloud::config::Database::parse(&dir, &db);
    }
    let connections = waymark_cloud::server::raise_open_file_limit();
    tracing::info!(connections, "connection cap");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let running = app::start(&config).await?;
        println!(
            "waymark-cloud serving {} on {}",
            running.origin, running.addr
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.stop().await
    })
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn now_ms() -> i64 {
    waymark_protocol::time::Clock::system().now().ms()
}

fn challenge(
    dir: &std::path::Path,
    request: &std::path::Path,
    out: &std::path::Path,
    tcti: &str,
) -> anyhow::Result<()> {
    let json = std::fs::read(request)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", request.display()))?;
    let challenge = factory::challenge(dir, &json, tcti, now_ms())?;
    std::fs::write(out, serde_json::to_vec_pretty(&challenge)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    println!(
        "Challenge written to {}; answer it within 10 minutes: waymark-watch attest --challenge {}",
        out.display(),
        out.display()
    );
    Ok(())
}

fn sign(
    dir: &std::path::Path,
    csr: &std::path::Path,
    serial: &str,
    model: &str,
    out: Option<&std::path::Path>,
    attestation: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let csr_pem = std::fs::read_to_string(csr)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", csr.display()))?;
    let cert = match attestation {
        None => factory::sign(dir, &csr_pem, serial, model)?,
        Some(path) => {
            let answer = serde_json::from_slice(
                &std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            )
            .map_err(|e| anyhow::anyhow!("{} is not an attestation answer: {e}", path.display()))?;
            factory::sign_tpm_attested(dir, &csr_pem, serial, model, &answer, now_ms())?
        }
    };
    match out {
        Some(path) => {
            std::fs::write(path, cert)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            println!("Device certificate: {}", path.display());
        }
        None => print!("{cert}"),
    }
    Ok(())
}
