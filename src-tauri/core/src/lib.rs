//! The Waymark desktop app's core: everything the app does, as plain Rust
//! that is tested without a window. The Tauri commands in `src-tauri` are
//! one-line calls into [`Core`].
//!
//! One module per flow: `signin` (system browser + loopback + PKCE),
//! `tokens` (memory + OS keychain), `family` (the family's keys at
//! sign-in), `reports` (opening the family's sealed reports), `watches`,
//! `live`, `account`,
//! `pairing_picture`, `alerts` and `family_watch` (what the parent is told,
//! also with the window closed); `cloud` is the HTTPS client they all share.

pub mod account;
pub mod alerts;
pub mod approvals;
pub mod cloud;
pub mod co_parents;
pub mod error;
pub mod family;
pub mod family_keys;
pub mod family_watch;
pub mod live;
pub mod offline_map;
pub mod pairing;
pub mod pairing_picture;
pub mod reports;
pub mod sealed_history;
pub mod settings;
pub mod signin;
pub mod tokens;
pub mod updates;
pub mod watches;
pub mod zones;

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, Notify};
use waymark_protocol::account::Me;

pub use cloud::Cloud;
pub use error::AppError;
pub use live::LiveEvent;
pub use settings::Settings;
pub use signin::{Browser, CommandBrowser, Start};
pub use tokens::{Keychain, Tokens};

pub struct Core {
    settings: Settings,
    cloud: Cloud,
    tokens: Tokens,
    /// Held while a sign-in waits for the browser: one at a time.
    signing_in: Mutex<()>,
    cancel: Notify,
    /// Held while this computer's family keys are read and changed.
    family_lock: Mutex<()>,
    /// The approval exchanges this computer is in.
    approvals: Mutex<approvals::Approvals>,
    /// The family's keys as last read for opening reports.
    keys_cache: reports::KeysCache,
    /// An invitation link the desktop opened the app with, until the window takes it.
    invitation: std::sync::Mutex<Option<String>>,
}

impl Core {
    pub fn new(settings: Settings) -> Result<Self, AppError> {
        let cloud = Cloud::new(&settings)?;
        let keychain = Keychain::new(
            &settings.keychain_service,
            &cloud.origin().origin().ascii_serialization(),
        );
        Ok(Self {
            settings,
            cloud,
            tokens: Tokens::new(keychain),
            signing_in: Mutex::new(()),
            cancel: Notify::new(),
            family_lock: Mutex::new(()),
            approvals: Mutex::new(approvals::Approvals::default()),
            keys_cache: reports::KeysCache::default(),
            invitation: std::sync::Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// At start: the signed-in account if this computer still holds a live
    /// sign-in, `None` if the parent must sign in.
    pub async fn restore(&self) -> Result<Option<Me>, AppError> {
        if !self.tokens.has_sign_in().await? {
            return Ok(None);
        }
        match self.me().await {
            Ok(me) => Ok(Some(me)),
            Err(AppError::SignedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the cloud's passkey page in `browser` and waits for it to come
    /// back to this computer; keeps the tokens and returns the account.
    pub async fn sign_in(&self, browser: &dyn Browser, start: Start) -> Result<Me, AppError> {
        let _one = self
            .signing_in
            .try_lock()
            .map_err(|_| AppError::SignInBusy)?;
        let attempt = signin::Attempt::prepare(&self.cloud, start).await?;
        browser.open(attempt.authorize_url().as_str())?;
        let tokens = attempt
            .finish(
                &self.cloud,
                &self.settings.session_name,
                &self.cancel,
                self.settings.sign_in_timeout,
            )
            .await?;
        self.tokens.keep(tokens).await?;
        self.me().await
    }

    /// Stops a sign-in that is waiting for the browser.
    pub fn cancel_sign_in(&self) {
        self.cancel.notify_waiters();
    }

    /// Ends this computer's session at the cloud and forgets its tokens.
    /// The keychain entry is deleted even when the cloud cannot be reached.
    pub async fn sign_out(&self) -> Result<(), AppError> {
        let Some(refresh) = self.tokens.forget().await? else {
            return Ok(());
        };
        let req = self
            .cloud
            .request(Method::POST, "/revoke", None)
            .form(&[("token", refresh.as_str())]);
        self.cloud.send(req).await.map(|_| ())
    }

    // ---- authenticated calls, shared by the flow modules ----

    /// Sends with a fresh access token; after a 401, refreshes once and retries.
    pub(crate) async fn authed(
        &self,
        build: impl Fn(&str) -> RequestBuilder,
        stream: bool,
    ) -> Result<Response, AppError> {
        let send = |req| async move {
            if stream {
                self.cloud.open_stream(req).await
            } else {
                self.cloud.send(req).await
            }
        };
        let token = self.tokens.access(&self.cloud).await?;
        match send(build(&token)).await {
            Err(AppError::SignedOut) => {
                let token = self.tokens.after_refusal(&self.cloud, &token).await?;
                send(build(&token)).await
            }
            other => other,
        }
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AppError> {
        let resp = self
            .authed(|t| self.cloud.request(Method::GET, path, Some(t)), false)
            .await?;
        resp.json().await.map_err(|e| AppError::from_transport(&e))
    }

    pub(crate) async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, AppError> {
        let resp = self
            .authed(
                |t| self.cloud.request(method.clone(), path, Some(t)).json(body),
                false,
            )
            .await?;
        resp.json().await.map_err(|e| AppError::from_transport(&e))
    }

    pub(crate) async fn send_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), AppError> {
        self.authed(
            |t| {
                let req = self.cloud.request(method.clone(), path, Some(t));
                match body {
                    Some(b) => req.json(b),
                    None => req,
                }
            },
            false,
        )
        .await
        .map(|_| ())
    }
}
