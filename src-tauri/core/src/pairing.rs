//! Pairing a watch, the family's half (issue 13, `docs/end-to-end-encryption.md`
//! §4): the parent types the code the watch shows; this computer fetches the
//! offer its locator names, checks it itself (the certificate chains to a
//! manufacturer CA this app trusts, the id is the certificate's key, the
//! watch signed the offer), answers the watch's SPAKE2 message with the
//! code, and sends the family bundle (the current key epoch and roster)
//! sealed under the exchange's key. The cloud relays; the watch proves it
//! took the same code, and only the watch's signed word binds it. A wrong
//! code fails on both sides and shares nothing.

use std::time::{Duration, Instant};

use reqwest::Method;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use waymark_protocol::code_exchange::{Parties, Typer};
use waymark_protocol::device::verify_device_certificate;
use waymark_protocol::pairing::{
    Locator, OfferState, OfferView, PairingAnswer, PairingCode, PairingOffer, WatchFamilyBundle,
    bundle_context,
};
use waymark_protocol::signing::{b64, unb64};
use waymark_protocol::watches::WatchInfo;

use crate::Core;
use crate::error::AppError;

/// How often the app asks whether the watch has given its word.
const POLL: Duration = Duration::from_millis(300);
/// How long the app waits for it (a watch showing a code polls every 2 s).
const WAIT_FOR_WATCH: Duration = Duration::from_secs(30);

/// The manufacturer CAs this app trusts, DER.
pub(crate) fn manufacturer_cas(core: &Core) -> Result<Vec<Vec<u8>>, AppError> {
    let mut cas = Vec::new();
    for path in &core.settings().manufacturer_cas {
        let pem = std::fs::read(path).map_err(|e| {
            AppError::Settings(format!(
                "Cannot read the manufacturer CA {}: {e}.",
                path.display()
            ))
        })?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| {
                AppError::Settings(format!("{} is not a PEM certificate.", path.display()))
            })?;
            cas.push(cert.to_vec());
        }
    }
    Ok(cas)
}

/// The offer, if it is what this app accepts from a watch: a certificate
/// from a trusted manufacturer, the id its key gives, the locator typed,
/// and the watch's own signature over all of it.
fn checked_offer(
    view: &OfferView,
    locator: &Locator,
    manufacturers: &[Vec<u8>],
) -> Result<PairingOffer, AppError> {
    let signed = &view.signed;
    let der = unb64(&signed.certificate).ok_or(AppError::UntrustedWatch)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cert = verify_device_certificate(&der, manufacturers, now)
        .map_err(|_| AppError::UntrustedWatch)?;
    let offer = &signed.offer;
    if offer.device_id != cert.device_id
        || offer.locator != locator.as_str()
        || signed.verify(&cert.der).is_err()
    {
        return Err(AppError::UntrustedWatch);
    }
    Ok(offer.clone())
}

impl Core {
    /// Pairs the watch showing `code` (typed or pasted: grouping and case
    /// forgiven), giving it the family's current key epoch and roster.
    pub async fn pair(&self, typed: &str) -> Result<WatchInfo, AppError> {
        let code = PairingCode::parse(typed).ok_or(AppError::BadCode)?;
        let locator = code.locator();
        // In step with the cloud first, so the watch gets the newest epoch.
        if !matches!(
            self.family_keys().await?,
            crate::family::FamilyKeysView::Trusted { .. }
        ) {
            return Err(AppError::NotTrusted);
        }
        let keys = self
            .family_key_file()
            .await?
            .0
            .load()
            .await?
            .filter(|k| k.is_trusted())
            .ok_or(AppError::NotTrusted)?;
        let epoch = keys.current_epoch().ok_or(AppError::NotTrusted)?;
        let bundle = WatchFamilyBundle {
            epoch,
            epoch_public: keys.epoch_public(epoch).ok_or(AppError::NotTrusted)?,
            roster: keys.rosters().last().cloned().ok_or(AppError::NotTrusted)?,
        };
        let manufacturers = manufacturer_cas(self)?;
        let path = format!("/api/v1/pairing-offers/{locator}");
        let view: OfferView = self.get(&path).await?;
        let offer = checked_offer(&view, &locator, &manufacturers)?;
        let first = unb64(&offer.message).ok_or(AppError::UntrustedWatch)?;
        let (mut typer, answer) =
            Typer::answer(Parties::pair_watch(&offer.device_id), &code, &first)
                .map_err(|_| AppError::UntrustedWatch)?;
        let plain = serde_json::to_vec(&bundle).map_err(|_| AppError::BadAnswer)?;
        let sealed =
            typer.seal_with_answer(&plain, &bundle_context(&offer.device_id, locator.as_str()));
        let body = PairingAnswer {
            message: b64(&answer.message),
            confirmation: b64(&answer.confirmation),
            bundle: b64(&sealed),
        };
        self.send_empty(Method::POST, &format!("{path}/answer"), Some(&body))
            .await?;
        let deadline = Instant::now() + WAIT_FOR_WATCH;
        loop {
            let view: OfferView = self.get(&path).await?;
            match view.state {
                OfferState::Paired => {
                    let theirs = view
                        .watch_confirmation
                        .as_deref()
                        .and_then(unb64)
                        .and_then(|c| <[u8; 32]>::try_from(c).ok())
                        .ok_or(AppError::PairingNotConfirmed)?;
                    typer
                        .confirm(&theirs)
                        .map_err(|_| AppError::PairingNotConfirmed)?;
                    tracing::info!("watch paired");
                    let record = view.watch.ok_or(AppError::PairingNotConfirmed)?;
                    return Ok(self.reader().await?.watch_info(record));
                }
                OfferState::WrongCode => return Err(AppError::PairingCodeWrong),
                OfferState::Open | OfferState::Answered => {}
            }
            if Instant::now() > deadline {
                return Err(AppError::WatchDidNotAnswer);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
