//! The watch's side of pairing: make a fresh code, sign and upload an offer
//! holding only its hash, show the code as text and as a QR code, and learn
//! when (and to whom) it was paired.

use std::fs;
use std::path::Path;

use qrcode::{Color, QrCode};
use waymark_protocol::pairing::{MAX_OFFER_MS, PairingCode, PairingOffer};

use crate::cloud_link::{CloudLink, LinkError};
use crate::provisioning::Watch;

pub const PAIRED_FILE: &str = "paired.json";

/// A code the cloud has accepted an offer for.
pub struct ShownCode {
    pub code: PairingCode,
    pub expires_at: i64,
}

/// Makes a code valid for `ttl_ms` (at most 10 minutes) and uploads its signed offer.
pub async fn make_code(
    watch: &Watch,
    link: &CloudLink,
    ttl_ms: i64,
) -> Result<ShownCode, LinkError> {
    let code = PairingCode::generate();
    let offer = || {
        let now = link.clock.now_ms();
        PairingOffer {
            device_id: watch.device_id.clone(),
            code_hash: code.hash(),
            created_at: now,
            expires_at: now + ttl_ms.clamp(1_000, MAX_OFFER_MS),
        }
    };
    // A refusal for the watch's clock carried the cloud's time: offer again, corrected.
    let accepted = match link.offer(watch, offer()).await {
        Err(LinkError::Refused(e)) if e.error == waymark_protocol::error::ErrorCode::ClockSkew => {
            link.offer(watch, offer()).await?
        }
        other => other?,
    };
    Ok(ShownCode {
        code,
        expires_at: accepted.expires_at,
    })
}

/// Remembers the owner's display name once paired.
pub fn remember_owner(dir: &Path, owner: &str) -> anyhow::Result<()> {
    fs::write(
        dir.join(PAIRED_FILE),
        serde_json::to_vec(&serde_json::json!({ "owner": owner }))?,
    )?;
    Ok(())
}

pub fn is_paired(dir: &Path) -> bool {
    dir.join(PAIRED_FILE).exists()
}

/// The owner's display name remembered at pairing, if paired.
pub fn remembered_owner(dir: &Path) -> Option<String> {
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join(PAIRED_FILE)).ok()?).ok()?;
    json["owner"].as_str().map(str::to_owned)
}

/// The QR code for the terminal: two modules per character cell, with a quiet zone.
pub fn qr_text(code: &PairingCode) -> anyhow::Result<String> {
    let qr = QrCode::new(code.qr_payload().as_bytes())?;
    let (w, colors) = (qr.width(), qr.to_colors());
    let dark = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < w
            && colors[y as usize * w + x as usize] == Color::Dark
    };
    let mut out = String::new();
    let quiet = 2isize;
    let mut y = -quiet;
    while y < w as isize + quiet {
        for x in -quiet..w as isize + quiet {
            // Light-on-dark terminals: print the light modules as blocks.
            out.push(match (!dark(x, y), !dark(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    Ok(out)
}

/// Writes the QR code as a PNG (8 px per module, 4-module quiet zone).
pub fn qr_png(code: &PairingCode, path: &Path) -> anyhow::Result<()> {
    let qr = QrCode::new(code.qr_payload().as_bytes())?;
    let (w, colors) = (qr.width(), qr.to_colors());
    let (scale, quiet) = (8usize, 4usize);
    let size = (w + 2 * quiet) * scale;
    let mut pixels = vec![255u8; size * size];
    for y in 0..w {
        for x in 0..w {
            if colors[y * w + x] == Color::Dark {
                for dy in 0..scale {
                    let row = (y + quiet) * scale + dy;
                    let start = row * size + (x + quiet) * scale;
                    pixels[start..start + scale].fill(0);
                }
            }
        }
    }
    let file = fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), size as u32, size as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&pixels)?;
    Ok(())
}
