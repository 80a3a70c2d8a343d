//! The token keeper. The access token lives only in this process's memory;
//! the refresh token lives only in the OS keychain (Secret Service, macOS
//! Keychain, Windows Credential Manager) through `keyring`. Neither ever
//! reaches the UI or a log.
//!
//! Refresh tokens rotate and the cloud ends a session whose old refresh
//! token is replayed, so refreshing is serialised: two calls that both find
//! the access token stale must not both spend the same refresh token.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use waymark_protocol::signin::{DESKTOP_CLIENT_ID, TokenResponse};

use crate::cloud::Cloud;
use crate::error::AppError;

/// Refresh this long before the cloud's expiry, so a call never races it.
const EARLY: Duration = Duration::from_secs(30);

/// One keychain entry: service `waymark` (configurable), user = cloud origin.
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
    account: String,
}

impl Keychain {
    pub fn new(service: &str, cloud_origin: &str) -> Self {
        Self {
            service: service.into(),
            account: cloud_origin.into(),
        }
    }

    pub async fn load(&self) -> Result<Option<String>, AppError> {
        let me = self.clone();
        blocking(move || match me.entry()?.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(e)),
        })
        .await
    }

    pub async fn save(&self, refresh_token: &str) -> Result<(), AppError> {
        let me = self.clone();
        let secret = refresh_token.to_owned();
        blocking(move || me.entry()?.set_password(&secret).map_err(keychain_error)).await
    }

    pub async fn delete(&self) -> Result<(), AppError> {
        let me = self.clone();
        blocking(move || match me.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        })
        .await
    }

    fn entry(&self) -> Result<keyring::Entry, AppError> {
        keyring::Entry::new(&self.service, &self.account).map_err(keychain_error)
    }
}

/// The keychain libraries block on D-Bus (or the platform API): keep them off
/// the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AppError::Keychain("the keychain call stopped unexpectedly".into()))?
}

fn keychain_error(e: keyring::Error) -> AppError {
    // The error's text names the store's problem, never the secret.
    AppError::Keychain(e.to_string())
}

struct Access {
    token: String,
    fresh_until: Instant,
}

pub struct Tokens {
    keychain: Keychain,
    access: Mutex<Option<Access>>,
}

impl Tokens {
    pub fn new(keychain: Keychain) -> Self {
        Self {
            keychain,
            access: Mutex::new(None),
        }
    }

    /// Keeps a fresh sign-in: refresh token to the keychain, access token in memory.
    pub async fn keep(&self, tokens: TokenResponse) -> Result<(), AppError> {
        let mut access = self.access.lock().await;
        self.keychain.save(&tokens.refresh_token).await?;
        *access = Some(Access::from(&tokens));
        Ok(())
    }

    /// A usable access token, refreshing first when it is missing or stale.
    pub async fn access(&self, cloud: &Cloud) -> Result<String, AppError> {
        let mut access = self.access.lock().await;
        if let Some(a) = access.as_ref().filter(|a| Instant::now() < a.fresh_until) {
            return Ok(a.token.clone());
        }
        self.refresh_locked(cloud, &mut access).await
    }

    /// Called after the cloud refused `used`: refresh unless another call
    /// already replaced it.
    pub async fn after_refusal(&self, cloud: &Cloud, used: &str) -> Result<String, AppError> {
        let mut access = self.access.lock().await;
        if let Some(a) = access.as_ref().filter(|a| a.token != used) {
            return Ok(a.token.clone());
        }
        self.refresh_locked(cloud, &mut access).await
    }

    async fn refresh_locked(
        &self,
        cloud: &Cloud,
        access: &mut Option<Access>,
    ) -> Result<String, AppError> {
        *access = None;
        let Some(refresh_token) = self.keychain.load().await? else {
            return Err(AppError::SignedOut);
        };
        let answer = cloud
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", DESKTOP_CLIENT_ID),
            ])
            .await;
        match answer {
            Ok(tokens) => {
                self.keychain.save(&tokens.refresh_token).await?;
                let token = tokens.access_token.clone();
                *access = Some(Access::from(&tokens));
                Ok(token)
            }
            // The session is over (ended, expired or replayed): forget it
            // so the app returns cleanly to the sign-in screen.
            Err(AppError::Cloud {
                code: waymark_protocol::error::ErrorCode::InvalidGrant,
                ..
            }) => {
                self.keychain.delete().await?;
                Err(AppError::SignedOut)
            }
            Err(AppError::SignedOut) => {
                self.keychain.delete().await?;
                Err(AppError::SignedOut)
            }
            Err(other) => Err(other),
        }
    }

    /// Forgets everything this computer holds; returns the refresh token so
    /// the caller can revoke it at the cloud.
    pub async fn forget(&self) -> Result<Option<String>, AppError> {
        let mut access = self.access.lock().await;
        *access = None;
        let refresh = self.keychain.load().await?;
        self.keychain.delete().await?;
        Ok(refresh)
    }

    /// Whether a refresh token is kept (signed in as far as this computer knows).
    pub async fn has_sign_in(&self) -> Result<bool, AppError> {
        Ok(self.keychain.load().await?.is_some())
    }
}

impl From<&TokenResponse> for Access {
    fn from(t: &TokenResponse) -> Self {
        let life = Duration::from_secs(t.expires_in).saturating_sub(EARLY);
        Self {
            token: t.access_token.clone(),
            fresh_until: Instant::now() + life,
        }
    }
}
