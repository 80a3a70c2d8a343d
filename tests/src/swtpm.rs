//! Software TPMs for tests and benchmarks: `swtpm` (Debian's) listening on
//! loopback, manufactured like a real TPM: `swtpm_setup` writes an
//! endorsement key certificate from a TPM maker's CA (`swtpm_localca`).
//! Each [`TpmMaker`] is its own CA, so a test can play a trusted and an
//! untrusted maker.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A TPM maker: a local CA that signs its TPMs' endorsement key certificates.
pub struct TpmMaker {
    dir: tempfile::TempDir,
}

impl TpmMaker {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let ca = dir.path().join("ca");
        std::fs::create_dir(&ca)?;
        std::fs::write(
            dir.path().join("localca.conf"),
            format!(
                "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n",
                ca = ca.display()
            ),
        )?;
        std::fs::write(
            dir.path().join("localca.options"),
            "--platform-manufacturer Waymark-tests\n--platform-version 2.1\n--platform-model swtpm\n",
        )?;
        std::fs::write(
            dir.path().join("setup.conf"),
            format!(
                "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = {d}/localca.conf\ncreate_certs_tool_options = {d}/localca.options\nactive_pcr_banks = sha256\n",
                d = dir.path().display()
            ),
        )?;
        Ok(Self { dir })
    }

    /// The maker's CA certificates (its root and the issuer that signs EK
    /// certificates), PEM: what a factory is told to trust. Exists once the
    /// maker has made a TPM.
    pub fn ca_bundle_pem(&self) -> anyhow::Result<String> {
        let ca = self.dir.path().join("ca");
        let mut pem = std::fs::read_to_string(ca.join("issuercert.pem"))
            .context("the maker has made no TPM yet")?;
        pem.push_str(&std::fs::read_to_string(
            ca.join("swtpm-localca-rootca-cert.pem"),
        )?);
        Ok(pem)
    }

    fn setup_conf(&self) -> PathBuf {
        self.dir.path().join("setup.conf")
    }
}

/// A running software TPM 2.0 with an EK certificate from its maker.
pub struct SoftTpm {
    state: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
}

impl SoftTpm {
    /// Manufactures a TPM (EK and its certificate) and starts it.
    pub fn manufacture(maker: &TpmMaker) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let out = Command::new("swtpm_setup")
            .args(["--tpm2", "--create-ek-cert", "--overwrite", "--tpmstate"])
            .arg(state.path())
            .arg("--config")
            .arg(maker.setup_conf())
            .output()
            .context("running swtpm_setup (install swtpm-tools: scripts/install-deps)")?;
        if !out.status.success() {
            bail!(
                "swtpm_setup failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut tpm = Self {
            state,
            child: None,
            port: 0,
        };
        tpm.start()?;
        Ok(tpm)
    }

    /// The TCTI string the TSS connects with.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Stops the TPM process (its state stays on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the TPM process (again) on a free pair of loopback ports:
    /// the TSS's swtpm TCTI uses `port` for commands and `port + 1` for control.
    pub fn start(&mut self) -> anyhow::Result<()> {
        self.stop();
        let port = free_port_pair()?;
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", self.state.path().display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting swtpm (install swtpm: scripts/install-deps)")?;
        self.child = Some(child);
        self.port = port;
        let started = Instant::now();
        while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("swtpm did not listen on 127.0.0.1:{port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for SoftTpm {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port_pair() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = first.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no two adjacent free loopback ports")
}
