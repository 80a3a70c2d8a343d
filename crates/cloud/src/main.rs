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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
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
        Command::Factory(Factory::Sign { dir, csr, serial, model, out }) => sign(&dir, &csr, &serial, &model, out.as_deref()),
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

fn sign(
    dir: &std::path::Path,
    csr: &std::path::Path,
    serial: &str,
    model: &str,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let csr_pem = std::fs::read_to_string(csr)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", csr.display()))?;
    let cert = factory::sign(dir, &csr_pem, serial, model)?;
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
