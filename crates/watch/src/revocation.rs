//! Obeying revocation: when the cloud says this watch was revoked, it
//! erases everything it holds (queue, pairing state, certificate) and
//! destroys its key.

use std::fs;
use std::path::Path;

use crate::keystore::{ATTESTATION_KEY_FILE, FileKeyStore, KeyStore, TPM_KEY_FILE};
use crate::{family, pairing, provisioning, queue, zones};

pub fn wipe(dir: &Path) -> anyhow::Result<()> {
    if let Ok(keys) = FileKeyStore::open(dir) {
        keys.destroy()?;
    }
    // A TPM key's blobs go without the TPM: it may be unreachable, and
    // without its blob the key can never be loaded again.
    for f in [
        queue::QUEUE_FILE,
        pairing::PAIRED_FILE,
        family::FAMILY_FILE,
        zones::ZONE_KEY_FILE,
        zones::ZONES_FILE,
        zones::ZONE_MEMORY_FILE,
        provisioning::CERT_FILE,
        provisioning::CSR_FILE,
        provisioning::ATTESTATION_REQUEST_FILE,
        TPM_KEY_FILE,
        ATTESTATION_KEY_FILE,
        "queue.json.tmp",
    ] {
        match fs::remove_file(dir.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}
