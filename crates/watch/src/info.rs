//! `waymark-watch info`: what a watch's directory says about it, for a
//! person at the production line or a support desk: its id, where its key
//! lives, what its certificate says, its cloud, whether it is paired, and
//! which of its family's keys it seals to.

use std::fs;
use std::path::Path;

use waymark_protocol::device::device_id_from_spki;

use crate::provisioning::{CERT_FILE, Settings, first_cert};
use crate::{family, pairing};

/// What `waymark-watch info` shows: each line's label and value.
pub fn describe(dir: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let settings = Settings::read(dir)?;
    let mut lines = vec![];
    lines.push(match settings.keystore.open(dir) {
        Ok(keys) => ("Device id", device_id_from_spki(&keys.public_key_spki())),
        Err(e) => ("Device id", format!("unknown: cannot open the key: {e:#}")),
    });
    lines.push(("Key store", settings.keystore.describe()));
    lines.push((
        "Certificate",
        match fs::read(dir.join(CERT_FILE)) {
            Err(_) => "none yet (run `waymark-watch install-cert`)".into(),
            Ok(pem) => {
                let der = first_cert(&pem)?;
                let (_, cert) = x509_parser::parse_x509_certificate(&der)
                    .map_err(|_| anyhow::anyhow!("{CERT_FILE} is not an X.509 certificate"))?;
                let subject = cert.subject();
                let name =
                    |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
                        it.next()
                            .and_then(|a| a.as_str().ok())
                            .unwrap_or("?")
                            .to_owned()
                    };
                format!(
                    "serial {}, model {}; {}",
                    name(&mut subject.iter_common_name()),
                    name(&mut subject.iter_organizational_unit()),
                    if waymark_protocol::device::hardware_key(&der) {
                        "hardware key (the factory saw TPM evidence)"
                    } else {
                        "software key"
                    }
                )
            }
        },
    ));
    lines.push(("Cloud", settings.cloud.clone()));
    lines.push((
        "Paired",
        match pairing::remembered_owner(dir) {
            Some(owner) => format!("yes, with {owner}"),
            None if pairing::is_paired(dir) => "yes".into(),
            None => {
                "not as far as this watch knows (it learns its owner from a status poll)".into()
            }
        },
    ));
    lines.push((
        "Family key",
        match family::load(dir) {
            Some(held) => format!(
                "epoch {}, from roster version {} ({} computers)",
                held.epoch,
                held.roster.roster.version,
                held.roster.roster.computers.len()
            ),
            None => "none (pair the watch to receive it)".into(),
        },
    ));
    Ok(lines)
}
