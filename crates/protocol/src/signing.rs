//! The signing rule for everything a watch signs: ECDSA P-256 with SHA-256
//! (ASN.1 DER signature) over one canonical byte encoding that starts with a
//! domain tag, so a signature made for one message kind can never be
//! accepted as another.

/// Builds the canonical bytes: `tag || 0x00 || fields…`, every field fixed
/// width big-endian or length-prefixed. Floats are encoded by their bits.
pub struct Canonical(Vec<u8>);

impl Canonical {
    pub fn new(tag: &str) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(tag.as_bytes());
        buf.push(0);
        Self(buf)
    }

    pub fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// A variable-length byte string, length-prefixed like `str`.
    pub fn str_bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(&(v.len() as u32).to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }

    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn f64(mut self, v: f64) -> Self {
        self.0.extend_from_slice(&v.to_bits().to_be_bytes());
        self
    }

    /// Raw bytes of a fixed-width field (a hash, a key): the width is part
    /// of the message kind, so no length prefix.
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }

    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// A pairing offer v2 (a locator and SPAKE2's first message).
pub const OFFER_TAG: &str = "waymark/pair-offer/v2";
/// A watch's word on an answered pairing offer.
pub const PAIRING_CONFIRMATION_TAG: &str = "waymark/pairing-confirmation/v1";
pub const STATUS_TAG: &str = "waymark/status/v1";
/// A sealed batch (fixes encrypted to the family).
pub const BATCH_V2_TAG: &str = "waymark/batch/v2";
/// A watch's HPKE setup under a family key epoch.
pub const FIX_SETUP_TAG: &str = "waymark/fix-setup/v1";

/// base64url without padding, the encoding of signatures and certificates on the wire.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}
