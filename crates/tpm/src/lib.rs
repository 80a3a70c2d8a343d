//! The watch's TPM 2.0, through the TSS (`tss-esapi` over Debian's libtss2):
//! a device key made inside the TPM that can never leave it, and the
//! evidence a factory checks before it certifies such a key.
//!
//! Who uses what: the watch uses [`device_key`] and [`attestation`]; the
//! factory uses [`evidence`]. The messages between them are
//! `waymark_protocol::attestation`.

pub mod attestation;
pub mod connection;
pub mod device_key;
pub mod evidence;
mod templates;

pub use connection::{Tpm, TpmError};
pub use device_key::{KeyBlob, TpmKey};
