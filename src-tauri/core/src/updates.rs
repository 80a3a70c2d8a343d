//! What the app knows about updates, apart from the window: what a check
//! found, how the update feed is reached (HTTPS trusting the public
//! authorities and the configured CA), and the refusals in a parent's words.
//! Downloading, the minisign check against the public key built into the app
//! and installing are `tauri-plugin-updater`'s (`src-tauri/src/updates.rs`).

use std::sync::Arc;

use rustls::RootCertStore;
use serde::Serialize;

use crate::cloud::add_ca_file;
use crate::error::AppError;
use crate::settings::{Settings, TrustAnchor};

/// What a check for updates found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UpdateCheck {
    /// This build has no update feed and none is set in Settings.
    NoFeed {
        current: String,
    },
    UpToDate {
        current: String,
    },
    Available {
        current: String,
        version: String,
        /// What's new, as the release wrote it (plain text).
        notes: String,
        /// When the release was published (RFC 3339), if the feed says.
        date: Option<String>,
    },
}

/// Why an update was not installed, from the updater's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateProblem {
    /// The signature is missing, malformed, from another key, does not match
    /// the download, or was made for another version.
    NotSigned,
    /// The feed or the download could not be reached or read.
    Unreachable,
    /// The package was genuine but the system did not install it.
    InstallFailed,
}

impl UpdateProblem {
    pub fn into_error(self, detail: &str) -> AppError {
        match self {
            Self::NotSigned => AppError::UpdateRefused,
            Self::Unreachable => AppError::UpdateUnreachable(detail.to_owned()),
            Self::InstallFailed => AppError::UpdateFailed(detail.to_owned()),
        }
    }
}

/// TLS for the update feed: the public certificate authorities, plus the
/// CA file the cloud is checked against (a self-hosted family cloud may also
/// serve its own feed). No pin: the feed need not be the cloud.
pub fn feed_tls(settings: &Settings) -> Result<rustls::ClientConfig, AppError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let TrustAnchor::CaFile(path) = &settings.anchor {
        add_ca_file(&mut roots, path)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| AppError::Settings(format!("Could not set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        assert_eq!(
            UpdateProblem::NotSigned.into_error("x").code(),
            "update_refused"
        );
        let e = UpdateProblem::Unreachable.into_error("timed out");
        assert_eq!(e.code(), "update_unreachable");
        assert!(e.to_string().contains("timed out"));
        assert_eq!(
            UpdateProblem::InstallFailed.into_error("x").code(),
            "update_failed"
        );
    }

    #[test]
    fn a_ca_file_that_cannot_be_read_is_said_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let s = Settings::for_local_cloud("https://localhost:8443", &missing).unwrap();
        assert!(
            feed_tls(&s).is_err(),
            "a CA file that cannot be read is said, not skipped"
        );
    }
}
