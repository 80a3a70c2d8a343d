//! How the app is configured: which cloud, which certificate to trust, which
//! map tiles, which browser signs in. Read once at start from an optional
//! TOML file and then the environment (the environment wins).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use url::Url;

use crate::error::AppError;

pub const DEFAULT_CLOUD: &str = "https://localhost:8443";
pub const DEFAULT_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
pub const DEFAULT_ATTRIBUTION: &str = "© OpenStreetMap contributors";

/// Where the cloud's certificate must lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchor {
    /// Exactly this CA (PEM file), e.g. the local CA `waymark-cloud init` made.
    CaFile(PathBuf),
    /// The public WebPKI roots (Mozilla's list, built in).
    WebPki,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The cloud's origin, `https://host[:port]`.
    pub cloud: Url,
    pub anchor: TrustAnchor,
    /// Optional extra pin: SHA-256 of the server certificate's public key.
    pub pin_sha256: Option<[u8; 32]>,
    /// Tile URL template with `{z}`, `{x}`, `{y}`.
    pub tiles: String,
    pub tile_attribution: String,
    /// A command to open sign-in pages instead of the system browser; the
    /// address is added as its last argument.
    pub browser: Option<Vec<String>>,
    /// Keychain service name; the entry's user is the cloud origin.
    pub keychain_service: String,
    /// How this computer is named in the account's session list.
    pub session_name: String,
    pub sign_in_timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cloud: Option<String>,
    ca: Option<PathBuf>,
    pin_sha256: Option<String>,
    tiles: Option<String>,
    tile_attribution: Option<String>,
    browser: Option<String>,
    keychain_service: Option<String>,
    session_name: Option<String>,
    sign_in_timeout_secs: Option<u64>,
}

impl Settings {
    /// Reads `WAYMARK_APP_CONFIG` (or `~/.config/waymark/app.toml` when it
    /// exists), then the `WAYMARK_*` environment variables.
    pub fn load() -> Result<Self, AppError> {
        let explicit = std::env::var_os("WAYMARK_APP_CONFIG").map(PathBuf::from);
        let default = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".config/waymark/app.toml"))
            .filter(|p| p.exists());
        let file = match explicit.or(default) {
            Some(path) => read_file(&path)?,
            None => File::default(),
        };
        Self::from_parts(file, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// Settings for a given cloud and CA, everything else default (tests, tools).
    pub fn for_local_cloud(cloud: &str, ca: &Path) -> Result<Self, AppError> {
        let file = File {
            cloud: Some(cloud.into()),
            ca: Some(ca.into()),
            ..File::default()
        };
        Self::from_parts(file, |_| None)
    }

    fn from_parts(file: File, env: impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let cloud_raw = env("WAYMARK_CLOUD")
            .or(file.cloud)
            .unwrap_or_else(|| DEFAULT_CLOUD.into());
        let cloud = parse_cloud(&cloud_raw)?;
        let anchor = match env("WAYMARK_CA").map(PathBuf::from).or(file.ca) {
            Some(path) => TrustAnchor::CaFile(path),
            None => TrustAnchor::WebPki,
        };
        let pin_sha256 = env("WAYMARK_PIN")
            .or(file.pin_sha256)
            .map(|p| parse_pin(&p))
            .transpose()?;
        let tiles = env("WAYMARK_TILES")
            .or(file.tiles)
            .unwrap_or_else(|| DEFAULT_TILES.into());
        check_tiles(&tiles)?;
        let browser = env("WAYMARK_BROWSER")
            .or(file.browser)
            .map(|b| b.split_whitespace().map(String::from).collect::<Vec<_>>())
            .filter(|b| !b.is_empty());
        let session_name = env("WAYMARK_SESSION_NAME")
            .or(file.session_name)
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
        Ok(Self {
            cloud,
            anchor,
            pin_sha256,
            tiles,
            tile_attribution: env("WAYMARK_TILE_ATTRIBUTION")
                .or(file.tile_attribution)
                .unwrap_or_else(|| DEFAULT_ATTRIBUTION.into()),
            browser,
            keychain_service: env("WAYMARK_KEYCHAIN_SERVICE")
                .or(file.keychain_service)
                .unwrap_or_else(|| "waymark".into()),
            session_name,
            sign_in_timeout: Duration::from_secs(file.sign_in_timeout_secs.unwrap_or(300)),
        })
    }

    /// The tile server as a CSP source (`https://host[:port]`, `{s}` becomes `*`),
    /// so the window may load images from it and from nowhere else.
    pub fn tile_source(&self) -> String {
        let rest = self.tiles.trim_start_matches("https://");
        let host = rest.split('/').next().unwrap_or_default();
        format!("https://{}", host.replace("{s}", "*"))
    }
}

fn read_file(path: &Path) -> Result<File, AppError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AppError::Settings(format!(
            "Could not read the settings file {}: {e}.",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        AppError::Settings(format!(
            "The settings file {} is not valid: {e}",
            path.display()
        ))
    })
}

fn parse_cloud(raw: &str) -> Result<Url, AppError> {
    let bad = || {
        AppError::Settings(format!(
            "The cloud address `{raw}` is not valid; it must look like https://waymark.example."
        ))
    };
    let url = Url::parse(raw).map_err(|_| bad())?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(bad());
    }
    // Keep the origin only, so joined paths are always the cloud's own.
    Url::parse(&url.origin().ascii_serialization()).map_err(|_| bad())
}

fn parse_pin(raw: &str) -> Result<[u8; 32], AppError> {
    base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            AppError::Settings(
                "WAYMARK_PIN must be the base64 SHA-256 of the cloud certificate's public key."
                    .into(),
            )
        })
}

fn check_tiles(template: &str) -> Result<(), AppError> {
    // The host ends up in the window's content policy: letters, digits, dots,
    // dashes, a port and `{s}` only.
    let host = template
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let host_ok = !host.is_empty()
        && host
            .replace("{s}", "s")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    let ok = host_ok && ["{z}", "{x}", "{y}"].iter().all(|p| template.contains(p));
    if ok {
        Ok(())
    } else {
        Err(AppError::Settings(format!(
            "The tile address `{template}` must be https:// and contain {{z}}, {{x}} and {{y}}."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, AppError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_parts(File::default(), move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_the_local_cloud_and_openstreetmap() {
        let s = with(&[]).unwrap();
        assert_eq!(s.cloud.as_str(), "https://localhost:8443/");
        assert_eq!(s.anchor, TrustAnchor::WebPki);
        assert_eq!(s.tile_source(), "https://tile.openstreetmap.org");
        assert!(s.browser.is_none());
    }

    #[test]
    fn environment_chooses_cloud_ca_pin_and_browser() {
        let pin = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let s = with(&[
            ("WAYMARK_CLOUD", "https://cloud.example:9443/some/path"),
            ("WAYMARK_CA", "/tmp/ca.pem"),
            ("WAYMARK_PIN", &pin),
            ("WAYMARK_BROWSER", "node sign-in.mjs --fast"),
        ])
        .unwrap();
        assert_eq!(s.cloud.as_str(), "https://cloud.example:9443/");
        assert_eq!(s.anchor, TrustAnchor::CaFile("/tmp/ca.pem".into()));
        assert_eq!(s.pin_sha256, Some([7u8; 32]));
        assert_eq!(s.browser.unwrap(), ["node", "sign-in.mjs", "--fast"]);
    }

    #[test]
    fn plain_http_clouds_bad_pins_and_bad_tile_templates_are_refused() {
        assert!(with(&[("WAYMARK_CLOUD", "http://cloud.example")]).is_err());
        assert!(with(&[("WAYMARK_PIN", "c2hvcnQ=")]).is_err());
        assert!(with(&[("WAYMARK_TILES", "http://tiles.example/{z}/{x}/{y}.png")]).is_err());
        assert!(with(&[("WAYMARK_TILES", "https://tiles.example/{z}/{x}.png")]).is_err());
        assert!(
            with(&[(
                "WAYMARK_TILES",
                "https://a.example;script-src *;/{z}/{x}/{y}"
            )])
            .is_err()
        );
        let s = with(&[("WAYMARK_TILES", "https://{s}.tiles.example/{z}/{x}/{y}.png")]);
        assert_eq!(s.unwrap().tile_source(), "https://*.tiles.example");
    }
}
