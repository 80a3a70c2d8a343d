//! The cloud's configuration: a TOML file in the data directory, with
//! environment overrides, resolved into paths and addresses once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "waymark.toml";

/// What `waymark.toml` holds. Relative paths are relative to the data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address of the HTTPS listener (there is no other).
    pub listen: String,
    /// The origin parents' browsers see, e.g. `https://localhost:8443`. Its
    /// host is the WebAuthn relying-party ID. Empty: `https://localhost:<port>`.
    #[serde(default)]
    pub origin: String,
    /// SQLite database file, or a `postgres://` URL.
    pub database: String,
    pub tls_cert: String,
    pub tls_key: String,
    /// The local CA certificate, for clients to pin (development only).
    pub ca_cert: String,
    /// PEM files of the watch manufacturer CAs whose device certificates are trusted.
    #[serde(default)]
    pub manufacturer_cas: Vec<String>,
    /// Accept only watches whose device certificate says the key is in a
    /// TPM (`waymark-cloud factory sign --require-tpm`).
    #[serde(default)]
    pub require_hardware_keys: bool,
}

impl FileConfig {
    pub fn local_default() -> Self {
        Self {
            listen: "127.0.0.1:8443".into(),
            origin: String::new(),
            database: "waymark.db".into(),
            tls_cert: "tls/server.pem".into(),
            tls_key: "tls/server.key".into(),
            ca_cert: "ca/ca.pem".into(),
            manufacturer_cas: Vec::new(),
            require_hardware_keys: false,
        }
    }
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    /// `None` means "derive from the bound port" (useful with port 0).
    pub origin: Option<url::Url>,
    pub database: Database,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub ca_cert: PathBuf,
    pub manufacturer_cas: Vec<PathBuf>,
    pub require_hardware_keys: bool,
}

/// Which SQL engine is behind the pool: the queries are the same (`$N`
/// placeholders, portable SQL); only taking the write lock and the live
/// fan-out differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Where the cloud keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An embedded SQLite file: one command starts a working cloud.
    Sqlite(PathBuf),
    /// A PostgreSQL server (`postgres://…`), shared by any number of instances.
    Postgres(String),
}

impl Database {
    /// A `postgres://` or `postgresql://` URL, or else a SQLite path (relative to `dir`).
    pub fn parse(dir: &Path, value: &str) -> Self {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Self::Postgres(value.to_owned())
        } else {
            Self::Sqlite(dir.join(value))
        }
    }
}

/// Never prints a PostgreSQL password: the URL's user info is left out.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "SQLite {}", path.display()),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(u) => write!(
                    f,
                    "PostgreSQL {}{}",
                    u.host_str().unwrap_or("(local socket)"),
                    u.path()
                ),
                Err(_) => f.write_str("PostgreSQL (unparsable URL)"),
            },
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source} (run `waymark-cloud init --dir DIR` first)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{name} is not valid: {message}")]
    BadValue { name: String, message: String },
}

impl Config {
    /// Reads `DIR/waymark.toml`, then applies `WAYMARK_LISTEN`,
    /// `WAYMARK_ORIGIN` and `WAYMARK_DATABASE` from `env`.
    pub fn load(dir: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let mut file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.message().to_owned(),
        })?;
        if let Some(v) = env("WAYMARK_LISTEN") {
            file.listen = v;
        }
        if let Some(v) = env("WAYMARK_ORIGIN") {
            file.origin = v;
        }
        if let Some(v) = env("WAYMARK_DATABASE") {
            file.database = v;
        }
        if let Some(v) = env("WAYMARK_MANUFACTURER_CAS") {
            file.manufacturer_cas = v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = env("WAYMARK_REQUIRE_HARDWARE_KEYS") {
            file.require_hardware_keys = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(ConfigError::BadValue {
                        name: "WAYMARK_REQUIRE_HARDWARE_KEYS".into(),
                        message: "must be true or false".into(),
                    });
                }
            };
        }
        Self::resolve(dir, file)
    }

    fn resolve(dir: &Path, file: FileConfig) -> Result<Self, ConfigError> {
        let listen = file.listen.parse().map_err(|e| ConfigError::BadValue {
            name: "listen".into(),
            message: format!("{e} (expected e.g. 127.0.0.1:8443)"),
        })?;
        let origin = if file.origin.is_empty() {
            None
        } else {
            let url = url::Url::parse(&file.origin).map_err(|e| ConfigError::BadValue {
                name: "origin".into(),
                message: e.to_string(),
            })?;
            if url.scheme() != "https" || url.host_str().is_none() || url.path() != "/" {
                return Err(ConfigError::BadValue {
                    name: "origin".into(),
                    message: "must be https://HOST[:PORT] with no path".into(),
                });
            }
            Some(url)
        };
        let path = |p: &str| dir.join(p);
        Ok(Self {
            dir: dir.to_owned(),
            listen,
            origin,
            database: Database::parse(dir, &file.database),
            tls_cert: path(&file.tls_cert),
            tls_key: path(&file.tls_key),
            ca_cert: path(&file.ca_cert),
            manufacturer_cas: file.manufacturer_cas.iter().map(|p| path(p)).collect(),
            require_hardware_keys: file.require_hardware_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = toml::to_string(&FileConfig::local_default()).unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        let cfg = Config::load(dir.path(), |k| {
            (k == "WAYMARK_LISTEN").then(|| "127.0.0.1:9999".to_owned())
        })
        .unwrap();
        assert_eq!(cfg.listen.port(), 9999);
        assert_eq!(
            cfg.database,
            Database::Sqlite(dir.path().join("waymark.db"))
        );
        assert!(cfg.origin.is_none());

        let bad = Config::load(dir.path(), |k| {
            (k == "WAYMARK_ORIGIN").then(|| "http://localhost:1".to_owned())
        });
        assert!(matches!(bad, Err(ConfigError::BadValue { .. })));
    }

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        let db = Database::parse(
            Path::new("/d"),
            "postgres://waymark:s3cret@db.example:5432/waymark",
        );
        assert!(matches!(db, Database::Postgres(_)));
        let shown = format!("{db} {db:?}");
        assert!(!shown.contains("s3cret") && shown.contains("db.example"));
        assert_eq!(
            Database::parse(Path::new("/d"), "w.db"),
            Database::Sqlite("/d/w.db".into())
        );
    }

    #[test]
    fn missing_file_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Config::load(dir.path(), |_| None).unwrap_err();
        assert!(err.to_string().contains("waymark-cloud init"));
    }
}
