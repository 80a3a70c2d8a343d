//! Identifiers, secrets and clocks. IDs are 128 random bits (never
//! sequential, never a credential); secrets are 256 random bits and are
//! stored only as their SHA-256.

use sha2::{Digest, Sha256};

/// A new opaque identifier: 128 random bits, hex.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

/// Database key for a secret. Secrets have 256 bits of entropy, so a plain
/// hash is enough: no slow KDF is needed to resist guessing.
pub fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `raw` has the shape of an id we issue; other strings are refused
/// before they reach a query.
pub fn is_id(raw: &str) -> bool {
    raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_well_formed() {
        let a = new_id();
        assert!(is_id(&a));
        assert_ne!(a, new_id());
        assert!(!is_id("1"));
        assert!(!is_id(&a.to_uppercase()));
    }
}
