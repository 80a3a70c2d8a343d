//! The watch's side of pairing (issue 13, pairing v2): make a fresh code,
//! start the code exchange and upload a signed offer holding the code's
//! locator and the exchange's first message, show the code as text and as a
//! QR code, then take the family's answer: if it proves the same code, keep
//! the family bundle it brought and tell the cloud, signed, to bind this
//! watch to the answering account; if not, say so and bind nothing.

use std::fs;
use std::path::Path;
use std::time::Duration;

use qrcode::{Color, QrCode};
use waymark_protocol::code_exchange::{Answer, Parties, Shower};
use waymark_protocol::error::ErrorCode;
use waymark_protocol::pairing::{
    AnswerForWatch, MAX_OFFER_MS, PairingCode, PairingConfirmation, PairingOffer, PairingOutcome,
    WatchFamilyBundle, bundle_context,
};
use waymark_protocol::roster::TrustedRoster;
use waymark_protocol::signing::{b64, unb64};

use crate::cloud_link::{CloudLink, LinkError};
use crate::family;
use crate::provisioning::Watch;

pub const PAIRED_FILE: &str = "paired.json";

/// A code the cloud has accepted an offer for, and the exchange it started.
pub struct ShownCode {
    pub code: PairingCode,
    pub expires_at: i64,
    exchange: Shower,
}

impl std::fmt::Debug for ShownCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShownCode")
            .field("locator", &self.code.locator())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A fresh code and the exchange it starts (not yet offered: `expires_at`
/// is set once the cloud accepts the offer), and the exchange's first message.
pub fn new_code(device_id: &str) -> (ShownCode, Vec<u8>) {
    let code = PairingCode::generate();
    let (exchange, first) = Shower::start(Parties::pair_watch(device_id), &code);
    let shown = ShownCode {
        code,
        expires_at: 0,
        exchange,
    };
    (shown, first)
}

/// The offer for `code`, made at `now` and valid for `ttl_ms` (at most 10 minutes).
pub fn offer_for(
    device_id: &str,
    code: &PairingCode,
    first: &[u8],
    now: i64,
    ttl_ms: i64,
) -> PairingOffer {
    PairingOffer {
        device_id: device_id.to_owned(),
        locator: code.locator().as_str().to_owned(),
        message: b64(first),
        created_at: now,
        expires_at: now + ttl_ms.clamp(1_000, MAX_OFFER_MS),
    }
}

/// Makes a code valid for `ttl_ms` (at most 10 minutes) and uploads its signed offer.
pub async fn make_code(
    watch: &Watch,
    link: &CloudLink,
    ttl_ms: i64,
) -> Result<ShownCode, LinkError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let (mut shown, first) = new_code(&watch.device_id);
        let offer = || {
            let now = link.clock.now_ms();
            offer_for(&watch.device_id, &shown.code, &first, now, ttl_ms)
        };
        // A refusal for the watch's clock carried the cloud's time: offer again, corrected.
        let sent = match link.offer(watch, offer()).await {
            Err(LinkError::Refused(e)) if e.error == ErrorCode::ClockSkew => {
                link.offer(watch, offer()).await
            }
            other => other,
        };
        match sent {
            Ok(accepted) => {
                shown.expires_at = accepted.expires_at;
                return Ok(shown);
            }
            // Another watch shows a code with the same locator: draw again.
            Err(LinkError::Refused(e)) if e.error == ErrorCode::LocatorTaken && tries < 5 => {}
            Err(e) => return Err(e),
        }
    }
}

/// What the watch made of the family's answer, and the word it signs.
pub struct Weighed {
    pub word: PairingConfirmation,
    /// The family bundle, when the code matched and the bundle checked.
    pub family: Option<WatchFamilyBundle>,
}

/// Weighs an answer to `shown`: the family's confirmation must prove the
/// same code, and the bundle sealed under the exchange's key must open and
/// hold a roster signed by one of its own computers. Anything else is
/// refused as a wrong code: nothing from it is kept.
pub fn weigh_answer(device_id: &str, shown: ShownCode, answer: &AnswerForWatch) -> Weighed {
    let refused = |why: &str| {
        tracing::warn!(why, "pairing answer refused");
        Weighed {
            word: PairingConfirmation {
                device_id: device_id.to_owned(),
                locator: answer.locator.clone(),
                account_id: answer.account_id.clone(),
                outcome: PairingOutcome::WrongCode,
                transcript_hash: String::new(),
                confirmation: String::new(),
            },
            family: None,
        }
    };
    let a = &answer.answer;
    let (Some(message), Some(confirmation)) = (
        unb64(&a.message),
        unb64(&a.confirmation).and_then(|c| <[u8; 32]>::try_from(c).ok()),
    ) else {
        return refused("not an exchange message");
    };
    let Ok((mut channel, mine)) = shown.exchange.finish(&Answer {
        message,
        confirmation,
    }) else {
        return refused("the code did not match");
    };
    let context = bundle_context(device_id, &answer.locator);
    let Some(sealed) = unb64(&a.bundle) else {
        return refused("the bundle is not base64url");
    };
    let Ok(plain) = channel.open(&sealed, &context) else {
        return refused("the bundle did not open");
    };
    let Ok(bundle) = serde_json::from_slice::<WatchFamilyBundle>(&plain) else {
        return refused("the bundle is not a family bundle");
    };
    if TrustedRoster::from_pairing(&bundle.roster).is_err() {
        return refused("the bundle's roster does not check");
    }
    Weighed {
        word: PairingConfirmation {
            device_id: device_id.to_owned(),
            locator: answer.locator.clone(),
            account_id: answer.account_id.clone(),
            outcome: PairingOutcome::Accepted,
            transcript_hash: b64(&channel.transcript_hash()),
            confirmation: b64(&mine),
        },
        family: Some(bundle),
    }
}

/// How a shown code ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// Bound, to the account with this display name.
    Paired {
        owner: String,
    },
    /// Answered with another code: the watch shows a new one.
    WrongCode,
    Expired,
}

/// Polls every `every` until `shown` is answered, weighs the answer, keeps
/// the family bundle and gives the cloud the watch's word.
pub async fn wait_for_answer(
    watch: &Watch,
    link: &CloudLink,
    dir: &Path,
    shown: ShownCode,
    every: Duration,
) -> Result<Waited, LinkError> {
    let locator = shown.code.locator();
    let expires_at = shown.expires_at;
    let mut shown = Some(shown);
    // The word, once weighed, is sent until the cloud takes it.
    let mut word: Option<(PairingConfirmation, bool)> = None;
    loop {
        if let Some((w, accepted)) = &word {
            match link.confirm_pairing(watch, w.clone()).await {
                Ok(()) if !accepted => return Ok(Waited::WrongCode),
                Ok(()) => word = None,
                Err(LinkError::Offline(e)) => {
                    tracing::warn!(error = %e, "pairing confirmation not delivered; retrying");
                    tokio::time::sleep(every).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        match link.status(watch).await {
            Ok(s) if s.paired => {
                let owner = s.owner.unwrap_or_default();
                remember_owner(dir, &owner)
                    .map_err(|e| LinkError::Offline(format!("cannot save: {e}")))?;
                return Ok(Waited::Paired { owner });
            }
            Ok(s) => {
                if let Some(answer) = s.pairing_answer
                    && answer.locator == locator.as_str()
                    && let Some(exchange) = shown.take()
                {
                    let weighed = weigh_answer(&watch.device_id, exchange, &answer);
                    if let Some(bundle) = &weighed.family {
                        family::save(dir, bundle)
                            .map_err(|e| LinkError::Offline(format!("cannot save: {e}")))?;
                    }
                    word = Some((weighed.word, weighed.family.is_some()));
                    continue;
                }
            }
            Err(LinkError::Revoked) => return Err(LinkError::Revoked),
            Err(e) => tracing::warn!(error = %e, "status poll failed"),
        }
        // Once answered, the binding follows the word at once; a minute's
        // grace covers a cloud that is slow to show it.
        let grace = if shown.is_some() { 0 } else { 60_000 };
        if link.clock.now_ms() > expires_at + grace {
            return Ok(Waited::Expired);
        }
        tokio::time::sleep(every).await;
    }
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
