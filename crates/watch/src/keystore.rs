//! Where the device key lives, behind one trait: a PKCS#8 PEM file (0600,
//! the simulator's default, made on the watch and never copied anywhere),
//! or a TPM 2.0, where the key is made and used and from which it cannot be
//! copied. The choice is recorded in the watch's settings.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{KeyPair, PublicKeyData, SigningKey};
use serde::{Deserialize, Serialize};
use waymark_tpm::{KeyBlob, TpmKey};

/// Which key store a watch uses, as `watch.toml` records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyStoreChoice {
    /// `device.key`, a PEM file readable only by the watch's user.
    #[default]
    File,
    /// A TPM 2.0 reached through `tcti` (e.g. `device:/dev/tpmrm0`).
    Tpm { tcti: String },
}

impl KeyStoreChoice {
    /// Makes the watch's key in this store (refuses to replace one).
    pub fn generate(&self, dir: &Path) -> anyhow::Result<Box<dyn KeyStore>> {
        Ok(match self {
            Self::File => Box::new(FileKeyStore::generate(dir)?),
            Self::Tpm { tcti } => Box::new(TpmKeyStore::generate(dir, tcti)?),
        })
    }

    /// Opens the key made earlier.
    pub fn open(&self, dir: &Path) -> anyhow::Result<Box<dyn KeyStore>> {
        Ok(match self {
            Self::File => Box::new(FileKeyStore::open(dir)?),
            Self::Tpm { tcti } => Box::new(TpmKeyStore::open(dir, tcti)?),
        })
    }

    /// For people: where the key is.
    pub fn describe(&self) -> String {
        match self {
            Self::File => format!("file ({KEY_FILE}, 0600)"),
            Self::Tpm { tcti } => format!("TPM 2.0 at {tcti} (the key cannot leave the TPM)"),
        }
    }
}

pub trait KeyStore: Send + Sync {
    /// The public key as DER SubjectPublicKeyInfo.
    fn public_key_spki(&self) -> Vec<u8>;
    /// ECDSA P-256 SHA-256, DER-encoded signature.
    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>>;
    /// Makes a certificate request for this key.
    fn csr_pem(&self) -> anyhow::Result<String>;
    /// Destroys the key for good.
    fn destroy(&self) -> anyhow::Result<()>;
    /// The key inside a TPM, for the factory's attestation; `None` for a file key.
    fn tpm_key(&self) -> Option<&TpmKey> {
        None
    }
}

pub struct FileKeyStore {
    path: PathBuf,
    key: KeyPair,
}

pub const KEY_FILE: &str = "device.key";

impl FileKeyStore {
    /// Generates a new P-256 key in `dir/device.key` (refuses to replace one).
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        write_private(&path, key.serialize_pem().as_bytes())
            .map_err(|e| anyhow::anyhow!("{e} (is this watch already provisioned?)"))?;
        Ok(Self { path, key })
    }

    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        let meta = fs::metadata(&path).map_err(|e| {
            anyhow::anyhow!(
                "no device key at {}: {e} (run `waymark-watch provision`)",
                path.display()
            )
        })?;
        if meta.permissions().mode() & 0o077 != 0 {
            anyhow::bail!("{} is readable by others; it must be 0600", path.display());
        }
        let key = KeyPair::from_pem(&fs::read_to_string(&path)?)?;
        Ok(Self { path, key })
    }
}

impl KeyStore for FileKeyStore {
    fn public_key_spki(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }

    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.key.sign(message)?)
    }

    fn csr_pem(&self) -> anyhow::Result<String> {
        csr_pem(&self.key)
    }

    fn destroy(&self) -> anyhow::Result<()> {
        // Overwrite before unlinking, so the key is not left in the file's blocks.
        let len = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0) as usize;
        if let Ok(mut f) = OpenOptions::new().write(true).open(&self.path) {
            f.write_all(&vec![0u8; len])?;
            f.sync_all()?;
        }
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// The TPM's blob of the device key: its public area and its private part
/// wrapped by the TPM's storage key. Only that TPM can load it.
pub const TPM_KEY_FILE: &str = "device.tpmkey";
/// The attestation key's blob, kept between the factory's request and answer.
pub const ATTESTATION_KEY_FILE: &str = "attestation-key.tpmkey";

/// The device key inside a TPM; only the TPM's blob of it is on disk.
pub struct TpmKeyStore {
    dir: PathBuf,
    key: TpmKey,
}

impl TpmKeyStore {
    /// Makes a new key inside the TPM and writes its blob (refuses to replace one).
    pub fn generate(dir: &Path, tcti: &str) -> anyhow::Result<Self> {
        let path = dir.join(TPM_KEY_FILE);
        if path.exists() {
            anyhow::bail!(
                "{} exists (is this watch already provisioned?)",
                path.display()
            );
        }
        let (key, blob) = TpmKey::create(tcti)?;
        write_private(&path, &serde_json::to_vec(&blob)?)?;
        Ok(Self {
            dir: dir.to_owned(),
            key,
        })
    }

    pub fn open(dir: &Path, tcti: &str) -> anyhow::Result<Self> {
        let path = dir.join(TPM_KEY_FILE);
        let blob: KeyBlob = serde_json::from_slice(&fs::read(&path).map_err(|e| {
            anyhow::anyhow!(
                "no TPM key blob at {}: {e} (run `waymark-watch provision --keystore tpm`)",
                path.display()
            )
        })?)
        .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
            key: TpmKey::load(tcti, &blob)?,
        })
    }
}

impl KeyStore for TpmKeyStore {
    fn public_key_spki(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }

    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.key.sign(message)?)
    }

    fn csr_pem(&self) -> anyhow::Result<String> {
        csr_pem(&self.key)
    }

    fn tpm_key(&self) -> Option<&TpmKey> {
        Some(&self.key)
    }

    fn destroy(&self) -> anyhow::Result<()> {
        // The blobs are useless without this TPM; removing them ends the key's use.
        for f in [TPM_KEY_FILE, ATTESTATION_KEY_FILE] {
            match fs::remove_file(self.dir.join(f)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// A certificate request with an empty subject (the factory writes the
/// subject), signed by `key` wherever it lives.
fn csr_pem(key: &impl SigningKey) -> anyhow::Result<String> {
    let params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    Ok(params.serialize_request(key)?.pem()?)
}

/// Writes a new file readable only by this user.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_private_and_signs_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::generate(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            FileKeyStore::generate(dir.path()).is_err(),
            "never replaces a key"
        );
        let again = FileKeyStore::open(dir.path()).unwrap();
        assert_eq!(again.public_key_spki(), ks.public_key_spki());
        assert!(ks.csr_pem().unwrap().contains("CERTIFICATE REQUEST"));
        ks.destroy().unwrap();
        assert!(!dir.path().join(KEY_FILE).exists());
    }
}
