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
///
/// The check and the redirect are one parsed URL (WHATWG rules, the `url`
/// crate): a string is accepted only if that parser reads it and writes it
/// back unchanged, so nothing can pass the check and then mean something
/// else (or fail) when the redirect is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackRedirect(url::Url);

impl LoopbackRedirect {
    pub fn parse(raw: &str) -> Result<Self, RedirectError> {
        let url = url::Url::parse(raw).map_err(|_| RedirectError::NotAUrl)?;
        if url.scheme() != "http" {
            return Err(RedirectError::NotHttp);
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(RedirectError::HasCredentialsOrFragment);
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST => {}
            Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST => {}
            _ => return Err(RedirectError::NotLoopback),
        }
        if url.port().is_none_or(|p| p == 0) {
            return Err(RedirectError::NoPort);
        }
        // Only the one spelling the parser itself writes (an empty path may be left out).
        let written = url.as_str();
        if raw != written && format!("{raw}/") != written {
            return Err(RedirectError::NotAUrl);
        }
        Ok(Self(url))
    }

    /// The address to send the browser to: this URL plus `code` and `state`.
    pub fn with_code(&self, code: &str, state: &str) -> String {
        let mut url = self.0.clone();
        url.query_pairs_mut()
            .append_pair("code", code)
            .append_pair("state", state);
        url.into()
    }
}

/// [`LoopbackRedirect::parse`], for callers that only need the verdict.
pub fn check_loopback_redirect(raw: &str) -> Result<(), RedirectError> {
    LoopbackRedirect::parse(raw).map(|_| ())
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
            ("http://127.0.0.1:99999/cb", NotAUrl),
            ("http://127.0.0.1:+4711/cb", NotAUrl),
            ("http://127.0.0.1:04711/cb", NotAUrl),
            ("http://127.1:4711/cb", NotAUrl),
            ("http://127.0.0.1:80/cb", NoPort),
            ("http://me@127.0.0.1:4711/cb", HasCredentialsOrFragment),
            ("http://127.0.0.1:4711/cb#x", HasCredentialsOrFragment),
            ("http://127.0.0.1:4711/c b", NotAUrl),
        ] {
            assert_eq!(check_loopback_redirect(uri), Err(want), "{uri}");
        }
    }
}
