//! `waymark-cloud init`: a new data directory with its configuration, a
//! local certificate authority and a server certificate signed by it (like
//! mkcert). The CA's private key never leaves the directory; every file is 0600.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::config::{CONFIG_FILE, FileConfig};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; pass --force to replace it (this makes a new CA and database)")]
    Exists(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot make certificates: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// Creates `dir` with `waymark.toml`, `ca/ca.pem`, `ca/ca.key`,
/// `tls/server.pem`, `tls/server.key`. The database is created on first serve.
pub fn init(dir: &Path, force: bool, listen: Option<&str>) -> Result<(), InitError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InitError::Io { path, source }
    };
    if dir.join(CONFIG_FILE).exists() || dir.join("ca").exists() {
        if !force {
            return Err(InitError::Exists(dir.display().to_string()));
        }
        for old in ["ca", "tls"] {
            let p = dir.join(old);
            if p.exists() {
                fs::remove_dir_all(&p).map_err(io(&p))?;
            }
        }
        let mut config = FileConfig::local_default();
        if let Ok(text) = fs::read_to_string(dir.join(CONFIG_FILE))
            && let Ok(old) = toml::from_str::<FileConfig>(&text)
        {
            config.database = old.database;
        }
        for db in [
            config.database.clone(),
            format!("{}-wal", config.database),
            format!("{}-shm", config.database),
        ] {
            let p = dir.join(db);
            if p.exists() {
                fs::remove_file(&p).map_err(io(&p))?;
            }
        }
    }
    for sub in ["", "ca", "tls"] {
        let p = dir.join(sub);
        fs::create_dir_all(&p).map_err(io(&p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).map_err(io(&p))?;
    }

    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Waymark local development CA");
    name.push(DnType::OrganizationName, "Waymark (local)");
    ca.distinguished_name = name;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::days(1);
    ca.not_after = now + Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "Waymark cloud (localhost)");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = now - Duration::days(1);
    // Browsers cap leaf validity at 398 days.
    server.not_after = now + Duration::days(397);
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let mut config = FileConfig::local_default();
    if let Some(listen) = listen {
        config.listen = listen.to_owned();
    }
    let config_text = toml::to_string(&config).expect("config serialises");

    for (rel, contents) in [
        ("ca/ca.key", ca_key.serialize_pem()),
        ("ca/ca.pem", ca_cert.pem()),
        ("tls/server.key", server_key.serialize_pem()),
        (
            "tls/server.pem",
            format!("{}{}", server_cert.pem(), ca_cert.pem()),
        ),
        (CONFIG_FILE, config_text),
    ] {
        write_private(&dir.join(rel), contents.as_bytes()).map_err(io(&dir.join(rel)))?;
    }
    Ok(())
}

/// Writes a file readable only by its owner, created that way (no window
/// where it is world-readable).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_makes_private_files_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cloud");
        init(&dir, false, None).unwrap();
        for rel in [
            "ca/ca.key",
            "ca/ca.pem",
            "tls/server.key",
            "tls/server.pem",
            CONFIG_FILE,
        ] {
            let mode = fs::metadata(dir.join(rel)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{rel}");
        }
        let before = fs::read(dir.join("ca/ca.key")).unwrap();
        assert!(matches!(init(&dir, false, None), Err(InitError::Exists(_))));
        assert_eq!(before, fs::read(dir.join("ca/ca.key")).unwrap());
        init(&dir, true, None).unwrap();
        assert_ne!(before, fs::read(dir.join("ca/ca.key")).unwrap());
    }
}
