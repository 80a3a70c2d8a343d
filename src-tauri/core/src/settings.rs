//! How the app is configured: which cloud, which certificate to trust, which
//! map tiles, which browser signs in, the tray and the alerts. Read at start
//! from `app.toml` in the platform's app config directory (Tauri's
//! `app_config_dir`) and then the environment (the environment wins); the
//! Settings screen writes the file back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::alerts::{AlertPrefs, QUIET_MINUTES_RANGE};
use crate::error::AppError;

/// The settings file's name inside the app config directory.
pub const FILE_NAME: &str = "app.toml";

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
    /// A PMTiles archive on this computer drawn instead of online tiles: the
    /// map then makes no network request at all.
    pub offline_map: Option<PathBuf>,
    /// Where the app asks for updates (`https`); `None`: the feed this build
    /// was made with (`plugins.updater.endpoints`), if any.
    pub update_feed: Option<Url>,
    /// A command to open sign-in pages instead of the system browser; the
    /// address is added as its last argument.
    pub browser: Option<Vec<String>>,
    /// Keychain service name; the entry's user is the cloud origin.
    pub keychain_service: String,
    /// How this computer is named in the account's session list.
    pub session_name: String,
    pub sign_in_timeout: Duration,
    /// Closing the window keeps the app in the tray, following the family.
    pub close_to_tray: bool,
    /// Start (in the tray) when the parent logs in to the computer.
    pub start_at_login: bool,
    pub alerts: AlertPrefs,
    /// How often the family's watch list and activity are checked for alerts.
    pub alert_poll: Duration,
    /// PEM files of the watch manufacturer CAs: a watch is paired only if
    /// its certificate chains to one of them (checked here, not by the cloud).
    pub manufacturer_cas: Vec<PathBuf>,
    /// The app's own data (`app_data_dir`): the family's key file.
    pub data_dir: PathBuf,
    /// Where the Settings screen writes (`<app_config_dir>/app.toml`, or
    /// `WAYMARK_APP_CONFIG`).
    pub file: PathBuf,
    /// The file's own values, which the Settings screen edits.
    pub saved: Editable,
    /// Settings the environment overrides (their `WAYMARK_*` names).
    pub from_environment: Vec<&'static str>,
    saved_file: File,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pin_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tiles: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tile_attribution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offline_map: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manufacturer_cas: Option<Vec<PathBuf>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_feed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    browser: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keychain_service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sign_in_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_to_tray: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_at_login: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<AlertPrefs>,
}

/// What the Settings screen shows and saves: the file's values (with the
/// defaults filled in). `ca` empty means the public WebPKI roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(rename = "EditableSettings")]
pub struct Editable {
    pub cloud: String,
    pub ca: String,
    pub tiles: String,
    pub tile_attribution: String,
    /// Empty: online tiles.
    pub offline_map: String,
    /// Empty: the feed this build was made with.
    pub update_feed: String,
    pub session_name: String,
    pub close_to_tray: bool,
    pub start_at_login: bool,
    pub alerts: AlertPrefs,
}

/// Which edits take effect only after a restart (the window's content
/// policy and the cloud connection are fixed at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct Saved {
    pub restart_needed: bool,
}

impl Settings {
    /// Reads `WAYMARK_APP_CONFIG` (or `app.toml` in `config_dir` when it
    /// exists), then the `WAYMARK_*` environment variables. The app keeps
    /// its own data in `data_dir`.
    pub fn load(config_dir: &Path, data_dir: &Path) -> Result<Self, AppError> {
        let path = std::env::var_os("WAYMARK_APP_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| config_dir.join(FILE_NAME));
        // Earlier versions read ~/.config/waymark/app.toml: still read it
        // until the Settings screen first saves to the new place.
        let legacy = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".config/waymark").join(FILE_NAME))
            .filter(|p| p.exists());
        let file = if path.exists() {
            read_file(&path)?
        } else if let Some(old) = legacy {
            read_file(&old)?
        } else {
            File::default()
        };
        let mut settings = Self::from_parts(file, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })?;
        settings.file = path;
        settings.data_dir = data_dir.to_owned();
        Ok(settings)
    }

    /// Checks `edit` and writes it to the settings file (nothing is written
    /// when a value is refused). Says whether a restart is needed.
    pub fn save(&mut self, edit: Editable) -> Result<Saved, AppError> {
        let file = File::from_editable(&edit, self.saved_file.clone());
        let checked = Self::from_parts(file.clone(), |_| None)?;
        if waymark_protocol::account::clean_name(&edit.session_name).is_none() {
            return Err(AppError::Settings(
                "The computer's name must be 1 to 64 characters, without control characters."
                    .into(),
            ));
        }
        if let TrustAnchor::CaFile(ca) = &checked.anchor
            && !ca.is_file()
        {
            return Err(AppError::Settings(format!(
                "The certificate file {} does not exist. Leave it empty to trust the public certificate authorities.",
                ca.display()
            )));
        }
        if let Some(map) = &checked.offline_map {
            check_offline_map(map)?;
        }
        if !QUIET_MINUTES_RANGE.contains(&edit.alerts.quiet_minutes) {
            return Err(AppError::Settings(format!(
                "A watch can be called quiet after {} to {} minutes.",
                QUIET_MINUTES_RANGE.start(),
                QUIET_MINUTES_RANGE.end()
            )));
        }
        let text = toml::to_string(&file)
            .map_err(|e| AppError::Settings(format!("The settings could not be written: {e}")))?;
        write_atomically(&self.file, text.as_bytes()).map_err(|e| {
            AppError::Settings(format!(
                "Could not write the settings file {}: {e}. Check that the folder is writable.",
                self.file.display()
            ))
        })?;
        let restart_needed = checked.saved.cloud != self.saved.cloud
            || checked.saved.ca != self.saved.ca
            || checked.saved.tiles != self.saved.tiles
            || checked.saved.tile_attribution != self.saved.tile_attribution
            || checked.saved.offline_map != self.saved.offline_map
            || checked.saved.session_name != self.saved.session_name;
        self.saved = checked.saved;
        self.saved_file = file;
        self.close_to_tray = edit.close_to_tray;
        self.start_at_login = edit.start_at_login;
        self.alerts = edit.alerts;
        if !self.from_environment.contains(&"WAYMARK_UPDATE_FEED") {
            self.update_feed = checked.update_feed;
        }
        Ok(Saved { restart_needed })
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
        let saved_file = file.clone();
        let saved = file.editable();
        let from_environment: Vec<&'static str> = ENVIRONMENT
            .iter()
            .copied()
            .filter(|name| env(name).is_some())
            .collect();
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
        let offline_map = env("WAYMARK_OFFLINE_MAP")
            .map(PathBuf::from)
            .or(file.offline_map)
            .filter(|p| !p.as_os_str().is_empty());
        // Comma-separated, as the cloud's variable of the same name.
        let manufacturer_cas = env("WAYMARK_MANUFACTURER_CAS")
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .or(file.manufacturer_cas)
            .unwrap_or_default();
        let update_feed = env("WAYMARK_UPDATE_FEED")
            .or(file.update_feed)
            .filter(|f| !f.trim().is_empty())
            .map(|f| parse_update_feed(&f))
            .transpose()?;
        let browser = env("WAYMARK_BROWSER")
            .or(file.browser)
            .map(|b| b.split_whitespace().map(String::from).collect::<Vec<_>>())
            .filter(|b| !b.is_empty());
        let session_name = env("WAYMARK_SESSION_NAME")
            .or(file.session_name)
            .unwrap_or_else(default_session_name);
        Ok(Self {
            cloud,
            anchor,
            pin_sha256,
            tiles,
            tile_attribution: env("WAYMARK_TILE_ATTRIBUTION")
                .or(file.tile_attribution)
                .unwrap_or_else(|| DEFAULT_ATTRIBUTION.into()),
            offline_map,
            manufacturer_cas,
            update_feed,
            browser,
            keychain_service: env("WAYMARK_KEYCHAIN_SERVICE")
                .or(file.keychain_service)
                .unwrap_or_else(|| "waymark".into()),
            session_name,
            sign_in_timeout: Duration::from_secs(file.sign_in_timeout_secs.unwrap_or(300)),
            close_to_tray: file.close_to_tray.unwrap_or(true),
            start_at_login: file.start_at_login.unwrap_or(false),
            alerts: file.alerts.unwrap_or_default(),
            alert_poll: Duration::from_secs(
                env("WAYMARK_ALERT_POLL_SECS")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(30)
                    .max(1),
            ),
            data_dir: PathBuf::new(),
            file: PathBuf::from(FILE_NAME),
            saved,
            saved_file,
            from_environment,
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

/// The environment variables that override the file.
const ENVIRONMENT: &[&str] = &[
    "WAYMARK_CLOUD",
    "WAYMARK_CA",
    "WAYMARK_PIN",
    "WAYMARK_TILES",
    "WAYMARK_TILE_ATTRIBUTION",
    "WAYMARK_OFFLINE_MAP",
    "WAYMARK_MANUFACTURER_CAS",
    "WAYMARK_UPDATE_FEED",
    "WAYMARK_BROWSER",
    "WAYMARK_KEYCHAIN_SERVICE",
    "WAYMARK_SESSION_NAME",
];

impl File {
    fn editable(&self) -> Editable {
        Editable {
            cloud: self.cloud.clone().unwrap_or_else(|| DEFAULT_CLOUD.into()),
            ca: self
                .ca
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            tiles: self.tiles.clone().unwrap_or_else(|| DEFAULT_TILES.into()),
            tile_attribution: self
                .tile_attribution
                .clone()
                .unwrap_or_else(|| DEFAULT_ATTRIBUTION.into()),
            offline_map: self
                .offline_map
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            update_feed: self.update_feed.clone().unwrap_or_default(),
            session_name: self
                .session_name
                .clone()
                .unwrap_or_else(default_session_name),
            close_to_tray: self.close_to_tray.unwrap_or(true),
            start_at_login: self.start_at_login.unwrap_or(false),
            alerts: self.alerts.clone().unwrap_or_default(),
        }
    }

    /// The file with the screen's values; what the screen does not show
    /// (pin, browser, keychain service, timeout) is kept as it was.
    fn from_editable(edit: &Editable, kept: File) -> File {
        let ca = edit.ca.trim();
        let offline_map = edit.offline_map.trim();
        let update_feed = edit.update_feed.trim();
        File {
            offline_map: (!offline_map.is_empty()).then(|| PathBuf::from(offline_map)),
            update_feed: (!update_feed.is_empty()).then(|| update_feed.to_owned()),
            cloud: Some(edit.cloud.trim().to_owned()),
            ca: (!ca.is_empty()).then(|| PathBuf::from(ca)),
            tiles: Some(edit.tiles.trim().to_owned()),
            tile_attribution: Some(edit.tile_attribution.trim().to_owned()),
            session_name: Some(edit.session_name.trim().to_owned()),
            close_to_tray: Some(edit.close_to_tray),
            start_at_login: Some(edit.start_at_login),
            alerts: Some(edit.alerts.clone()),
            ..kept
        }
    }
}

fn default_session_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Writes through a temporary file and a rename, so a crash leaves the old
/// file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// What the window needs to draw the map (at start; changes need a restart).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct AppConfig {
    /// The cloud's origin.
    pub cloud: String,
    pub tiles: String,
    pub tile_attribution: String,
    /// The offline map's file name when one is drawn instead of online tiles.
    pub offline_map: Option<String>,
}

impl Settings {
    pub fn app_config(&self) -> AppConfig {
        AppConfig {
            cloud: self.cloud.origin().ascii_serialization(),
            tiles: self.tiles.clone(),
            tile_attribution: self.tile_attribution.clone(),
            offline_map: self.offline_map.as_ref().map(|p| {
                p.file_name()
                    .unwrap_or(p.as_os_str())
                    .to_string_lossy()
                    .into_owned()
            }),
        }
    }
}

/// What the Settings screen gets: the file's values, where the file is,
/// which settings the environment overrides, and what is in use now.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SettingsView {
    pub values: Editable,
    pub file: String,
    pub from_environment: Vec<&'static str>,
    pub cloud_in_use: String,
    pub tiles_in_use: String,
}

/// The settings as the running app holds them: the Settings screen reads and
/// saves them here, the tray reads `close_to_tray`.
#[derive(Debug)]
pub struct SettingsStore(std::sync::Mutex<Settings>);

impl SettingsStore {
    pub fn new(settings: Settings) -> Self {
        Self(std::sync::Mutex::new(settings))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn view(&self) -> SettingsView {
        let s = self.lock();
        SettingsView {
            values: s.saved.clone(),
            file: s.file.display().to_string(),
            from_environment: s.from_environment.clone(),
            cloud_in_use: s.cloud.origin().ascii_serialization(),
            tiles_in_use: s.tiles.clone(),
        }
    }

    pub fn save(&self, edit: Editable) -> Result<Saved, AppError> {
        self.lock().save(edit)
    }

    pub fn close_to_tray(&self) -> bool {
        self.lock().close_to_tray
    }

    pub fn start_at_login(&self) -> bool {
        self.lock().start_at_login
    }

    pub fn alerts(&self) -> AlertPrefs {
        self.lock().alerts.clone()
    }

    /// The settings as they are now (saved edits included).
    pub fn current(&self) -> Settings {
        self.lock().clone()
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
    let url = https_address(raw).ok_or_else(bad)?;
    // Keep the origin only, so joined paths are always the cloud's own.
    Url::parse(&url.origin().ascii_serialization()).map_err(|_| bad())
}

fn parse_update_feed(raw: &str) -> Result<Url, AppError> {
    let bad = || {
        AppError::Settings(format!(
            "The update feed `{raw}` is not valid; it must be an https:// address, like https://updates.waymark.example/latest.json."
        ))
    };
    https_address(raw.trim()).ok_or_else(bad)
}

/// An absolute `https://` address with a host, or nothing.
fn https_address(raw: &str) -> Option<Url> {
    Url::parse(raw)
        .ok()
        .filter(|url| url.scheme() == "https" && url.host_str().is_some())
}

/// The magic and version a PMTiles archive starts with (PMTiles v3).
const PMTILES_MAGIC: &[u8; 8] = b"PMTiles\x03";

/// An offline map must be a readable PMTiles v3 archive.
pub fn check_offline_map(path: &Path) -> Result<(), AppError> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    match read {
        Ok(()) if &head == PMTILES_MAGIC => Ok(()),
        Ok(()) => Err(AppError::Settings(format!(
            "{} is not a PMTiles map archive (version 3). Download a .pmtiles extract, or leave the field empty for online tiles.",
            path.display()
        ))),
        Err(e) => Err(AppError::Settings(format!(
            "The offline map {} could not be read ({e}). Check the path, or leave the field empty for online tiles.",
            path.display()
        ))),
    }
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

    #[test]
    fn the_settings_screen_saves_to_the_config_dir_and_bad_values_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not read here").unwrap();
        let mut s = Settings::from_parts(File::default(), |_| None).unwrap();
        s.file = dir.path().join("conf").join(FILE_NAME);
        assert!(s.close_to_tray && !s.start_at_login);
        assert_eq!(s.alerts.quiet_minutes, 15);

        let mut edit = s.saved.clone();
        edit.alerts.quiet_minutes = 5;
        edit.alerts.battery = false;
        edit.close_to_tray = false;
        assert!(!s.save(edit.clone()).unwrap().restart_needed);
        assert_eq!(s.alerts.quiet_minutes, 5);
        edit.cloud = "https://cloud.example:9443".into();
        edit.ca = ca.display().to_string();
        assert!(s.save(edit.clone()).unwrap().restart_needed);

        // What was written is what is read back at the next start.
        let text = std::fs::read_to_string(&s.file).unwrap();
        let again = Settings::from_parts(toml::from_str(&text).unwrap(), |_| None).unwrap();
        assert_eq!(again.saved, edit);
        assert_eq!(again.cloud.as_str(), "https://cloud.example:9443/");
        assert!(!again.close_to_tray && !again.alerts.battery);

        for bad in [
            Editable {
                cloud: "http://plain.example".into(),
                ..edit.clone()
            },
            Editable {
                tiles: "https://t.example/{z}.png".into(),
                ..edit.clone()
            },
            Editable {
                session_name: " ".into(),
                ..edit.clone()
            },
            Editable {
                ca: "/nowhere/ca.pem".into(),
                ..edit.clone()
            },
            Editable {
                alerts: AlertPrefs {
                    quiet_minutes: 0,
                    ..edit.alerts.clone()
                },
                ..edit.clone()
            },
        ] {
            let err = s.save(bad).unwrap_err();
            assert_eq!(err.code(), "settings", "{err}");
        }
        assert_eq!(
            std::fs::read_to_string(&s.file).unwrap(),
            text,
            "nothing written"
        );
    }

    #[test]
    fn the_environment_overrides_the_file_and_says_so() {
        let file = File {
            cloud: Some("https://from-file.example".into()),
            ..File::default()
        };
        let s = Settings::from_parts(file, |name| {
            (name == "WAYMARK_CLOUD").then(|| "https://from-env.example".to_string())
        })
        .unwrap();
        assert_eq!(s.cloud.as_str(), "https://from-env.example/");
        assert_eq!(s.saved.cloud, "https://from-file.example");
        assert_eq!(s.from_environment, ["WAYMARK_CLOUD"]);
    }
}
