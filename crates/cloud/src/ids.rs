//! New identifiers and secrets. IDs are 128 random bits (never sequential,
//! never a credential; their types live in `waymark_protocol::ids`);
//! secrets are 256 random bits and are stored only as their SHA-256.

use sha2::{Digest, Sha256};
use waymark_protocol::ids::hex;

/// A new opaque identifier for a row no wire type names: 128 random bits, hex.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

/// Database key for a secret. Secrets have 256 bits of entropy, so a plain
/// hash is enough: no slow KDF is needed to resist guessing.
pub fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}
