//! Provisioning: the watch makes its key and a certificate request; the
//! manufacturer signs it (for a TPM key, after the watch's TPM answered the
//! factory's challenge); the watch installs the certificate after checking
//! it is for its own key. Also the watch's settings file.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use waymark_protocol::device::device_id_from_spki;

use waymark_protocol::attestation::{AttestationAnswer, AttestationChallenge};
use waymark_tpm::KeyBlob;

use crate::keystore::{ATTESTATION_KEY_FILE, KeyStore, KeyStoreChoice, write_private};

pub const SETTINGS_FILE: &str = "watch.toml";
pub const CSR_FILE: &str = "device.csr";
pub const CERT_FILE: &str = "device.pem";
pub const CLOUD_CA_FILE: &str = "cloud-ca.pem";
/// What a TPM watch sends the factory first.
pub const ATTESTATION_REQUEST_FILE: &str = "attestation-request.json";

/// `W/watch.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The cloud, e.g. `https://localhost:8443`.
    pub cloud: String,
    /// Where the device key lives (absent in watches made before TPMs: a file).
    #[serde(default)]
    pub keystore: KeyStoreChoice,
}

impl Settings {
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let text = fs::read_to_string(dir.join(SETTINGS_FILE)).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a provisioned watch ({e}); run `waymark-watch provision`",
                dir.display()
            )
        })?;
        Ok(toml::from_str(&text)?)
    }
}

/// What provisioning wrote for the production line.
pub struct Provisioned {
    pub csr: PathBuf,
    /// For a TPM key: the request the factory answers with a challenge.
    pub attestation_request: Option<PathBuf>,
}

/// Everything the watch keeps in its directory.
pub struct Watch {
    pub dir: PathBuf,
    pub settings: Settings,
    pub keys: Box<dyn KeyStore>,
    pub device_id: String,
    pub certificate_der: Vec<u8>,
    pub cloud_ca_pem: Vec<u8>,
}

/// Makes `dir`, the key (in `keystore`), `device.csr`, the settings and a
/// copy of the cloud's CA; for a TPM key also the factory's attestation request.
pub fn provision(
    dir: &Path,
    cloud: &str,
    cloud_ca: &Path,
    keystore: &KeyStoreChoice,
) -> anyhow::Result<Provisioned> {
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
    let keys = keystore.generate(dir)?;
    let csr = dir.join(CSR_FILE);
    fs::write(&csr, keys.csr_pem()?)?;
    fs::write(dir.join(CLOUD_CA_FILE), ca)?;
    fs::write(
        dir.join(SETTINGS_FILE),
        toml::to_string(&Settings {
            cloud: cloud.trim_end_matches('/').to_owned(),
            keystore: keystore.clone(),
        })?,
    )?;
    let attestation_request = match keys.tpm_key() {
        None => None,
        Some(key) => {
            let (request, attestation_key) = key.attestation_request()?;
            write_private(
                &dir.join(ATTESTATION_KEY_FILE),
                &serde_json::to_vec(&attestation_key)?,
            )?;
            let path = dir.join(ATTESTATION_REQUEST_FILE);
            fs::write(&path, serde_json::to_vec_pretty(&request)?)?;
            Some(path)
        }
    };
    Ok(Provisioned {
        csr,
        attestation_request,
    })
}

/// Answers the factory's challenge with this watch's TPM; returns the answer
/// the factory needs beside the certificate request.
pub fn attest(dir: &Path, challenge: &Path) -> anyhow::Result<AttestationAnswer> {
    let KeyStoreChoice::Tpm { tcti } = Settings::read(dir)?.keystore else {
        anyhow::bail!(
            "this watch's key is in a file, not a TPM: there is nothing a TPM can attest"
        );
    };
    let challenge: AttestationChallenge = serde_json::from_slice(
        &fs::read(challenge)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", challenge.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("{} is not a factory challenge: {e}", challenge.display()))?;
    let attestation_key: KeyBlob =
        serde_json::from_slice(&fs::read(dir.join(ATTESTATION_KEY_FILE)).map_err(|e| {
            anyhow::anyhow!(
                "no attestation key in {} ({e}): provision again",
                dir.display()
            )
        })?)?;
    let keys = KeyStoreChoice::Tpm { tcti }.open(dir)?;
    let key = keys
        .tpm_key()
        .ok_or_else(|| anyhow::anyhow!("the TPM key store holds no TPM key"))?;
    Ok(key.answer(&attestation_key, &challenge)?)
}

/// Stores the signed certificate if it is for this watch's key.
pub fn install_cert(dir: &Path, cert_pem_path: &Path) -> anyhow::Result<String> {
    let keys = Settings::read(dir)?.keystore.open(dir)?;
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

pub(crate) fn first_cert(pem: &[u8]) -> anyhow::Result<Vec<u8>> {
    let cert = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| anyhow::anyhow!("no certificate in the file"))??;
    Ok(cert.to_vec())
}

impl Watch {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let settings = Settings::read(dir)?;
        let keys = settings.keystore.open(dir)?;
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
