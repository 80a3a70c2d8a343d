//! Provisioning: the watch makes its key and a certificate request; the
//! manufacturer signs it; the watch installs the certificate after checking
//! it is for its own key. Also the watch's settings file.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use waymark_protocol::device::device_id_from_spki;

use crate::keystore::{FileKeyStore, KeyStore};

pub const SETTINGS_FILE: &str = "watch.toml";
pub const CSR_FILE: &str = "device.csr";
pub const CERT_FILE: &str = "device.pem";
pub const CLOUD_CA_FILE: &str = "cloud-ca.pem";

/// `W/watch.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The cloud, e.g. `https://localhost:8443`.
    pub cloud: String,
}

/// Everything the watch keeps in its directory.
pub struct Watch {
    pub dir: PathBuf,
    pub settings: Settings,
    pub keys: FileKeyStore,
    pub device_id: String,
    pub certificate_der: Vec<u8>,
    pub cloud_ca_pem: Vec<u8>,
}

/// Makes `dir`, the key, `device.csr`, the settings and a copy of the cloud's CA.
pub fn provision(dir: &Path, cloud: &str, cloud_ca: &Path) -> anyhow::Result<PathBuf> {
    if !cloud.starts_with("https://") {
        anyhow::bail!("the cloud address must start with https:// (there is no plaintext)");
    }
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let ca = fs::read(cloud_ca)
        .map_err(|e| anyhow::anyhow!("cannot read the cloud CA {}: {e}", cloud_ca.display()))?;
    let keys = FileKeyStore::generate(dir)?;
    let csr = dir.join(CSR_FILE);
    fs::write(&csr, keys.csr_pem()?)?;
    fs::write(dir.join(CLOUD_CA_FILE), ca)?;
    fs::write(
        dir.join(SETTINGS_FILE),
        toml::to_string(&Settings {
            cloud: cloud.trim_end_matches('/').to_owned(),
        })?,
    )?;
    Ok(csr)
}

/// Stores the signed certificate if it is for this watch's key.
pub fn install_cert(dir: &Path, cert_pem_path: &Path) -> anyhow::Result<String> {
    let keys = FileKeyStore::open(dir)?;
    let pem = fs::read(cert_pem_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", cert_pem_path.display()))?;
    let der = first_cert(&pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| anyhow::anyhow!("not an X.509 certificate"))?;
    if cert.public_key().raw != keys.public_key_spki().as_slice() {
        anyhow::bail!("this certificate is for another key, not this watch's");
    }
    fs::write(dir.join(CERT_FILE), pem)?;
    Ok(device_id_from_spki(&keys.public_key_spki()))
}

fn first_cert(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    let cert = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| anyhow::anyhow!("no certificate in the file"))??;
    Ok(cert.to_vec())
}

impl Watch {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let settings: Settings =
            toml::from_str(&fs::read_to_string(dir.join(SETTINGS_FILE)).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not a provisioned watch ({e}); run `waymark-watch provision`",
                    dir.display()
                )
            })?)?;
        let keys = FileKeyStore::open(dir)?;
        let pem = fs::read(dir.join(CERT_FILE)).map_err(|_| {
            anyhow::anyhow!("no device certificate yet; run `waymark-watch install-cert`")
        })?;
        let certificate_der = first_cert(&pem)?;
        Ok(Self {
            device_id: device_id_from_spki(&keys.public_key_spki()),
            cloud_ca_pem: fs::read(dir.join(CLOUD_CA_FILE))?,
            dir: dir.to_owned(),
            settings,
            keys,
            certificate_der,
        })
    }
}
