//! The app's only way to the cloud: HTTPS through reqwest over rustls, TLS
//! 1.2+ only, trusting exactly the configured anchor (and pin), no redirects,
//! no plain HTTP. Refusals come back as `AppError`s with the cloud's words.

use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use url::Url;
use waymark_protocol::signin::TokenResponse;

use crate::error::AppError;
use crate::settings::{Settings, TrustAnchor};

/// Ordinary calls give up after this long; the live stream has no limit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Cloud {
    http: reqwest::Client,
    origin: Url,
}

impl Cloud {
    pub fn new(settings: &Settings) -> Result<Self, AppError> {
        let tls = tls_config(settings)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("waymark-desktop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AppError::Settings(format!("Could not set up HTTPS: {e}")))?;
        Ok(Self {
            http,
            origin: settings.cloud.clone(),
        })
    }

    pub fn origin(&self) -> &Url {
        &self.origin
    }

    /// An absolute address on the cloud; `path` starts with `/`.
    pub fn url(&self, path: &str) -> Url {
        // The origin has no path, so joining an absolute path cannot leave it.
        self.origin
            .join(path)
            .expect("paths are static and absolute")
    }

    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> RequestBuilder {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// Sends with the call timeout; a non-2xx answer becomes an error.
    pub(crate) async fn send(&self, req: RequestBuilder) -> Result<Response, AppError> {
        let resp = req
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| AppError::from_transport(&e))?;
        ok_or_refusal(resp).await
    }

    /// Sends without a total timeout (the live stream).
    pub(crate) async fn open_stream(&self, req: RequestBuilder) -> Result<Response, AppError> {
        let resp = req.send().await.map_err(|e| AppError::from_transport(&e))?;
        ok_or_refusal(resp).await
    }

    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
    ) -> Result<T, AppError> {
        self.send(req)
            .await?
            .json()
            .await
            .map_err(|e| AppError::from_transport(&e))
    }

    /// `POST /token` with a form; used by sign-in and refresh.
    pub(crate) async fn token<F: Serialize + ?Sized>(
        &self,
        form: &F,
    ) -> Result<TokenResponse, AppError> {
        self.json(self.request(Method::POST, "/token", None).form(form))
            .await
    }
}

async fn ok_or_refusal(resp: Response) -> Result<Response, AppError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.bytes().await.unwrap_or_default();
    Err(AppError::from_cloud(status.as_u16(), &body))
}

fn tls_config(settings: &Settings) -> Result<rustls::ClientConfig, AppError> {
    let mut roots = RootCertStore::empty();
    match &settings.anchor {
        TrustAnchor::CaFile(path) => add_ca_file(&mut roots, path)?,
        TrustAnchor::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| AppError::Settings(format!("Could not set up certificate checks: {e}")))?;
    let verifier = Arc::new(PinnedVerifier {
        inner: webpki,
        pin: settings.pin_sha256,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| AppError::Settings(format!("Could not set up TLS: {e}")))?
        .dangerous() // only to add the pin on top of the full WebPKI check
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Adds the CA certificates of a PEM file (at least one) to `roots`.
pub(crate) fn add_ca_file(
    roots: &mut RootCertStore,
    path: &std::path::Path,
) -> Result<(), AppError> {
    let pem = std::fs::read(path).map_err(|e| {
        AppError::Settings(format!(
            "Could not read the cloud's CA certificate {}: {e}.",
            path.display()
        ))
    })?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| bad_ca(path))?;
        roots.add(cert).map_err(|_| bad_ca(path))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad_ca(path));
    }
    Ok(())
}

fn bad_ca(path: &std::path::Path) -> AppError {
    AppError::Settings(format!(
        "{} does not hold a PEM CA certificate.",
        path.display()
    ))
}

/// The ordinary WebPKI check, then (when configured) the server key's hash
/// must equal the pin.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pin: Option<[u8; 32]>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        if let Some(pin) = self.pin {
            let (_, cert) =
                x509_parser::parse_x509_certificate(end_entity.as_ref()).map_err(|_| {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
                })?;
            let spki = Sha256::digest(cert.public_key().raw);
            if spki.as_slice() != pin {
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
