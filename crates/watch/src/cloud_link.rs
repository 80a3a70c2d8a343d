//! The watch's connection to the cloud: HTTPS with rustls (TLS 1.2+),
//! trusting only the cloud's CA that was installed at provisioning, and the
//! calls a watch makes, each signed with its device key.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use waymark_protocol::error::{ErrorBody, ErrorCode};
use waymark_protocol::pairing::{
    OfferAccepted, PairingConfirmation, SignedOffer, SignedPairingConfirmation,
};
use waymark_protocol::report::BatchAck;
use waymark_protocol::sealed_report::{SetupRecord, SignedSealedBatch, SignedSetupRecord};
use waymark_protocol::signing::b64;
use waymark_protocol::status_poll::{DeviceStatus, SignedStatus, StatusRequest};
use waymark_protocol::zone_relay::ZoneWord;

use crate::clock::Clock;
use crate::provisioning::Watch;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the cloud cannot be reached: {0}")]
    Offline(String),
    #[error("this watch was revoked by its owner")]
    Revoked,
    #[error("the cloud refused: {} ({})", .0.message, .0.error)]
    Refused(ErrorBody),
}

pub struct CloudLink {
    http: reqwest::Client,
    base: String,
    /// Corrected by the `Date` of every answer.
    pub clock: std::sync::Arc<Clock>,
    /// The `at` of the last status poll sent: each poll is newer (the cloud
    /// refuses one that is not, so a captured poll cannot be replayed).
    last_status_at: std::sync::atomic::AtomicI64,
    /// The zone word every status poll carries (signed with it), once the
    /// watch has zones to speak of.
    zone_word: std::sync::Mutex<Option<ZoneWord>>,
}

impl CloudLink {
    pub fn new(watch: &Watch) -> anyhow::Result<Self> {
        Self::with_clock(watch, Clock::default())
    }

    /// A link whose hardware clock reads `clock` (tests and `--clock-error-ms`).
    pub fn with_clock(watch: &Watch, clock: Clock) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&watch.cloud_ca_pem) {
            roots.add(cert?)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self {
            http,
            base: watch.settings.cloud.clone(),
            clock: std::sync::Arc::new(clock),
            last_status_at: std::sync::atomic::AtomicI64::new(0),
            zone_word: std::sync::Mutex::new(None),
        })
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, LinkError> {
        self.send(path, body)
            .await?
            .json()
            .await
            .map_err(|e| LinkError::Offline(e.to_string()))
    }

    /// Posts `body`; a success answer is returned unread.
    async fn send<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<reqwest::Response, LinkError> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| LinkError::Offline(e.to_string()))?;
        if let Some(date) = res
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            && self.clock.observe_date(date, self.clock.hardware_ms())
        {
            tracing::warn!(
                offset_ms = self.clock.offset_ms(),
                "this watch's clock is off; correcting it by the cloud's time"
            );
        }
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        if status.is_server_error() {
            return Err(LinkError::Offline(format!("cloud answered {status}")));
        }
        let body: ErrorBody = res.json().await.unwrap_or(ErrorBody {
            error: ErrorCode::Unknown,
            message: format!("cloud answered {status}"),
        });
        if body.error == ErrorCode::Revoked {
            return Err(LinkError::Revoked);
        }
        Err(LinkError::Refused(body))
    }

    pub async fn offer(
        &self,
        watch: &Watch,
        offer: waymark_protocol::pairing::PairingOffer,
    ) -> Result<OfferAccepted, LinkError> {
        let signature = sign(watch, &offer.signing_bytes())?;
        let signed = SignedOffer {
            offer,
            certificate: b64(&watch.certificate_der),
            signature,
        };
        self.post("/device/v1/pairing-offers", &signed).await
    }

    /// The watch's word on an answered offer.
    pub async fn confirm_pairing(
        &self,
        watch: &Watch,
        confirmation: PairingConfirmation,
    ) -> Result<(), LinkError> {
        let signature = sign(watch, &confirmation.signing_bytes())?;
        let signed = SignedPairingConfirmation {
            confirmation,
            signature,
        };
        self.send("/device/v1/pairing-confirmations", &signed)
            .await
            .map(drop)
    }

    /// What the following status polls say of the watch's zones.
    pub fn set_zone_word(&self, word: ZoneWord) {
        *self.zone_word.lock().unwrap_or_else(|p| p.into_inner()) = Some(word);
    }

    /// Asks what the cloud has for this watch. A poll refused for the
    /// watch's clock is made again at once with the time the refusal
    /// carried, so a wrong clock never leaves the watch unable to ask.
    pub async fn status(&self, watch: &Watch) -> Result<DeviceStatus, LinkError> {
        match self.status_once(watch).await {
            Err(LinkError::Refused(e))
                if matches!(e.error, ErrorCode::ClockSkew | ErrorCode::ReplayedStatus) =>
            {
                self.status_once(watch).await
            }
            other => other,
        }
    }

    async fn status_once(&self, watch: &Watch) -> Result<DeviceStatus, LinkError> {
        use std::sync::atomic::Ordering;
        let at = self
            .clock
            .now_ms()
            .max(self.last_status_at.load(Ordering::Relaxed) + 1);
        self.last_status_at.store(at, Ordering::Relaxed);
        let status = StatusRequest {
            device_id: watch.device_id.clone(),
            at,
            zones: self
                .zone_word
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        };
        let signature = sign(watch, &status.signing_bytes())?;
        self.post("/device/v1/status", &SignedStatus { status, signature })
            .await
    }

    /// Posts a new setup record, signed: the cloud must hold it before
    /// any batch that names it.
    pub async fn post_setup(&self, watch: &Watch, setup: SetupRecord) -> Result<(), LinkError> {
        let signature = sign(watch, &setup.signing_bytes())?;
        self.send("/device/v1/setups", &SignedSetupRecord { setup, signature })
            .await
            .map(drop)
    }

    /// Uploads a sealed, signed batch.
    pub async fn upload(&self, signed: &SignedSealedBatch) -> Result<BatchAck, LinkError> {
        self.post("/device/v2/batches", signed).await
    }
}

fn sign(watch: &Watch, bytes: &[u8]) -> Result<String, LinkError> {
    watch
        .keys
        .sign(bytes)
        .map(|s| b64(&s))
        .map_err(|e| LinkError::Offline(format!("cannot sign: {e}")))
}
