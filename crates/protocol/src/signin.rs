//! The native-app sign-in (RFC 8252 loopback redirect + RFC 7636 PKCE):
//! the rules both the app and the cloud apply, and the token answer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The desktop app's public client id.
pub const DESKTOP_CLIENT_ID: &str = "waymark-desktop";

/// Answer of `POST /token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
}

/// A PKCE code verifier: 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// A fresh verifier from 32 random bytes (256 bits).
    pub fn generate() -> Self {
        Self(random_token(32))
    }

    /// Accepts only a verifier of the form RFC 7636 allows.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok_len = (43..=128).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        (ok_len && ok_chars).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `BASE64URL(SHA256(verifier))`, the only challenge method Waymark accepts.
    pub fn s256_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier(..)")
    }
}

/// An S256 challenge is the base64url (no padding) of a SHA-256 digest: 43 characters.
pub fn is_s256_challenge(raw: &str) -> bool {
    raw.len() == 43
        && URL_SAFE_NO_PAD
            .decode(raw)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// A random URL-safe string from `bytes` random bytes, for tokens, codes and `state`.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Why a redirect URI is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectError {
    NotAUrl,
    NotHttp,
    NotLoopback,
    NoPort,
    HasCredentialsOrFragment,
}

/// RFC 8252 §7.3: the redirect must be `http://127.0.0.1:<port>/…` or
/// `http://[::1]:<port>/…`. `localhost` is refused (it can be re-pointed by a
/// hosts file or DNS), and so are user info and fragments.
pub fn check_loopback_redirect(raw: &str) -> Result<(), RedirectError> {
    let rest = raw.strip_prefix("http://").ok_or(RedirectError::NotHttp)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if authority.contains('@') || path.contains('#') {
        return Err(RedirectError::HasCredentialsOrFragment);
    }
    let port = if let Some(p) = authority.strip_prefix("127.0.0.1:") {
        p
    } else if let Some(p) = authority.strip_prefix("[::1]:") {
        p
    } else if authority == "127.0.0.1" || authority == "[::1]" {
        return Err(RedirectError::NoPort);
    } else {
        return Err(RedirectError::NotLoopback);
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 && !port.starts_with('0') => {}
        _ => return Err(RedirectError::NoPort),
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RedirectError::NotAUrl);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            v.s256_challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_s256_challenge(&v.s256_challenge()));
    }

    #[test]
    fn verifier_shape_is_enforced() {
        assert!(CodeVerifier::parse("short").is_none());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_none());
        assert!(CodeVerifier::parse(&format!("{}!", "a".repeat(50))).is_none());
        let fresh = CodeVerifier::generate();
        assert!(CodeVerifier::parse(fresh.as_str()).is_some());
        assert_ne!(fresh, CodeVerifier::generate());
        assert!(!is_s256_challenge("plain-text-challenge"));
    }

    #[test]
    fn only_loopback_redirects() {
        assert_eq!(check_loopback_redirect("http://127.0.0.1:4711/cb"), Ok(()));
        assert_eq!(check_loopback_redirect("http://[::1]:4711/"), Ok(()));
        assert_eq!(check_loopback_redirect("http://127.0.0.1:4711"), Ok(()));
        use RedirectError::*;
        for (uri, want) in [
            ("https://127.0.0.1:4711/cb", NotHttp),
            ("http://localhost:4711/cb", NotLoopback),
            ("http://evil.example/cb", NotLoopback),
            ("http://127.0.0.1.evil.example:80/", NotLoopback),
            ("http://127.0.0.1/cb", NoPort),
            ("http://127.0.0.1:0/cb", NoPort),
            ("http://127.0.0.1:99999/cb", NoPort),
            ("http://me@127.0.0.1:4711/cb", HasCredentialsOrFragment),
            ("http://127.0.0.1:4711/cb#x", HasCredentialsOrFragment),
            ("http://127.0.0.1:4711/c b", NotAUrl),
        ] {
            assert_eq!(check_loopback_redirect(uri), Err(want), "{uri}");
        }
    }
}
