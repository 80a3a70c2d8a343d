//! Where the device key lives. A small trait so a TPM-backed store can
//! replace the file store; the simulator keeps a PKCS#8 PEM file, 0600,
//! created on the watch and never copied anywhere.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{KeyPair, PublicKeyData, SigningKey};

pub trait KeyStore {
    /// The public key as DER SubjectPublicKeyInfo.
    fn public_key_spki(&self) -> Vec<u8>;
    /// ECDSA P-256 SHA-256, DER-encoded signature.
    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>>;
    /// Makes a certificate request for this key.
    fn csr_pem(&self) -> anyhow::Result<String>;
    /// Destroys the key for good.
    fn destroy(&self) -> anyhow::Result<()>;
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
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot create {}: {e} (is this watch already provisioned?)",
                    path.display()
                )
            })?;
        file.write_all(key.serialize_pem().as_bytes())?;
        file.sync_all()?;
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
        let params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        Ok(params.serialize_request(&self.key)?.pem()?)
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
